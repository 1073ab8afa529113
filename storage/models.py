"""The store's tables as typed SQLAlchemy 2 models.

Every timestamp is aware UTC (``UTCDateTime``). An entity is the key that
``atalaia.validation.entity_keys`` gives its row (``""`` for a monitor without entities).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from storage.types import ModelStatus, RunStatus, StatusType, UTCDateTime, status_check

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """The current time, aware UTC."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON, list[Any]: JSON}


class MonitorRow(Base):
    """A monitor as last seen by a job: its name and configuration."""

    __tablename__ = "monitors"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    config: Mapped[dict[str, Any]]
    config_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class BatchRow(Base):
    """One ingested interval of one monitor, landed as a Parquet file."""

    __tablename__ = "batches"
    __table_args__ = (UniqueConstraint("monitor_id", "interval_start", "interval_end"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    monitor_id: Mapped[int] = mapped_column(ForeignKey("monitors.id", ondelete="CASCADE"))
    interval_start: Mapped[datetime]
    interval_end: Mapped[datetime]
    row_count: Mapped[int]
    quarantined_count: Mapped[int]
    landing_path: Mapped[str] = mapped_column(String(1024))
    content_sha256: Mapped[str] = mapped_column(String(64))
    ingested_at: Mapped[datetime] = mapped_column(default=utcnow)


class QuarantineRow(Base):
    """A source row rejected at ingest, kept with its raw values and the reason."""

    __tablename__ = "quarantine"
    __table_args__ = (Index(None, "monitor_id", "batch_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    monitor_id: Mapped[int] = mapped_column(ForeignKey("monitors.id", ondelete="CASCADE"))
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(1024))
    row_number: Mapped[int]
    reason: Mapped[str] = mapped_column(Text)
    row: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ModelRow(Base):
    """A model version: a trained detector, its calibration and its baseline's lineage.

    At most one version per monitor is ``champion`` (a partial unique index says so).
    ``previous_champion`` is the version that was champion when this one was promoted: a
    rollback restores it.
    """

    __tablename__ = "models"
    __table_args__ = (
        UniqueConstraint("monitor_id", "version"),
        CheckConstraint(status_check(ModelStatus), name="ck_models_status"),
        Index(
            "uq_models_one_champion",
            "monitor_id",
            unique=True,
            sqlite_where=text("status = 'champion'"),
            postgresql_where=text("status = 'champion'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    monitor_id: Mapped[int] = mapped_column(ForeignKey("monitors.id", ondelete="CASCADE"))
    version: Mapped[int]
    status: Mapped[ModelStatus] = mapped_column(StatusType(ModelStatus))
    status_reason: Mapped[str] = mapped_column(Text, default="")
    detector: Mapped[str] = mapped_column(String(255))
    params: Mapped[dict[str, Any]]
    features: Mapped[list[Any]]
    artifact_path: Mapped[str] = mapped_column(String(1024))
    artifact_sha256: Mapped[str] = mapped_column(String(64))
    baseline_start: Mapped[datetime]
    baseline_end: Mapped[datetime]
    baseline_rows: Mapped[int]
    baseline_sha256: Mapped[str] = mapped_column(String(64))
    alpha: Mapped[float] = mapped_column(Float)
    calibration_rows: Mapped[int]
    threshold: Mapped[float] = mapped_column(Float)
    code_version: Mapped[str] = mapped_column(String(64))
    trained_at: Mapped[datetime] = mapped_column(default=utcnow)
    training_seconds: Mapped[float] = mapped_column(Float)
    evaluation: Mapped[dict[str, Any] | None]
    promoted_at: Mapped[datetime | None]
    previous_champion: Mapped[int | None]


class ModelUpdateRow(Base):
    """An online update of a model version: the batch it learned (``learned_start`` to
    ``learned_end``), and the detector and calibrator it left. Batches that start at or after
    ``learned_end`` are scored by the newest such update (``storage.updates``)."""

    __tablename__ = "model_updates"
    __table_args__ = (
        UniqueConstraint("model_id", "number"),
        UniqueConstraint("model_id", "learned_end"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    number: Mapped[int]
    learned_start: Mapped[datetime]
    learned_end: Mapped[datetime]
    flagged_through: Mapped[datetime]
    rows: Mapped[int]
    flagged_rows: Mapped[int]
    seconds: Mapped[float] = mapped_column(Float)
    artifact_path: Mapped[str] = mapped_column(String(1024))
    artifact_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RunRow(Base):
    """One execution of a job (ingest, train, score) for a monitor."""

    __tablename__ = "runs"
    __table_args__ = (
        Index(None, "monitor_id", "job", "started_at"),
        CheckConstraint(status_check(RunStatus), name="ck_runs_status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    monitor_id: Mapped[int] = mapped_column(ForeignKey("monitors.id", ondelete="CASCADE"))
    job: Mapped[str] = mapped_column(String(32))
    interval_start: Mapped[datetime | None]
    interval_end: Mapped[datetime | None]
    model_id: Mapped[int | None] = mapped_column(ForeignKey("models.id"))
    status: Mapped[RunStatus] = mapped_column(StatusType(RunStatus))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    rows: Mapped[int | None]
    anomalies: Mapped[int | None]
    message: Mapped[str | None] = mapped_column(Text)
    host: Mapped[str | None] = mapped_column(String(255))
    pid: Mapped[int | None]
    heartbeat_at: Mapped[datetime | None]


class ScoreRow(Base):
    """The score of one row (or window end) of one entity by one model version."""

    __tablename__ = "scores"
    __table_args__ = (Index(None, "monitor_id", "ts"),)

    monitor_id: Mapped[int] = mapped_column(
        ForeignKey("monitors.id", ondelete="CASCADE"), primary_key=True
    )
    entity: Mapped[str] = mapped_column(String(255), primary_key=True)
    ts: Mapped[datetime] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id", ondelete="CASCADE"))
    raw_score: Mapped[float] = mapped_column(Float)
    p_value: Mapped[float] = mapped_column(Float)
    z: Mapped[float] = mapped_column(Float)
    is_anomaly: Mapped[bool] = mapped_column(Boolean)
    # False where the score rests on less history than the window and smoothing need: not
    # judged against calibration (p-value 1), and kept out of calibration pools
    judged: Mapped[bool] = mapped_column(Boolean, server_default=true())
    top_features: Mapped[list[Any] | None]


class EventRow(Base):
    """Consecutive anomalous scores of one entity merged into one incident."""

    __tablename__ = "events"
    __table_args__ = (UniqueConstraint("monitor_id", "model_id", "entity", "start_ts"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    monitor_id: Mapped[int] = mapped_column(ForeignKey("monitors.id", ondelete="CASCADE"))
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"))
    entity: Mapped[str] = mapped_column(String(255))
    start_ts: Mapped[datetime]
    end_ts: Mapped[datetime]
    peak_ts: Mapped[datetime]
    peak_z: Mapped[float] = mapped_column(Float)
    anomalies: Mapped[int] = mapped_column(Integer)
    is_open: Mapped[bool] = mapped_column(Boolean)
    top_features: Mapped[list[Any]]
    absorbed_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class LabelRow(Base):
    """A known incident (or known-normal span) given by a person; excluded from baselines."""

    __tablename__ = "labels"
    __table_args__ = (Index(None, "monitor_id", "start_ts"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    monitor_id: Mapped[int] = mapped_column(ForeignKey("monitors.id", ondelete="CASCADE"))
    entity: Mapped[str | None] = mapped_column(String(255))
    start_ts: Mapped[datetime]
    end_ts: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(32), default="incident")
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
