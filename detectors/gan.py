"""GAN-based detector in the style of ALAD (adversarially learned anomaly detection).

A generator G maps a latent code to a row and an encoder E maps a row to a code. Three
discriminators with spectral normalisation learn to tell real from generated pairs: D_xz on
(row, code), which makes E and G inverses of each other in distribution (BiGAN); D_xx on
(row, row) versus (row, G(E(row))), and D_zz on (code, code) versus (code, E(G(code))), which
make the cycles consistent. An explicit reconstruction term ``||x - G(E(x))||^2`` is added to the
generator's and encoder's loss, which keeps training stable (ALICE's explicit cycle loss).
Training stops early on the validation rows' reconstruction error.

Score (higher = more anomalous): the reconstruction error ``sum_j (x_j - G(E(x))_j)^2`` plus
the discriminator's feature distance ``||f_xx(x, x) - f_xx(x, G(E(x)))||_1`` (f_xx: D_xx's last
hidden layer), each divided by its median on the validation rows so the two weigh alike.
``score_samples`` is its negative; there is no likelihood here. Attribution: each feature's
squared reconstruction error, in standardised units.

Missing values: imputed (the training mean, refined by a few passes through E and G); the
reconstruction error covers the observed features only, and missing features get attribution
0. ``imputed_rows`` marks the rows concerned.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from detectors.torch_support import SCORE_CHUNK, TorchDetector, mlp, train_with_early_stopping

# Reconstruction passes that refine the imputed entries of a row.
IMPUTATION_PASSES = 3


def critic(sizes: list[int]) -> nn.Sequential:
    """A discriminator body: spectrally normalised linear layers with leaky ReLUs."""
    layers: list[nn.Module] = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [spectral_norm(nn.Linear(fan_in, fan_out)), nn.LeakyReLU(0.2)]
    return nn.Sequential(*layers)


class Discriminator(nn.Module):
    """A critic over a pair of inputs: hidden features and a real/fake logit."""

    def __init__(self, sizes: list[int]) -> None:
        super().__init__()
        self.body = critic(sizes)
        self.head = spectral_norm(nn.Linear(sizes[-1], 1))

    def features(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """The last hidden layer's activations for the pair (a, b)."""
        return self.body(torch.cat([a, b], dim=-1))

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(a, b)).squeeze(-1)


class ALADNetwork(nn.Module):
    """Encoder, generator and the three discriminators."""

    def __init__(self, n_features: int, latent_dim: int, hidden_size: int, n_layers: int) -> None:
        super().__init__()
        hidden = [hidden_size] * n_layers
        self.latent_dim = latent_dim
        self.encoder = mlp([n_features, *hidden, latent_dim])
        self.generator = mlp([latent_dim, *hidden, n_features])
        self.d_xz = Discriminator([n_features + latent_dim, *hidden])
        self.d_xx = Discriminator([2 * n_features, *hidden])
        self.d_zz = Discriminator([2 * latent_dim, hidden_size])

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """G(E(x))."""
        return self.generator(self.encoder(x))

    def generator_parameters(self) -> list[nn.Parameter]:
        return [*self.encoder.parameters(), *self.generator.parameters()]

    def discriminator_parameters(self) -> list[nn.Parameter]:
        return [*self.d_xz.parameters(), *self.d_xx.parameters(), *self.d_zz.parameters()]


def _bce(logits: torch.Tensor, real: bool) -> torch.Tensor:
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    return nn.functional.binary_cross_entropy_with_logits(logits, target)


