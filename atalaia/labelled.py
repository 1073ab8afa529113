"""Labelled scores to evaluate: a CSV/Parquet file, or a monitor's stored scores and labels.

Either way the result is one frame with a row per scored row, in time order within each
entity: ``score`` (higher = more anomalous), ``label`` (1 inside a labelled anomaly),
``flag`` (the detector's own anomaly flag, when known) and ``entity``.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session

from atalaia.errors import AtalaiaError
from atalaia.training import Span, inside_spans
from storage.labels import labels_overlapping
from storage.models import ModelRow
from storage.scores import read_scores

READERS = {".csv": pd.read_csv, ".parquet": pd.read_parquet, ".pq": pd.read_parquet}


def read_labelled_file(
    path: Path,
    score: str,
    label: str,
    flag: str | None = None,
    entity: str | None = None,
    time: str | None = None,
) -> pd.DataFrame:
    """The named columns of a CSV or Parquet file; rows sorted by ``entity``, ``time`` if given.

    A missing file or column, or an unknown suffix, raises AtalaiaError naming it.
    """
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise AtalaiaError(f"{path}: expected a .csv or .parquet file")
    if not path.is_file():
        raise AtalaiaError(f"{path}: no such file")
    frame = reader(path)
    wanted = {"score": score, "label": label, "flag": flag, "entity": entity, "time": time}
    missing = [column for column in wanted.values() if column and column not in frame.columns]
    if missing:
        raise AtalaiaError(f"{path}: no column(s) {', '.join(missing)}")
    if time:
        frame = frame.sort_values([entity, time] if entity else [time], kind="stable")
    return pd.DataFrame(
        {name: frame[column].to_numpy() for name, column in wanted.items() if column}
    ).drop(columns="time", errors="ignore")


def stored_labelled_scores(
    session: Session,
    model: ModelRow,
    start: datetime,
    end: datetime,
    label_kind: str = "incident",
) -> pd.DataFrame:
    """The model's stored scores in ``[start, end)``, labelled by the monitor's labels of
    ``label_kind``: a row is 1 when its time lies in a label's inclusive span, for the
    label's entity (or every entity when the label names none)."""
    scores = read_scores(session, model.monitor_id, start, end, model_id=model.id)
    spans: list[Span] = [
        (label.entity, label.start_ts, label.end_ts)
        for label in labels_overlapping(session, model.monitor_id, start, end)
        if label.kind == label_kind
    ]
    labels = inside_spans(scores["entity"], scores["ts"], spans)
    return pd.DataFrame(
        {
            "score": scores["raw_score"].to_numpy(np.float64),
            "label": labels.to_numpy(np.int64),
            "flag": scores["is_anomaly"].to_numpy(bool),
            "entity": scores["entity"].to_numpy(),
        }
    )
