"""Detector parameters: declared for every kind, equal to its constructor, checked on load."""

from __future__ import annotations

import pytest

import detectors
from atalaia.detector_params import PARAMETERS, check_params


@pytest.mark.parametrize("kind", detectors.available())
def test_every_kind_declares_exactly_its_constructor_parameters(kind: str) -> None:
    assert set(PARAMETERS[kind]) == set(detectors.detector_class(kind)._get_param_names())


@pytest.mark.parametrize(
    ("kind", "params", "problem"),
    [
        ("gmm", {"max_components": "abc"}, "params.max_components: expected an integer >= 1"),
        ("gmm", {"max_components": -1}, "got -1"),
        ("gmm", {"n_components": 2.5}, "params.n_components"),
        ("vae", {"learning_rate": "1e-3"}, "write 1.0e-3"),
        ("ar", {"order": "aic"}, "or 'bic'"),
        ("gmm", {"components": 3}, "has no parameter 'components'"),
        ("vea", {}, "unknown detector kind 'vea'"),
    ],
)
def test_a_wrong_parameter_is_refused_with_its_name(kind: str, params: dict, problem: str) -> None:
    with pytest.raises(ValueError, match=problem.replace("(", r"\(").replace(".", r"\.")):
        check_params(kind, params)


def test_declared_defaults_pass_their_own_check() -> None:
    for kind in detectors.available():
        defaults = detectors.detector_class(kind)().get_params()
        check_params(kind, {k: v for k, v in defaults.items() if not isinstance(v, tuple)})
    check_params("pyod:IForest", {"n_estimators": 10})
