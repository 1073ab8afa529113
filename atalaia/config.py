"""Monitor configuration: one YAML file per monitored data set, validated with pydantic.

A monitor names its source, its columns, its data frequency, its detector, its baseline
policy, its calibration and its schedules. ``${VAR}`` in a string is replaced by the
environment variable ``VAR`` (so a database password never has to be written in the file),
and a relative file path is taken relative to the monitor file's folder. What the store keeps
of a monitor (``Monitor.stored_config``) is the file's text before expansion, so a secret
from the environment never reaches the store.
"""

from __future__ import annotations

import copy
import difflib
import json
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)
from sqlalchemy.engine import make_url

from atalaia.detector_params import check_params
from atalaia.errors import ConfigError
from atalaia.settings import Settings

_NAME = r"^[a-z][a-z0-9_]{0,62}$"
_ENV_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_FREQUENCY = re.compile(r"^(\d*)(s|min|h|D)$")
_UNITS = {"s": "seconds", "min": "minutes", "h": "hours", "D": "days"}
# A detector setting given as this value is chosen from the baseline (``atalaia.auto``).
AUTO = "auto"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FileSource(_Strict):
    """CSV or Parquet files matched by a glob pattern."""

    kind: Literal["files"] = Field(default="files", description="files: read CSV or Parquet files")
    path: str = Field(
        description="glob of .csv or .parquet files; relative to the monitor file's folder"
    )


class SqlSource(_Strict):
    """A table or a query in any database SQLAlchemy can reach."""

    kind: Literal["sql"] = Field(default="sql", description="sql: read a table or a query")
    url: str = Field(
        description="SQLAlchemy URL of the database; write a password as ${VAR}, read from "
        "the environment"
    )
    table: str | None = Field(
        default=None, description="table to read the interval's rows from (or query)"
    )
    query: str | None = Field(
        default=None, description="SELECT with :start and :end bind parameters for the interval"
    )

    @model_validator(mode="after")
    def _table_or_query(self) -> SqlSource:
        if (self.table is None) == (self.query is None):
            raise ValueError("give exactly one of 'table' or 'query'")
        if self.query is not None and not {":start", ":end"} <= set(
            re.findall(r":start\b|:end\b", self.query)
        ):
            raise ValueError("'query' must use the bind parameters :start and :end")
        return self


Source = Annotated[FileSource | SqlSource, Field(discriminator="kind")]


class DetectorConfig(_Strict):
    """Which detector to train (a name known to ``detectors.create``), its parameters, what
    it sees (each row alone, or windows of the last steps) and how its scores are smoothed.

    ``window`` and ``seasons`` may be ``auto``: chosen from the baseline when a version is
    trained (``atalaia.auto``), recorded with the version and used by its scoring.
    """

    kind: str = Field(
        default="gmm",
        description="a detector kind (gmm, vae, made, gan, ar, nar, ensemble) or pyod:<Name>",
    )
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="the detector's parameters (see Detector parameters); an unknown name, "
        "type or value is an error when the file is loaded",
    )
    window: int | Literal["auto"] = Field(
        default=1,
        description="steps of every feature the detector sees at once (1 to 10000), or auto",
    )
    smoothing: int = Field(
        default=1,
        ge=1,
        le=10_000,
        description="a score is the mean of the entity's last N raw scores",
    )
    seasons: list[str] | Literal["auto"] = Field(
        default_factory=list,
        description="periods such as 1D or 7D: a window also holds each feature one period "
        "ago and the step before (needs window > 1), or auto",
    )

    @field_validator("window", mode="before")
    @classmethod
    def _window(cls, value: Any) -> Any:
        if isinstance(value, str) and value != AUTO:
            raise ValueError(f"{value!r} is neither a whole number of steps nor auto")
        return value

    @field_validator("window")
    @classmethod
    def _window_range(cls, value: int | str) -> int | str:
        if value != AUTO and not 1 <= value <= 10_000:
            raise ValueError(f"{value} is not from 1 to 10000 steps")
        return value

    @field_validator("seasons", mode="before")
    @classmethod
    def _seasons(cls, value: Any) -> Any:
        if isinstance(value, str) and value != AUTO:
            raise ValueError(f"{value!r} is neither a list of periods nor auto")
        if isinstance(value, list):
            return [_checked_duration(season) for season in value]
        return value

    @model_validator(mode="after")
    def _declared_params(self) -> DetectorConfig:
        check_params(self.kind, self.params)
        return self


