"""Linear autoregressive detector: each step generated from the previous ones (a VAR).

Input rows are flattened windows (``detectors.windows``): ``lags + 1`` steps of ``d``
channels, oldest first, optionally led by seasonal lags (the steps one season ago). The last
step is predicted linearly from the lags, and its residual (the innovation) follows a
Gaussian mixture with full covariances, its size chosen by BIC, fitted as the ``gmm``
detector fits its mixture, on the residuals of the training windows. One component is the
plain Gaussian VAR; more let jumps that recur in normal data be likely, where a single
Gaussian would call each of them extreme.

The prediction is computed from the mean and covariance of the standardised training
windows (of the complete ones; where fewer than half the windows are complete, pairwise
over the windows where both columns are observed, so a series with gaps everywhere trains
too), so it can condition on any subset of the lags: the coefficients are a ridge
regression on the observed lags, shrunk towards persistence (each channel's most recent
observed value, the "Minnesota" prior of Bayesian VARs) rather than towards zero, so a
channel that never moved in training is predicted to stay where it is, not to return to its
mean. The model's order (how many of the most recent lags it uses) is chosen at fit time by
the Bayesian information criterion, as statsmodels' VAR order selection does, so a short
training set gets a short model instead of an overfitted one whose tiny in-sample residuals
make every new step look extreme. Seasonal lags, when the window has them, are always used.

Score: the exact predictive negative log-likelihood of the observed last step. Missing
values: the prediction uses only the observed lags (with none, the step's training
distribution), each innovation component widened by how much less predictable the step is
from those lags alone (exact when the innovation is one Gaussian), and missing last-step
channels are integrated out.
Attribution: each channel's NLL given the other channels' residuals, put on that channel's
last-step column (lag columns get 0).

Online updates (``partial_fit``): the fit keeps its sufficient statistics (counts, sums and
sums of products of the window values, each optionally discounted by a forgetting factor),
so new windows update the standardisation, the lags' mean and covariance and with them
every conditional, exactly as a refit on all the windows would. The order and the
innovation mixture's shape are kept: the mixture is mapped linearly so that its covariance
follows the updated residual covariance (with one component, exactly the refit's). A refit
chooses both again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from detectors.base import Detector
from detectors.gmm import CHUNK, mixture_by_bic, stacked_whitening, whitened_log_density
from detectors.missing import observed_patterns
from detectors.windows import CONSTANT_SPREAD, channel_scaling, column_lags, window_channels


@dataclass(frozen=True)
class _Conditional:
    """The last step's Gaussian given one set of observed lag columns (standardised)."""

    observed: np.ndarray  # bool over lag columns
    coef: np.ndarray  # (observed lags, d): mean = target mean + (lags - lag mean) @ coef
    covariance: np.ndarray  # (d, d) predictive covariance


