r"""sbibm's ``slcp``: simple likelihood, complex posterior (5 parameters, 4 bivariate draws).

.. math:: \theta \sim \mathcal{U}([-3, 3]^5), \qquad
          x_j \mid \theta \sim \mathcal{N}(m_\theta, S_\theta), \quad j = 1..4,

with :math:`m_\theta = (\theta_1, \theta_2)`, :math:`s_1 = \theta_3^2`, :math:`s_2 = \theta_4^2`,
:math:`\rho = \tanh\theta_5` and :math:`S_\theta = \begin{pmatrix} s_1^2 + \epsilon & \rho s_1
s_2 \\ \rho s_1 s_2 & s_2^2 + \epsilon\end{pmatrix}`, :math:`\epsilon = 10^{-6}` as in sbibm;
:math:`x = (x_1, \dots, x_4)` flattened to 8 values (draw by draw).

**Reference posterior.** The likelihood is exact and cheap; the posterior has (at least) four
modes, the sign flips of :math:`\theta_3` and :math:`\theta_4`, which leave prior and
likelihood unchanged. It is sampled by :mod:`simulators._mcmc` (tempered SMC, then 200
random-walk chains), a uniformly random sign flip of :math:`(\theta_3, \theta_4)` is applied to
each draw so the four symmetric modes get exactly equal mass, and R-hat/ESS are computed on
:math:`(\theta_1, \theta_2, |\theta_3|, |\theta_4|, \theta_5)`. sbibm instead used sampling
importance resampling from the prior, a flow fitted to it and rejection sampling.

Standard observations: sbibm's seeds for this task (below); identical to sbibm's stored ones
(to the last digits of its CSV files).

References:
    Lueckmann et al., "Benchmarking Simulation-Based Inference", AISTATS 2021,
    https://arxiv.org/abs/2101.04653 (appendix T.3, SLCP)

    Papamakarios, Sterratt, Murray, "Sequential Neural Likelihood", AISTATS 2019,
    https://arxiv.org/abs/1805.07226 (the task's origin)

    sbibm (commit f0bc440), ``sbibm/tasks/slcp/task.py``
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import Tensor

from . import register
from ._base import BoxUniform, Simulator
from ._mcmc import SamplerConfig
from ._sbibm import StoredReference, make_target

__all__ = ["SLCP", "log_likelihood"]

EPS = 1e-6  # sbibm's diagonal jitter
DRAWS = 4


def _moments(theta: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Mean ``(..., 2)`` and covariance entries ``S11, S22, S12`` of the data given ``theta``."""
    s1, s2 = theta[..., 2] ** 2, theta[..., 3] ** 2
    rho = torch.tanh(theta[..., 4])
    return theta[..., :2], s1**2 + EPS, s2**2 + EPS, rho * s1 * s2


def log_likelihood(theta: Tensor, x: Tensor) -> Tensor:
    """Exact :math:`\\log p(x \\mid \\theta)` for ``theta (B, N, 5)`` and ``x (B, 8)``; ``(B, N)``."""
    mean, a, c, b = _moments(theta.double())
    r = x.double().reshape(x.shape[0], 1, DRAWS, 2) - mean[..., None, :]
    det = a * c - b**2
    quad = (c[..., None] * r[..., 0] ** 2 - 2 * b[..., None] * r[..., 0] * r[..., 1]) + (
        a[..., None] * r[..., 1] ** 2
    )
    quad = quad.sum(dim=-1) / det
    return -0.5 * quad - 0.5 * DRAWS * torch.log(det) - DRAWS * math.log(2 * math.pi)


def _fold(theta: Tensor) -> Tensor:
    # The data see theta3 and theta4 only through their squares.
    return torch.cat([theta[..., :2], theta[..., 2:4].abs(), theta[..., 4:]], dim=-1)


def _flip(theta: Tensor, generator: torch.Generator) -> Tensor:
    signs = torch.where(torch.rand(*theta.shape[:-1], 2, generator=generator) < 0.5, -1.0, 1.0)
    return torch.cat([theta[..., :2], theta[..., 2:4] * signs.to(theta), theta[..., 4:]], dim=-1)


@register("slcp")
class SLCP(StoredReference, Simulator):
    """sbibm's SLCP task: a 2-d Gaussian whose mean and covariance are functions of ``theta``."""

    kind = "point"
    description = "sbibm slcp: 4 bivariate Gaussian draws, mean/covariance from 5 parameters"
    differentiable = True
    parameter_names = tuple(f"theta{i + 1}" for i in range(5))
    x_shape = (2 * DRAWS,)
    observation_seeds = (
        1000000, 1000001, 1000002, 1000003, 1000004, 1000005, 1000010, 1000012, 1000008, 1000009
    )  # fmt: skip
    #: Sizes of the stored references' sampler (chains x draws = 20,000).
    sampler: ClassVar[SamplerConfig] = SamplerConfig(
        particles=8000, moves=20, ess_fraction=0.8, components=24, chains=200, warmup=500, thin=40
    )

    def __init__(self):
        self.prior = BoxUniform([-3.0] * 5, [3.0] * 5)

    def _simulate(self, theta: Tensor, generator: torch.Generator | None) -> Tensor:
        mean, a, c, b = _moments(theta)
        cov = torch.stack([torch.stack([a, b], -1), torch.stack([b, c], -1)], -2)  # (n, 2, 2)
        # As sbibm's pyro MultivariateNormal: Cholesky factor times standard normal draws.
        tril = torch.linalg.cholesky(cov)[:, None]
        eps = torch.randn(
            theta.shape[0], DRAWS, 2, generator=generator, device=theta.device, dtype=theta.dtype
        )
        draws = mean[:, None, :] + (tril @ eps[..., None])[..., 0]
        return draws.reshape(-1, 2 * DRAWS)

    def reference_target(self, x: Tensor):
        """The posterior of observations ``x (B, 8)`` for :mod:`simulators._mcmc`."""
        return make_target(
            self.prior,
            lambda theta: log_likelihood(theta, x),
            x.shape[0],
            invariant=_fold,
            symmetrize=_flip,
        )
