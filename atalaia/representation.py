"""What a monitor's detector sees, and how its raw scores become the scores reported.

With ``detector.window = 1`` the detector sees each accepted row's features. With ``w > 1``
it sees, for every step of every entity, the window of the last ``w`` steps of all features
(``detectors.windows``: the data's regular grid, gaps missing), plus each feature one
season ago and the step before for every period of ``detector.seasons``, and a score
belongs to the window's last step. With ``detector.smoothing = k`` a step's score is the
mean of its entity's last ``k`` raw scores (``detectors.smoothing``). Both look back in
time, so scoring a batch takes the rows of the ``lookback`` before it along as context;
training and calibration go through the same functions, so calibration sees the scores
scoring makes.

A model version is bound to the settings that made its inputs and its calibration
(:func:`bound_settings`), recorded with its files; scoring with other values would compare
scores against a calibration they do not match, so it is refused (:func:`check_bound`).
Settings asked as ``auto`` are recorded as asked, with the values chosen for them
(``atalaia.auto``); the version scores with the monitor as it was trained
(:func:`as_trained`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from atalaia.auto import SEASONS, WINDOW, applied, asked, require_chosen
from atalaia.config import AUTO, Monitor, duration_text
from atalaia.errors import ConfigError
from atalaia.validation import entity_keys
from detectors import Detector
from detectors.auto import MAX_WINDOW
from detectors.smoothing import full_spans, moving_mean
from detectors.windows import make_windows, per_feature


@dataclass
class DetectorInput:
    """The detector's rows with the entity and time step each one is scored for.

    Rows are ordered by entity, then time.
    """

    X: pd.DataFrame
    entity: np.ndarray
    ts: pd.Series


def lookback(monitor: Monitor) -> timedelta:
    """How far before a batch the rows that its first steps' scores depend on reach."""
    require_chosen(monitor)
    seasonal = [period + 1 for period in monitor.season_steps]  # a season ago, and a step
    oldest_lag = max([monitor.detector.window - 1, *seasonal])
    return monitor.step * (oldest_lag + monitor.detector.smoothing - 1)