@dataclass(frozen=True)
class _Statistics:
    """Sufficient statistics of windows, about a fixed ``reference`` per channel (for
    precision): per channel, the weight, sum and sum of squares of every observed step
    value (the standardisation); per pair of window columns, over the windows where both
    are observed, their weight, each column's sum and the sum of their products (the lags'
    mean and covariance). ``pairwise``: every window counts towards the pairs where both
    columns are observed; else only fully observed windows count (all pairs then share one
    weight, and the moments are the complete windows')."""

    reference: np.ndarray  # (d,)
    value_weight: np.ndarray  # (d,)
    value_sum: np.ndarray  # (d,)
    value_squares: np.ndarray  # (d,)
    pair_weight: np.ndarray  # (columns, columns)
    pair_sum: np.ndarray  # (columns, columns): [i, j] sums column i where j is observed too
    pair_products: np.ndarray  # (columns, columns)
    pairwise: bool

    @classmethod
    def of(cls, X: np.ndarray, reference: np.ndarray, pairwise: bool) -> _Statistics:
        d = len(reference)
        steps = X.reshape(len(X), -1, d) - reference
        seen = ~np.isnan(steps)
        filled = np.where(seen, steps, 0.0)
        observed = seen.reshape(len(X), -1)
        if not pairwise:
            observed = observed & observed.all(axis=1, keepdims=True)
        windows = np.where(observed, filled.reshape(len(X), -1), 0.0)
        observed = observed.astype(np.float64)
        return cls(
            reference=reference,
            value_weight=seen.sum(axis=(0, 1)).astype(np.float64),
            value_sum=filled.sum(axis=(0, 1)),
            value_squares=(filled**2).sum(axis=(0, 1)),
            pair_weight=observed.T @ observed,
            pair_sum=windows.T @ observed,
            pair_products=windows.T @ windows,
            pairwise=pairwise,
        )

    def scaled(self, factor: float) -> _Statistics:
        """Every weight and sum times ``factor`` (forgetting)."""
        return _Statistics(
            self.reference,
            *(getattr(self, name) * factor for name in self._summed()),
            pairwise=self.pairwise,
        )

    def plus(self, other: _Statistics) -> _Statistics:
        """The statistics of both sets of windows (same reference)."""
        return _Statistics(
            self.reference,
            *(getattr(self, name) + getattr(other, name) for name in self._summed()),
            pairwise=self.pairwise,
        )

    @classmethod
    def _summed(cls) -> list[str]:
        return [name for name in cls.__dataclass_fields__ if name not in ("reference", "pairwise")]

    def scaling(self, d: int) -> tuple[np.ndarray, np.ndarray]:
        """Each channel's mean and standard deviation, as ``channel_scaling`` gives them."""
        offset = self.value_sum / self.value_weight
        spread = np.sqrt(np.maximum(self.value_squares / self.value_weight - offset**2, 0.0))
        center = self.reference + offset
        varies = spread > CONSTANT_SPREAD * np.maximum(1.0, np.abs(center))
        return center, np.where(varies, spread, 1.0)

    def moments(self, center: np.ndarray, scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each column's mean, and the (biased) covariance of each pair of columns over the
        windows where both are observed, made positive semi-definite; standardised. With
        every window complete, the complete windows' mean and covariance."""
        weight = self.pair_weight
        if np.diagonal(weight).min() < 2:
            raise ValueError(
                "need every step of the window observed in at least 2 windows"
                if self.pairwise
                else "need at least 2 fully observed windows to fit"
            )
        together = np.maximum(weight, 1.0)
        means = self.pair_sum / together  # [i, j]: column i's mean where j is observed too
        covariance = np.where(weight > 0, self.pair_products / together - means * means.T, 0.0)
        if self.pairwise:  # estimates from different windows: made positive semi-definite
            values, vectors = np.linalg.eigh(covariance)
            covariance = (vectors * np.clip(values, 0.0, None)) @ vectors.T
        columns = len(weight) // len(center)
        scales = np.tile(scale, columns)
        mean = np.diagonal(means) + np.tile(self.reference - center, columns)
        return mean / scales, covariance / np.outer(scales, scales)

    def as_weights(self) -> dict[str, np.ndarray]:
        return {f"statistics_{name}": np.asarray(value) for name, value in vars(self).items()}

    @classmethod
    def from_weights(cls, weights: dict[str, np.ndarray]) -> _Statistics | None:
        """The statistics saved with a model; None for one saved before they were kept."""
        if "statistics_reference" not in weights:
            return None
        values = {field: weights[f"statistics_{field}"] for field in cls.__dataclass_fields__}
        return cls(**values | {"pairwise": bool(values["pairwise"])})


def _matrix_power(covariance: np.ndarray, power: float) -> np.ndarray:
    """A symmetric positive semi-definite matrix to ``power`` (its eigenvalues floored at a
    tiny share of the largest, so a direction without variance maps to itself)."""
    values, vectors = np.linalg.eigh((covariance + covariance.T) / 2)
    values = np.maximum(values, 1e-12 * max(values.max(), 1e-300))
    return (vectors * values**power) @ vectors.T


# Rows that share a pattern of observed lags, and the conditional they are scored with.
_Group = tuple[np.ndarray, _Conditional]


class LinearARDetector(Detector):
    """Vector autoregression with Gaussian-mixture innovations, fitted on windows.

    Parameters
    ----------
    channels : int or None
        Channels per step. None: counted from window column names (``x@t-0``) when fitted
        on a data frame of windows; otherwise every column is a channel of a single step
        (no lags: a plain multivariate Gaussian).
    ridge : float
        Weight of the prior on the coefficients, relative to the number of training windows
        (added to the diagonal of the lags' covariance, in standardised units).
    persistence : float
        Prior mean of each channel's coefficient on its own most recent observed lag (the
        other coefficients' prior mean is 0): 1 shrinks towards a random walk, 0 is a
        plain ridge.
    min_variance : float
        Floor on predictive variances, in standardised units, so a channel that was
        perfectly predictable in training cannot make any deviation infinitely unlikely.
    order : int or "bic"
        Recent lag steps the prediction uses (at most the window's; seasonal lags, read from
        column names ``<feature>@t-<lag>`` beyond the window's, are always used).
        "bic": the order from 1 to the window's lags with the lowest Bayesian information
        criterion on the training windows, ``n log det(residual covariance) + log(n) p d^2``
        (at least 1, so the prediction keeps persisting the latest value).
    max_components : int
        Largest innovation mixture tried by BIC (1: Gaussian innovations).
    reg_covar : float
        Added to each innovation component's covariance diagonal, in standardised units:
        0.0025 floors a component's spread at 0.05 standard deviations, as the ``gmm``
        detector does, so a component cannot collapse onto a repeated residual (a channel
        whose steps are quantised predicts many residuals exactly).
    bic_sample : int
        Training windows (drawn at random) used to compare mixture sizes by BIC.
    random_state : int
        Seed of the mixture's fit; the same data and seed give the same model.

    Attributes
    ----------
    order_ : int
        The order used.
    lags_ : ndarray of int
        Each lag column's lag, in steps.
    innovation_weights_, innovation_means_, innovation_covariances_ : ndarray
        The innovation mixture over the channels (standardised units), as fitted with every
        lag observed.
    """

    kind = "ar"
    missing_values = "marginalise"

    def __init__(
        self,
        channels: int | None = None,
        ridge: float = 1e-3,
        persistence: float = 1.0,
        min_variance: float = 1e-4,
        order: int | str = "bic",
        max_components: int = 8,
        reg_covar: float = 0.0025,
        bic_sample: int = 20_000,
        random_state: int = 0,
    ) -> None:
        self.channels = channels
        self.ridge = ridge
        self.persistence = persistence
        self.min_variance = min_variance
        self.order = order
        self.max_components = max_components
        self.reg_covar = reg_covar
        self.bic_sample = bic_sample
        self.random_state = random_state

    # -- fitting -----------------------------------------------------------------------

    def _fit(self, X: np.ndarray) -> None:
        names = getattr(self, "feature_names_in_", ())
        d = window_channels(X.shape[1], names, self.channels)
        self.n_channels_ = d
        self.center_, self.scale_ = channel_scaling(X, d)
        # most windows complete: their moments; else (a series with gaps everywhere) the
        # pairwise moments of every window, and innovations fitted on the residuals of
        # every window whose last step is observed
        fitted = ~np.isnan(X).any(axis=1)
        last_observed = ~np.isnan(X[:, -d:]).any(axis=1)
        pairwise = fitted.sum() < last_observed.sum() / 2
        if pairwise:
            fitted = last_observed
        self.statistics_ = _Statistics.of(X, self.center_, pairwise)
        self.mean_, self.covariance_ = self.statistics_.moments(self.center_, self.scale_)
        self.lags_ = column_lags(X.shape[1], d, names)[:-d]
        self._conditionals: dict[bytes, _Conditional] = {}
        most = self._recent_steps()
        if self.order == "bic":
            self.order_ = self._bic_order(most, int(fitted.sum()))
        elif isinstance(self.order, int) and self.order >= 0:
            self.order_ = min(self.order, most)
        else:
            raise ValueError(f'order must be a non-negative int or "bic", got {self.order!r}')
        residuals, _ = self._predictions(X[fitted])
        mixture = mixture_by_bic(
            residuals,
            self.max_components,
            self.bic_sample,
            reg_covar=self.reg_covar,
            random_state=self.random_state,
        )
        self.innovation_weights_ = mixture.weights_
        self.innovation_means_ = mixture.means_
        self.innovation_covariances_ = mixture.covariances_

    def partial_fit(self, X: np.ndarray | pd.DataFrame, forget: float = 1.0) -> LinearARDetector:
        """Learn the windows ``X`` on top of what the model has learned, the earlier windows'
        weight first multiplied by ``forget`` (1: none forgotten). Windows with a missing
        value count towards the standardisation only, as in ``fit``."""
        self._check_fitted()
        if self.statistics_ is None:
            raise ValueError("saved before ar kept its statistics for online updates: retrain it")
        if not 0 < forget <= 1:
            raise ValueError(f"forget must be in (0, 1], got {forget}")
        values = self._as_array(X)
        every_lag = np.ones(len(self.mean_) - self.n_channels_, dtype=bool)
        before = self._conditional(every_lag).covariance
        self.statistics_ = self.statistics_.scaled(forget).plus(
            _Statistics.of(values, self.statistics_.reference, self.statistics_.pairwise)
        )
        self.center_, self.scale_ = self.statistics_.scaling(self.n_channels_)
        self.mean_, self.covariance_ = self.statistics_.moments(self.center_, self.scale_)
        self._conditionals = {}
        after = self._conditional(every_lag).covariance
        self._follow_residuals(before, after)
        return self

    def _follow_residuals(self, before: np.ndarray, after: np.ndarray) -> None:
        """Map the innovation mixture from residual covariance ``before`` to ``after`` (each
        with ``min_variance`` on its diagonal, as ``_conditional`` gives them): ``A =
        after^1/2 before^-1/2`` (so ``A before A^T = after``), applied to the means and to the
        covariances less ``reg_covar``, which the mixture's fit added to them."""
        floor = self.min_variance * np.eye(len(before))
        mapping = _matrix_power(after - floor, 0.5) @ _matrix_power(before - floor, -0.5)
        reg = self.reg_covar * np.eye(len(before))
        self.innovation_means_ = self.innovation_means_ @ mapping.T
        self.innovation_covariances_ = (
            np.einsum("ij,kjl,ml->kim", mapping, self.innovation_covariances_ - reg, mapping) + reg
        )

    def _recent_steps(self) -> int:
        """How many steps back the lags run without a break (seasonal lags lie beyond)."""
        present = set(self.lags_.tolist())
        steps = 0
        while steps + 1 in present:
            steps += 1
        return steps

    def _used_lags(self) -> np.ndarray:
        """Which lag columns predictions use: the recent ones within the order, and every
        seasonal one."""
        return (self.lags_ <= self.order_) | (self.lags_ > self._recent_steps())

    def _bic_order(self, most: int, n_windows: int) -> int:
        """The order from 1 (0 without lags) to ``most`` with the lowest BIC on ``n_windows``
        fully observed training windows (conditionals stay cached: they depend on the lags
        used only)."""
        d = self.n_channels_
        every_lag = np.ones(len(self.mean_) - d, dtype=bool)
        orders = range(min(1, most), most + 1)
        criteria = []
        for order in orders:
            self.order_ = order
            log_det = np.linalg.slogdet(self._conditional(every_lag).covariance)[1]
            criteria.append(n_windows * log_det + np.log(n_windows) * order * d * d)
        return orders[int(np.argmin(criteria))]

    def _standardise(self, X: np.ndarray) -> np.ndarray:
        d = self.n_channels_
        return ((X.reshape(len(X), -1, d) - self.center_) / self.scale_).reshape(len(X), -1)

    def _conditional(self, observed: np.ndarray) -> _Conditional:
        """The last step given the lag columns marked in ``observed`` that predictions use
        (``_used_lags``), cached per pattern."""
        d = self.n_channels_
        n_lags = len(self.mean_) - d
        observed = observed & self._used_lags()
        key = np.packbits(observed).tobytes()
        found = self._conditionals.get(key)
        if found is not None:
            return found
        lag_index = np.flatnonzero(observed)
        target = slice(n_lags, None)
        cross = self.covariance_[lag_index, target]
        lags = self.covariance_[np.ix_(lag_index, lag_index)]
        prior = np.zeros((len(lag_index), d))
        for channel in range(d):
            own = lag_index[lag_index % d == channel]  # oldest first
            if len(own):
                prior[np.searchsorted(lag_index, own[-1]), channel] = self.persistence
        coef = np.linalg.solve(
            lags + self.ridge * np.eye(len(lag_index)), cross + self.ridge * prior
        )
        # the residual covariance of these coefficients on the training windows
        covariance = self.covariance_[target, target] - cross.T @ coef - coef.T @ cross
        covariance += coef.T @ lags @ coef
        covariance = (covariance + covariance.T) / 2 + self.min_variance * np.eye(d)
        found = _Conditional(observed.copy(), coef, covariance)
        self._conditionals[key] = found
        return found

    # -- scoring -----------------------------------------------------------------------

    def _predictions(self, X: np.ndarray) -> tuple[np.ndarray, list[_Group]]:
        """Standardised residuals of the last step, and the rows of each lag pattern with
        its conditional."""
        d = self.n_channels_
        Z = self._standardise(X)
        lags, target = Z[:, :-d], Z[:, -d:]
        groups = [
            (rows, self._conditional(pattern))
            for rows, pattern in observed_patterns(~np.isnan(lags))
        ]
        residuals = np.empty_like(target)
        n_lags = lags.shape[1]
        for rows, conditional in groups:
            known = lags[np.ix_(rows, conditional.observed)]
            centred = known - self.mean_[:n_lags][conditional.observed]
            residuals[rows] = target[rows] - (self.mean_[n_lags:] + centred @ conditional.coef)
        return residuals, groups

    def _component_covariances(self, conditional: _Conditional) -> np.ndarray:
        """The innovation components' covariances (K, d, d) for a prediction from
        ``conditional``'s lags: each widened by how much larger that prediction's residual
        covariance is than the one with every lag observed, which the mixture was fitted on."""
        every_lag = np.ones(len(self.mean_) - self.n_channels_, dtype=bool)
        extra = conditional.covariance - self._conditional(every_lag).covariance
        values, vectors = np.linalg.eigh(extra)
        extra = (vectors * np.clip(values, 0.0, None)) @ vectors.T  # never narrower
        return self.innovation_covariances_ + extra

    def _innovation_log_density(
        self, residuals: np.ndarray, channels: np.ndarray, covariances: np.ndarray
    ) -> np.ndarray:
        """Log-density of ``residuals[:, channels]`` under the innovation mixture with
        component ``covariances``, marginalised over the other channels."""
        if not channels.any():
            return np.zeros(len(residuals))
        precision_factors = np.stack(
            [
                np.linalg.cholesky(np.linalg.inv(covariance[np.ix_(channels, channels)]))
                for covariance in covariances
            ]
        )
        d = int(channels.sum())
        whitening = stacked_whitening(
            self.innovation_weights_,
            self.innovation_means_[:, channels],
            precision_factors,
            center=np.zeros(d),
            scale=np.ones(d),
        )
        values = residuals[:, channels]
        out = np.empty(len(values))
        for start in range(0, len(values), CHUNK):
            out[start : start + CHUNK] = whitened_log_density(
                values[start : start + CHUNK], *whitening
            )
        return out

    def predictive_moments(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation of each channel's last step predicted from the lags
        (the prediction plus the innovation mixture's moments), in the data's units, on the
        last step's columns; NaN on the lag columns. The band a channel was expected in."""
        values = self._as_array(X)
        d = self.n_channels_
        lags = self._standardise(values)[:, :-d]
        n_lags = lags.shape[1]
        mean, sd = np.full(values.shape, np.nan), np.full(values.shape, np.nan)
        weights = self.innovation_weights_[:, None]
        shift = (weights * self.innovation_means_).sum(axis=0)
        for rows, pattern in observed_patterns(~np.isnan(lags)):
            conditional = self._conditional(pattern)
            known = lags[np.ix_(rows, conditional.observed)]
            centred = known - self.mean_[:n_lags][conditional.observed]
            predicted = self.mean_[n_lags:] + centred @ conditional.coef + shift
            spreads = np.diagonal(self._component_covariances(conditional), axis1=1, axis2=2)
            second = (weights * (spreads + self.innovation_means_**2)).sum(axis=0)
            mean[rows, -d:] = predicted * self.scale_ + self.center_
            sd[rows, -d:] = np.sqrt(np.maximum(second - shift**2, 0.0)) * self.scale_
        return mean, sd

    def _score_samples(self, X: np.ndarray) -> np.ndarray:
        residuals, groups = self._predictions(X)
        log_likelihood = np.empty(len(X))
        observed = ~np.isnan(residuals)
        for rows, conditional in groups:
            covariances = self._component_covariances(conditional)
            for within, pattern in observed_patterns(observed[rows]):
                subset = rows[within]
                log_likelihood[subset] = self._innovation_log_density(
                    residuals[subset], pattern, covariances
                )
        return log_likelihood - (np.log(self.scale_) * observed).sum(axis=1)

    def _attribute(self, X: np.ndarray) -> np.ndarray:
        """Each observed channel's NLL given the others' residuals, on its last-step column:
        ``log p(others) - log p(all)``."""
        residuals, groups = self._predictions(X)
        observed = ~np.isnan(residuals)
        out = np.zeros(X.shape)
        first_target = X.shape[1] - self.n_channels_
        for rows, conditional in groups:
            covariances = self._component_covariances(conditional)
            for within, pattern in observed_patterns(observed[rows]):
                subset = rows[within]
                joint = self._innovation_log_density(residuals[subset], pattern, covariances)
                for channel in np.flatnonzero(pattern):
                    others = pattern.copy()
                    others[channel] = False
                    out[subset, first_target + channel] = (
                        self._innovation_log_density(residuals[subset], others, covariances) - joint
                    )
        return out

    # -- persistence -------------------------------------------------------------------

    def _weights(self) -> dict[str, np.ndarray]:
        return {
            "center": self.center_,
            "scale": self.scale_,
            "mean": self.mean_,
            "covariance": self.covariance_,
            "order": np.array(self.order_),
            "lags": self.lags_,
            "innovation_weights": self.innovation_weights_,
            "innovation_means": self.innovation_means_,
            "innovation_covariances": self.innovation_covariances_,
            **({} if self.statistics_ is None else self.statistics_.as_weights()),
        }

    def _set_weights(self, weights: dict[str, np.ndarray]) -> None:
        self.center_, self.scale_ = weights["center"], weights["scale"]
        self.mean_, self.covariance_ = weights["mean"], weights["covariance"]
        self.n_channels_ = len(self.center_)
        if "innovation_weights" not in weights:
            raise ValueError(
                "saved before ar chose its order and modelled its innovations as a mixture: "
                "retrain it"
            )
        self.order_ = int(weights["order"])
        self.lags_ = weights["lags"]
        self.innovation_weights_ = weights["innovation_weights"]
        self.innovation_means_ = weights["innovation_means"]
        self.innovation_covariances_ = weights["innovation_covariances"]
        self.statistics_ = _Statistics.from_weights(weights)
        self._conditionals = {}
