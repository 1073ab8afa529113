"""A torch model asked to use a GPU still loads and scores where there is none."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch

import detectors
from detectors.torch_support import pick_device

pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU fallback")


def test_a_missing_gpu_falls_back_to_the_cpu(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="detectors.torch_support"):
        assert pick_device("cuda").type == "cpu"
    assert "torch sees no GPU" in caplog.text
    assert pick_device("auto").type == "cpu"


def test_a_model_saved_with_device_cuda_loads_on_a_cpu_machine(tmp_path: Path) -> None:
    rows = np.random.default_rng(0).normal(size=(300, 4))
    model = detectors.create("made", device="cuda", max_epochs=2, random_state=0).fit(rows)
    model.save(tmp_path / "made")
    again = detectors.load(tmp_path / "made")
    np.testing.assert_allclose(again.decision_function(rows), model.decision_function(rows))
