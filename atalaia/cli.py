"""The atalaia command line: the jobs, the store's schema, events, labels and the demo.

Every command exits non-zero with a one-line reason when input, configuration or the
environment is wrong; settings come from ATALAIA_* environment variables, read once per
command (``_settings``). Reads of the store go through ``atalaia.queries``. Each command
imports what it uses when it runs (pandas, SQLAlchemy, scikit-learn, scipy, alembic cost
seconds), so ``--help`` and light commands start at once: every Airflow task pays start-up.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import json
import logging
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from atalaia.errors import AtalaiaError, NotFoundError
from atalaia.settings import Settings

if TYPE_CHECKING:
    from atalaia.config import Monitor

app = typer.Typer(help=__doc__, no_args_is_help=True, pretty_exceptions_enable=False)
db_app = typer.Typer(help="The store's schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
models_app = typer.Typer(
    help="The model registry: versions, champion, rollback.", no_args_is_help=True
)
app.add_typer(models_app, name="models")
labels_app = typer.Typer(
    help="Known incidents: left out of baselines, used to evaluate.", no_args_is_help=True
)
app.add_typer(labels_app, name="labels")
console = Console()

MonitorArg = Annotated[
    str, typer.Argument(help="monitor name (in ATALAIA_MONITORS_DIR) or YAML file")
]
Start = Annotated[str, typer.Option(help="interval start, ISO 8601 (UTC if no zone)")]
End = Annotated[str, typer.Option(help="interval end (exclusive), ISO 8601")]
Every = Annotated[
    str | None,
    typer.Option(help="split [start, end) into intervals of this length, e.g. 1D or 6h"),
]


AsJson = Annotated[bool, typer.Option("--json", help="print JSON (for scripts) instead of text")]

# The settings of the command running now, read from the environment once (``_settings``).
_SETTINGS: contextvars.ContextVar[Settings | None] = contextvars.ContextVar(
    "settings", default=None
)


def _settings() -> Settings:
    """The command's settings: read from ``ATALAIA_*`` the first time a command asks."""
    settings = _SETTINGS.get()
    if settings is None:
        settings = Settings.from_env()
        _SETTINGS.set(settings)
    return settings


def _each_interval(
    job: Callable[..., Any],
    config: Monitor,
    settings: Settings,
    intervals: list[tuple[datetime, datetime]],
    doing: str,
    as_json: bool,
    summary: Callable[[Any], str],
) -> None:
    """Run ``job`` on each interval in turn: a line per interval (``summary`` of its result),
    or, with ``as_json``, every result as JSON at the end."""
    results = []
    for first, last in _track(intervals, doing, as_json):
        result = job(config, first, last, settings=settings)
        results.append(result)
        if not as_json:
            console.print(
                f"{config.name} [{first:%Y-%m-%d %H:%M}, {last:%Y-%m-%d %H:%M}): {summary(result)}"
            )
    if as_json:
        _print_json(results)


def _print_json(value: Any) -> None:
    """``value`` as JSON on stdout: times in ISO 8601, paths as text, dataclasses as dicts."""

    def plain(item: Any) -> Any:
        if isinstance(item, datetime):
            return item.isoformat()
        if dataclasses.is_dataclass(item) and not isinstance(item, type):
            return dataclasses.asdict(item)
        if isinstance(item, Path):
            return str(item)
        if hasattr(item, "item"):  # numpy scalars
            return item.item()
        raise TypeError(f"{type(item).__name__} is not JSON")

    typer.echo(json.dumps(value, default=plain, indent=2))


