"""Prometheus metrics of batch jobs: written as a textfile, pushed to a Pushgateway if set.

Every metric has the labels ``monitor`` and ``job`` only. A successful run exports its
figures and ``atalaia_last_success_timestamp_seconds``; a failed run exports only
``atalaia_last_failure_timestamp_seconds``, so the last success stays visible. Exporting
never fails a job: an unreachable Pushgateway or an unwritable folder is logged.

A Pushgateway URL may carry ``user:password@``: it is sent as HTTP basic authentication and
never shown. Every push carries ``atalaia_push_failures``, how many pushes of the job failed
so far (kept in a textfile of its own), so the alert rules see failed pushes once a push
gets through, and a textfile collector sees them at once.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from prometheus_client import CollectorRegistry, Gauge, pushadd_to_gateway, write_to_textfile
from prometheus_client.exposition import basic_auth_handler, default_handler
from prometheus_client.parser import text_string_to_metric_families

from atalaia.settings import Settings
from storage.engine import redact

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
    "atalaia_push_failures": "Pushes of the job's metrics to the Pushgateway that failed, ever.",
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
    _write(settings, textfile, registry_for(monitor, job, figures))
    if settings.pushgateway_url:
        failures_file = textfile_path(settings, monitor, job).with_suffix(".push.prom")
        failures = _push_failures(failures_file)
        figures = {**figures, "atalaia_push_failures": failures}
        if not push(settings.pushgateway_url, monitor, job, registry_for(monitor, job, figures)):
            counted = {"atalaia_push_failures": failures + 1}
            _write(settings, failures_file, registry_for(monitor, job, counted))


def _write(settings: Settings, textfile: Path, registry: CollectorRegistry) -> None:
    try:
        textfile.parent.mkdir(parents=True, exist_ok=True)
        write_to_textfile(str(textfile), registry)
    except OSError as exc:
        log.warning("could not write metrics to %s: %s", settings.metrics_dir, exc)


def _push_failures(textfile: Path) -> float:
    """The count of failed pushes a textfile holds (0 when there is none)."""
    try:
        text = textfile.read_text()
    except OSError:
        return 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "atalaia_push_failures":
                return sample.value
    return 0.0


def push(url: str, monitor: str, job: str, registry: CollectorRegistry) -> bool:
    """Add the registry's metrics to the group (job, monitor) of a Pushgateway; log failures.

    A ``user:password@`` in ``url`` is sent as basic authentication, not in the URL."""
    parts, shown = urlsplit(url), redact(url)
    handler = default_handler
    password = unquote(parts.password) if parts.password is not None else None
    if parts.username is not None:
        user = unquote(parts.username)
        url = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))

        def handler(url, method, timeout, headers, data):  # noqa: ANN001, ANN202 (prometheus' handler)
            return basic_auth_handler(url, method, timeout, headers, data, user, password)

    try:
        pushadd_to_gateway(
            url,
            job=job,
            grouping_key={"monitor": monitor},
            registry=registry,
            timeout=10,
            handler=handler,
        )
    except OSError as exc:
        reason = str(exc).replace(password, "***") if password else str(exc)
        log.warning("could not push metrics to Pushgateway %s: %s", shown, reason)
        return False
    return True


def textfile_path(settings: Settings, monitor: str, job: str, failure: bool = False) -> Path:
    """The textfile a run of ``job`` writes (successes and failures write separate files)."""
    return settings.metrics_dir / f"atalaia_{monitor}_{job}{'_failure' if failure else ''}.prom"