def lookback_at_most(monitor: Monitor, baseline_steps: int) -> timedelta:
    """The longest ``lookback`` a version trained on ``baseline_steps`` steps can have: the
    monitor's own, where it asks for no ``auto`` setting; else with the longest values
    ``atalaia.auto`` can choose (a season of half the baseline, a window of
    ``detectors.auto.MAX_WINDOW`` steps)."""
    longest = {WINDOW: MAX_WINDOW, SEASONS: []}
    if baseline_steps >= 4:
        longest[SEASONS] = [duration_text(baseline_steps // 2 * monitor.step)]
    return lookback(applied(monitor, {name: longest[name] for name in asked(monitor)}))


def entity_pieces(frame: pd.DataFrame, monitor: Monitor, rows: int) -> Iterator[pd.DataFrame]:
    """``frame``'s rows in pieces of whole entities, about ``rows`` rows each (an entity with
    more rows is a piece alone), entities in sorted order: the pieces' detector inputs, one
    after the other, are the whole frame's."""
    keys = entity_keys(frame, monitor)
    codes, entities = pd.factorize(keys, sort=True)
    order = np.argsort(codes, kind="stable")
    sizes = np.bincount(codes, minlength=len(entities))
    first = 0
    while first < len(entities):
        last = first + max(1, int(np.searchsorted(np.cumsum(sizes[first:]), rows, "right")))
        low, high = sizes[:first].sum(), sizes[:last].sum()
        yield frame.iloc[order[low:high]]
        first = last


def detector_input(frame: pd.DataFrame, monitor: Monitor) -> DetectorInput:
    """The detector's view of accepted rows: the rows themselves, or their windows."""
    require_chosen(monitor)
    if monitor.detector.window == 1:
        ordered = frame.assign(_entity=entity_keys(frame, monitor)).sort_values(
            ["_entity", monitor.timestamp], kind="stable"
        )
        return DetectorInput(
            X=ordered[monitor.features].reset_index(drop=True),
            entity=ordered["_entity"].to_numpy(),
            ts=ordered[monitor.timestamp].reset_index(drop=True),
        )
    windows = make_windows(
        frame,
        timestamp=monitor.timestamp,
        features=monitor.features,
        frequency=monitor.step,
        window=monitor.detector.window,
        entity=entity_keys(frame, monitor),
        seasons=monitor.season_steps,
    )
    return DetectorInput(
        X=windows.frame(),
        entity=windows.index["entity"].to_numpy(),
        ts=windows.index["ts"].reset_index(drop=True),
    )


def raw_scores(detector: Detector, inputs: DetectorInput, monitor: Monitor) -> np.ndarray:
    """The detector's anomaly scores, smoothed as the monitor says."""
    if inputs.X.empty:
        return np.empty(0)
    scores = detector.decision_function(inputs.X)
    return moving_mean(scores, monitor.detector.smoothing, inputs.entity)


def judged(inputs: DetectorInput, monitor: Monitor) -> np.ndarray:
    """Whether each row's score rests on a full history: a window of ``detector.window``
    steps and a smoothed mean of ``detector.smoothing`` raw scores, i.e. at least
    ``window + smoothing - 2`` earlier rows of its entity in ``inputs``. An entity's first
    steps (or the first after a gap longer than the look-back, which brings no context)
    are predicted from fewer lags and averaged over fewer scores, so their scores vary
    differently from calibration's: they are stored but not judged (p = 1, no flag) and
    stay out of every calibration pool. An anomaly there is still found once the history is
    full, and its event starts ``smoothing - 1`` steps earlier (``config.event_lead``)."""
    return full_spans(len(inputs.X), history_steps(monitor), inputs.entity)


def history_steps(monitor: Monitor) -> int:
    """How many steps a smoothed score's inputs span: its window's, and those of the raw
    scores its mean averages (seasonal lags aside)."""
    require_chosen(monitor)
    return monitor.detector.window + monitor.detector.smoothing - 1


def feature_contributions(detector: Detector, X: pd.DataFrame, monitor: Monitor) -> np.ndarray:
    """Each monitor feature's contribution to each row's score (lags of a window summed)."""
    contributions = detector.attribute(X)
    if monitor.detector.window == 1:
        return contributions
    return per_feature(contributions, len(monitor.features))


def since(inputs: DetectorInput, start: datetime | None) -> np.ndarray:
    """Which rows are scored for steps at or after ``start`` (all when None)."""
    if start is None:
        return np.ones(len(inputs.ts), dtype=bool)
    return (inputs.ts >= start).to_numpy()


# Where the recorded settings keep the values chosen for those asked as ``auto``.
CHOSEN = "chosen"


def bound_settings(monitor: Monitor, chosen: dict[str, Any] | None = None) -> dict[str, Any]:
    """The monitor settings a model version is bound to, by dotted name: everything that
    turns rows into detector inputs and scores into flags, as asked (``auto`` included),
    with the values ``chosen`` for those asked as ``auto`` under ``"chosen"``."""
    calibration = monitor.calibration
    settings = {
        "features": list(monitor.features),
        "frequency": monitor.frequency,
        "detector.window": monitor.detector.window,
        "detector.seasons": (
            seasons if (seasons := monitor.detector.seasons) == AUTO else list(seasons)
        ),
        "detector.smoothing": monitor.detector.smoothing,
        "calibration.alpha": calibration.alpha,
        "calibration.fraction": calibration.fraction,
        "calibration.tail_floor": calibration.tail_floor,
        "calibration.pool": calibration.pool,
        "calibration.pool_limit": calibration.pool_limit,
    }
    if chosen:
        settings[CHOSEN] = chosen
    return settings


def chosen_text(recorded: dict[str, Any] | None) -> str:
    """The values a version chose for its ``auto`` settings, from the settings ``recorded``
    with it, for people (``detector.seasons = ['1D']; detector.window = 4``); empty when it
    chose none."""
    chosen = (recorded or {}).get(CHOSEN, {})
    return "; ".join(f"{name} = {value!r}" for name, value in chosen.items())


def changed_setting(monitor: Monitor, recorded: dict[str, Any]) -> str | None:
    """The first bound setting ``monitor`` gives another value than ``recorded``, described
    as ``name is X, but ... trained with Y``; None when they agree."""
    current = bound_settings(monitor)
    for name, value in recorded.items():
        if name != CHOSEN and current.get(name) != value:
            return f"{name} is {current.get(name)!r}, but the version was trained with {value!r}"
    return None


def check_bound(monitor: Monitor, recorded: dict[str, Any], version: int) -> None:
    """Refuse a monitor whose settings differ from those model ``version`` was trained with."""
    change = changed_setting(monitor, recorded)
    if change is not None:
        raise ConfigError(
            f"monitor {monitor.name}: version {version}: {change}; retrain to apply the change"
        )


def as_trained(monitor: Monitor, recorded: dict[str, Any] | None, version: int) -> Monitor:
    """``monitor`` as model ``version`` was trained, from the settings ``recorded`` with it
    (None: saved before they were): refused when the monitor differs from them
    (:func:`check_bound`), with the values chosen for its ``auto`` settings in place."""
    if recorded is None:
        if names := asked(monitor):
            raise ConfigError(
                f"monitor {monitor.name}: version {version} recorded no choice for "
                f"{', '.join(names)} = auto; retrain to apply it"
            )
        return monitor
    check_bound(monitor, recorded, version)
    return applied(monitor, recorded.get(CHOSEN, {}))
