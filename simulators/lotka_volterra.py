r"""sbibm's ``lotka_volterra``: a predator-prey ODE observed with log-normal noise.

.. math:: \dot X = \alpha X - \beta X Y, \quad \dot Y = -\gamma Y + \delta X Y, \qquad
          (X, Y)(0) = (30, 1),

with :math:`\alpha, \gamma \sim \mathrm{LogNormal}(-0.125, 0.5)` and
:math:`\beta, \delta \sim \mathrm{LogNormal}(-3, 0.5)`. The data are
:math:`x \sim \mathrm{LogNormal}(\log \mathrm{clamp}(u, 10^{-10}, 10^4), 0.1)` elementwise for
:math:`u = (X(t_0..t_9), Y(t_0..t_9))` at :math:`t_k = 2.1 k` (sbibm solves on
:math:`[0, 20]` with output every 0.1 and keeps every 21st value), 20 values: the ten prey
values, then the ten predator values.

**Solver.** sbibm used Julia (``DifferentialEquations.jl``, Tsit5, tolerances ``1e-8``). Here
the ODE is solved in log coordinates, :math:`\tfrac{d}{dt}\log X = \alpha - \beta Y`,
:math:`\tfrac{d}{dt}\log Y = -\gamma + \delta X`, by the batched adaptive Dormand-Prince
solver of :mod:`simulators._ode`; log coordinates keep the populations positive and make the
clamp a clamp of :math:`\log u`. The tests check it against ``scipy.integrate.solve_ivp`` on the
original equations at tolerance ``1e-12``.

**Reference posterior.** The log-normal likelihood is exact; the posterior of
:math:`\log\theta` is sampled by :mod:`simulators._mcmc` (tempered SMC, then random-walk and
independence Metropolis chains); sbibm used slice sampling, a flow fitted to it and rejection
sampling. Standard observations: sbibm's seeds for this task (below); their :math:`\theta^*`
are sbibm's and their data agree with sbibm's to 1e-6 (relative; the ODE solvers differ).

References:
    Lueckmann et al., "Benchmarking Simulation-Based Inference", AISTATS 2021,
    https://arxiv.org/abs/2101.04653 (appendix T.10, Lotka-Volterra)

    Carpenter, "Predator-prey population dynamics: the Lotka-Volterra model in Stan", 2018,
    https://mc-stan.org/users/documentation/case-studies/lotka-volterra-predator-prey.html

    sbibm (commit f0bc440), ``sbibm/tasks/lotka_volterra/task.py``
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import Tensor

from . import register
from ._base import Simulator
from ._distributions import LogNormal
from ._mcmc import SamplerConfig
from ._ode import solve
from ._sbibm import StoredReference, make_target

__all__ = ["LotkaVolterra", "log_likelihood", "log_populations"]

TIMES = tuple(2.1 * k for k in range(10))
NOISE = 0.1  # standard deviation of log x
LOG_FLOOR, LOG_CEIL = math.log(1e-10), math.log(1e4)  # sbibm's clamp of the populations


def _rhs(y: Tensor, params: tuple[Tensor, ...]) -> Tensor:
    # y = (log X, log Y): d log X = alpha - beta Y, d log Y = -gamma + delta X.
    a, b = params
    return torch.addcmul(a, b, torch.exp(y.flip(-1)))


def log_populations(theta: Tensor) -> tuple[Tensor, Tensor]:
    """Clamped ``log u`` ``(n, 20)`` float64 (prey then predators) and the ``failed`` mask."""
    alpha, beta, gamma, delta = theta.double().unbind(dim=-1)
    params = (torch.stack([alpha, -gamma], dim=-1), torch.stack([-beta, delta], dim=-1))
    y0 = torch.tensor([math.log(30.0), 0.0], dtype=torch.float64, device=theta.device)
    states, failed = solve(_rhs, y0.expand(len(theta), 2), params, TIMES)
    return states.transpose(1, 2).reshape(len(theta), -1).clamp(LOG_FLOOR, LOG_CEIL), failed


def log_likelihood(theta: Tensor, x: Tensor) -> Tensor:
    """Exact :math:`\\log p(x \\mid \\theta)` for ``theta (B, N, 4)`` and ``x (B, 20)``; ``(B, N)``.

    ``-inf`` where the ODE solve fails.
    """
    batch, n, _ = theta.shape
    mean, failed = log_populations(theta.reshape(-1, 4))
    log_x = torch.log(x.double())[:, None, :]
    z = (log_x - mean.reshape(batch, n, -1)) / NOISE
    value = (-0.5 * z**2 - log_x - math.log(NOISE * math.sqrt(2 * math.pi))).sum(dim=-1)
    return torch.where(failed.reshape(batch, n), -math.inf, value)


@register("lotka_volterra")
class LotkaVolterra(StoredReference, Simulator):
    r"""sbibm's Lotka-Volterra task: log-normal observations of predator-prey dynamics."""

    kind = "point"
    description = "sbibm lotka_volterra: predator-prey ODE, log-normal noise, 10 times x 2"
    differentiable = True
    parameter_names = ("alpha", "beta", "gamma", "delta")
    x_shape = (20,)
    observation_seeds = (
        1000020, 1000030, 1000034, 1000013, 1000004, 1000011, 1000012, 1000039, 1000041, 1000009
    )  # fmt: skip
    sampler: ClassVar[SamplerConfig] = SamplerConfig(
        particles=2000, moves=5, chains=200, warmup=200, thin=10
    )

    def __init__(self):
        self.prior = LogNormal([-0.125, -3.0, -0.125, -3.0], [0.5] * 4)

    def _simulate(self, theta: Tensor, generator: torch.Generator | None) -> Tensor:
        mean, failed = log_populations(theta)
        if bool(failed.any()):
            row = int(failed.nonzero()[0])
            raise ValueError(
                f"{self.name}: the ODE solver failed for theta = {theta[row].tolist()} (row {row})"
            )
        # As sbibm: log of the clamped populations in theta's dtype, then a normal draw
        # (written loc + scale * z, which torch.normal equals, to keep pathwise gradients).
        loc = torch.log(torch.exp(mean).to(theta.dtype).clamp(1e-10, 1e4))
        noise = torch.randn(loc.shape, generator=generator, device=loc.device, dtype=loc.dtype)
        return torch.exp(loc + NOISE * noise)

    def reference_target(self, x: Tensor):
        """The posterior of observations ``x (B, 20)`` for :mod:`simulators._mcmc`."""
        return make_target(self.prior, lambda theta: log_likelihood(theta, x), x.shape[0])