def user_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn errors a user can cause into one line on stderr and exit status 1."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        begun = _SETTINGS.set(None)  # each command reads the environment afresh
        try:
            return command(*args, **kwargs)
        except Exception as exc:
            if _loaded_instance(exc, USER_ERRORS):
                typer.echo(f"error: {exc}", err=True)
                raise typer.Exit(1) from exc
            if _loaded_instance(exc, STORE_ERRORS):  # the store failed mid-run: lost, full
                from sqlalchemy.engine import make_url

                from storage.engine import first_line, redact

                url = _settings().store_url
                reason = first_line(exc, make_url(url).password)
                typer.echo(f"error: store {redact(url)}: {reason}", err=True)
                raise typer.Exit(1) from exc
            raise
        finally:
            _SETTINGS.reset(begun)

    return wrapper


# Errors a user can cause, and the store's errors, by module: a command imports what it
# needs when it runs, so an error of one of these classes can only have been raised if its
# module is loaded.
USER_ERRORS = {
    "atalaia.errors": "AtalaiaError",
    "detectors.errors": "ArtifactError",
    "storage.engine": "StoreUnavailable",
}
STORE_ERRORS = {"sqlalchemy.exc": "SQLAlchemyError"}


def _loaded_instance(exc: Exception, classes: dict[str, str]) -> bool:
    return any(
        isinstance(exc, getattr(sys.modules[module], name))
        for module, name in classes.items()
        if module in sys.modules
    )


def _monitor(name_or_path: str, settings: Settings) -> Monitor:
    from atalaia.config import find_monitor, load_monitor

    if name_or_path.endswith((".yaml", ".yml")):
        return load_monitor(name_or_path, settings.home)
    return find_monitor(settings.monitors_dir, name_or_path, settings.home)


def _time(text: str, option: str) -> datetime:
    """An option's date or time (``atalaia.times``), or one error line saying what is expected."""
    from atalaia.times import parse_time

    try:
        return parse_time(text)
    except ValueError as exc:
        raise AtalaiaError(f"{option} {text!r}: {exc}") from exc


def _intervals(start: str, end: str, every: str | None) -> list[tuple[datetime, datetime]]:
    from atalaia.config import parse_duration

    first, last = _time(start, "--start"), _time(end, "--end")
    if every is None:
        return [(first, last)]
    try:
        length = parse_duration(every)
    except ValueError as exc:
        raise AtalaiaError(f"--every {every!r}: {exc}, e.g. 1D or 6h") from exc
    bounds = []
    while first < last:
        bounds.append((first, min(first + length, last)))
        first += length
    return bounds


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False) -> None:
    """Batch anomaly detection: ingest, train, score, and look at what was found."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


@db_app.command("upgrade")
@user_errors
def db_upgrade() -> None:
    """Create or migrate the store's tables to the newest schema."""
    from atalaia import store
    from storage.engine import redact

    settings = _settings()
    store.upgrade(settings.store_url, settings.connect_timeout)
    console.print(f"store {redact(settings.store_url)} is at the newest schema")


@app.command()
@user_errors
def ingest(
    monitor: MonitorArg, start: Start, end: End, every: Every = None, as_json: AsJson = False
) -> None:
    """Read intervals from the monitor's source, land accepted rows, quarantine the rest."""
    from atalaia import jobs

    settings = _settings()
    config = _monitor(monitor, settings)
    _each_interval(
        jobs.ingest,
        config,
        settings,
        _intervals(start, end, every),
        "ingesting",
        as_json,
        lambda result: f"{result.rows} rows landed, {result.quarantined} quarantined",
    )


@app.command()
@user_errors
def train(
    monitor: MonitorArg,
    start: Annotated[
        str | None, typer.Option(help="baseline start (default: the monitor's)")
    ] = None,
    end: Annotated[str | None, typer.Option(help="baseline end (default: the monitor's)")] = None,
    as_json: AsJson = False,
) -> None:
    """Train and calibrate a new model version on the baseline."""
    from atalaia import jobs

    settings = _settings()
    config = _monitor(monitor, settings)
    if (start is None) != (end is None):
        raise AtalaiaError("give both --start and --end, or neither")
    with console.status("training") if not as_json else contextlib.nullcontext():
        baseline = (_time(start, "--start"), _time(end, "--end")) if start else None
        result = jobs.train(config, baseline, settings=settings)
    if as_json:
        _print_json(result)
        return
    console.print(
        f"{config.name}: version {result.version} ({result.detector}, {result.status}) fitted on "
        f"{result.train_rows} rows, calibrated on {result.calibration_rows} in "
        f"{result.seconds:.1f} s"
    )


