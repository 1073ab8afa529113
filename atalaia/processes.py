"""Which process runs a job, and whether it is still alive.

A running run records its host and process id and beats a heartbeat every
``HEARTBEAT_SECONDS`` from a background thread. A run is stale, and marked ``abandoned`` by
the next job of any monitor, when its process on this host is gone, or when its heartbeat
is older than ``STALE_AFTER`` (a process on another host, or a reused process id). Partial
model folders name their process the same way.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from datetime import timedelta
from types import TracebackType

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from atalaia import metrics
from atalaia.settings import Settings
from storage.engine import transaction
from storage.models import MonitorRow
from storage.runs import abandon_stale_runs, abandoned_count, beat

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 30.0
STALE_AFTER = timedelta(minutes=10)


def this_host() -> str:
    """This machine's host name, as recorded with runs and partial folders."""
    return socket.gethostname()


def is_gone(host: str | None, pid: int | None) -> bool:
    """Whether process ``pid`` of ``host`` has certainly ended: only a process of this host
    can be checked, so for another host (or an unknown one) the answer is False."""
    if host != this_host() or not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, owned by another user
        return False
    return False


class Heartbeat:
    """While open, records every ``HEARTBEAT_SECONDS`` that run ``run_id`` is alive."""

    def __init__(self, store: Engine, run_id: int) -> None:
        self.store, self.run_id = store, run_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{run_id}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType
    ) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                with transaction(self.store) as session:
                    beat(session, self.run_id)
            except SQLAlchemyError as exc:  # a busy or unreachable store: try again later
                log.debug("heartbeat of run %d not recorded: %s", self.run_id, exc)


def abandon_stale(settings: Settings, store: Engine) -> int:
    """Mark stale runs of every monitor abandoned and export, per monitor and job, how many
    runs were ever abandoned (``atalaia_abandoned_runs``); return how many were marked."""
    with transaction(store) as session:
        abandoned = abandon_stale_runs(session, STALE_AFTER, is_gone)
        totals = {}
        for run in abandoned:
            name = session.get_one(MonitorRow, run.monitor_id).name
            totals[name, run.job] = abandoned_count(session, run.monitor_id, run.job)
            log.warning("monitor %s: run %d of %s %s", name, run.id, run.job, run.message)
    for (name, job), total in totals.items():
        metrics.export_abandoned(settings, name, job, total)
    return len(abandoned)
