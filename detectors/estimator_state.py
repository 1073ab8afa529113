"""Fitted scikit-learn and PyOD estimators as a JSON tree plus numpy arrays, without pickle.

``to_state`` walks an estimator's attributes and accepts only plain values: None, booleans,
numbers, strings, numpy arrays of a non-object dtype, lists, tuples and string-keyed dicts of
these, objects of classes defined in ``sklearn`` or ``pyod`` (by their attributes), and
scikit-learn's compiled decision trees (by their node arrays). Anything else (a compiled
neighbour index, a torch module, a random generator object, a function) raises
``UnsupportedState`` naming the attribute, so a model is either saved whole or not at all.

``from_state`` rebuilds the objects without running any code but attribute assignment: classes
are looked up by name inside ``sklearn`` and ``pyod`` only, and created with ``__new__``.
"""

from __future__ import annotations

import copyreg
from importlib import import_module
from typing import Any

import numpy as np
from sklearn.tree._tree import Tree

# Packages whose classes may be rebuilt from a saved state.
TRUSTED_PACKAGES = ("sklearn", "pyod")


class UnsupportedState(ValueError):
    """An estimator holds something that cannot be saved as JSON and arrays."""


def to_state(obj: Any) -> tuple[Any, dict[str, np.ndarray]]:
    """The JSON tree describing ``obj`` and the arrays it refers to by name."""
    arrays: dict[str, np.ndarray] = {}

    def array_ref(value: np.ndarray) -> str:
        key = f"a{len(arrays)}"
        arrays[key] = value
        return key

    def encode(value: Any, path: str) -> Any:
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, (int, float)) and type(value) in (int, float):
            return value
        if isinstance(value, (np.generic, np.ndarray)):
            if np.asarray(value).dtype.hasobject:
                raise UnsupportedState(f"{path}: array of Python objects cannot be saved")
            kind = "__scalar__" if isinstance(value, np.generic) else "__array__"
            return {kind: array_ref(np.asarray(value))}
        if isinstance(value, (list, tuple)):
            kind = "__list__" if isinstance(value, list) else "__tuple__"
            return {kind: [encode(item, f"{path}[{i}]") for i, item in enumerate(value)]}
        if isinstance(value, dict):
            if not all(isinstance(key, str) for key in value):
                raise UnsupportedState(f"{path}: dict with non-string keys cannot be saved")
            return {"__dict__": {key: encode(item, f"{path}.{key}") for key, item in value.items()}}
        if isinstance(value, Tree):
            _, args, tree_state = value.__reduce__()
            return {"__tree__": encode([list(args), tree_state], path)}
        if _is_trusted(type(value)) and _state_is_attributes(value):
            name = f"{type(value).__module__}:{type(value).__qualname__}"
            return {"__object__": name, "state": encode(dict(vars(value)), path)}
        raise UnsupportedState(
            f"{path}: a {type(value).__module__}.{type(value).__qualname__} "
            "cannot be saved without pickle"
        )

    return encode(obj, "model"), arrays


def from_state(tree: Any, arrays: dict[str, np.ndarray]) -> Any:
    """Rebuild what ``to_state`` described."""
    if not isinstance(tree, dict):
        return tree
    if "__array__" in tree:
        return arrays[tree["__array__"]]
    if "__scalar__" in tree:
        return arrays[tree["__scalar__"]][()]
    if "__list__" in tree:
        return [from_state(item, arrays) for item in tree["__list__"]]
    if "__tuple__" in tree:
        return tuple(from_state(item, arrays) for item in tree["__tuple__"])
    if "__dict__" in tree:
        return {key: from_state(item, arrays) for key, item in tree["__dict__"].items()}
    if "__tree__" in tree:
        args, tree_state = from_state(tree["__tree__"], arrays)
        rebuilt = Tree(*args)
        rebuilt.__setstate__(tree_state)
        return rebuilt
    if "__object__" in tree:
        cls = _trusted_class(tree["__object__"])
        obj = cls.__new__(cls)
        obj.__dict__.update(from_state(tree["state"], arrays))
        return obj
    raise ValueError(f"unknown entry in a saved estimator: {sorted(tree)}")


def _state_is_attributes(value: Any) -> bool:
    """Whether pickling ``value`` would save just its attributes (no compiled state)."""
    reduced = value.__reduce_ex__(2)
    return (
        hasattr(value, "__dict__")
        and reduced[0] is copyreg.__newobj__
        and reduced[1] == (type(value),)
        and isinstance(reduced[2] if len(reduced) > 2 else None, dict)
    )


def _is_trusted(cls: type) -> bool:
    return cls.__module__.split(".")[0] in TRUSTED_PACKAGES


def _trusted_class(name: str) -> type:
    module, _, qualname = name.partition(":")
    if module.split(".")[0] not in TRUSTED_PACKAGES or not qualname:
        raise ValueError(f"saved estimator names class {name!r}, outside {TRUSTED_PACKAGES}")
    cls: Any = import_module(module)
    for part in qualname.split("."):
        cls = getattr(cls, part)
    if not isinstance(cls, type) or not _is_trusted(cls):
        raise ValueError(f"saved estimator names {name!r}, which is not a trusted class")
    return cls
