"""Autoregressive density detector: MADE (masked autoencoder for distribution estimation).

Each feature's conditional given the features before it in an ordering is a mixture of
Gaussians (one component: a Gaussian), so ``log p(x) = sum_j log p(x_j | x_<j)`` is exact. With
several orderings, one MADE per ordering is trained on its own (side by side, in one batched
network) and the density is their uniform mixture, ``log p(x) = log mean_e p_e(x)``, still exact.

Attribution: each feature's conditional NLL ``-log p(x_j | x_<j)``, averaged over the orderings
with the weight each ordering's model gives the row (its posterior in the mixture).

Missing values: filled in feature by feature along the first ordering with the model's
conditional mean given the features before it (the training mean where those are missing too);
the score sums the conditionals of the observed features only, and missing features get
attribution 0. ``imputed_rows`` marks the rows concerned.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from detectors.torch_support import LOG_2PI, TorchDetector, bounded_log_scale


class MaskedLinear(nn.Module):
    """``n_models`` independent linear layers, each with a fixed connectivity mask.

    Input and output carry the model index first: (n_models, rows, features).
    """

    def __init__(self, mask: torch.Tensor) -> None:
        super().__init__()
        n_models, fan_out, fan_in = mask.shape
        bound = 1.0 / math.sqrt(fan_in)
        self.weight = nn.Parameter(torch.empty(n_models, fan_out, fan_in).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(n_models, 1, fan_out).uniform_(-bound, bound))
        self.register_buffer("mask", mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, (self.weight * self.mask).transpose(1, 2))


def orderings(n_features: int, n_orderings: int, rng: np.random.Generator) -> np.ndarray:
    """The feature orderings: the natural order first, then random permutations."""
    rest = [rng.permutation(n_features) for _ in range(n_orderings - 1)]
    return np.stack([np.arange(n_features), *rest])


class MADENetwork(nn.Module):
    """One MADE per ordering, evaluated together; outputs mixture parameters per feature."""

    def __init__(
        self,
        order: np.ndarray,
        hidden_size: int,
        n_layers: int,
        n_components: int,
        min_scale: float,
    ) -> None:
        super().__init__()
        n_models, n_features = order.shape
        self.n_components = n_components
        self.min_scale = min_scale
        # degree of input j in model e: its position in that ordering (1-based)
        input_degrees = np.argsort(order, axis=1) + 1
        hidden_degrees = np.arange(hidden_size) % max(1, n_features - 1) + 1
        layers: list[nn.Module] = []
        previous = input_degrees
        for _ in range(n_layers):
            current = np.broadcast_to(hidden_degrees, (n_models, hidden_size))
            layers += [MaskedLinear(_mask(current, previous, strict=False)), nn.SiLU()]
            previous = current
        # outputs: [logits | means | scales], each a block of features x components
        output_degrees = np.tile(np.repeat(input_degrees, n_components, axis=1), (1, 3))
        output = MaskedLinear(_mask(output_degrees, previous, strict=True))
        _spread_components(output, n_features, n_components, min_scale)
        layers.append(output)
        self.layers = nn.Sequential(*layers)
        self.register_buffer("order", torch.as_tensor(order))

    def conditionals(self, x: torch.Tensor) -> torch.Tensor:
        """Logits, means and raw scales per component, model, row and feature, shape
        (3, C, E, n, d). The components lead so that the mixture's sums over them run over
        whole contiguous blocks (on the CPU, twice as fast as over a short last axis)."""
        n_models = self.order.shape[0]
        out = self.layers(x.expand(n_models, *x.shape))
        out = out.view(n_models, x.shape[0], 3, x.shape[1], self.n_components)
        return out.permute(2, 4, 0, 1, 3).contiguous()

    def feature_nll(self, x: torch.Tensor) -> torch.Tensor:
        """-log p_e(x_j | x_<j) per model, row and feature, shape (E, n, d)."""
        logits, mean, raw_scale = self.conditionals(x)
        log_scale = bounded_log_scale(raw_scale, self.min_scale)
        nll = ((x - mean) * torch.exp(-log_scale)).square_().mul_(0.5)
        nll.add_(log_scale).add_(0.5 * LOG_2PI)
        if self.n_components == 1:
            return nll[0]
        # -log sum_c pi_c N_c = logsumexp(logits) - logsumexp(logits - nll_c)
        return torch.logsumexp(logits, dim=0) - torch.logsumexp(logits - nll, dim=0)

    def conditional_mean(self, x: torch.Tensor) -> torch.Tensor:
        """E[x_j | x_<j] under the first ordering's model, shape (n, d)."""
        logits, mean, _ = self.conditionals(x)[:, :, 0]
        return (torch.softmax(logits, dim=0) * mean).sum(0)

    def training_loss(self, x: torch.Tensor) -> torch.Tensor:
        """Per row, the NLL of every ordering's model, averaged: each model is trained on its
        own (fitting the mixture instead would let one model turn sloppy where another fits)."""
        return self.feature_nll(x).sum(-1).mean(0)


