"""Neural autoregressive detector: a temporal convolution over the last steps predicts the next.

Input rows are flattened windows (``detectors.windows``): ``lags + 1`` steps of ``d``
channels, oldest first. A causal temporal convolution (kernel 2, dilations 1, 2, 4, ...,
WaveNet-style, with residual connections) reads the lags and outputs, for every channel of the
last step, a mixture of Gaussians. The network sees the lags relative to each channel's most
recent observed value, and each component's mean is an offset from that value: it starts from
persistence, learns what changes, and a level it never saw in training does not take it
outside what it learned. Evaluated only at the last step, the convolution is a tree (each
level merges neighbouring pairs of steps), so a window costs about one pass of a small MLP.

Score: the predictive negative log-likelihood of the observed last step (channels are
independent given the lags). Attribution: each channel's NLL, on its last-step column.
Missing values: a missing lag is hidden from the network by an observed-mask input (training
hides the oldest lags of some windows, so it learns to predict from a shorter past, as at a
series' start or after a gap); missing last-step channels are left out of the score.
``imputed_rows`` marks rows with any missing value.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from detectors.torch_support import (
    LOG_2PI,
    TorchDetector,
    bounded_log_scale,
    pick_device,
    seeded,
    use_machine_cores,
)
from detectors.windows import channel_scaling, column_lags, window_channels

# Share of the training windows whose oldest lags are hidden (a random number of them).
CONTEXT_DROPOUT = 0.1


class NeuralARNetwork(nn.Module):
    """Dilated causal convolution over the lags; a mixture of Gaussians per channel."""

    def __init__(
        self, n_lags: int, n_channels: int, hidden_size: int, n_components: int, min_scale: float
    ) -> None:
        super().__init__()
        self.n_lags = n_lags
        self.n_channels = n_channels
        self.n_components = n_components
        self.min_scale = min_scale
        self.levels = math.ceil(math.log2(n_lags)) if n_lags > 1 else 0
        self.embed = nn.Linear(2 * n_channels, hidden_size)
        self.merge = nn.ModuleList(
            nn.Linear(2 * hidden_size, hidden_size) for _ in range(self.levels)
        )
        self.head = nn.Sequential(
            nn.Linear(hidden_size, hidden_size),
            nn.SiLU(),
            nn.Linear(hidden_size, 3 * n_channels * n_components),
        )
        with torch.no_grad():  # components start spread around persistence, not on a heap
            bias = self.head[-1].bias.view(3, n_channels, n_components)
            bias[0] = 0.0
            bias[1] = torch.linspace(-0.5, 0.5, n_components) if n_components > 1 else 0.0
            bias[2] = math.log(math.expm1(max(0.5 - min_scale, 1e-3)))

    def mixture(
        self, lags: torch.Tensor, observed: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Logits, means and log scales of each channel's mixture, each (n, d, C).

        ``lags`` (n, L, d) are standardised with missing entries filled; ``observed`` marks
        the entries that were not missing.
        """
        n = lags.shape[0]
        base = _last_observed(lags, observed)
        # the network sees the lags relative to the latest value: a level it never saw
        # in training does not take it outside what it learned
        relative = (lags - base[:, None, :]) * observed
        steps = torch.cat([relative, observed.to(lags.dtype)], dim=-1)  # (n, L, 2d)
        padded = 2**self.levels
        if steps.shape[1] < padded:  # the oldest steps of the tree are empty (mask 0)
            steps = nn.functional.pad(steps, (0, 0, padded - steps.shape[1], 0))
        hidden = nn.functional.silu(self.embed(steps))
        for merge in self.merge:
            pairs = hidden.reshape(n, hidden.shape[1] // 2, 2 * hidden.shape[2])
            hidden = nn.functional.silu(merge(pairs)) + hidden[:, 1::2]
        out = self.head(hidden[:, -1]).view(n, 3, self.n_channels, self.n_components)
        logits, offset, raw_scale = out.unbind(dim=1)
        return logits, base[..., None] + offset, bounded_log_scale(raw_scale, self.min_scale)

    def channel_nll(
        self, lags: torch.Tensor, observed: torch.Tensor, target: torch.Tensor
    ) -> torch.Tensor:
        """-log p(target_c | lags) per row and channel, shape (n, d)."""
        logits, mean, log_scale = self.mixture(lags, observed)
        nll = ((target[..., None] - mean) * torch.exp(-log_scale)).square().mul(0.5)
        nll = nll + log_scale + 0.5 * LOG_2PI
        return torch.logsumexp(logits, dim=-1) - torch.logsumexp(logits - nll, dim=-1)


def _last_observed(lags: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
    """Each channel's most recent observed lag, 0 (the mean) when none is, shape (n, d)."""
    if lags.shape[1] == 0:
        return lags.new_zeros(lags.shape[0], lags.shape[2])
    positions = torch.arange(lags.shape[1], device=lags.device)[None, :, None]
    latest = torch.where(observed, positions, -1).amax(dim=1)  # (n, d)
    values = lags.gather(1, latest.clamp(min=0)[:, None, :])[:, 0]
    return torch.where(latest >= 0, values, 0.0)


class NeuralARDetector(TorchDetector):
    """Temporal-convolution autoregression with a Gaussian mixture per channel.

    Parameters
    ----------
    channels : int or None
        Channels per step. None: counted from window column names (``x@t-0``) when fitted
        on a data frame of windows; otherwise every column is a channel of a single step.
    hidden_size : int
        Units of the convolution and of the output layer.
    n_components : int
        Gaussians per channel's predictive mixture.
    min_scale : float
        Smallest standard deviation of a component, in standardised units.
    batch_size, max_epochs, max_steps, patience, learning_rate, weight_decay,
    validation_fraction :
        The training budget and optimiser (see ``detectors.torch_support``); the validation
        windows are the last ones given (the most recent, when windows come in time order).
    device : str
        ``"auto"`` (GPU when present, else CPU), ``"cpu"`` or ``"cuda"``.
    random_state : int
        Seed of the initialisation and the batches.
    """

    kind = "nar"

    def __init__(
        self,
        channels: int | None = None,
        hidden_size: int = 32,
        n_components: int = 3,
        min_scale: float = 0.01,
        batch_size: int | None = None,
        max_epochs: int = 300,
        max_steps: int = 3000,
        patience: int = 20,
        learning_rate: float = 3e-3,
        weight_decay: float = 1e-5,
        validation_fraction: float = 0.1,
        device: str = "auto",
        random_state: int = 0,
    ) -> None:
        self.channels = channels
        self.hidden_size = hidden_size
        self.n_components = n_components
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

    # -- fitting -----------------------------------------------------------------------

    def _fit(self, X: np.ndarray) -> None:
        use_machine_cores()
        self.device_ = pick_device(self.device)
        names = getattr(self, "feature_names_in_", ())
        self.n_channels_ = window_channels(X.shape[1], names, self.channels)
        lags = column_lags(X.shape[1], self.n_channels_, names)
        if (lags[:: self.n_channels_] != np.arange(len(lags) // self.n_channels_)[::-1]).any():
            raise ValueError(
                "nar reads a window as consecutive steps; seasonal lags are for ar and the "
                "tabular kinds"
            )
        self.center_, self.scale_ = channel_scaling(X, self.n_channels_)
        Z = self._standardise(X)
        # one tensor per row: values (missing as 0), then the observed mask
        packed = self._tensor(np.hstack([np.nan_to_num(Z, nan=0.0), ~np.isnan(Z)]))
        n_valid = int(np.clip(round(self.validation_fraction * len(Z)), 1, len(Z) - 1))
        with seeded(self.random_state, self.device_):
            self.network_ = self._build(self.n_channels_).to(self.device_)
            self.n_epochs_ = self._train(packed[:-n_valid], packed[-n_valid:])
        self.network_.eval()

    def _build(self, n_features: int) -> NeuralARNetwork:
        n_lags = self.n_features_in_ // n_features - 1
        return NeuralARNetwork(
            n_lags, n_features, self.hidden_size, self.n_components, self.min_scale
        )

    def _train(self, train: torch.Tensor, valid: torch.Tensor) -> int:
        def loss(packed: torch.Tensor) -> torch.Tensor:
            values, observed = packed.chunk(2, dim=1)
            observed = observed.bool()
            if self.network_.training:
                observed = self._truncate_context(observed)
                values = values * observed
            return self._channel_nll(values, observed).sum(-1)

        return self._train_with_loss(train, valid, loss)

    def _truncate_context(self, observed: torch.Tensor) -> torch.Tensor:
        """Hide the oldest lags of a random share of the windows, as at a series' start or
        after a gap, so that the network learns to predict from a shorter past too."""
        d = self.n_channels_
        n_lags = observed.shape[1] // d - 1
        if n_lags == 0:
            return observed
        rows = len(observed)
        hidden_steps = torch.randint(1, n_lags + 1, (rows, 1), device=observed.device)
        hidden_steps *= torch.rand(rows, 1, device=observed.device) < CONTEXT_DROPOUT
        step = torch.arange(n_lags + 1, device=observed.device).repeat_interleave(d)
        return observed & (step[None, :] >= hidden_steps)

    def _standardise(self, X: np.ndarray) -> np.ndarray:
        d = self.n_channels_
        return ((X.reshape(len(X), -1, d) - self.center_) / self.scale_).reshape(len(X), -1)

    # -- scoring -----------------------------------------------------------------------

    def _channel_nll(self, Z: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
        """Per row and channel, the NLL of the last step (0 where it is missing)."""
        steps = Z.view(len(Z), -1, self.n_channels_)
        mask = observed.view(len(Z), -1, self.n_channels_)
        target, target_observed = steps[:, -1], mask[:, -1]
        nll = self.network_.channel_nll(steps[:, :-1], mask[:, :-1], target)
        return nll * target_observed

    def _log_density(self, Z: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
        target_observed = observed[:, -self.n_channels_ :].to(Z.dtype)
        log_scale = self._tensor(np.log(self.scale_))
        return -self._channel_nll(Z, observed).sum(-1) - target_observed @ log_scale

    def _feature_nll(self, Z: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
        out = torch.zeros_like(Z)
        out[:, -self.n_channels_ :] = self._channel_nll(Z, observed)
        return out

    # -- persistence -------------------------------------------------------------------

    def _set_extra_weights(self, weights: dict[str, np.ndarray]) -> None:
        self.n_channels_ = len(self.center_)
