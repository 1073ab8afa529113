"""Detector settings a monitor leaves to the baseline: ``window: auto``, ``seasons: auto``.

When a version is trained, each ``auto`` setting is chosen from the baseline rows the
detector learns from (the held-out calibration rows take no part, so calibration judges a
choice on rows it was not made from), by the rules of ``detectors.auto``: the window first,
then the season (at most one, the baseline's fundamental period) whose lags improve that
window's model. A window of 1 step (a baseline too short for windows) gets no season,
which needs windows; seasons asked for explicitly keep a chosen window at 2 steps at least.

The values chosen are recorded with the version (``atalaia.representation.bound_settings``)
beside what was asked; the version scores with the monitor as it was trained
(:func:`applied`), and a monitor still asking ``auto`` matches it.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from atalaia.config import AUTO, Monitor, duration_text
from atalaia.errors import ConfigError
from atalaia.validation import entity_keys
from detectors import auto
from detectors.windows import regular_grid

WINDOW = "detector.window"
SEASONS = "detector.seasons"


def asked(monitor: Monitor) -> list[str]:
    """The monitor's settings asked as ``auto``, by dotted name."""
    settings = {WINDOW: monitor.detector.window, SEASONS: monitor.detector.seasons}
    return [name for name, value in settings.items() if value == AUTO]


def choose(monitor: Monitor, frame: pd.DataFrame) -> dict[str, Any]:
    """The values chosen for the monitor's ``auto`` settings from ``frame`` (the baseline
    rows its detector learns from), by dotted name; empty when it asks for none."""
    names = asked(monitor)
    if not names:
        return {}
    grids = [
        regular_grid(rows, monitor.timestamp, monitor.features, monitor.step).to_numpy()
        for _, rows in frame.groupby(entity_keys(frame, monitor).to_numpy(), sort=True)
    ]
    window = monitor.detector.window
    if window == AUTO:
        window = auto.window(grids)
        if monitor.detector.seasons not in ([], AUTO):
            window = max(window, 2)  # seasons asked for explicitly need windows
    seasons = monitor.detector.seasons
    if seasons == AUTO:
        period = auto.season(grids, window)
        seasons = [] if period is None else [duration_text(period * monitor.step)]
    chosen = {WINDOW: window, SEASONS: seasons}
    return {name: chosen[name] for name in names}


def applied(monitor: Monitor, chosen: dict[str, Any]) -> Monitor:
    """``monitor`` with the ``chosen`` values (by dotted name) in place of ``auto``."""
    updates = {name.removeprefix("detector."): value for name, value in chosen.items()}
    return monitor.model_copy(update={"detector": monitor.detector.model_copy(update=updates)})


def require_chosen(monitor: Monitor) -> None:
    """Refuse a monitor that still asks ``auto``: its inputs are known only from a trained
    version (:func:`applied` with the version's recorded choices)."""
    if names := asked(monitor):
        raise ConfigError(
            f"monitor {monitor.name}: {', '.join(names)} is auto: chosen when a version is "
            "trained, and known from the version"
        )