@app.command()
@user_errors
def score(
    monitor: MonitorArg, start: Start, end: End, every: Every = None, as_json: AsJson = False
) -> None:
    """Score landed batches with the champion; write scores, events and metrics."""
    from atalaia import jobs

    settings = _settings()
    config = _monitor(monitor, settings)
    _each_interval(
        jobs.score,
        config,
        settings,
        _intervals(start, end, every),
        "scoring",
        as_json,
        lambda result: (
            f"{result.rows} rows scored by version {result.model_version}, "
            f"{result.anomalies} anomalous, max z {result.max_z:.2f}"
        ),
    )


@app.command()
@user_errors
def retrain(monitor: MonitorArg, as_json: AsJson = False) -> None:
    """Train a candidate on recent batches; promote it if it passes the gate."""
    from atalaia import jobs

    settings = _settings()
    config = _monitor(monitor, settings)
    with console.status("retraining") if not as_json else contextlib.nullcontext():
        result = jobs.retrain(config, settings=settings)
    if as_json:
        _print_json(result)
        return
    verdict = "promoted" if result.promoted else "kept as a candidate"
    console.print(f"{config.name}: version {result.version} {verdict}: {result.reason}")


@app.command()
@user_errors
def walk(monitor: MonitorArg, start: Start, end: End) -> None:
    """Ingest and score every interval of the score schedule in [start, end), retraining when
    the retrain schedule ticks: what the monitor's DAGs do, run here in order."""
    from atalaia.walk import walk_forward

    settings = _settings()
    config = _monitor(monitor, settings)
    first, last = _time(start, "--start"), _time(end, "--end")
    with console.status("walking forward"):
        result = walk_forward(config, first, last, settings=settings)
    anomalies = sum(scored.anomalies for scored in result.scored)
    console.print(
        f"{config.name}: {len(result.scored)} intervals scored ({result.empty_intervals} empty), "
        f"{anomalies} anomalous steps, {len(result.retrained)} retrains"
    )
    for refused in result.retrains_without_data:
        console.print(f"retrain failed: {refused}")


@app.command()
@user_errors
def events(
    monitor: MonitorArg,
    since: Annotated[str, typer.Option(help="from this time")] = "1970-01-01",
    until: Annotated[str, typer.Option(help="until this time")] = "9999-01-01",
    version: Annotated[
        int | None,
        typer.Option(help="this model version's events (default: each batch's scoring version)"),
    ] = None,
    as_json: AsJson = False,
) -> None:
    """List a monitor's events, each found by the version that scored its batch."""
    from atalaia.api import event_record
    from atalaia.queries import event_listing

    first, last = _time(since, "--since"), _time(until, "--until")
    settings = _settings()
    config = _monitor(monitor, settings)
    rows = event_listing(settings, config.name, first, last, version)
    if as_json:
        _print_json([event_record(config.name, event, number) for event, number in rows])
        return
    title = f"{config.name}: events" + (f" of version {version}" if version else "")
    console.print(_events_table(rows, title))


