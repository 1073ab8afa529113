"""Feedback on an event from the person on call: a confirmed incident or a false alarm.

A verdict is a ``labels`` row over the event's span and entity, read as every label is:

- ``incident`` (confirm): the event's rows count as anomalies in ``atalaia evaluate
  --monitor`` (its default ``--label-kind``), so the event is a true positive there, and
  they stay out of later baselines and of promotion's false-alarm count;
- ``false_alarm``: a known-normal span. ``atalaia evaluate --monitor`` reads only
  ``incident`` labels as anomalies, so the event counts as a false positive there.
  Training leaves it out of baselines all the same, as it does every labelled span and
  every stored event (``atalaia.training``).

An event has one verdict: giving another replaces the kind of its label, never adds a row.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.labels import add_label
from storage.models import EventRow, LabelRow

VERDICTS = ("incident", "false_alarm")


def record_verdict(
    session: Session, event: EventRow, verdict: str, model_version: int, user: str
) -> int:
    """Label ``event`` with ``verdict`` (one of ``VERDICTS``) on behalf of ``user``; return
    the label's id."""
    if verdict not in VERDICTS:
        raise ValueError(f"verdict {verdict!r}: use one of {', '.join(VERDICTS)}")
    note = f"{verdict.replace('_', ' ')} by {user}: event {event.id}, version {model_version}"
    existing = session.scalars(
        select(LabelRow).where(
            LabelRow.monitor_id == event.monitor_id,
            LabelRow.entity == event.entity,
            LabelRow.start_ts == event.start_ts,
            LabelRow.end_ts == event.end_ts,
            LabelRow.kind.in_(VERDICTS),
        )
    ).first()
    if existing is not None:
        existing.kind, existing.note = verdict, note
        session.flush()
        return existing.id
    return add_label(
        session,
        event.monitor_id,
        event.start_ts,
        event.end_ts,
        entity=event.entity,
        kind=verdict,
        note=note,
    )