class ALADDetector(TorchDetector):
    """BiGAN/ALAD detector with spectral normalisation; score = reconstruction + critic distance.

    Parameters
    ----------
    latent_dim : int or None
        Size of the latent code; None: ``clip(n_features // 2, 2, 32)``.
    hidden_size : int or None
        Units per hidden layer; None: ``clip(2 * n_features, 64, 256)``.
    n_layers : int
        Hidden layers of the encoder, generator and row discriminators.
    reconstruction_weight : float
        Weight of the explicit reconstruction loss in the generator's and encoder's objective.
    batch_size, max_epochs, max_steps, patience, learning_rate, weight_decay,
    validation_fraction :
        The training budget and optimiser (see ``detectors.torch_support``).
    device : str
        ``"auto"`` (GPU when present, else CPU), ``"cpu"`` or ``"cuda"``.
    random_state : int
        Seed of the initialisation, the batches, the latent draws and the validation split.
    """

    kind = "gan"

    def __init__(
        self,
        latent_dim: int | None = None,
        hidden_size: int | None = None,
        n_layers: int = 2,
        reconstruction_weight: float = 1.0,
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
        self.reconstruction_weight = reconstruction_weight
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.max_steps = max_steps
        self.patience = patience
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.validation_fraction = validation_fraction
        self.device = device
        self.random_state = random_state

    def _build(self, n_features: int) -> ALADNetwork:
        latent = self.latent_dim or min(32, max(2, n_features // 2))
        hidden = self.hidden_size or min(256, max(64, 2 * n_features))
        return ALADNetwork(n_features, latent, hidden, self.n_layers)

    # -- training ----------------------------------------------------------------------

    def _train(self, train: torch.Tensor, valid: torch.Tensor) -> int:
        net = self.network_
        settings = {"lr": self.learning_rate, "betas": (0.5, 0.999)}
        critic_optimiser = torch.optim.Adam(net.discriminator_parameters(), **settings)
        generator_optimiser = torch.optim.AdamW(
            net.generator_parameters(), weight_decay=self.weight_decay, **settings
        )

        def step(x: torch.Tensor) -> None:
            z = torch.randn(len(x), net.latent_dim, device=x.device)
            critic_optimiser.zero_grad(set_to_none=True)
            self._critic_loss(x, z).backward()
            critic_optimiser.step()
            generator_optimiser.zero_grad(set_to_none=True)
            self._generator_loss(x, z).backward()
            generator_optimiser.step()

        def validation_loss() -> float:
            errors = [((x - net.reconstruct(x)) ** 2).sum(-1) for x in valid.split(SCORE_CHUNK)]
            return float(torch.cat(errors).mean())

        epochs = train_with_early_stopping(
            net, train, step, validation_loss, self._plan(len(train)), self.patience
        )
        with torch.no_grad():
            everything = torch.ones_like(valid, dtype=torch.bool)
            reconstruction, distance = self._score_parts(valid, everything)
        self.score_scales_ = np.array(
            [max(float(reconstruction.median()), 1e-12), max(float(distance.median()), 1e-12)]
        )
        return epochs

    def _critic_loss(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        net = self.network_
        with torch.no_grad():
            x_fake, z_real = net.generator(z), net.encoder(x)
            x_cycle, z_cycle = net.generator(z_real), net.encoder(x_fake)
        return (
            _bce(net.d_xz(x, z_real), True)
            + _bce(net.d_xz(x_fake, z), False)
            + _bce(net.d_xx(x, x), True)
            + _bce(net.d_xx(x, x_cycle), False)
            + _bce(net.d_zz(z, z), True)
            + _bce(net.d_zz(z, z_cycle), False)
        )

    def _generator_loss(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        net = self.network_
        x_fake, z_real = net.generator(z), net.encoder(x)
        x_cycle = net.generator(z_real)
        adversarial = (
            _bce(net.d_xz(x, z_real), False)
            + _bce(net.d_xz(x_fake, z), True)
            + _bce(net.d_xx(x, x_cycle), True)
            + _bce(net.d_zz(z, net.encoder(x_fake)), True)
        )
        reconstruction = ((x - x_cycle) ** 2).sum(-1).mean()
        return adversarial + self.reconstruction_weight * reconstruction

    # -- scoring -----------------------------------------------------------------------

    def _score_parts(
        self, Z: torch.Tensor, observed: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per row: squared reconstruction error over observed features, critic distance."""
        net = self.network_
        reconstruction = net.reconstruct(Z)
        error = ((Z - reconstruction) ** 2 * observed).sum(-1)
        distance = (net.d_xx.features(Z, Z) - net.d_xx.features(Z, reconstruction)).abs().sum(-1)
        return error, distance

    def _log_density(self, Z: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
        error, distance = self._score_parts(Z, observed)
        scales = self._tensor(self.score_scales_)
        return -(error / scales[0] + distance / scales[1])

    def _feature_nll(self, Z: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
        return (Z - self.network_.reconstruct(Z)) ** 2 * observed

    def _refine_imputation(self, Z: torch.Tensor, missing: torch.Tensor) -> torch.Tensor:
        for _ in range(IMPUTATION_PASSES):
            Z = torch.where(missing, self.network_.reconstruct(Z), Z)
        return Z

    # -- persistence -------------------------------------------------------------------

    def _extra_weights(self) -> dict[str, np.ndarray]:
        return {"score_scales": self.score_scales_}

    def _set_extra_weights(self, weights: dict[str, np.ndarray]) -> None:
        self.score_scales_ = weights["score_scales"]