@app.command()
@user_errors
def report(
    monitor: MonitorArg,
    start: Annotated[str, typer.Option("--from", help="period start, ISO 8601 (UTC if no zone)")],
    end: Annotated[str, typer.Option("--to", help="period end (exclusive), ISO 8601")],
    out: Annotated[
        Path | None, typer.Option(help="HTML file to write (default: report-MONITOR.html)")
    ] = None,
    version: Annotated[
        int | None,
        typer.Option(help="model version whose scores to show (default: each batch's scorer)"),
    ] = None,
    max_entities: Annotated[
        int, typer.Option(min=1, help="entities drawn, the most anomalous first")
    ] = 20,
) -> None:
    """Write a self-contained HTML report: each series, its threshold, events and top features."""
    from atalaia.report import write_report

    settings = _settings()
    config = _monitor(monitor, settings)
    first, last = _time(start, "--from"), _time(end, "--to")
    if first >= last:
        raise AtalaiaError(f"--from {start} is not before --to {end}")
    target = out or Path(f"report-{config.name}.html")
    with console.status("drawing"):
        written = write_report(
            settings, config, first, last, target, version=version, max_entities=max_entities
        )
    console.print(f"{config.name}: report written to {written}")


@app.command()
@user_errors
def evaluate(
    path: Annotated[Path | None, typer.Argument(help="labelled CSV or Parquet file")] = None,
    score: Annotated[
        str, typer.Option(help="column of anomaly scores, high = anomalous")
    ] = "score",
    label: Annotated[str, typer.Option(help="column of labels, 1 = anomaly")] = "label",
    flag: Annotated[
        str | None, typer.Option(help="column of 0/1 flags; adds event and point metrics")
    ] = None,
    entity: Annotated[
        str | None, typer.Option(help="column naming each row's series; events stay inside one")
    ] = None,
    time: Annotated[str | None, typer.Option(help="column to order rows by")] = None,
    monitor: Annotated[
        str | None, typer.Option(help="evaluate this monitor's stored scores against its labels")
    ] = None,
    version: Annotated[
        int | None, typer.Option(help="with --monitor: model version (default: champion)")
    ] = None,
    since: Annotated[str, typer.Option(help="with --monitor: from this time")] = "1970-01-01",
    until: Annotated[str, typer.Option(help="with --monitor: until this time")] = "9999-01-01",
    label_kind: Annotated[
        str, typer.Option(help="with --monitor: labels of this kind mark anomalies")
    ] = "incident",
    max_gap: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="flags at most this many rows apart are one event "
            "(default: 0; with --monitor, its events.max_gap)",
        ),
    ] = None,
    lead: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="an event starts this many rows before its first flag "
            "(default: 0; with --monitor, its detector.smoothing - 1)",
        ),
    ] = None,
) -> None:
    """Judge scores against labels: AUC-ROC, AUC-PR, event F1, point F1 and point-adjusted F1.

    Give a labelled file (columns named by the options; each run of flags is an event unless
    --max-gap or --lead say otherwise), or --monitor to evaluate the monitor's stored scores
    and flags against its labels (flags form events as the monitor's events do).
    """
    from atalaia.evaluation import evaluate_scores
    from atalaia.labelled import read_labelled_file
    from atalaia.queries import labelled_scores

    if (path is None) == (monitor is None):
        raise AtalaiaError("give either a labelled file or --monitor")
    monitor_gap = monitor_lead = 0
    if path is not None:
        frame = read_labelled_file(path, score, label, flag, entity, time)
        title = str(path)
    else:
        settings = _settings()
        config = _monitor(monitor, settings)
        first, last = _time(since, "--since"), _time(until, "--until")
        model, frame = labelled_scores(settings, config.name, version, first, last, label_kind)
        title = f"{config.name}: version {model.version} against its {label_kind!r} labels"
        monitor_gap, monitor_lead = config.events.max_gap, config.event_lead_steps
        if frame.empty:
            raise NotFoundError(f"{title}: no stored scores from {since} until {until}")
    try:
        result = evaluate_scores(
            frame["label"],
            frame["score"],
            frame.get("flag"),
            frame.get("entity"),
            monitor_gap if max_gap is None else max_gap,
            monitor_lead if lead is None else lead,
        )
    except ValueError as exc:
        raise AtalaiaError(f"{title}: {exc}") from exc
    console.print(_evaluation_table(result, frame, title))