class Adaptation(_Strict):
    """How a monitor learns a lasting change as its new normal (docs/concepts.md)."""

    after: str | None = Field(
        default="1D",
        description="flagged rows without a label join the baseline (retraining, online "
        "updates) once they are this much older than the newest scored batch; null: flagged "
        "rows never join, the monitor never adapts",
    )
    online: bool = Field(
        default=False,
        description="detectors that can (ar) also learn each batch's joining rows as it is "
        "scored, recorded as numbered updates of the version; off: they learn when retrained "
        "(off by default: it lost NAB score on the tune half, docs/adaptation.md)",
    )
    half_life: str | None = Field(
        default=None,
        description="online updates weigh what was learned this long ago half as much as "
        "the newest batch; null: nothing is forgotten",
    )

    @field_validator("after", "half_life")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        return None if value is None else _checked_duration(value)

    @property
    def delay(self) -> timedelta | None:
        """``after`` as a timedelta (None: never)."""
        return None if self.after is None else duration(self.after)

    def forget(self, elapsed: timedelta) -> float:
        """The weight left to what was learned ``elapsed`` before the newest batch."""
        if self.half_life is None:
            return 1.0
        return 0.5 ** (elapsed / duration(self.half_life))


class BaselinePolicy(_Strict):
    """The normal data a model is trained on: a fixed time range or the last N batches
    (a rolling baseline), and how a lasting change joins it (``adapt``)."""

    start: datetime | None = Field(
        default=None, description="start of the baseline range (with end; or last_intervals)"
    )
    end: datetime | None = Field(default=None, description="end of the baseline range, exclusive")
    last_intervals: int | None = Field(
        default=None,
        ge=1,
        description="instead of start and end: the newest N ingested batches",
    )
    max_train_rows: int | None = Field(
        default=None,
        ge=2,
        description="fit on at most this many of the baseline's training rows (windows): a "
        "uniform random sample with a fixed seed; calibration still scores every held-out row",
    )
    adapt: Adaptation = Field(
        default_factory=Adaptation,
        description="how a lasting change joins the baseline as the new normal "
        "(docs/adaptation.md)",
    )

    @field_validator("start", "end")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else as_utc(value)

    @model_validator(mode="after")
    def _one_policy(self) -> BaselinePolicy:
        has_range = self.start is not None or self.end is not None
        if has_range == (self.last_intervals is not None):
            raise ValueError("give either 'start' and 'end' or 'last_intervals'")
        if has_range and (self.start is None or self.end is None or self.start >= self.end):
            raise ValueError("'start' and 'end' must both be set, with start < end")
        return self


class Validation(_Strict):
    """What ingest does with a row that has some features missing."""

    missing_features: Literal["quarantine", "keep"] = Field(
        default="quarantine",
        description="keep: land the row with NaN for the detector to handle (marginalise or "
        "impute); a row with every feature missing is still quarantined",
    )


class Calibration(_Strict):
    """Conformal calibration: the false-alarm rate bound, the held-out share of the baseline,
    the p-value tail beyond the largest calibration score, and which scores calibrate."""

    alpha: float = Field(
        default=0.01,
        gt=0,
        lt=0.5,
        description="a step is anomalous when its p-value is below alpha; below 1 / (calibration "
        "rows + 1) only with a tail_floor, the flags then coming from the tail",
    )
    fraction: float = Field(
        default=0.25, gt=0, lt=1, description="last share of the baseline, in time, held out"
    )
    tail_floor: float = Field(
        default=0.0,
        ge=0,
        description="smallest scale of the exponential p-value tail beyond the largest "
        "calibration score, in score units (nats for likelihood detectors); 0: no floor",
    )
    pool: Literal["held_out", "unflagged"] = Field(
        default="held_out",
        description="scores a batch is judged against: held_out, the baseline's held-out steps; "
        "unflagged, also the newest pool_limit unflagged scores the same model version gave "
        "before the batch",
    )
    pool_limit: int = Field(
        default=100_000, ge=1, description="most unflagged scores added to the pool (newest first)"
    )


