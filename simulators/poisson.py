r"""Poisson counts with a log-rate parameter: the univariate discrete toy of the AVO paper.

.. math:: x_i \mid \theta \sim \mathrm{Poisson}(\lambda), \qquad \lambda = e^\theta,
          \quad i = 1..n_{obs},

with :math:`\theta^* = \log 7` and 20,000 observed counts, as in section 4.1 of the AVO paper.
Counts are returned as floats in ``theta``'s dtype, shape ``(n, 1)``.

The prior is uniform on :math:`\theta = \log\lambda \in [a, b]` (default :math:`[-2, 5]`, i.e.
:math:`\lambda \in [0.14, 148]`), equivalently :math:`p(\lambda) \propto 1/\lambda` on
:math:`[e^a, e^b]`. The default box holds the AVO paper's initial proposal
:math:`\mathcal{N}(\log 5, 1)` to about :math:`\pm 3.5\sigma`. By conjugacy the posterior of
:math:`\lambda` given :math:`S = \sum_i x_i` and :math:`n` counts is
:math:`\mathrm{Gamma}(S, \mathrm{rate}=n)` truncated to :math:`[e^a, e^b]`, so in
:math:`\theta` space

.. math:: p(\theta \mid x_{1..n}) \propto \exp(S\theta - n e^\theta), \quad \theta \in [a, b],

with normalizer :math:`\Gamma(S)\, n^{-S} [P(S, n e^b) - P(S, n e^a)]` (:math:`P` the regularized
lower incomplete gamma function; :math:`E_1(n e^a) - E_1(n e^b)` when :math:`S = 0`).

References:
    Louppe, Hermans, Cranmer, "Adversarial Variational Optimization of Non-Differentiable
    Simulators", AISTATS 2019, https://arxiv.org/abs/1707.07113

    Gelman et al., *Bayesian Data Analysis*, 3rd ed., 2013, section 2.6 (Poisson-gamma model).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import cache
from typing import ClassVar

import numpy as np
import torch
from numpy.polynomial.legendre import leggauss
from scipy import special
from torch import Tensor

from . import register
from ._base import BoxUniform, Simulator, _target, check_positive_int

__all__ = ["Poisson", "PoissonPosterior"]

LOG_RATE_RANGE = (-20.0, 15.0)  # e^15 = 3.3e6 keeps counts exact in float32 (< 2^24)
TAIL = 1e-14  # posterior mass left out of the quadrature window of mean() / stddev()


class PoissonPosterior:
    r"""Exact posterior of :math:`\theta = \log\lambda`, :math:`\propto e^{S\theta - n e^\theta}` on ``[low, high]``.

    Arguments:
        total: Sum :math:`S \geq 0` of the observed counts (sufficient statistic).
        count: Number :math:`n \geq 1` of observed counts.
        low: Lower end :math:`a` of the prior box of :math:`\theta`.
        high: Upper end :math:`b > a` of the prior box of :math:`\theta`.
    """

    def __init__(self, total: int, count: int, low: float, high: float):
        check_positive_int("poisson posterior", "total", total, minimum=0)
        check_positive_int("poisson posterior", "count", count)
        if not low < high:
            raise ValueError(f"poisson posterior: need low < high, got {low!r}, {high!r}")
        self.total, self.count = total, count
        self.low = torch.tensor([float(low)], dtype=torch.float64)
        self.high = torch.tensor([float(high)], dtype=torch.float64)
        # Lower tail P when the box sits below the median, upper tail Q otherwise: the CDF is a
        # difference of two values of G and each choice keeps that difference accurate.
        self._upper = total > 0 and special.gammainc(total, count * math.exp(low)) > 0.5
        self._g_low, g_high = self._g(np.array(low)), self._g(np.array(high))
        self._mass = float(g_high - self._g_low)
        if not (self._mass > 0 and math.isfinite(self._mass)):
            raise ValueError(
                f"poisson posterior: the data (sum {total} of {count} counts, mean "
                f"{total / count:.4g}) leave no representable mass in the prior box "
                f"log rate in [{low}, {high}]"
            )
        self._log_norm = math.log(self._mass)
        if total > 0:
            self._log_norm += special.gammaln(total) - total * math.log(count)

    @property
    def dim(self) -> int:
        return 1

    def _g(self, t: np.ndarray) -> np.ndarray:
        """An antiderivative of the posterior (up to its normalizer), increasing in ``t``."""
        z = self.count * np.exp(t)
        if self.total == 0:
            return -special.exp1(z)
        if self._upper:
            return -special.gammaincc(self.total, z)
        return special.gammainc(self.total, z)

    def _cdf(self, t: np.ndarray) -> np.ndarray:
        t = np.clip(t, float(self.low), float(self.high))
        return np.clip((self._g(t) - self._g_low) / self._mass, 0.0, 1.0)

    def _icdf(self, u: np.ndarray) -> np.ndarray:
        # Bisection on the exact CDF: 64 halvings of [a, b] reach double precision.
        lo = np.full_like(u, float(self.low))
        hi = np.full_like(u, float(self.high))
        for _ in range(64):
            mid = 0.5 * (lo + hi)
            below = self._cdf(mid) < u
            lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
        return 0.5 * (lo + hi)

    def log_prob(self, theta: Tensor) -> Tensor:
        """Log density of ``theta`` of shape ``(..., 1)``; ``-inf`` outside the box."""
        t = theta.double()[..., 0]
        value = self.total * t - self.count * torch.exp(t) - self._log_norm
        inside = (t >= float(self.low)) & (t <= float(self.high))
        return torch.where(inside, value, -math.inf).to(theta.dtype)

    def cdf(self, theta: Tensor) -> Tensor:
        """Posterior CDF at ``theta`` of shape ``(..., 1)``; returns shape ``(...)``."""
        t = theta.detach().double().cpu().numpy()[..., 0]
        return torch.as_tensor(self._cdf(t), dtype=theta.dtype, device=theta.device)

    def sample(
        self,
        shape: Sequence[int] = (),
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> Tensor:
        """Exact samples of shape ``(*shape, 1)`` by inversion of the CDF."""
        device = _target(generator, device)
        u = torch.rand(*shape, 1, generator=generator, device=device, dtype=torch.float64)
        theta = self._icdf(u.cpu().numpy())
        return torch.as_tensor(theta, dtype=dtype, device=device)

    def _moment_grid(self) -> tuple[np.ndarray, np.ndarray]:
        """Gauss-Legendre nodes and weights times density on the central ``1 - 2 TAIL`` mass."""
        lo, hi = self._icdf(np.array([TAIL, 1.0 - TAIL]))
        nodes, weights = _legendre()
        t = lo + (hi - lo) * (nodes + 1) / 2
        density = np.exp(self.total * t - self.count * np.exp(t) - self._log_norm)
        return t, weights * (hi - lo) / 2 * density

    def mean(self) -> Tensor:
        """Posterior mean of ``theta``, shape ``(1,)``."""
        t, w = self._moment_grid()
        return torch.tensor([np.sum(w * t) / np.sum(w)], dtype=torch.float64)

    def stddev(self) -> Tensor:
        """Posterior standard deviation of ``theta``, shape ``(1,)``."""
        t, w = self._moment_grid()
        mean = np.sum(w * t) / np.sum(w)
        return torch.tensor(
            [math.sqrt(np.sum(w * (t - mean) ** 2) / np.sum(w))], dtype=torch.float64
        )

    def __repr__(self) -> str:
        box = f"[{float(self.low)}, {float(self.high)}]"
        return f"PoissonPosterior(total={self.total}, count={self.count}, box={box})"


@register("poisson")
class Poisson(Simulator):
    r"""Poisson counts :math:`x \sim \mathrm{Poisson}(e^\theta)` with an exact posterior.

    Arguments:
        n_obs: Default number of observed counts (20,000 in the AVO paper).
        theta_star: True log rate of the observed data (:math:`\log 7` in the AVO paper).
        log_rate_low: Lower end :math:`a` of the uniform prior on :math:`\theta`.
        log_rate_high: Upper end :math:`b` of the uniform prior on :math:`\theta`.
    """

    kind = "point"
    description = "Poisson counts x ~ Poisson(exp(theta)) (AVO paper toy) with an exact posterior"
    differentiable = False
    parameter_names = ("log_rate",)
    option_values: ClassVar[dict[str, tuple]] = {
        "n_obs": (1, 100),
        "theta_star": (0.0, 4.5),
        "log_rate_low": (-5.0,),
        "log_rate_high": (3.0,),
    }
    x_shape = (1,)

    def __init__(
        self,
        *,
        n_obs: int = 20_000,
        theta_star: float = math.log(7.0),
        log_rate_low: float = -2.0,
        log_rate_high: float = 5.0,
    ):
        check_positive_int("poisson", "n_obs", n_obs)
        for field, value in (("log_rate_low", log_rate_low), ("log_rate_high", log_rate_high)):
            _check_in_range(field, value, *LOG_RATE_RANGE)
        if not log_rate_low < log_rate_high:
            raise ValueError(
                f"poisson: need log_rate_low < log_rate_high, got {log_rate_low!r}, "
                f"{log_rate_high!r}"
            )
        _check_in_range("theta_star", theta_star, log_rate_low, log_rate_high)
        self.n_obs = n_obs
        self.prior = BoxUniform([float(log_rate_low)], [float(log_rate_high)])
        self.true_parameters = torch.tensor([float(theta_star)])

    def _simulate(self, theta: Tensor, generator: torch.Generator | None) -> Tensor:
        return torch.poisson(torch.exp(theta), generator=generator)

    def summarize(self, x: Tensor) -> Tensor:
        """The set mean, ``(..., m, 1) -> (..., 1)``: sufficient for :math:`\\lambda` (with ``m``)."""
        return x.mean(dim=-2)

    def posterior(self, x_obs: Tensor) -> PoissonPosterior:
        """The exact posterior of :math:`\\theta = \\log\\lambda` given counts of shape ``(n, 1)``."""
        x = torch.as_tensor(x_obs).detach().double().cpu()
        if x.ndim != 2 or x.shape[1] != 1 or x.shape[0] < 1:
            raise ValueError(f"poisson: x_obs must have shape (n >= 1, 1), got {tuple(x.shape)}")
        bad = ~torch.isfinite(x) | (x < 0) | (x != torch.round(x))
        if bad.any():
            value = float(x[bad][0])
            raise ValueError(f"poisson: x_obs must be counts (integers >= 0), got {value}")
        low, high = float(self.prior.low), float(self.prior.high)
        return PoissonPosterior(int(x.sum()), x.shape[0], low, high)


@cache
def _legendre() -> tuple[np.ndarray, np.ndarray]:
    # 128 Gauss-Legendre nodes integrate the smooth, unimodal density on its window to ~1e-15.
    return leggauss(128)


def _check_in_range(field: str, value: object, low: float, high: float) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not (ok and math.isfinite(value) and low <= value <= high):
        raise ValueError(f"poisson: {field} must be a number in [{low}, {high}], got {value!r}")