@app.command()
@user_errors
def demo() -> None:
    """Generate sample server metrics and run the whole pipeline on them (no servers)."""
    from atalaia.demo import run_demo, steps

    settings = _settings()
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("demo", total=steps())
        report = run_demo(settings, lambda text: progress.update(task, advance=1, description=text))
    _print_demo(report, settings)


@labels_app.command("add")
@user_errors
def labels_add(
    monitor: MonitorArg,
    start: Annotated[str, typer.Option(help="first time of the incident, ISO 8601")],
    end: Annotated[str, typer.Option(help="last time of the incident (inclusive)")],
    entity: Annotated[str | None, typer.Option(help="its entity (default: all)")] = None,
    note: Annotated[str, typer.Option(help="what happened")] = "",
) -> None:
    """Record a known incident of a monitor."""
    from atalaia.api import add_label

    settings = _settings()
    config = _monitor(monitor, settings)
    first, last = _time(start, "--start"), _time(end, "--end")
    number = add_label(config, first, last, entity=entity, note=note, settings=settings)
    console.print(f"{config.name}: label {number} recorded")


@labels_app.command("list")
@user_errors
def labels_list(monitor: MonitorArg, as_json: AsJson = False) -> None:
    """List a monitor's labelled incidents."""
    from atalaia.queries import label_listing

    settings = _settings()
    config = _monitor(monitor, settings)
    rows = label_listing(settings, config.name)
    if as_json:
        fields = ("id", "entity", "start_ts", "end_ts", "kind", "note", "created_at")
        _print_json([{name: getattr(label, name) for name in fields} for label in rows])
        return
    table = Table(title=f"{config.name}: labels")
    for column in ("id", "entity", "start", "end", "kind", "note"):
        table.add_column(column)
    for label in rows:
        table.add_row(
            str(label.id),
            label.entity or "(all)",
            f"{label.start_ts:%Y-%m-%d %H:%M}",
            f"{label.end_ts:%Y-%m-%d %H:%M}",
            label.kind,
            label.note,
        )
    console.print(table)


Version = Annotated[int, typer.Argument(help="model version number")]
Reason = Annotated[str, typer.Option(help="why, recorded with the change")]


@models_app.command("list")
@user_errors
def models_list(monitor: MonitorArg, as_json: AsJson = False) -> None:
    """List a monitor's model versions, newest first, with status and reason."""
    from atalaia.queries import model_listing

    settings = _settings()
    config = _monitor(monitor, settings)
    versions = model_listing(settings, config.name)
    if not versions:
        raise NotFoundError(f"monitor {config.name}: no model version yet; run train first")
    if as_json:
        _print_json([_model_record(model) for model in versions])
        return
    table = Table(title=f"{config.name}: model versions")
    for column in ("version", "status", "detector", "baseline", "rows", "trained", "reason"):
        table.add_column(column)
    for model in versions:
        table.add_row(
            str(model.version),
            model.status,
            model.detector,
            f"{model.baseline_start:%Y-%m-%d %H:%M} .. {model.baseline_end:%Y-%m-%d %H:%M}",
            str(model.baseline_rows),
            f"{model.trained_at:%Y-%m-%d %H:%M}",
            model.status_reason,
        )
    console.print(table)