class EventsConfig(_Strict):
    """How anomalous rows of one entity merge into events."""

    max_gap: int = Field(
        default=0, ge=0, description="normal rows allowed inside one event between anomalies"
    )


class Schedules(_Strict):
    """Airflow schedules (cron expressions or presets such as ``@daily``).

    The score DAG's data intervals run from ``start`` (default: the baseline's end) to
    ``end`` (default: none); with ``catchup`` Airflow schedules every interval since then
    that has not run yet. A run whose interval has no source rows waits for them until
    ``max_data_delay`` after the interval's end, then fails.
    """

    score: str = Field(
        default="@daily", description="the score DAG's schedule: a cron expression or preset"
    )
    retrain: str | None = Field(
        default="@weekly",
        description="the retrain DAG's schedule besides drift; null: retrain on drift only",
    )
    start: datetime | None = Field(
        default=None,
        description="start of the score DAG's first interval (default: the baseline's end; "
        "required with baseline.last_intervals)",
    )
    end: datetime | None = Field(
        default=None,
        description="the score DAG schedules no interval that starts at or after this time "
        "(a source whose data stops here)",
    )
    catchup: bool = Field(
        default=True,
        description="Airflow schedules every interval since start that has not run yet",
    )
    max_data_delay: str = Field(
        default="6h",
        description="how long after an interval's end its rows may still arrive; a run waits "
        "for them until then, then fails",
    )

    @field_validator("start", "end")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else as_utc(value)

    @field_validator("max_data_delay")
    @classmethod
    def _delay(cls, value: str) -> str:
        return _checked_duration(value)

    @model_validator(mode="after")
    def _end_after_start(self) -> Schedules:
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError("'end' must be after 'start'")
        return self


class Scoring(_Strict):
    """How the score DAG splits a batch: entities per mapped scoring task."""

    partition_entities: int = Field(
        default=500, ge=1, description="entities scored by one task; more entities, more tasks"
    )


class Retraining(_Strict):
    """Retraining on recent batches, and the gate a candidate must pass to become champion."""

    intervals: int | None = Field(
        default=None,
        ge=1,
        description="recent batches a candidate learns from (default: baseline.last_intervals, "
        "or as many batches as the baseline range holds)",
    )
    holdout_intervals: int = Field(
        default=1, ge=1, description="newest batches held out to compare candidate and champion"
    )
    max_auc_drop: float = Field(
        default=0.01,
        ge=0,
        lt=1,
        description="how much lower than the champion's the candidate's AUC on labels may be",
    )
    min_improvement: float = Field(
        default=0.25,
        ge=0,
        lt=1,
        description="unless drift required the retraining, the share of the champion's false "
        "alarms (when above the calibrated bound), or of its AUC shortfall (1 - AUC) on "
        "labelled incidents, the candidate must remove to be promoted",
    )


class Drift(_Strict):
    """The drift check on the champion's recent scores."""

    window: str = Field(default="3D", description="recent span compared with the calibration")
    max_distance: float = Field(
        default=0.2,
        gt=0,
        lt=1,
        description="largest Kolmogorov-Smirnov distance between recent and calibration "
        "scores that is not drift",
    )
    min_rows: int = Field(default=100, ge=1, description="fewer recent rows: no verdict")

    @field_validator("window")
    @classmethod
    def _window(cls, value: str) -> str:
        return _checked_duration(value)

    @property
    def window_length(self) -> timedelta:
        """The recent span as a timedelta."""
        return duration(self.window)


