"""Event-level alerts: after scoring a batch, Atalaia posts its events to Alertmanager.

Prometheus' metrics carry only the labels ``monitor`` and ``job``, so they cannot say which
entity is anomalous or why. Each event the scoring of a batch found or changed is therefore
posted to Alertmanager's v2 API (``ATALAIA_ALERTMANAGER_URL``) as the alert
``AtalaiaEvent`` with the labels ``monitor``, ``entity``, ``event_id`` and ``severity`` (one
alert per event; two events of one entity are two alerts) and annotations that carry the
event: its start, peak z, top features with their shares, the model version and a link to its
drill-down page. Alertmanager's
configuration (``docker/alertmanager/``) groups them per monitor, so an incident on 300
hosts is one notification listing 300 alerts.

The life of an alert, with ``hold`` twice the batch's interval:

- an open event fires until ``hold`` after the run that posted it; every scoring run
  re-posts it while it is open, so it fires as long as scoring keeps up;
- when an event closes and Alertmanager still holds its firing alert, it is resolved now;
- an event that opened and closed between two runs (the common case for batch scoring)
  was never announced: it fires until ``hold`` after the run that found it, then resolves.

Posting follows the scoring run's success (its scores, events and metrics are stored and
exported); a failed post then fails the command or Airflow task with one line, and a rerun
scores the batch again (idempotently) and posts again, so no event is left unannounced.
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from base64 import b64encode
from datetime import UTC, datetime, timedelta
from typing import Any

from atalaia.attribution import shares_text
from atalaia.errors import AtalaiaError
from atalaia.queries import reading, stored_events
from atalaia.settings import Settings
from storage.engine import redact
from storage.events import Event
from storage.models import EventRow, ModelRow

ALERTNAME = "AtalaiaEvent"
SEVERITY = "warning"
TIMEOUT_SECONDS = 10


def drilldown_url(base_url: str | None, monitor: str, event_id: int) -> str | None:
    """The event's page in Airflow's UI (the Atalaia plugin), or None without a base URL."""
    if not base_url:
        return None
    quoted = urllib.parse.quote(monitor, safe="")
    return f"{base_url.rstrip('/')}/atalaia/monitors/{quoted}/events/{event_id}"


def event_alert(
    monitor: str,
    event: EventRow,
    version: int,
    posted_at: datetime,
    ends_at: datetime,
    base_url: str | None = None,
) -> dict[str, Any]:
    """The Alertmanager v2 alert for ``event`` posted at ``posted_at``, firing until ``ends_at``.

    ``startsAt`` is the posting time, not the event's start (which is in the annotations):
    Alertmanager sends an alert that started more than ``group_wait`` ago at once, which would
    split one batch's alerts over several notifications; it keeps the earliest ``startsAt``
    of an alert posted again.
    """
    link = drilldown_url(base_url, monitor, event.id)
    top = shares_text(event.top_features)
    where = f"{monitor}/{event.entity}" if event.entity else monitor
    state = "open" if event.is_open else f"closed at {_iso(event.end_ts)}"
    annotations = {
        "summary": f"{where}: anomalous since {_iso(event.start_ts)} (peak z {event.peak_z:.1f})",
        "description": f"{event.anomalies} anomalous steps, {state}; top features: {top}",
        "start": _iso(event.start_ts),
        "end": _iso(event.end_ts),
        "peak": _iso(event.peak_ts),
        "peak_z": f"{event.peak_z:.2f}",
        "top_features": top,
        "state": "open" if event.is_open else "closed",
        "version": str(version),
    }
    alert: dict[str, Any] = {
        "labels": {
            "alertname": ALERTNAME,
            "monitor": monitor,
            "entity": event.entity,
            "event_id": str(event.id),
            "severity": SEVERITY,
        },
        "annotations": annotations,
        "startsAt": _iso(posted_at),
        "endsAt": _iso(ends_at),
    }
    if link:
        annotations["drilldown"] = link
        alert["generatorURL"] = link
    return alert


def deliver(
    settings: Settings,
    monitor: str,
    monitor_id: int,
    model: ModelRow,
    found: list[Event],
    interval: timedelta,
) -> int:
    """Post the events a scoring run of a batch ``interval`` long found or changed (as
    ``refresh_events`` returns them), once stored; return how many alerts were posted."""
    if not settings.alertmanager_url or not found:
        return 0
    keys = [(event["entity"], event["start_ts"]) for event in found]
    with reading(settings) as session:
        events = stored_events(session, monitor_id, model.id, keys)
    try:
        return post_events(settings, monitor, events, model.version, 2 * interval)
    except AtalaiaError as exc:
        raise AtalaiaError(
            f"monitor {monitor}: scores stored, events not posted ({exc}); score again to post"
        ) from exc


def post_events(
    settings: Settings,
    monitor: str,
    events: list[EventRow],
    version: int,
    hold: timedelta,
    now: datetime | None = None,
) -> int:
    """Post ``events`` (found or changed by one scoring run) as the module describes; return
    how many alerts were posted. Nothing is sent without ``settings.alertmanager_url``."""
    url = settings.alertmanager_url
    if not url or not events:
        return 0
    now = now or datetime.now(UTC)
    announced = _firing_event_ids(url, monitor)
    alerts = []
    for event in events:
        resolve = not event.is_open and str(event.id) in announced
        ends_at = now if resolve else now + hold
        alerts.append(event_alert(monitor, event, version, now, ends_at, settings.airflow_url))
    _request(url, "POST", "/api/v2/alerts", alerts)
    return len(alerts)


def _firing_event_ids(url: str, monitor: str) -> set[str]:
    """The ``event_id`` labels of the monitor's active AtalaiaEvent alerts."""
    query = urllib.parse.urlencode(
        [("filter", f'alertname="{ALERTNAME}"'), ("filter", f'monitor="{monitor}"')]
    )
    alerts = _request(url, "GET", f"/api/v2/alerts?active=true&silenced=true&{query}")
    return {alert["labels"].get("event_id", "") for alert in alerts}


def _request(url: str, method: str, path: str, body: Any = None) -> Any:
    """One call to Alertmanager's API; basic auth from the URL's user info; errors raise
    ``AtalaiaError`` with the URL's password redacted."""
    parts = urllib.parse.urlsplit(url)
    netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
    target = urllib.parse.urlunsplit(parts._replace(netloc=netloc)).rstrip("/") + path
    request = urllib.request.Request(target, method=method)
    request.add_header("Accept", "application/json")
    if parts.username is not None:
        user = urllib.parse.unquote(parts.username)
        password = urllib.parse.unquote(parts.password or "")
        token = b64encode(f"{user}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, data, timeout=TIMEOUT_SECONDS) as response:
            text = response.read()
    except OSError as exc:  # URLError and HTTPError among them
        raise AtalaiaError(
            f"Alertmanager {redact(url)}: {method} {path.split('?')[0]} failed: {exc}"
        ) from exc
    return json.loads(text) if text.strip() else None


def _iso(stamp: datetime) -> str:
    return stamp.astimezone(UTC).isoformat().replace("+00:00", "Z")
