r"""Gaussian location model with a conjugate Gaussian prior.

.. math:: \theta \sim \mathcal{N}(\mu_0, \sigma_0^2 I_d), \qquad
          x_i \mid \theta \sim \mathcal{N}(\theta, \sigma^2 I_d), \quad i = 1..n_{obs}.

The posterior given an observed set :math:`x_{1..n}` is Gaussian with precision
:math:`1/\sigma_0^2 + n/\sigma^2` per coordinate and mean
:math:`(\mu_0/\sigma_0^2 + \sum_i x_i/\sigma^2) / (1/\sigma_0^2 + n/\sigma^2)`
(e.g. Bishop, *Pattern Recognition and Machine Learning*, 2006, eq. 2.141-2.142).

sbibm's ``gaussian_linear`` task (Lueckmann et al., "Benchmarking Simulation-Based
Inference", AISTATS 2021, https://arxiv.org/abs/2101.04653) is exactly
``get_simulator("gaussian", dim=10, prior_var=0.1, noise_var=0.1, n_obs=1)``:
prior :math:`\mathcal{N}(0, 0.1 I_{10})`, :math:`x \mid \theta \sim \mathcal{N}(\theta, 0.1 I_{10})`,
one observation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import Tensor

from . import register
from ._base import DiagNormal, Simulator, _as_vector, check_positive_float, check_positive_int

__all__ = ["Gaussian"]


@register("gaussian")
class Gaussian(Simulator):
    r"""Gaussian location model, :math:`x \sim \mathcal{N}(\theta, \sigma^2 I)`, analytic posterior.

    Arguments:
        dim: Dimension :math:`d` of :math:`\theta` and of each observation.
        prior_mean: Prior mean :math:`\mu_0` (scalar, broadcast to all coordinates).
        prior_var: Prior variance :math:`\sigma_0^2` per coordinate.
        noise_var: Observation-noise variance :math:`\sigma^2` per coordinate.
        n_obs: Default number of observed samples.
        theta_star: True parameters of the observed data (scalar or ``dim`` values); by default
            ``0.5, -0.5, 0.5, ...`` scaled by the prior standard deviation.
    """

    kind = "point"
    description = "Gaussian location model x ~ N(theta, noise_var I) with an analytic posterior"
    differentiable = True
    option_values: ClassVar[dict[str, tuple]] = {
        "dim": (1, 10),
        "n_obs": (1, 100),
        "prior_var": (0.1,),
        "noise_var": (0.1, 4.0),
        "prior_mean": (1.0,),
        "theta_star": (0.2,),
    }

    def __init__(
        self,
        *,
        dim: int = 2,
        prior_mean: float = 0.0,
        prior_var: float = 1.0,
        noise_var: float = 1.0,
        n_obs: int = 1000,
        theta_star: float | Sequence[float] | None = None,
    ):
        check_positive_int("gaussian", "dim", dim)
        check_positive_int("gaussian", "n_obs", n_obs)
        check_positive_float("gaussian", "prior_var", prior_var)
        check_positive_float("gaussian", "noise_var", noise_var)
        if not (isinstance(prior_mean, int | float) and math.isfinite(prior_mean)):
            raise ValueError(f"gaussian: prior_mean must be a finite number, got {prior_mean!r}")
        self.dim, self.n_obs = dim, n_obs
        self.noise_var = float(noise_var)
        self.parameter_names = tuple(f"theta{i + 1}" for i in range(dim))
        self.x_shape = (dim,)
        self.prior = DiagNormal(
            torch.full((dim,), float(prior_mean), dtype=torch.float64),
            torch.full((dim,), math.sqrt(prior_var), dtype=torch.float64),
        )
        if theta_star is None:
            signs = torch.tensor([0.5 if i % 2 == 0 else -0.5 for i in range(dim)])
            theta_star = prior_mean + math.sqrt(prior_var) * signs
        try:
            star = _as_vector(theta_star, dim)
        except ValueError as error:
            raise ValueError(f"gaussian: theta_star: {error}") from None
        if not torch.isfinite(star).all():
            raise ValueError(f"gaussian: theta_star must be finite, got {star.tolist()}")
        self.true_parameters = star.float()

    def _simulate(self, theta: Tensor, generator: torch.Generator | None) -> Tensor:
        noise = torch.randn(
            theta.shape, generator=generator, device=theta.device, dtype=theta.dtype
        )
        return theta + math.sqrt(self.noise_var) * noise

    def summarize(self, x: Tensor) -> Tensor:
        """The set mean, ``(..., m, d) -> (..., d)``: a sufficient statistic for ``theta``."""
        return x.mean(dim=-2)

    def posterior(self, x_obs: Tensor) -> DiagNormal:
        """The exact posterior :math:`p(\\theta \\mid x_{1..n})` for an observed set ``(n, d)``."""
        x = torch.as_tensor(x_obs, dtype=torch.float64).cpu()
        if x.ndim != 2 or x.shape[1] != self.dim or x.shape[0] < 1:
            raise ValueError(
                f"gaussian: x_obs must have shape (n >= 1, {self.dim}), got {tuple(x.shape)}"
            )
        if not torch.isfinite(x).all():
            raise ValueError("gaussian: x_obs must be finite")
        prior_precision = 1.0 / self.prior.scale**2
        precision = prior_precision + x.shape[0] / self.noise_var
        mean = (self.prior.loc * prior_precision + x.sum(dim=0) / self.noise_var) / precision
        return DiagNormal(mean, precision.rsqrt())
