"""Every detector kind's parameters, declared with their types and ranges.

``check_params(kind, params)`` refuses a wrong name, type or value before any work starts
(a monitor file is checked when it is loaded, also when Airflow parses the DAGs), so a
mistake is one message, not a failed fit. The table is plain data, kept here rather than in
``detectors`` so that checking imports none of the detectors' libraries; a test keeps it
equal to each class's constructor. ``pyod:<Name>`` kinds are checked by their adapter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Param:
    """One parameter: its type (int, float, str, bool, list), bounds and whether None is
    allowed; ``above`` is an exclusive lower bound, ``low`` and ``high`` inclusive ones."""

    kind: type
    low: float | None = None
    high: float | None = None
    above: float | None = None
    optional: bool = False
    choices: tuple[str, ...] = ()
    also: tuple[str, ...] = ()  # string values accepted besides numbers (ar's order "bic")

    def problem(self, value: Any) -> str | None:
        """What is wrong with ``value``, or None."""
        if value is None:
            return None if self.optional else f"expected {self.describe()}, got null"
        if isinstance(value, str) and value in self.also:
            return None
        if not _is_a(value, self.kind):
            hint = ""
            if isinstance(value, str) and self.kind in (int, float) and _is_number(value):
                hint = " (YAML reads a number like 1e-3 as text: write 1.0e-3)"
            return f"expected {self.describe()}, got {value!r}{hint}"
        if self.choices and value not in self.choices:
            return f"expected one of {', '.join(self.choices)}, got {value!r}"
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            too_low = (self.low is not None and value < self.low) or (
                self.above is not None and value <= self.above
            )
            if too_low or (self.high is not None and value > self.high) or not math.isfinite(value):
                return f"expected {self.describe()}, got {value!r}"
        return None

    def describe(self) -> str:
        """The accepted values in words."""
        names = {int: "an integer", float: "a number", str: "a text", bool: "true or false"}
        text = names.get(self.kind, "a list")
        bounds = []
        if self.above is not None:
            bounds.append(f"> {self.above:g}")
        if self.low is not None:
            bounds.append(f">= {self.low:g}")
        if self.high is not None:
            bounds.append(f"<= {self.high:g}")
        text += f" {' and '.join(bounds)}" if bounds else ""
        if self.also:
            text += f" or {' or '.join(repr(a) for a in self.also)}"
        return text + (" (or null)" if self.optional else "")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _is_a(value: Any, kind: type) -> bool:
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


COUNT = Param(int, low=1)
SEED = Param(int, low=0)
SHARE = Param(float, above=0, high=0.99)
# What the torch detectors (made, nar, vae, gan) share.
TRAINING = {
    "batch_size": Param(int, low=1, optional=True),
    "max_epochs": COUNT,
    "max_steps": COUNT,
    "patience": COUNT,
    "learning_rate": Param(float, above=0, high=10),
    "weight_decay": Param(float, low=0),
    "validation_fraction": SHARE,
    "device": Param(str),
    "random_state": SEED,
}

PARAMETERS: dict[str, dict[str, Param]] = {
    "gmm": {
        "n_components": Param(int, low=1, optional=True),
        "max_components": COUNT,
        "bic_sample": Param(int, low=2),
        "reg_covar": Param(float, above=0),
        "n_init": COUNT,
        "max_iter": COUNT,
        "random_state": SEED,
    },
    "ar": {
        "channels": Param(int, low=1, optional=True),
        "ridge": Param(float, low=0),
        "persistence": Param(float, low=0, high=1),
        "min_variance": Param(float, above=0),
        "order": Param(int, low=1, also=("bic",)),
        "max_components": COUNT,
        "reg_covar": Param(float, above=0),
        "bic_sample": Param(int, low=2),
        "random_state": SEED,
    },
    "ensemble": {"members": Param(list), "random_state": SEED},
    "made": {
        "n_components": COUNT,
        "n_orderings": COUNT,
        "hidden_size": Param(int, low=1, optional=True),
        "n_layers": COUNT,
        "min_scale": Param(float, above=0),
        **TRAINING,
    },
    "nar": {
        "channels": Param(int, low=1, optional=True),
        "hidden_size": COUNT,
        "n_components": COUNT,
        "min_scale": Param(float, above=0),
        **TRAINING,
    },
    "vae": {
        "latent_dim": Param(int, low=1, optional=True),
        "hidden_size": Param(int, low=1, optional=True),
        "n_layers": COUNT,
        "n_importance_samples": COUNT,
        "min_scale": Param(float, above=0),
        **TRAINING,
    },
    "gan": {
        "latent_dim": Param(int, low=1, optional=True),
        "hidden_size": Param(int, low=1, optional=True),
        "n_layers": COUNT,
        "reconstruction_weight": Param(float, low=0),
        **TRAINING,
    },
}


def check_params(kind: str, params: dict[str, Any]) -> None:
    """Raise ValueError naming the first unknown parameter, or wrong type or value, of a
    detector of ``kind``; an unknown kind (neither declared nor ``pyod:<Name>``) too."""
    if kind.startswith("pyod:") and len(kind) > len("pyod:"):
        return
    if kind not in PARAMETERS:
        known = ", ".join([*sorted(PARAMETERS), "pyod:<Name>"])
        raise ValueError(f"unknown detector kind {kind!r}; known: {known}")
    declared = PARAMETERS[kind]
    for name, value in params.items():
        if name not in declared:
            raise ValueError(
                f"detector {kind!r} has no parameter {name!r}; known: {', '.join(declared)}"
            )
        if problem := declared[name].problem(value):
            raise ValueError(f"params.{name}: {problem}")