@models_app.command("show")
@user_errors
def models_show(monitor: MonitorArg, version: Version) -> None:
    """Show one version's lineage, calibration and evaluation."""
    from atalaia.artifacts import bound_settings_of
    from atalaia.queries import newest_model_update, stored_model
    from atalaia.representation import CHOSEN, chosen_text

    settings = _settings()
    config = _monitor(monitor, settings)
    model = stored_model(settings, config.name, version)
    update = newest_model_update(settings, model.id)
    bound = bound_settings_of(model.artifact_path)
    adapt = config.baseline.adapt
    fields = {
        "status": f"{model.status}: {model.status_reason}",
        "promoted at": model.promoted_at or "",
        "replaced champion": model.previous_champion or "",
        "detector": f"{model.detector} {json.dumps(model.params, sort_keys=True, default=str)}",
        "features": ", ".join(model.features),
        "baseline": f"{model.baseline_start} .. {model.baseline_end}",
        "baseline rows": model.baseline_rows,
        "baseline sha256": model.baseline_sha256,
        "calibration": f"alpha {model.alpha}, {model.calibration_rows} rows, "
        f"threshold {model.threshold:.4f}",
        "chosen from the baseline": chosen_text(bound),
        "artifact": f"{model.artifact_path} (sha256 {model.artifact_sha256})",
        "code version": model.code_version,
        "trained at": f"{model.trained_at} in {model.training_seconds:.1f} s",
        "adapts (the monitor's policy)": f"baseline.adapt.after {adapt.after or 'never'}, "
        f"baseline.adapt.online {adapt.online}, "
        f"baseline.adapt.half_life {adapt.half_life or 'none'}",
        "online updates": "none"
        if update is None
        else f"{update.number}, the newest learned [{update.learned_start}, "
        f"{update.learned_end}) ({update.rows} steps, {update.flagged_rows} of them flagged, "
        f"in {update.seconds:.2f} s)",
    }
    if bound is not None:
        fields["trained with"] = ", ".join(
            f"{name} {value}" for name, value in bound.items() if name != CHOSEN
        )
    table = Table(title=f"{config.name}: version {model.version}", show_header=False)
    for name, value in fields.items():
        table.add_row(name, str(value))
    console.print(table)
    if model.evaluation is not None:
        console.print("evaluation against the champion:")
        console.print_json(json.dumps(model.evaluation))


@models_app.command("promote")
@user_errors
def models_promote(
    monitor: MonitorArg, version: Version, reason: Reason = "promoted by hand"
) -> None:
    """Make a version the champion; the current champion is retired."""
    from atalaia import jobs

    settings = _settings()
    config = _monitor(monitor, settings)
    change = jobs.promote_version(config, version, reason, settings=settings)
    console.print(
        f"{config.name}: version {change.champion_version} is the champion"
        + (f" (replaced version {change.replaced_version})" if change.replaced_version else "")
    )


@models_app.command("rollback")
@user_errors
def models_rollback(monitor: MonitorArg, reason: Reason = "rolled back by hand") -> None:
    """Retire the champion and restore the version it replaced."""
    from atalaia import jobs

    settings = _settings()
    config = _monitor(monitor, settings)
    change = jobs.rollback(config, reason, settings=settings)
    console.print(
        f"{config.name}: version {change.champion_version} is the champion again "
        f"(version {change.replaced_version} retired)"
    )


def _model_record(model: Any) -> dict[str, Any]:
    """A model version's registry row as a dict (everything ``models show`` shows)."""
    return {column.key: getattr(model, column.key) for column in model.__table__.columns}


def _track(intervals: list[tuple[datetime, datetime]], what: str, quiet: bool = False) -> list:
    if len(intervals) == 1 or quiet:
        return intervals
    with Progress(console=console, transient=True) as progress:
        return list(progress.track(intervals, description=what))


def _events_table(rows: list, title: str) -> Table:
    """``(event, version)`` rows as a table."""
    from atalaia.adaptation import event_state
    from atalaia.attribution import shares_text

    table = Table(title=title)
    columns = ("entity", "start", "end", "anomalies", "peak z", "state", "top features", "version")
    for column in columns:
        table.add_column(column)
    for event, version in rows:
        table.add_row(
            event.entity,
            f"{event.start_ts:%Y-%m-%d %H:%M}",
            f"{event.end_ts:%Y-%m-%d %H:%M}",
            str(event.anomalies),
            f"{event.peak_z:.2f}",
            event_state(event),
            shares_text(event.top_features),
            str(version),
        )
    return table


