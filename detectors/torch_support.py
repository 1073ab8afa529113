"""What the torch detectors share: device and threads, input scaling and imputation, a training
loop with early stopping, chunked inference, and weights as numpy arrays.

``TorchDetector`` is the base of ``vae``, ``made`` and ``gan``. It standardises the input with
the training mean and standard deviation, fills missing values in from the training distribution
(the mean, then a model-specific refinement), trains the network with early stopping on a
validation split, scores in chunks without gradients (on the CPU, the chunks side by side, one
thread per core), and saves every tensor of the network through ``.npz`` (never ``torch.save``
or pickle).

Training budget: batches of ``clip(n_train / 10, 32, 1024)`` rows and at most ``max_steps``
optimiser steps or ``max_epochs`` epochs, whichever comes first, so small data sets get many
epochs and large ones a bounded cost; wide networks on wide data also stop at a fixed number
of (row x parameter) products, ``COMPUTE_BUDGET``. Training stops earlier when the validation
loss has not improved for ``patience`` epochs, and the best epoch's weights are kept.
"""

from __future__ import annotations

import copy
import logging
import math
import os
from abc import abstractmethod
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from detectors.base import Detector
from detectors.windows import channel_scaling

log = logging.getLogger(__name__)

LOG_2PI = math.log(2 * math.pi)
# Rows per forward pass when scoring: small enough that the activations stay in the CPU cache
# (a VAE with 8 importance samples scored faster than with 8192-row chunks).
SCORE_CHUNK = 1024
# Smallest and largest automatic batch sizes.
MIN_BATCH, MAX_BATCH = 32, 1024
# Most (rows x network parameters) one fit may pass through the network: a wide model on wide
# data gets fewer steps (about a minute of one CPU core at most); small ones never reach it.
COMPUTE_BUDGET = 2 * 10**11


def pick_device(device: str) -> torch.device:
    """``"auto"``: the GPU when torch sees one, else the CPU; otherwise the device named.

    A model trained on a GPU must still load and score where there is none (a CPU worker),
    so a CUDA device that is not there falls back to the CPU, with a warning.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    chosen = torch.device(device)
    if chosen.type == "cuda" and not torch.cuda.is_available():
        log.warning("device %r asked for, but torch sees no GPU: using the CPU", device)
        return torch.device("cpu")
    return chosen


def machine_cores() -> int:
    """How many cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def use_machine_cores() -> None:
    """Let torch's CPU kernels use every core this process may run on."""
    cores = machine_cores()
    if torch.get_num_threads() != cores:
        torch.set_num_threads(cores)


def map_over_cores(
    function: Callable[[int], np.ndarray], items: Iterable[int], device: torch.device
) -> list[np.ndarray]:
    """``[function(item) for item in items]``; on the CPU, one thread per core runs them.

    Each thread runs torch's kernels by itself (torch on one thread while this runs): the
    kernels of a scoring chunk are too small for an OpenMP team, whose threads sleep between
    kernels (``OMP_WAIT_POLICY=PASSIVE``, see ``detectors/__init__``) and cost more to wake
    than they save (the scoring rates before and after: ``benchmarks/README.md``, Speed).
    ``function`` must
    enter ``torch.no_grad()`` itself (it is per thread). Results keep the order of ``items``.
    """
    items = list(items)
    cores = machine_cores()
    if device.type != "cpu" or cores == 1 or len(items) == 1:
        use_machine_cores()
        return [function(item) for item in items]
    torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(max_workers=cores) as pool:
            return list(pool.map(function, items))
    finally:
        torch.set_num_threads(cores)


@contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Run the block with torch's random generators seeded, restoring them afterwards."""
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def mlp(sizes: list[int], activation: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    """Linear layers of the given sizes with ``activation`` between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        if i:
            layers.append(activation())
        layers.append(nn.Linear(fan_in, fan_out))
    return nn.Sequential(*layers)


def gaussian_nll(x: torch.Tensor, mean: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
    """Elementwise negative log-density of ``x`` under N(mean, exp(log_scale)^2)."""
    return 0.5 * LOG_2PI + log_scale + 0.5 * ((x - mean) * torch.exp(-log_scale)) ** 2


def bounded_log_scale(raw: torch.Tensor, min_scale: float) -> torch.Tensor:
    """A log standard deviation of at least ``log(min_scale)``, smooth in ``raw``.

    The floor keeps a density from collapsing onto repeated (discrete) values, where the
    likelihood of a continuous model has no maximum.
    """
    # softplus on a strided view (one block of a network's output) runs several times slower
    # on the CPU than on a contiguous copy of it, with the same values
    return torch.log(min_scale + nn.functional.softplus(raw.contiguous()))


def state_arrays(module: nn.Module, prefix: str) -> dict[str, np.ndarray]:
    """Every parameter and buffer of ``module`` as float arrays named ``prefix.<name>``."""
    return {f"{prefix}.{name}": t.detach().cpu().numpy() for name, t in module.state_dict().items()}


def load_state_arrays(module: nn.Module, arrays: dict[str, np.ndarray], prefix: str) -> None:
    """Restore ``module`` from arrays written by ``state_arrays``; a missing tensor raises."""
    start = f"{prefix}."
    state = {k[len(start) :]: torch.from_numpy(v) for k, v in arrays.items() if k.startswith(start)}
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ValueError(f"weights of {prefix!r} do not fit the network: {exc}") from exc


@dataclass(frozen=True)
class TrainingPlan:
    """Batch size and epoch limit for ``n_train`` rows."""

    batch_size: int
    max_epochs: int

    @classmethod
    def for_rows(
        cls,
        n_train: int,
        batch_size: int | None,
        max_epochs: int,
        max_steps: int,
        n_parameters: int,
    ) -> TrainingPlan:
        """Large batches, and as many epochs as ``max_steps`` and the compute budget allow,
        up to ``max_epochs``."""
        batch = batch_size or int(np.clip(n_train // 10, MIN_BATCH, MAX_BATCH))
        batch = min(batch, n_train)
        affordable = COMPUTE_BUDGET // (batch * max(n_parameters, 1))
        steps = max(1, min(max_steps, affordable))
        epochs = max(1, min(max_epochs, steps // math.ceil(n_train / batch)))
        return cls(batch_size=batch, max_epochs=epochs)


def train_with_early_stopping(
    network: nn.Module,
    train: torch.Tensor,
    step: Callable[[torch.Tensor], None],
    validation_loss: Callable[[], float],
    plan: TrainingPlan,
    patience: int,
) -> int:
    """Run ``step`` on shuffled batches of ``train`` for up to ``plan.max_epochs`` epochs.

    After each epoch the validation loss is measured; training stops when it has not improved
    for ``patience`` epochs and ``network`` is left with the best epoch's weights. Returns the
    number of epochs run. Shuffling draws from torch's generator (seed it for repeatable fits).
    """
    best_loss, best_state, since_best = math.inf, None, 0
    epochs = 0
    while epochs < plan.max_epochs:
        epochs += 1
        network.train()
        order = torch.randperm(len(train), device=train.device)
        for start in range(0, len(train), plan.batch_size):
            step(train[order[start : start + plan.batch_size]])
        network.eval()
        with torch.no_grad():
            loss = validation_loss()
        if loss < best_loss or best_state is None:
            best_loss, best_state, since_best = loss, copy.deepcopy(network.state_dict()), 0
        else:
            since_best += 1
            if since_best >= patience:
                break
    if best_state is not None:
        network.load_state_dict(best_state)
    return epochs


class TorchDetector(Detector):
    """Base of the torch detectors: scaling, imputation, training, chunked scoring, weights.

    Subclasses build their network in ``_build``, train it in ``_train`` (usually through
    ``_train_with_loss``), and compute per-row results on standardised tensors in ``_log_density``
    and ``_feature_nll``. Missing values are imputed (``missing_values = "impute"``): first the
    training mean, then ``_refine_imputation``; subclasses say which features the score covers.
    """

    missing_values = "impute"

    # Parameters every torch detector shares; subclasses list them in their constructors.
    batch_size: int | None
    max_epochs: int
    max_steps: int
    patience: int
    learning_rate: float
    weight_decay: float
    validation_fraction: float
    device: str
    random_state: int

    # -- to implement ------------------------------------------------------------------

    @abstractmethod
    def _build(self, n_features: int) -> nn.Module:
        """A fresh network for ``n_features`` inputs (its random init uses torch's seed)."""

    @abstractmethod
    def _train(self, train: torch.Tensor, valid: torch.Tensor) -> int:
        """Train ``self.network_`` on standardised rows; return the epochs run."""

    @abstractmethod
    def _log_density(self, Z: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
        """Per-row log-likelihood (or score) of standardised rows; ``observed`` marks
        the features that were not imputed."""

    @abstractmethod
    def _feature_nll(self, Z: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
        """Per-feature contribution to the anomaly score, shape (n, d)."""

    def _refine_imputation(self, Z: torch.Tensor, missing: torch.Tensor) -> torch.Tensor:
        """Improve the imputed entries of ``Z`` (mean-filled where ``missing``); default: keep."""
        return Z

    def _extra_weights(self) -> dict[str, np.ndarray]:
        """Learned arrays besides the network's tensors."""
        return {}

    def _set_extra_weights(self, weights: dict[str, np.ndarray]) -> None:
        """Restore what ``_extra_weights`` saved."""

    # -- fitting -----------------------------------------------------------------------

    def _fit(self, X: np.ndarray) -> None:
        use_machine_cores()
        self.device_ = pick_device(self.device)
        self.center_, self.scale_ = channel_scaling(X, X.shape[1])
        Z = np.nan_to_num(self._standardise(X), nan=0.0)  # training rows: mean-imputed
        rng = np.random.default_rng(self.random_state)
        order = rng.permutation(len(Z))
        n_valid = int(np.clip(round(self.validation_fraction * len(Z)), 1, len(Z) - 1))
        valid = self._tensor(Z[order[:n_valid]])
        train = self._tensor(Z[order[n_valid:]])
        with seeded(self.random_state, self.device_):
            self.network_ = self._build(Z.shape[1]).to(self.device_)
            self.n_epochs_ = self._train(train, valid)
        self.network_.eval()

    def _train_with_loss(
        self, train: torch.Tensor, valid: torch.Tensor, loss: Callable[[torch.Tensor], torch.Tensor]
    ) -> int:
        """Adam on the mean of ``loss`` (per row) with early stopping on ``valid``."""
        optimiser = torch.optim.AdamW(
            self.network_.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay
        )

        def step(batch: torch.Tensor) -> None:
            optimiser.zero_grad(set_to_none=True)
            loss(batch).mean().backward()
            optimiser.step()

        def validation_loss() -> float:
            return float(torch.cat([loss(chunk) for chunk in valid.split(SCORE_CHUNK)]).mean())

        return train_with_early_stopping(
            self.network_, train, step, validation_loss, self._plan(len(train)), self.patience
        )

    def _plan(self, n_train: int) -> TrainingPlan:
        size = sum(parameter.numel() for parameter in self.network_.parameters())
        return TrainingPlan.for_rows(
            n_train, self.batch_size, self.max_epochs, self.max_steps, size
        )

    # -- scoring -----------------------------------------------------------------------

    def _score_samples(self, X: np.ndarray) -> np.ndarray:
        return self._per_chunk(X, self._log_density).astype(np.float64)

    def _attribute(self, X: np.ndarray) -> np.ndarray:
        return self._per_chunk(X, self._feature_nll).astype(np.float64)

    def _per_chunk(
        self, X: np.ndarray, compute: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    ) -> np.ndarray:
        """``compute`` on standardised, imputed chunks of rows, without gradients; on the
        CPU the chunks run side by side (``map_over_cores``)."""

        def one_chunk(start: int) -> np.ndarray:
            with torch.no_grad():
                Z = self._tensor(self._standardise(X[start : start + SCORE_CHUNK]))
                missing = torch.isnan(Z)
                if missing.any():
                    Z = self._refine_imputation(torch.where(missing, 0.0, Z), missing)
                return compute(Z, ~missing).cpu().numpy()

        starts = range(0, max(len(X), 1), SCORE_CHUNK)
        return np.concatenate(map_over_cores(one_chunk, starts, self.device_))

    def _standardise(self, X: np.ndarray) -> np.ndarray:
        return (X - self.center_) / self.scale_

    def _tensor(self, values: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(values, dtype=torch.float32, device=self.device_)

    def _log_jacobian(self, observed: torch.Tensor) -> torch.Tensor:
        """Per row, log |dz/dx| of the standardisation over the observed features: added to a
        density of standardised values, it gives the density of the original values."""
        log_scale = self._tensor(np.log(self.scale_))
        return -(observed.to(log_scale.dtype) @ log_scale)

    # -- persistence -------------------------------------------------------------------

    def _weights(self) -> dict[str, np.ndarray]:
        return {
            "center": self.center_,
            "scale": self.scale_,
            "n_epochs": np.asarray(self.n_epochs_),
            **state_arrays(self.network_, "network"),
            **self._extra_weights(),
        }

    def _set_weights(self, weights: dict[str, np.ndarray]) -> None:
        self.device_ = pick_device(self.device)
        self.center_, self.scale_ = weights["center"], weights["scale"]
        self.n_epochs_ = int(weights["n_epochs"])
        with seeded(self.random_state, self.device_):
            self.network_ = self._build(len(self.center_))
        load_state_arrays(self.network_, weights, "network")
        self.network_.to(self.device_).eval()
        self._set_extra_weights(weights)
