"""Variational autoencoder detector: a Gaussian decoder that learns its variance (one standard
deviation per feature), scored by an importance-weighted (IWAE) estimate of the log-likelihood.

Score: ``log p(x) ~= log (1/K) sum_k p(x | z_k) p(z_k) / q(z_k | x)`` with ``z_k = mu(x) +
sigma(x) * eps_k``. The K noise vectors ``eps_k`` are drawn once at fit from the seed and saved
with the weights, so a row's score is deterministic and does not depend on its batch.
Attribution: each feature's expected reconstruction NLL ``E[-log p(x_j | z)]`` under the
importance-weighted posterior.

Missing values: the encoder's input is imputed (the training mean, refined by a few passes
through the autoencoder); the decoder factorises over features, so the score is the estimate of
the likelihood of the observed features alone, and missing features get attribution 0.
``imputed_rows`` marks the rows concerned.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from detectors.torch_support import (
    LOG_2PI,
    TorchDetector,
    bounded_log_scale,
    gaussian_nll,
    mlp,
)

# Reconstruction passes that refine the imputed entries of a row.
IMPUTATION_PASSES = 3


class VAENetwork(nn.Module):
    """Encoder to a diagonal Gaussian posterior, decoder to a diagonal Gaussian likelihood."""

    def __init__(
        self,
        n_features: int,
        latent_dim: int,
        hidden_size: int,
        n_layers: int,
        noise: torch.Tensor,
        min_scale: float,
    ) -> None:
        super().__init__()
        hidden = [hidden_size] * n_layers
        self.encoder = mlp([n_features, *hidden, 2 * latent_dim])
        self.decoder = mlp([latent_dim, *hidden, n_features])
        # one learned standard deviation per feature (a decoder whose variance depends on z
        # scored worse on ADBench and is slower)
        self.raw_scale = nn.Parameter(torch.zeros(n_features))
        self.min_scale = min_scale
        # The fixed noise of the importance samples used for scoring, shape (K, latent_dim).
        self.register_buffer("noise", noise)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and log standard deviation."""
        mean, log_std = self.encoder(x).chunk(2, dim=-1)
        return mean, log_std.clamp(-10.0, 5.0)

    def decode(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Likelihood mean and log standard deviation (at least ``log(min_scale)``)."""
        return self.decoder(z), bounded_log_scale(self.raw_scale, self.min_scale)

    def negative_elbo(self, x: torch.Tensor) -> torch.Tensor:
        """Per-row negative ELBO with one reparameterised sample (the training loss)."""
        mean, log_std = self.encode(x)
        z = mean + torch.exp(log_std) * torch.randn_like(mean)
        x_mean, x_log_scale = self.decode(z)
        reconstruction = gaussian_nll(x, x_mean, x_log_scale).sum(-1)
        kl = 0.5 * (mean**2 + torch.exp(2 * log_std) - 1.0 - 2 * log_std).sum(-1)
        return reconstruction + kl

    def importance_terms(
        self, x: torch.Tensor, observed: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Log importance weights (n, K) and per-feature reconstruction NLL (n, K, d)."""
        n, d = x.shape
        mean, log_std = self.encode(x)
        z = torch.addcmul(mean[:, None, :], torch.exp(log_std)[:, None, :], self.noise)
        x_mean = self.decoder(z.reshape(-1, z.shape[-1])).view(n, -1, d)
        log_scale = bounded_log_scale(self.raw_scale, self.min_scale)
        nll = (x[:, None, :] - x_mean).mul_(torch.exp(-log_scale)).square_().mul_(0.5)
        nll.add_(log_scale + 0.5 * LOG_2PI)
        if not observed.all():
            nll.mul_(observed[:, None, :])
        # log p(z) - log q(z | x); the 2 pi terms cancel
        log_ratio = 0.5 * (self.noise**2).sum(-1) - 0.5 * (z**2).sum(-1) + log_std.sum(-1)[:, None]
        return log_ratio - nll.sum(-1), nll


class VariationalAutoencoder(TorchDetector):
    """VAE with a learned-variance Gaussian decoder; score = IWAE negative log-likelihood.

    Parameters
    ----------
    latent_dim : int or None
        Size of the latent code; None: ``clip(n_features // 4, 2, 16)``.
    hidden_size : int or None
        Units per hidden layer; None: ``clip(2 * n_features, 64, 256)``.
    n_layers : int
        Hidden layers in the encoder and in the decoder.
    n_importance_samples : int
        K, the importance samples of the likelihood estimate.
    min_scale : float
        Smallest standard deviation of the decoder, in standardised units.
    batch_size, max_epochs, max_steps, patience, learning_rate, weight_decay,
    validation_fraction :
        The training budget and optimiser (see ``detectors.torch_support``).
    device : str
        ``"auto"`` (GPU when present, else CPU), ``"cpu"`` or ``"cuda"``.
    random_state : int
        Seed of the initialisation, the batches, the validation split and the noise bank.
    """

    kind = "vae"

    def __init__(
        self,
        latent_dim: int | None = None,
        hidden_size: int | None = None,
        n_layers: int = 2,
        n_importance_samples: int = 8,
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
        self.latent_dim = latent_dim
        self.hidden_size = hidden_size
        self.n_layers = n_layers
        self.n_importance_samples = n_importance_samples
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

    def _build(self, n_features: int) -> VAENetwork:
        latent = self.latent_dim or min(16, max(2, n_features // 4))
        hidden = self.hidden_size or min(256, max(64, 2 * n_features))
        # drawn apart from torch's global generator, so K does not change the training
        noise_source = torch.Generator().manual_seed(self.random_state)
        noise = torch.randn(self.n_importance_samples, latent, generator=noise_source)
        return VAENetwork(n_features, latent, hidden, self.n_layers, noise, self.min_scale)

    def _train(self, train: torch.Tensor, valid: torch.Tensor) -> int:
        return self._train_with_loss(train, valid, self.network_.negative_elbo)

    def _log_density(self, Z: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
        log_weights, _ = self.network_.importance_terms(Z, observed)
        estimate = torch.logsumexp(log_weights, dim=1) - math.log(log_weights.shape[1])
        return estimate + self._log_jacobian(observed)

    def _feature_nll(self, Z: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
        log_weights, nll = self.network_.importance_terms(Z, observed)
        posterior = torch.softmax(log_weights, dim=1)
        return (posterior[:, :, None] * nll).sum(1)

    def _refine_imputation(self, Z: torch.Tensor, missing: torch.Tensor) -> torch.Tensor:
        for _ in range(IMPUTATION_PASSES):
            reconstruction, _ = self.network_.decode(self.network_.encode(Z)[0])
            Z = torch.where(missing, reconstruction, Z)
        return Z
