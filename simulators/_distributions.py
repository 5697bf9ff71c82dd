r"""Priors and exact posteriors of the sbibm tasks that ``_base`` does not have.

Like :class:`~simulators.BoxUniform` and :class:`~simulators.DiagNormal`, each has ``low`` and
``high`` (the support :meth:`Simulator.check_theta` checks), ``sample(shape, generator, device,
dtype)`` drawing only from the generator, ``log_prob``, ``mean``, ``stddev`` and, for priors,
``to_torch()``.

- :class:`LogNormal`: independent log-normal coordinates (``sir``, ``lotka_volterra``),
  support :math:`[0, \infty)`.
- :class:`MultivariateNormal`: a Gaussian with a full covariance (``bernoulli_glm``).
- :class:`TruncatedDiagNormal`: independent normals truncated to a box, the exact posterior of
  a Gaussian likelihood under a uniform prior (``gaussian_linear_uniform``,
  ``gaussian_mixture``), sampled by inversion of the CDF.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from ._base import _target

__all__ = ["LogNormal", "MultivariateNormal", "TruncatedDiagNormal"]

LOG_2PI = math.log(2 * math.pi)


def _vector(value: Sequence[float] | Tensor) -> Tensor:
    return torch.as_tensor(value, dtype=torch.float64).flatten().clone()


class LogNormal:
    r"""Independent log-normal coordinates, :math:`\log\theta_i \sim \mathcal{N}(loc_i, scale_i^2)`.

    Arguments:
        loc: Mean of :math:`\log\theta`, shape ``(d,)``.
        scale: Standard deviation of :math:`\log\theta`, shape ``(d,)``, positive.
    """

    def __init__(self, loc: Sequence[float] | Tensor, scale: Sequence[float] | Tensor):
        self.loc, self.scale = _vector(loc), _vector(scale)
        if self.loc.shape != self.scale.shape or not bool((self.scale > 0).all()):
            raise ValueError(f"need positive scales matching loc, got {self.loc}, {self.scale}")
        self.low = torch.zeros_like(self.loc)
        self.high = torch.full_like(self.loc, math.inf)

    @property
    def dim(self) -> int:
        return self.loc.numel()

    def sample(
        self,
        shape: Sequence[int] = (),
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> Tensor:
        """Samples of shape ``(*shape, d)`` on ``device`` (default: the generator's)."""
        device = _target(generator, device)
        z = torch.randn(*shape, self.dim, generator=generator, device=device, dtype=torch.float64)
        return torch.exp(self.loc.to(device) + self.scale.to(device) * z).to(dtype)

    def log_prob(self, theta: Tensor) -> Tensor:
        """Log density of ``theta`` ``(..., d)``; ``-inf`` where a coordinate is ``<= 0``."""
        loc = self.loc.to(theta.device, theta.dtype)
        scale = self.scale.to(theta.device, theta.dtype)
        positive = (theta > 0).all(dim=-1)
        log_theta = torch.log(theta.clamp_min(torch.finfo(theta.dtype).tiny))
        z = (log_theta - loc) / scale
        value = (-0.5 * z**2 - torch.log(scale) - log_theta - 0.5 * LOG_2PI).sum(dim=-1)
        return torch.where(positive, value, -math.inf)

    def mean(self) -> Tensor:
        return torch.exp(self.loc + self.scale**2 / 2)

    def stddev(self) -> Tensor:
        return self.mean() * torch.sqrt(torch.expm1(self.scale**2))

    def to_torch(self, device: torch.device | str = "cpu") -> torch.distributions.Distribution:
        """The same prior as a ``torch.distributions`` object (e.g. for ``sbi``)."""
        loc = self.loc.to(device, torch.float32)
        scale = self.scale.to(device, torch.float32)
        return torch.distributions.Independent(torch.distributions.LogNormal(loc, scale), 1)

    def __repr__(self) -> str:
        return f"LogNormal(loc={self.loc.tolist()}, scale={self.scale.tolist()})"


class MultivariateNormal:
    r"""Gaussian :math:`\mathcal{N}(loc, \Sigma)` with a full covariance, given its precision.

    Arguments:
        loc: Mean, shape ``(d,)``.
        precision: Precision matrix :math:`\Sigma^{-1}`, ``(d, d)``, symmetric positive definite.
    """

    def __init__(self, loc: Sequence[float] | Tensor, precision: Tensor):
        self.loc = _vector(loc)
        self.precision = torch.as_tensor(precision, dtype=torch.float64).clone()
        if self.precision.shape != (self.dim, self.dim):
            raise ValueError(f"precision must be ({self.dim}, {self.dim})")
        self.covariance = torch.linalg.inv(self.precision)
        self.covariance = (self.covariance + self.covariance.T) / 2
        self.scale_tril = torch.linalg.cholesky(self.covariance)
        self.low = torch.full_like(self.loc, -math.inf)
        self.high = torch.full_like(self.loc, math.inf)

    @property
    def dim(self) -> int:
        return self.loc.numel()

    def sample(
        self,
        shape: Sequence[int] = (),
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> Tensor:
        """Samples of shape ``(*shape, d)`` on ``device`` (default: the generator's)."""
        device = _target(generator, device)
        z = torch.randn(*shape, self.dim, generator=generator, device=device, dtype=torch.float64)
        return (self.loc.to(device) + z @ self.scale_tril.to(device).T).to(dtype)

    def log_prob(self, theta: Tensor) -> Tensor:
        """Log density of ``theta`` of shape ``(..., d)``."""
        precision = self.precision.to(theta.device, theta.dtype)
        r = theta - self.loc.to(theta.device, theta.dtype)
        quad = ((r @ precision) * r).sum(dim=-1)
        log_det = torch.logdet(self.precision).item()
        return -0.5 * quad + 0.5 * log_det - 0.5 * self.dim * LOG_2PI

    def mean(self) -> Tensor:
        return self.loc.clone()

    def stddev(self) -> Tensor:
        return self.covariance.diagonal().sqrt()

    def to_torch(self, device: torch.device | str = "cpu") -> torch.distributions.Distribution:
        """The same prior as a ``torch.distributions`` object (e.g. for ``sbi``)."""
        loc = self.loc.to(device, torch.float32)
        return torch.distributions.MultivariateNormal(
            loc, scale_tril=self.scale_tril.to(device, torch.float32)
        )

    def __repr__(self) -> str:
        return f"MultivariateNormal(loc={self.loc.tolist()}, precision=<{self.dim}x{self.dim}>)"


class TruncatedDiagNormal:
    r"""Independent :math:`\mathcal{N}(loc_i, scale_i^2)` truncated to :math:`[low_i, high_i]`.

    Arguments:
        loc: Means before truncation, shape ``(d,)``.
        scale: Standard deviations before truncation, shape ``(d,)`` (or a scalar).
        low: Lower ends, shape ``(d,)``.
        high: Upper ends, shape ``(d,)``.
    """

    def __init__(self, loc: Tensor, scale: Tensor | float, low: Tensor, high: Tensor):
        self.loc = _vector(loc)
        self.scale = _vector(scale).expand_as(self.loc).clone()
        self.low, self.high = _vector(low), _vector(high)
        # Standardized ends, reflected to the side where the normal CDF is accurate: an
        # interval far in the upper tail is sampled as its mirror image in the lower tail.
        a, b = (self.low - self.loc) / self.scale, (self.high - self.loc) / self.scale
        self._flip = a > 0
        self._a = torch.where(self._flip, -b, a)
        self._b = torch.where(self._flip, -a, b)
        self._log_mass = _log_diff_ndtr(self._a, self._b)
        if not bool(torch.isfinite(self._log_mass).all()):
            raise ValueError("truncated normal: no representable mass in the box")

    @property
    def dim(self) -> int:
        return self.loc.numel()

    def log_mass(self) -> Tensor:
        """Log of the untruncated normal's mass inside the box, summed over coordinates."""
        return self._log_mass.sum()

    def sample(
        self,
        shape: Sequence[int] = (),
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> Tensor:
        """Exact samples of shape ``(*shape, d)`` by inversion of the truncated CDF."""
        device = _target(generator, device)
        u = torch.rand(*shape, self.dim, generator=generator, device=device, dtype=torch.float64)
        a, b = self._a.to(device), self._b.to(device)
        cdf_a, cdf_b = torch.special.ndtr(a), torch.special.ndtr(b)
        z = torch.special.ndtri(cdf_a + (cdf_b - cdf_a) * u)
        z = torch.minimum(torch.maximum(z, a), b)  # rounding at the ends
        z = torch.where(self._flip.to(device), -z, z)
        theta = self.loc.to(device) + self.scale.to(device) * z
        return torch.minimum(torch.maximum(theta, self.low.to(device)), self.high.to(device)).to(
            dtype
        )

    def log_prob(self, theta: Tensor) -> Tensor:
        """Log density of ``theta`` ``(..., d)``; ``-inf`` outside the box."""
        loc, scale = self.loc.to(theta), self.scale.to(theta)
        z = (theta - loc) / scale
        value = -0.5 * z**2 - torch.log(scale) - 0.5 * LOG_2PI - self._log_mass.to(theta)
        inside = ((theta >= self.low.to(theta)) & (theta <= self.high.to(theta))).all(dim=-1)
        return torch.where(inside, value.sum(dim=-1), -math.inf)

    def __repr__(self) -> str:
        return f"TruncatedDiagNormal(loc={self.loc.tolist()}, scale={self.scale.tolist()})"


def _log_diff_ndtr(a: Tensor, b: Tensor) -> Tensor:
    """``log(Phi(b) - Phi(a))`` for ``a < b`` with ``a <= 0`` (accurate in the lower tail)."""
    log_b, log_a = torch.special.log_ndtr(b), torch.special.log_ndtr(a)
    return log_b + torch.log1p(-torch.exp(log_a - log_b))
