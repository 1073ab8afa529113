"""Prometheus metrics of batch jobs: written as a textfile, pushed to a Pushgateway if set.

Every metric has the labels ``monitor`` and ``job`` only. A successful run exports its
figures and ``atalaia_last_success_timestamp_seconds``; a failed run exports only
``atalaia_last_failure_timestamp_seconds``, so the last success stays visible. Exporting
never fails a job: an unreachable Pushgateway or an unwritable folder is logged.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from prometheus_client import CollectorRegistry, Gauge, pushadd_to_gateway, write_to_textfile

from atalaia.settings import Settings

log = logging.getLogger(__name__)

LABELS = ("monitor", "job")

# name -> help; values a job reports are looked up here, so every name is documented once.
METRICS: dict[str, str] = {
    "atalaia_batch_rows": "Rows in the last batch the job handled.",
    "atalaia_batch_quarantined_rows": "Rows of the last ingested batch put in quarantine.",
    "atalaia_batch_anomalies": "Anomalous rows in the last scored batch.",
    "atalaia_batch_anomaly_ratio": "Share of the last scored batch flagged anomalous (0..1).",
    "atalaia_batch_max_z": "Largest z (normal quantile of 1 - p) in the last scored batch.",
    "atalaia_open_events": "Events still open after the last scored batch.",
    "atalaia_model_version": "Version number of the model the job trained or scored with.",
    "atalaia_champion_version": "Version number of the monitor's champion model.",
    "atalaia_alpha": "False-alarm bound alpha the champion is calibrated to.",
    "atalaia_training_rows": "Rows the last trained model was fitted on.",
    "atalaia_training_duration_seconds": "Time the last training took to fit and calibrate.",
    "atalaia_training_loss": "Mean anomaly score (negative log-likelihood) of the held-out "
    "calibration rows under the last trained model.",
    "atalaia_recent_anomaly_ratio": "Share of rows flagged over the drift check's recent window.",
    "atalaia_drift_statistic": "Drift statistic of the last drift check; larger = more drift.",
    "atalaia_drift_detected": "1 when the last drift check found drift, else 0.",
    "atalaia_batch_interval_seconds": "Length of the data interval the last run handled.",
    "atalaia_run_duration_seconds": "Wall-clock duration of the last run.",
    "atalaia_last_success_timestamp_seconds": "Unix time the job last succeeded.",
    "atalaia_last_failure_timestamp_seconds": "Unix time the job last failed.",
    "atalaia_abandoned_runs": "Runs of the job ever marked abandoned: their process died "
    "before finishing them.",
}


def export_success(
    settings: Settings, monitor: str, job: str, values: dict[str, float], duration: float
) -> None:
    """Export a successful run's ``values`` (names from METRICS) and its timestamps."""
    figures = {
        **values,
        "atalaia_run_duration_seconds": duration,
        "atalaia_last_success_timestamp_seconds": time.time(),
    }
    _export(settings, monitor, job, figures, textfile_path(settings, monitor, job))


def export_failure(settings: Settings, monitor: str, job: str) -> None:
    """Export that a run failed, leaving the last success's metrics as they were."""
    figures = {"atalaia_last_failure_timestamp_seconds": time.time()}
    _export(settings, monitor, job, figures, textfile_path(settings, monitor, job, failure=True))


def export_abandoned(settings: Settings, monitor: str, job: str, total: int) -> None:
    """Export how many runs of ``job`` were ever marked abandoned (in their own textfile)."""
    figures = {"atalaia_abandoned_runs": float(total)}
    path = settings.metrics_dir / f"atalaia_{monitor}_{job}_abandoned.prom"
    _export(settings, monitor, job, figures, path)


def registry_for(monitor: str, job: str, figures: dict[str, float]) -> CollectorRegistry:
    """A fresh registry holding ``figures`` as gauges labelled with monitor and job."""
    registry = CollectorRegistry()
    for name, value in figures.items():
        Gauge(name, METRICS[name], LABELS, registry=registry).labels(monitor, job).set(value)
    return registry


def _export(
    settings: Settings, monitor: str, job: str, figures: dict[str, float], textfile: Path
) -> None:
    registry = registry_for(monitor, job, figures)
    try:
        textfile.parent.mkdir(parents=True, exist_ok=True)
        write_to_textfile(str(textfile), registry)
    except OSError as exc:
        log.warning("could not write metrics to %s: %s", settings.metrics_dir, exc)
    if settings.pushgateway_url:
        push(settings.pushgateway_url, monitor, job, registry)


def push(url: str, monitor: str, job: str, registry: CollectorRegistry) -> bool:
    """Add the registry's metrics to the group (job, monitor) of a Pushgateway; log failures."""
    try:
        pushadd_to_gateway(
            url, job=job, grouping_key={"monitor": monitor}, registry=registry, timeout=10
        )
    except OSError as exc:
        log.warning("could not push metrics to Pushgateway %s: %s", redact_url(url), exc)
        return False
    return True


def redact_url(url: str) -> str:
    """``url`` without the password of any user info."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def textfile_path(settings: Settings, monitor: str, job: str, failure: bool = False) -> Path:
    """The textfile a run of ``job`` writes (successes and failures write separate files)."""
    return settings.metrics_dir / f"atalaia_{monitor}_{job}{'_failure' if failure else ''}.prom"
