"""The store on SQLite and PostgreSQL: schema, idempotent writes, UTC timestamps, errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError, StatementError

from atalaia import store
from atalaia.errors import StoreError
from storage import migrate
from storage.batches import record_batch
from storage.engine import redact, transaction
from storage.events import events_overlapping, replace_events
from storage.models import Base, BatchRow, QuarantineRow, RunRow, ScoreRow
from storage.monitors import ensure_monitor
from storage.registry import add_model, champion, list_models, next_version, promote
from storage.runs import finish_run, start_run
from storage.scores import ScoreTally, newest_scores, read_scores, tally_scores, upsert_scores
from storage.types import ModelStatus, RunStatus

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def engine(store_url: str):
    store.upgrade(store_url)
    return store.engine(store_url)


def batch(session, monitor_id: int, day: int = 0, quarantined: list | None = None) -> int:
    return record_batch(
        session,
        monitor_id,
        T0 + timedelta(days=day),
        T0 + timedelta(days=day + 1),
        row_count=3,
        landing_path=f"/landing/{day}.parquet",
        content_sha256="0" * 64,
        quarantined=quarantined or [],
    )


def model(session, monitor_id: int, version: int):
    return add_model(
        session,
        monitor_id=monitor_id,
        version=version,
        detector="gmm",
        params={"n_components": None},
        features=["cpu"],
        artifact_path=f"/models/v{version}",
        artifact_sha256="1" * 64,
        baseline_start=T0,
        baseline_end=T0 + timedelta(days=1),
        baseline_rows=10,
        baseline_sha256="2" * 64,
        alpha=0.01,
        calibration_rows=100,
        threshold=3.5,
        code_version="test",
        training_seconds=0.1,
    )


def scores(entity_count: int, shift: float = 0.0) -> pd.DataFrame:
    stamps = pd.date_range(T0, periods=4, freq="1h")
    return pd.DataFrame(
        {
            "entity": [f"e{i}" for i in range(entity_count) for _ in stamps],
            "ts": list(stamps) * entity_count,
            "raw_score": [float(i) + shift for i in range(4 * entity_count)],
            "p_value": 0.5,
            "z": 0.0,
            "is_anomaly": [i % 4 == 3 for i in range(4 * entity_count)],
            "top_features": [
                [{"feature": "cpu", "contribution": 1.0}] if i % 4 == 3 else None
                for i in range(4 * entity_count)
            ],
        }
    )


def test_migrations_create_exactly_the_models_schema(engine) -> None:
    assert migrate.is_current(engine)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []


def test_upgrade_twice_is_harmless(engine, store_url: str) -> None:
    store.upgrade(store_url)
    assert migrate.is_current(engine)


def _store_at_0004_with_a_champion_and_its_run(store_url: str):
    engine = store.engine(store_url)
    migrate.upgrade(engine, "0004")
    with transaction(engine) as session:
        monitor_id = ensure_monitor(session, "m", {})
        promote(session, model(session, monitor_id, 1), "first")
        model(session, monitor_id, 2)
        run_id = start_run(session, monitor_id, "train", None, None)
        finish_run(session, run_id, "success", model_id=1)
    return engine, monitor_id


def test_the_status_checks_migration_keeps_the_registry_and_refuses_other_statuses(
    store_url: str,
) -> None:
    engine, monitor_id = _store_at_0004_with_a_champion_and_its_run(store_url)
    migrate.upgrade(engine)
    assert migrate.is_current(engine)
    with transaction(engine) as session:
        assert champion(session, monitor_id).status is ModelStatus.CHAMPION
        assert [r.status for r in session.scalars(select(RunRow))] == [RunStatus.SUCCESS]
    with pytest.raises(IntegrityError), transaction(engine) as session:
        session.execute(text("UPDATE models SET status = 'champion' WHERE version = 2"))
    for table in ("models", "runs"):
        with pytest.raises(IntegrityError), transaction(engine) as session:
            session.execute(text(f"UPDATE {table} SET status = 'done'"))  # noqa: S608
    with pytest.raises(StatementError, match="not one of"), transaction(engine) as session:
        session.get(RunRow, 1).status = "done"


def test_a_store_holding_an_unknown_status_stops_the_status_checks_migration(
    store_url: str,
) -> None:
    engine, _ = _store_at_0004_with_a_champion_and_its_run(store_url)
    with transaction(engine) as session:
        session.execute(text("UPDATE runs SET status = 'ok'"))
    with pytest.raises(RuntimeError, match=r"1 runs row\(s\) with a status outside .*'ok'"):
        migrate.upgrade(engine)
    assert not migrate.is_current(engine)
    with transaction(engine) as session:
        session.execute(text("UPDATE runs SET status = 'success'"))
    migrate.upgrade(engine)
    assert migrate.is_current(engine)


def test_scoring_a_batch_twice_leaves_one_row_per_key_with_the_new_values(engine) -> None:
    with transaction(engine) as session:
        monitor_id = ensure_monitor(session, "m", {"x": 1})
        batch_id = batch(session, monitor_id)
        model_id = model(session, monitor_id, 1).id
        assert upsert_scores(session, monitor_id, model_id, batch_id, scores(3)) == 12
    with transaction(engine) as session:
        upsert_scores(session, monitor_id, model_id, batch_id, scores(3, shift=100))
    with transaction(engine) as session:
        assert session.scalar(select(func.count()).select_from(ScoreRow)) == 12
        stored = read_scores(session, monitor_id, T0, T0 + timedelta(days=1))
    assert sorted(stored["raw_score"]) == sorted(scores(3, shift=100)["raw_score"])
    assert str(stored["ts"].dt.tz) == "UTC"
    flagged = stored[stored["is_anomaly"]]
    assert flagged["top_features"].tolist() == [[{"feature": "cpu", "contribution": 1.0}]] * 3
    assert stored.loc[~stored["is_anomaly"], "top_features"].isna().all()


def test_a_second_model_version_keeps_its_own_scores(engine) -> None:
    with transaction(engine) as session:
        monitor_id = ensure_monitor(session, "m", {})
        batch_id = batch(session, monitor_id)
        first, second = model(session, monitor_id, 1).id, model(session, monitor_id, 2).id
        upsert_scores(session, monitor_id, first, batch_id, scores(2))
        upsert_scores(session, monitor_id, second, batch_id, scores(2))
        end = T0 + timedelta(days=1)
        assert len(read_scores(session, monitor_id, T0, end)) == 16
        assert len(read_scores(session, monitor_id, T0, end, model_id=second)) == 8


def test_scores_keep_an_empty_entity_and_store_no_features_for_normal_rows(engine) -> None:
    rows = scores(1).assign(entity="")
    with transaction(engine) as session:
        monitor_id = ensure_monitor(session, "m", {})
        model_id = model(session, monitor_id, 1).id
        upsert_scores(session, monitor_id, model_id, batch(session, monitor_id), rows)
    with transaction(engine) as session:
        stored = read_scores(session, monitor_id, T0, T0 + timedelta(days=1))
        empty = session.scalar(
            select(func.count()).select_from(ScoreRow).where(ScoreRow.top_features.is_(None))
        )
    assert stored["entity"].tolist() == [""] * 4
    assert stored["ts"].tolist() == rows["ts"].tolist()
    assert empty == 3  # SQL NULL, not a JSON null, for the three normal rows


def test_tallies_newest_times_and_anomalous_reads_come_from_the_stored_scores(engine) -> None:
    with transaction(engine) as session:
        monitor_id = ensure_monitor(session, "m", {})
        model_id = model(session, monitor_id, 1).id
        upsert_scores(session, monitor_id, model_id, batch(session, monitor_id), scores(3))
        end = T0 + timedelta(days=1)
        tally = tally_scores(session, monitor_id, T0, end, model_id=model_id)
        newest = newest_scores(session, monitor_id, T0, end, model_id=model_id, entities=["e1"])
        flagged = read_scores(session, monitor_id, T0, end, anomalous_only=True)
    assert tally == ScoreTally.of(scores(3)) == ScoreTally(12, 3, 0.0)
    assert newest == {"e1": T0 + timedelta(hours=3)}
    assert flagged["entity"].tolist() == ["e0", "e1", "e2"]


def test_timestamps_come_back_as_the_same_utc_instant(engine) -> None:
    local = datetime(2026, 1, 1, 3, 0, tzinfo=UTC).astimezone(ZoneInfo("America/Sao_Paulo"))
    with transaction(engine) as session:
        monitor_id = ensure_monitor(session, "m", {})
        batch_id = record_batch(
            session,
            monitor_id,
            local,
            local + timedelta(hours=1),
            row_count=0,
            landing_path="x",
            content_sha256="0" * 64,
            quarantined=[],
        )
    with transaction(engine) as session:
        stored = session.get_one(BatchRow, batch_id)
    assert stored.interval_start == datetime(2026, 1, 1, 3, 0, tzinfo=UTC)
    assert stored.interval_start.tzinfo is not None


def test_recording_a_batch_again_replaces_its_quarantine(engine) -> None:
    row = {"source": "a.csv", "row_number": 4, "reason": "feature x: missing", "row": {"x": None}}
    with transaction(engine) as session:
        monitor_id = ensure_monitor(session, "m", {})
        first = batch(session, monitor_id, quarantined=[row, {**row, "row_number": 5}])
    with transaction(engine) as session:
        again = batch(session, monitor_id, quarantined=[row])
        rows = session.scalars(select(QuarantineRow)).all()
    assert again == first
    assert [(r.row_number, r.row) for r in rows] == [(4, {"x": None})]


def test_one_champion_at_a_time(engine) -> None:
    with transaction(engine) as session:
        monitor_id = ensure_monitor(session, "m", {})
        assert next_version(session, monitor_id) == 1
        first = model(session, monitor_id, 1)
        promote(session, first, "first")
        second = model(session, monitor_id, next_version(session, monitor_id))
        assert second.version == 2 and second.status == "candidate"
        promote(session, second, "better")
    with transaction(engine) as session:
        assert champion(session, monitor_id).version == 2
        statuses = {m.version: m.status for m in list_models(session, monitor_id)}
    assert statuses == {1: "retired", 2: "champion"}


def test_events_are_replaced_over_a_span(engine) -> None:
    event = {
        "entity": "e0",
        "start_ts": T0,
        "end_ts": T0 + timedelta(hours=1),
        "peak_ts": T0,
        "peak_z": 4.0,
        "anomalies": 2,
        "is_open": False,
        "top_features": [{"feature": "cpu", "contribution": 2.0}],
    }
    with transaction(engine) as session:
        monitor_id = ensure_monitor(session, "m", {})
        model_id = model(session, monitor_id, 1).id
        replace_events(session, monitor_id, model_id, T0, T0 + timedelta(days=1), [event])
        replace_events(
            session,
            monitor_id,
            model_id,
            T0,
            T0 + timedelta(days=1),
            [{**event, "end_ts": T0 + timedelta(hours=2), "anomalies": 3}],
        )
        stored = events_overlapping(session, monitor_id, T0, T0 + timedelta(days=1))
    assert [(e.anomalies, e.end_ts) for e in stored] == [(3, T0 + timedelta(hours=2))]


def test_an_unreachable_store_is_a_clear_error_without_the_password() -> None:
    url = "postgresql+psycopg://atalaia:s3cr3t-pw@127.0.0.1:1/atalaia"
    with pytest.raises(StoreError) as error:
        store.engine(url)
    message = str(error.value)
    assert "cannot reach store" in message
    assert "s3cr3t-pw" not in message
    assert "***" in message
    assert redact(url) == "postgresql+psycopg://atalaia:***@127.0.0.1:1/atalaia"