class Monitor(_Strict):
    """One monitored data set."""

    name: str = Field(
        pattern=_NAME,
        description="lowercase letters, digits and _, starting with a letter; defaults to the "
        "file's name",
    )
    description: str = Field(default="", description="free text for people")
    source: Source = Field(description="where the rows come from: files or sql")
    timestamp: str = Field(description="the time column, ISO 8601; a time without a zone is UTC")
    entities: list[str] = Field(
        default_factory=list,
        description="columns that name an entity (a host, a sensor); its key is their values "
        "joined with /",
    )
    features: list[str] = Field(min_length=1, description="the numeric columns the detector sees")
    frequency: str = Field(description="the data's step: a number and s, min, h or D, e.g. 5min")
    detector: DetectorConfig = Field(
        default_factory=DetectorConfig, description="what is trained and what it sees"
    )
    baseline: BaselinePolicy = Field(description="the normal data a model is trained on")
    validation: Validation = Field(
        default_factory=Validation, description="what ingest does with incomplete rows"
    )
    calibration: Calibration = Field(
        default_factory=Calibration, description="how raw scores become p-values and flags"
    )
    events: EventsConfig = Field(
        default_factory=EventsConfig, description="how anomalous steps merge into events"
    )
    schedule: Schedules = Field(default_factory=Schedules, description="the Airflow schedules")
    scoring: Scoring = Field(
        default_factory=Scoring, description="how the score DAG splits a batch"
    )
    retraining: Retraining = Field(
        default_factory=Retraining, description="retraining and the promotion gate"
    )
    drift: Drift = Field(default_factory=Drift, description="the drift check")
    # The monitor file's settings before ${VAR} expansion (None: built in code).
    _unexpanded: dict[str, Any] | None = PrivateAttr(default=None)

    def stored_config(self) -> dict[str, Any]:
        """The configuration the store keeps: the file's settings before ``${VAR}``
        expansion (a monitor built in code: its settings), with any password written into
        a source URL itself hidden."""
        if self._unexpanded is not None:
            document = copy.deepcopy(self._unexpanded)
        else:
            document = self.model_dump(mode="json")
        source = document.get("source")
        if isinstance(source, dict) and isinstance(source.get("url"), str):
            source["url"] = _hide_literal_password(source["url"])
        return document

    @field_validator("frequency")
    @classmethod
    def _frequency(cls, value: str) -> str:
        return _checked_duration(value)

    @model_validator(mode="after")
    def _distinct_columns(self) -> Monitor:
        columns = [self.timestamp, *self.entities, *self.features]
        repeated = sorted({c for c in columns if columns.count(c) > 1})
        if repeated:
            raise ValueError(f"columns used twice: {', '.join(repeated)}")
        return self

    @model_validator(mode="after")
    def _windows_fit_the_baseline(self) -> Monitor:
        if self.baseline.start is None or self.baseline.end is None:
            return self  # last_intervals: checked when the baseline is assembled
        steps = (self.baseline.end - self.baseline.start) // self.step
        window = 1 if self.detector.window == AUTO else self.detector.window  # auto: at train
        needed = window + self.detector.smoothing - 1
        if needed >= steps:
            raise ValueError(
                f"detector.window {self.detector.window} and smoothing "
                f"{self.detector.smoothing} span {needed} steps of {self.frequency}, but the "
                f"baseline holds only {steps}: nothing would be left to train on"
            )
        return self

    @model_validator(mode="after")
    def _seasons_fit_the_grid(self) -> Monitor:
        if self.detector.seasons and self.detector.window == 1:
            raise ValueError("detector.seasons needs windows (detector.window > 1)")
        if self.detector.seasons == AUTO:
            return self
        for season in self.detector.seasons:
            if duration(season) % self.step:
                raise ValueError(
                    f"detector.seasons: {season} is not a whole number of {self.frequency} steps"
                )
        return self

    @property
    def step(self) -> timedelta:
        """The data's step as a timedelta."""
        return duration(self.frequency)

    @property
    def event_lead_steps(self) -> int:
        """How many steps before its first anomaly an event starts (:func:`event_lead`)."""
        return event_lead(self.detector.smoothing)

    @property
    def season_steps(self) -> list[int]:
        """The detector's seasons in steps of the data's frequency (chosen ones: see
        ``atalaia.auto.applied``)."""
        if self.detector.seasons == AUTO:
            raise ConfigError(
                f"monitor {self.name}: detector.seasons is auto: it is chosen when a version "
                "is trained, and known from the version"
            )
        return [duration(season) // self.step for season in self.detector.seasons]


def _checked_duration(value: str) -> str:
    match = _FREQUENCY.match(value)
    if match is None or int(match.group(1) or 1) == 0:
        raise ValueError(f"{value!r} is not a positive number followed by s, min, h or D")
    return value


def event_lead(smoothing: int) -> int:
    """How many steps before its first anomaly an event starts, with scores smoothed over
    ``smoothing`` steps: the steps whose raw scores the first anomalous score averages."""
    return smoothing - 1


def parse_duration(text: str) -> timedelta:
    """A duration typed by a person, such as ``5min`` or ``1D``; zero or anything other than
    a positive number and s, min, h or D raises ValueError."""
    return duration(_checked_duration(text))


def duration(text: str) -> timedelta:
    """A checked duration such as ``5min`` or ``3D`` as a timedelta."""
    count, unit = _FREQUENCY.match(text).groups()
    return timedelta(**{_UNITS[unit]: int(count or 1)})


def duration_text(length: timedelta) -> str:
    """``length`` (a whole number of seconds) as a duration such as ``5min`` or ``1D``, in
    the largest unit that divides it."""
    seconds = int(length.total_seconds())
    for unit, size in (("D", 86_400), ("h", 3_600), ("min", 60), ("s", 1)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    raise ValueError(f"{length} is not a whole number of seconds")


def as_utc(value: datetime | str) -> datetime:
    """Return ``value`` (a datetime or an ISO 8601 string) as an aware UTC datetime.

    A value without a time zone is taken to be UTC. A datetime subclass (such as Airflow's
    pendulum dates, whose arithmetic can drop a standard-library zone) becomes a plain one.
    """
    stamp = datetime.fromisoformat(value) if isinstance(value, str) else value
    stamp = stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)
    if type(stamp) is not datetime:
        stamp = datetime.combine(stamp.date(), stamp.timetz())
    return stamp


def _hide_literal_password(url: str) -> str:
    """``url`` with a password written into it replaced by ``***``; one given as ``${VAR}``
    is kept as written."""
    try:
        password = make_url(url).password
    except Exception:  # not a URL SQLAlchemy parses: nothing to hide
        return url
    if password is None or _ENV_VAR.fullmatch(str(password)):
        return url
    return make_url(url).render_as_string(hide_password=True)


def _expand(value: Any, env: dict[str, str], origin: Path) -> Any:
    if isinstance(value, dict):
        return {key: _expand(item, env, origin) for key, item in value.items()}
    if isinstance(value, list):
        return [_expand(item, env, origin) for item in value]
    if isinstance(value, str):

        def lookup(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in env:
                raise ConfigError(f"{origin}: environment variable {name} is not set")
            return env[name]

        return _ENV_VAR.sub(lookup, value)
    return value


def load_monitor(path: str | Path, home: Path | None = None) -> Monitor:
    """Read and validate one monitor file; a bad file raises ConfigError naming file and field.

    ``${ATALAIA_HOME}`` in the file is ``home`` (the settings' home; default: read from the
    environment), made absolute."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise ConfigError(f"{path}: not valid YAML{where}: {problem}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level")
    raw.setdefault("name", path.stem)
    home = Settings.from_env().home if home is None else home
    env = {**os.environ, "ATALAIA_HOME": str(home.resolve())}
    data = _expand(raw, env, path)
    try:
        monitor = Monitor.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {_first_problem(exc)}") from exc
    if isinstance(monitor.source, FileSource) and not Path(monitor.source.path).is_absolute():
        absolute = str(path.parent.resolve() / monitor.source.path)
        monitor = monitor.model_copy(update={"source": FileSource(path=absolute)})
    monitor._unexpanded = json.loads(json.dumps(raw, default=str))  # YAML dates as text
    return monitor


def _first_problem(error: ValidationError) -> str:
    """The problem to report first: an unknown setting (most likely a typo, which would
    otherwise show as a missing one), with the closest known name; else the first error."""
    problems = error.errors()
    unknown = [problem for problem in problems if problem["type"] == "extra_forbidden"]
    first = (unknown or problems)[0]
    field = ".".join(str(part) for part in first["loc"]) or "(top level)"
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    if not unknown:
        return f"{field}: {first['msg'].removeprefix('Value error, ')}{more}"
    known = _known_settings(first["loc"])
    close = difflib.get_close_matches(str(first["loc"][-1]), known, n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(known)}"
    return f"{field}: unknown setting; {hint}{more}"


def _known_settings(location: tuple[Any, ...]) -> list[str]:
    """The setting names allowed beside the last part of ``location`` (an error's loc)."""
    models: list[type[BaseModel]] = [Monitor]
    for part in location[:-1]:
        if len(models) > 1:  # a tagged union (source): the part is the tag
            models = [m for m in models if m.model_fields["kind"].default == part]
            continue
        field = models[0].model_fields.get(str(part)) if models else None
        models = _models_in(field.annotation) if field else []
    return list(models[0].model_fields) if len(models) == 1 else []


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for inner in get_args(annotation) for model in _models_in(inner)]


def monitor_files(
    folder: str | Path, home: Path | None = None
) -> dict[Path, Monitor | ConfigError]:
    """Every ``*.yaml`` monitor file in ``folder``, sorted, with its monitor or the reason it
    cannot be loaded (a name that an earlier file defines included); one bad file does not
    hide the others."""
    found: dict[Path, Monitor | ConfigError] = {}
    names: dict[str, Path] = {}
    for path in sorted(Path(folder).glob("*.y*ml")):
        try:
            monitor = load_monitor(path, home)
        except ConfigError as exc:  # its message names the file and the field
            found[path] = exc
            continue
        except Exception as exc:  # not the file's fault, but still only this file's
            found[path] = ConfigError(f"{path}: {type(exc).__name__}: {exc}")
            continue
        if monitor.name in names:
            earlier = names[monitor.name]
            found[path] = ConfigError(
                f"{path}: name: monitor {monitor.name!r} is already defined in {earlier}"
            )
            continue
        names[monitor.name] = path
        found[path] = monitor
    return found


def load_monitors(folder: str | Path, home: Path | None = None) -> dict[str, Monitor]:
    """Read every ``*.yaml`` monitor in ``folder``, keyed by name; the first bad file raises."""
    monitors: dict[str, Monitor] = {}
    for monitor in monitor_files(folder, home).values():
        if isinstance(monitor, ConfigError):
            raise monitor
        monitors[monitor.name] = monitor
    return monitors


def find_monitor(folder: str | Path, name: str, home: Path | None = None) -> Monitor:
    """Return the monitor called ``name`` from ``folder``."""
    monitors = load_monitors(folder, home)
    if name not in monitors:
        known = ", ".join(monitors) or "none"
        raise ConfigError(f"{folder}: no monitor named {name!r} (known: {known})")
    return monitors[name]


# The jobs of a monitor that have an Airflow DAG (``dags/atalaia_dags.py``).
MONITOR_DAGS = ("score", "retrain")


def dag_id(name: str, job: str) -> str:
    """The id of the Airflow DAG that runs ``job`` (a job of ``MONITOR_DAGS``, or
    ``invalid`` for a monitor file that cannot be loaded) for the monitor ``name``."""
    return f"atalaia__{name}__{job}"
