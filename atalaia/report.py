"""A monitor's report over a period, for people who would rather look than read.

One self-contained HTML file: a summary, the table of events with their top features'
shares, and per entity a figure of its series over the period (the detector's score against
the threshold, and each feature's values, from the landed batches) with its events shaded.
The figures are PNGs drawn with matplotlib (no display needed) and embedded as base64.

By default a report shows each batch as it was scored (``atalaia.queries``): a period that
spans a promotion shows the old champion's scores before it and the new one's after, and
says which versions scored the rows; ``version`` shows one version's scores instead.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from atalaia.adaptation import event_state
from atalaia.attribution import shares_text, stored_shares
from atalaia.config import Monitor
from atalaia.errors import AtalaiaError
from atalaia.landing import read_batch
from atalaia.queries import scored_period
from atalaia.settings import Settings
from atalaia.validation import entity_keys
from storage.models import EventRow, ModelRow

# Feature panels drawn per entity; with more features, those most named by its events first.
MAX_FEATURE_PANELS = 8
DEFAULT_MAX_ENTITIES = 20


@dataclass
class ReportData:
    """What a report shows: scores and events over ``[start, end)`` and the versions behind
    them (``scores`` has the ``read_scores`` layout plus ``version``)."""

    monitor: Monitor
    start: datetime
    end: datetime
    models: dict[int, ModelRow]  # by model id: the versions whose scores are shown
    scores: pd.DataFrame
    events: list[EventRow]
    # Landed rows (entity, ts and the features) of the period; None when none could be read.
    values: pd.DataFrame | None
    notes: list[str] = field(default_factory=list)


def load_report_data(
    settings: Settings,
    monitor: Monitor,
    start: datetime,
    end: datetime,
    version: int | None = None,
) -> ReportData:
    """Read the scores and events as scored (or of ``version``) and the landed rows."""
    found = scored_period(settings, monitor.name, start, end, version)
    by_id = {model.id: model for model in found.models}
    data = ReportData(monitor, start, end, by_id, found.scores, found.events, values=None)
    frames = []
    for batch in found.batches:
        try:
            frames.append(read_batch(batch.landing_path, batch.content_sha256))
        except AtalaiaError as exc:
            data.notes.append(f"feature values left out: {exc}")
    if frames:
        data.values = _values(pd.concat(frames, ignore_index=True), monitor, start, end)
    return data


def _values(landed: pd.DataFrame, monitor: Monitor, start: datetime, end: datetime) -> pd.DataFrame:
    stamps = pd.to_datetime(landed[monitor.timestamp], utc=True)
    inside = (stamps >= start) & (stamps < end)
    values = landed.loc[inside, monitor.features].copy()
    values.insert(0, "ts", stamps[inside])
    values.insert(0, "entity", entity_keys(landed.loc[inside], monitor))
    return values.sort_values(["entity", "ts"], kind="stable").reset_index(drop=True)


def write_report(
    settings: Settings,
    monitor: Monitor,
    start: datetime,
    end: datetime,
    out: Path,
    *,
    version: int | None = None,
    max_entities: int = DEFAULT_MAX_ENTITIES,
) -> Path:
    """Write the HTML report of ``monitor`` over ``[start, end)`` to ``out``; return it."""
    data = load_report_data(settings, monitor, start, end, version)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_html(data, max_entities), encoding="utf-8")
    return out


def ranked_entities(scores: pd.DataFrame) -> list[str]:
    """Entities by how anomalous they were: most anomalous rows first, then highest z."""
    summary = scores.groupby("entity").agg(anomalies=("is_anomaly", "sum"), peak=("z", "max"))
    summary = summary.reset_index().sort_values(
        ["anomalies", "peak", "entity"], ascending=[False, False, True]
    )
    return summary["entity"].tolist()


def render_html(data: ReportData, max_entities: int = DEFAULT_MAX_ENTITIES) -> str:
    """The report as one HTML document with its figures embedded."""
    entities = ranked_entities(data.scores)
    shown = entities[:max_entities]
    notes = list(data.notes)
    if len(shown) < len(entities):
        notes.append(
            f"figures for {len(shown)} of {len(entities)} entities, the most anomalous first "
            f"(--max-entities)"
        )
    sections = [_entity_section(data, entity) for entity in shown]
    monitor = data.monitor
    anomalies = int(data.scores["is_anomaly"].sum())
    rows_by_version = data.scores["version"].value_counts()
    summary = [
        ("period (UTC)", f"{_time(data.start)} to {_time(data.end)}"),
        *(
            (
                f"model version {model.version}",
                f"{model.status}, detector {model.detector}, alpha {model.alpha:g}, threshold "
                f"(anomaly score) {model.threshold:.4g}; scored "
                f"{rows_by_version.get(model.version, 0)} rows shown",
            )
            for model in sorted(data.models.values(), key=lambda model: model.version)
        ),
        ("rows scored", f"{len(data.scores)} over {len(entities)} entities"),
        ("anomalous rows", f"{anomalies} ({anomalies / len(data.scores):.2%})"),
        ("events", str(len(data.events))),
    ]
    return _PAGE.format(
        title=_e(f"Atalaia report: {monitor.name}"),
        monitor=_e(monitor.name),
        description=_e(monitor.description or ""),
        generated=_e(_time(datetime.now(UTC))),
        summary="".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in summary),
        notes="".join(f"<li>{_e(note)}</li>" for note in notes),
        events=_events_table(data.events, data.models)
        if data.events
        else "<p>No events in the period.</p>",
        entities="".join(sections),
    )


def _entity_section(data: ReportData, entity: str) -> str:
    events = [event for event in data.events if event.entity == entity]
    image = _png(_entity_figure(data, entity, events))
    label = entity or data.monitor.name
    table = _events_table(events, data.models) if events else "<p>No events.</p>"
    return (
        f'<section class="entity"><h3>{_e(label)}</h3>'
        f'<img alt="{_e(label)}: score, threshold and features" '
        f'src="data:image/png;base64,{image}">{table}</section>'
    )


def _entity_figure(data: ReportData, entity: str, events: list[EventRow]) -> Figure:
    scores = data.scores[data.scores["entity"] == entity]
    features = _features_to_draw(data.monitor.features, events)
    values = None if data.values is None else data.values[data.values["entity"] == entity]
    rows = 1 + (len(features) if values is not None and not values.empty else 0)
    figure = Figure(figsize=(11, 2.2 + 1.3 * (rows - 1)), layout="constrained")
    axes = figure.subplots(rows, 1, sharex=True, squeeze=False)[:, 0]

    score_axis = axes[0]
    stamps = _naive(scores["ts"])
    score_axis.plot(stamps, scores["raw_score"], lw=0.8, color="#1f4e79", label="anomaly score")
    flagged = scores["is_anomaly"].to_numpy()
    score_axis.scatter(
        stamps[flagged],
        scores["raw_score"][flagged],
        s=12,
        color="#c00000",
        zorder=3,
        label="anomalous",
    )
    thresholds = scores["model_id"].map({i: m.threshold for i, m in data.models.items()})
    score_axis.plot(
        stamps,
        thresholds,
        ls="--",
        lw=1,
        color="#c00000",
        drawstyle="steps-post",
        label="threshold of the scoring version",
    )
    score_axis.set_yscale("symlog", linthresh=max(1.0, float(thresholds.abs().max())))
    score_axis.set_ylabel("score")
    score_axis.legend(
        loc="lower left", bbox_to_anchor=(0, 1), ncols=3, fontsize="small", frameon=False
    )
    for event in events:
        top = shares_text(event.top_features)
        score_axis.annotate(
            f"z {event.peak_z:.1f}: {top}",
            (_naive_one(event.peak_ts), 0.97),
            xycoords=("data", "axes fraction"),
            fontsize="small",
            ha="center",
            va="top",
            bbox={"boxstyle": "round", "fc": "white", "ec": "#7f7f7f", "alpha": 0.85},
        )
    if rows > 1:
        for axis, feature in zip(axes[1:], features, strict=True):
            axis.plot(_naive(values["ts"]), values[feature], lw=0.8, color="#385723")
            axis.set_ylabel(feature, rotation=0, ha="right", va="center")
    for axis in axes:
        for event in events:
            axis.axvspan(
                _naive_one(event.start_ts),
                _naive_one(event.end_ts + data.monitor.step),
                color="#c00000",
                alpha=0.15,
                lw=0,
            )
    axes[-1].set_xlabel("time (UTC)")
    return figure


def _features_to_draw(features: list[str], events: list[EventRow]) -> list[str]:
    """All features when few; else those most named by the events, then in monitor order."""
    if len(features) <= MAX_FEATURE_PANELS:
        return list(features)
    weight = dict.fromkeys(features, 0.0)
    for event in events:
        for item, share in zip(event.top_features, stored_shares(event.top_features), strict=True):
            if item["feature"] in weight:
                weight[item["feature"]] += share
    ranked = sorted(features, key=lambda name: -weight[name])  # stable: monitor order on ties
    return ranked[:MAX_FEATURE_PANELS]


def _events_table(events: list[EventRow], models: dict[int, ModelRow]) -> str:
    head = "".join(
        f"<th>{name}</th>"
        for name in (
            "entity",
            "start",
            "end",
            "peak",
            "peak z",
            "anomalous rows",
            "state",
            "top features (share of the evidence)",
            "version",
        )
    )
    rows = []
    for event in events:
        top = shares_text(event.top_features)
        cells = (
            event.entity,
            _time(event.start_ts),
            _time(event.end_ts),
            _time(event.peak_ts),
            f"{event.peak_z:.2f}",
            str(event.anomalies),
            event_state(event),
            top,
            str(models[event.model_id].version),
        )
        rows.append("<tr>" + "".join(f"<td>{_e(cell)}</td>" for cell in cells) + "</tr>")
    return f'<table class="events"><tr>{head}</tr>{"".join(rows)}</table>'


def _png(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _naive(stamps: pd.Series) -> np.ndarray:
    """UTC timestamps without their zone, as matplotlib draws them."""
    return pd.DatetimeIndex(stamps).tz_convert("UTC").tz_localize(None).to_numpy()


def _naive_one(stamp: datetime) -> datetime:
    return stamp.astimezone(UTC).replace(tzinfo=None)


def _time(stamp: datetime) -> str:
    return f"{stamp.astimezone(UTC):%Y-%m-%d %H:%M}"


def _e(text: str) -> str:
    return html.escape(text, quote=True)


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1em; }}
th, td {{ border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; font-size: 0.9em; }}
th {{ background: #f2f2f2; }}
img {{ max-width: 100%; }}
section.entity {{ margin-top: 2em; }}
</style></head>
<body>
<h1>Monitor {monitor}</h1>
<p>{description}</p>
<p>Generated {generated} UTC by <code>atalaia report</code>.</p>
<h2>Summary</h2>
<table class="summary">{summary}</table>
<ul class="notes">{notes}</ul>
<h2>Events</h2>
{events}
<h2>Series</h2>
<p>Per entity: the detector's anomaly score (higher is more anomalous) against the
threshold the calibration set, anomalous rows in red, events shaded and labelled with
their peak z and top features; below, the entity's features.</p>
{entities}
</body></html>
"""