def _spread_components(
    output: MaskedLinear, n_features: int, n_components: int, floor: float
) -> None:
    """Start each conditional as a spread of components (means -1..1, scale 0.5), not a heap.

    Every conditional is a mixture; the first feature of an ordering has only biases to
    learn with, and mixtures that start on top of each other separate slowly.
    """
    with torch.no_grad():
        bias = output.bias.view(output.bias.shape[0], 3, n_features, n_components)
        bias[:, 0] = 0.0
        bias[:, 1] = torch.linspace(-1.0, 1.0, n_components) if n_components > 1 else 0.0
        bias[:, 2] = math.log(math.expm1(max(0.5 - floor, 1e-3)))  # softplus^-1


def _mask(out_degrees: np.ndarray, in_degrees: np.ndarray, strict: bool) -> torch.Tensor:
    """Connect output unit i to input unit k when deg(i) >= deg(k) (> for the output layer)."""
    out = out_degrees[:, :, None]
    inp = in_degrees[:, None, :]
    allowed = out > inp if strict else out >= inp
    return torch.as_tensor(allowed, dtype=torch.float32)


class MADEDetector(TorchDetector):
    """MADE with Gaussian-mixture conditionals, optionally over several orderings.

    Parameters
    ----------
    n_components : int
        Gaussians per conditional (1: Gaussian conditionals).
    n_orderings : int
        Independent MADEs, one per feature ordering, whose densities are averaged.
    hidden_size : int or None
        Units per hidden layer; None: ``clip(4 * n_features, 64, 256)``.
    n_layers : int
        Masked hidden layers.
    min_scale : float
        Smallest standard deviation of a mixture component, in standardised units.
    batch_size, max_epochs, max_steps, patience, learning_rate, weight_decay,
    validation_fraction :
        The training budget and optimiser (see ``detectors.torch_support``).
    device : str
        ``"auto"`` (GPU when present, else CPU), ``"cpu"`` or ``"cuda"``.
    random_state : int
        Seed of the orderings, the initialisation, the batches and the validation split.
    """

    kind = "made"

    def __init__(
        self,
        n_components: int = 3,
        n_orderings: int = 3,
        hidden_size: int | None = None,
        n_layers: int = 2,
        min_scale: float = 0.05,
        batch_size: int | None = None,
        max_epochs: int = 300,
        max_steps: int = 3000,
        patience: int = 20,
        learning_rate: float = 1e-3,
        weight_decay: float = 1e-5,
        validation_fraction: float = 0.1,
        device: str = "auto",
        random_state: int = 0,
    ) -> None:
        self.n_components = n_components
        self.n_orderings = n_orderings
        self.hidden_size = hidden_size
        self.n_layers = n_layers
        self.min_scale = min_scale
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.max_steps = max_steps
        self.patience = patience
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.validation_fraction = validation_fraction
        self.device = device
        self.random_state = random_state

    def _build(self, n_features: int) -> MADENetwork:
        order = orderings(n_features, self.n_orderings, np.random.default_rng(self.random_state))
        hidden = self.hidden_size or min(256, max(64, 4 * n_features))
        return MADENetwork(order, hidden, self.n_layers, self.n_components, self.min_scale)

    def _train(self, train: torch.Tensor, valid: torch.Tensor) -> int:
        return self._train_with_loss(train, valid, self.network_.training_loss)

    def _log_density(self, Z: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
        per_model = -(self.network_.feature_nll(Z) * observed).sum(-1)
        mixture = torch.logsumexp(per_model, dim=0) - math.log(per_model.shape[0])
        return mixture + self._log_jacobian(observed)

    def _feature_nll(self, Z: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
        nll = self.network_.feature_nll(Z) * observed
        posterior = torch.softmax(-nll.sum(-1), dim=0)  # (E, n)
        return (posterior[:, :, None] * nll).sum(0)

    def _refine_imputation(self, Z: torch.Tensor, missing: torch.Tensor) -> torch.Tensor:
        for feature in self.network_.order[0].tolist():
            rows = missing[:, feature]
            if rows.any():
                Z[rows, feature] = self.network_.conditional_mean(Z[rows])[:, feature]
        return Z