def _evaluation_table(report: Any, frame: Any, title: str) -> Table:
    """Threshold-free metrics, then event and point metrics of the flags, one per line."""
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("rows", str(len(frame)))
    table.add_row("labelled anomalous rows", str(int(frame["label"].sum())))
    table.add_row("AUC-ROC", f"{report.auc_roc:.3f}")
    table.add_row("AUC-PR", f"{report.auc_pr:.3f}")
    if report.events is not None:
        events, points = report.events, report.points
        table.add_row("flagged rows", str(int(frame["flag"].sum())))
        table.add_row("events TP / FP / FN", f"{events.tp} / {events.fp} / {events.fn}")
        table.add_row("event precision / recall", f"{events.precision:.3f} / {events.recall:.3f}")
        table.add_row("event F1", f"{events.f1:.3f}")
        table.add_row("point F1", f"{points.f1:.3f}")
        table.add_row("point-adjusted F1 (inflated)", f"{points.f1_point_adjusted:.3f}")
    return table


def _print_demo(report: Any, settings: Settings) -> None:
    from atalaia import demo_data
    from atalaia.queries import quarantined as quarantined_rows
    from storage.engine import redact

    monitor, trained = report.monitor, report.trained
    console.print(f"[bold]Monitor[/] {monitor.name}: {monitor.description}")
    console.print(f"  source {monitor.source.path}")
    console.print(
        f"  features {', '.join(monitor.features)} per {', '.join(monitor.entities)}, "
        f"every {monitor.frequency}; detector {monitor.detector.kind}, "
        f"alpha {monitor.calibration.alpha}"
    )
    landed = sum(result.rows for result in report.ingested)
    quarantined = [result for result in report.ingested if result.quarantined]
    console.print(
        f"[bold]Ingested[/] {len(report.ingested)} daily batches: {landed} rows landed, "
        f"{sum(r.quarantined for r in quarantined)} quarantined"
    )
    for row in quarantined_rows(settings, [result.batch_id for result in quarantined]):
        console.print(f"  quarantined {Path(row.source).name} row {row.row_number}: {row.reason}")
    console.print(
        f"[bold]Trained[/] version {trained.version} ({trained.detector}, {trained.status}) on "
        f"{trained.baseline_start:%Y-%m-%d} .. {trained.baseline_end:%Y-%m-%d}: "
        f"{trained.train_rows} rows fitted, {trained.calibration_rows} held out to calibrate "
        f"({trained.seconds:.1f} s)"
    )
    rows = sum(result.rows for result in report.scored)
    anomalies = sum(result.anomalies for result in report.scored)
    console.print(
        f"[bold]Scored[/] {len(report.scored)} batches: {rows} rows, {anomalies} "
        f"anomalous ({anomalies / rows:.2%}), {len(report.events)} events"
    )
    versions = [(event, trained.version) for event in report.events]
    console.print(_events_table(versions, "Events"))
    console.print("[bold]Injected incidents[/] (the generator's ground truth):")
    for incident in demo_data.INCIDENTS:
        found = [
            e
            for e in report.events
            if e.entity == incident.host
            and e.start_ts <= incident.end
            and e.end_ts >= incident.start
        ]
        verdict = (
            (
                f"[green]found[/] (z {max(e.peak_z for e in found):.1f}, top "
                f"{found[0].top_features[0]['feature']})"
            )
            if found
            else "[red]missed[/]"
        )
        console.print(
            f"  {incident.host} {incident.start:%m-%d %H:%M}-{incident.end:%H:%M} "
            f"{incident.kind} ({incident.description}): {verdict}"
        )
    console.print(f"Store: {redact(settings.store_url)}; metrics: {settings.metrics_dir}/")


if __name__ == "__main__":  # python -m atalaia.cli
    app(prog_name="atalaia")
