"""Ensemble detector: several detectors fitted on the same rows, their scores put on one scale.

Each member's anomaly score is standardised by the scores it gives its own training rows
(``(score - median) / max(1.4826 * MAD, 1)``, a robust z-score whose unit is never finer
than one unit of the member's score), and the ensemble's score is the mean of the members'
z-scores: what surprises one member by many of its own typical deviations
raises the ensemble's score even when another member finds the row ordinary. This is the
combination of Merlion's ensembles (members' scores normalised, then averaged) and the idea
behind Orion's AER (a prediction error and a reconstruction error, combined), with members of
any kind: an autoregressive ``ar`` (surprise at the next step) beside a window density ``gmm``
(surprise at the window's shape) sees anomalies that either misses alone.

The unit's floor keeps a member whose training scores hardly vary (``ar`` on a channel that
was constant in training scores every row alike, down to float rounding) from turning
rounding noise into z-scores of 1e15 and drowning the other members. One unit is a
nat for the likelihood-based members, the same floor the calibration puts under its p-value
tail (differences below a nat are not taken as evidence); for ``gan`` it is one median
validation error.

The combined score is a standardised surprise, not a log-likelihood: ``score_samples`` returns
its negative so that the contract's directions hold, and calibration works on it like on any
other score. Attribution: the members' attributions on the same scales, averaged.
Missing values: handled as the strictest member handles them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from detectors.base import Detector, MissingValues

# Consistency constant of the MAD for a normal distribution (MAD * 1.4826 estimates sigma).
MAD_TO_SIGMA = 1.4826
# The finest unit a member's z-score may have, in that member's score units (a nat for ar).
MIN_SCALE = 1.0
# The strictest way of handling missing values wins, in this order.
_STRICTNESS: list[MissingValues] = ["reject", "impute", "marginalise"]
# A prediction of the next step beside a density of the whole window; both work on plain rows.
DEFAULT_MEMBERS = ("ar", "gmm")


def member_spec(member: str | dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A member given as ``"kind"`` or ``{"kind": ..., "params": {...}}``, as (kind, params)."""
    if isinstance(member, str):
        return member, {}
    if isinstance(member, dict) and isinstance(member.get("kind"), str):
        unknown = set(member) - {"kind", "params"}
        if unknown:
            raise ValueError(f"ensemble member {member!r}: unknown key(s) {sorted(unknown)}")
        return member["kind"], dict(member.get("params") or {})
    raise ValueError(f"ensemble member {member!r}: expected a kind or {{kind, params}}")


class EnsembleDetector(Detector):
    """The mean of several detectors' robust z-scores (units floored at ``MIN_SCALE``).

    Parameters
    ----------
    members : sequence
        Each a detector kind (``"ar"``) or ``{"kind": ..., "params": {...}}``; at least two,
        and not ``ensemble`` itself. Default: ``ar`` and ``gmm``.
    random_state : int
        Passed to every member that takes a seed and sets none itself.
    """

    kind = "ensemble"

    def __init__(
        self, members: Sequence[str | dict[str, Any]] = DEFAULT_MEMBERS, random_state: int = 0
    ) -> None:
        self.members = members
        self.random_state = random_state

    @property
    def missing_values(self) -> MissingValues:  # type: ignore[override]
        """The strictest of the members' ways of handling missing values."""
        handled = {member.missing_values for member in self._members()}
        return next(way for way in _STRICTNESS if way in handled)

    @property
    def has_attribution(self) -> bool:  # type: ignore[override]
        """Whether every member explains its score per feature."""
        return all(member.has_attribution for member in self._members())

    def _members(self) -> list[Detector]:
        """The fitted members, or new ones before fitting."""
        return self.members_ if hasattr(self, "members_") else self._new_members()

    def _new_members(self) -> list[Detector]:
        from detectors import create  # the registry imports this module

        if isinstance(self.members, str) or not isinstance(self.members, Sequence):
            raise ValueError(f"ensemble members must be a list, got {self.members!r}")
        specs = [member_spec(member) for member in self.members]
        if len(specs) < 2:
            raise ValueError(f"an ensemble needs at least two members, got {len(specs)}")
        if any(kind == self.kind for kind, _ in specs):
            raise ValueError("an ensemble cannot have an ensemble as a member")
        seeded = []
        for kind, params in specs:
            member = create(kind, **params)
            if "random_state" in member.get_params() and "random_state" not in params:
                member.set_params(random_state=self.random_state)
            seeded.append(member)
        return seeded

    # -- the contract ------------------------------------------------------------------

    def _fit(self, X: np.ndarray) -> None:
        self.members_ = self._new_members()
        frame = self._frame(X)
        centers, scales = [], []
        for member in self.members_:
            scores = member.fit(frame).decision_function(frame)
            center = float(np.median(scores))
            spread = MAD_TO_SIGMA * float(np.median(np.abs(scores - center)))
            centers.append(center)
            scales.append(max(spread, MIN_SCALE))
        self.centers_, self.scales_ = np.asarray(centers), np.asarray(scales)

    def _score_samples(self, X: np.ndarray) -> np.ndarray:
        frame = self._frame(X)
        z = [
            (member.decision_function(frame) - center) / scale
            for member, center, scale in zip(
                self.members_, self.centers_, self.scales_, strict=True
            )
        ]
        return -np.mean(z, axis=0)

    def _attribute(self, X: np.ndarray) -> np.ndarray:
        frame = self._frame(X)
        parts = [
            member.attribute(frame) / scale
            for member, scale in zip(self.members_, self.scales_, strict=True)
        ]
        return np.mean(parts, axis=0)

    def imputed_rows(self, X: np.ndarray | pd.DataFrame) -> np.ndarray:
        """Rows whose score rests on a value some member imputed."""
        frame = self._frame(self._as_array(X))
        return np.any([member.imputed_rows(frame) for member in self.members_], axis=0)

    def _frame(self, X: np.ndarray) -> pd.DataFrame:
        """The rows with the ensemble's feature names, which members such as ``ar`` read."""
        return pd.DataFrame(X, columns=self.feature_names)

    # -- persistence -------------------------------------------------------------------

    def _weights(self) -> dict[str, np.ndarray]:
        weights = {"centers": self.centers_, "scales": self.scales_}
        for index, member in enumerate(self.members_):
            weights |= {f"m{index}.{name}": array for name, array in member._weights().items()}
        return weights

    def _set_weights(self, weights: dict[str, np.ndarray]) -> None:
        self.centers_, self.scales_ = weights["centers"], weights["scales"]
        self.members_ = self._new_members()
        if len(self.centers_) != len(self.members_):
            raise ValueError(f"{len(self.centers_)} saved members, {len(self.members_)} in config")
        for index, member in enumerate(self.members_):
            prefix = f"m{index}."
            own = {k.removeprefix(prefix): v for k, v in weights.items() if k.startswith(prefix)}
            member._restore(self.feature_names, True, own)  # members were fitted on frames
