r"""sbibm's ``sir``: an epidemic (SIR) ODE observed through binomial counts.

.. math:: \dot S = -\beta S I / N, \quad \dot I = \beta S I / N - \gamma I, \quad
          \dot R = \gamma I, \qquad (S, I, R)(0) = (N - 1, 1, 0), \quad N = 10^6,

with :math:`\beta \sim \mathrm{LogNormal}(\log 0.4, 0.5)` (contact rate) and
:math:`\gamma \sim \mathrm{LogNormal}(\log 1/8, 0.2)` (recovery rate). The data are
:math:`x_k \sim \mathrm{Binomial}(1000, I(t_k)/N)` at the ten days
:math:`t_k = 0, 17, \dots, 153` (sbibm solves on days 0..160 and keeps every 17th value of
:math:`I`).

**Solver.** sbibm used Julia (``DifferentialEquations.jl``, Tsit5, tolerances ``1e-8``). Here
the ODE is solved in log coordinates :math:`(\log s, \log i)`, :math:`s = S/N`, :math:`i = I/N`
(:math:`R` is implied by :math:`S + I + R = N`):
:math:`\tfrac{d}{dt}\log s = -\beta i`, :math:`\tfrac{d}{dt}\log i = \beta s - \gamma`, by the
batched adaptive Dormand-Prince solver of :mod:`simulators._ode` (local error ``1e-8`` in the
log states), which the tests check against ``scipy.integrate.solve_ivp`` at tolerance
``1e-12``.

**Reference posterior.** The binomial likelihood is exact; the posterior of
:math:`(\log\beta, \log\gamma)` is sampled by :mod:`simulators._mcmc` (tempered SMC, then
random-walk and independence Metropolis chains); sbibm used slice sampling, a flow fitted to it
and rejection sampling. Standard observations: sbibm's seeds for this task (below); their
:math:`\theta^*` are sbibm's, their counts are not (today's ``torch.binomial`` consumes the
random stream differently from the torch sbibm ran). On sbibm's own counts (its
``observation.csv`` files 1-3) our sampler matches sbibm's stored reference draws at C2ST
0.510, 0.494 and 0.495 (``scripts/compare_sbibm_references.py``).

References:
    Lueckmann et al., "Benchmarking Simulation-Based Inference", AISTATS 2021,
    https://arxiv.org/abs/2101.04653 (appendix T.9, SIR)

    Kermack, McKendrick, "A contribution to the mathematical theory of epidemics", Proc. R.
    Soc. A 115, 1927.

    sbibm (commit f0bc440), ``sbibm/tasks/sir/task.py``
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

__all__ = ["SIR", "infected_fraction", "log_likelihood"]

POPULATION, COUNT = 1_000_000.0, 1000
TIMES = tuple(17.0 * k for k in range(10))


def _rhs(y: Tensor, params: tuple[Tensor, ...]) -> Tensor:
    # y = (log s, log i): d log s = -beta i, d log i = beta s - gamma, as a + b * exp(flip(y)).
    a, b = params
    return torch.addcmul(a, b, torch.exp(y.flip(-1)))


def infected_fraction(theta: Tensor) -> tuple[Tensor, Tensor]:
    """``log(I(t_k)/N)`` at the ten days, ``(n, 10)`` float64, and the ``failed`` mask ``(n,)``."""
    beta, gamma = theta[:, 0].double(), theta[:, 1].double()
    zero = torch.zeros_like(beta)
    y0 = torch.tensor([math.log1p(-1 / POPULATION), -math.log(POPULATION)], dtype=torch.float64)
    params = (torch.stack([zero, -gamma], dim=-1), torch.stack([-beta, beta], dim=-1))
    states, failed = solve(_rhs, y0.to(theta.device).expand(len(theta), 2), params, TIMES)
    return states[..., 1], failed


def log_likelihood(theta: Tensor, x: Tensor) -> Tensor:
    """Exact :math:`\\log p(x \\mid \\theta)` for ``theta (B, N, 2)`` and ``x (B, 10)``; ``(B, N)``.

    ``-inf`` where the ODE solve fails.
    """
    batch, n, _ = theta.shape
    log_i, failed = infected_fraction(theta.reshape(-1, 2))
    log_i = log_i.reshape(batch, n, -1).clamp(max=0.0)
    x = x.double()[:, None, :]
    log_choose = math.lgamma(COUNT + 1) - torch.lgamma(x + 1) - torch.lgamma(COUNT - x + 1)
    # log(1 - p) from log p without cancellation; 0 * log 0 counts as 0 (p = 1, x = COUNT).
    log_not = torch.log(-torch.expm1(log_i))
    misses = torch.where(x < COUNT, (COUNT - x) * log_not, 0.0)
    value = log_choose + x * log_i + misses
    value = value.sum(dim=-1)
    return torch.where(failed.reshape(batch, n), -math.inf, value)


@register("sir")
class SIR(StoredReference, Simulator):
    r"""sbibm's SIR task: binomial counts of the infected at ten days, 2 parameters."""

    kind = "point"
    description = "sbibm sir: SIR epidemic ODE, binomial(1000, I/N) counts at 10 days"
    differentiable = False
    parameter_names = ("beta", "gamma")
    x_shape = (10,)
    observation_seeds = (
        1000000, 1000001, 1000010, 1000011, 1000004, 1000005, 1000006, 1000013, 1000008, 1000009
    )  # fmt: skip
    sampler: ClassVar[SamplerConfig] = SamplerConfig(
        particles=2000, moves=5, chains=200, warmup=200, thin=10
    )

    def __init__(self):
        self.prior = LogNormal([math.log(0.4), math.log(1 / 8)], [0.5, 0.2])

    def _simulate(self, theta: Tensor, generator: torch.Generator | None) -> Tensor:
        log_i, failed = infected_fraction(theta)
        if bool(failed.any()):
            row = int(failed.nonzero()[0])
            raise ValueError(
                f"{self.name}: the ODE solver failed for theta = {theta[row].tolist()} (row {row})"
            )
        # Probabilities in theta's dtype, as sbibm's float32 I/N (it draws in float32).
        p = torch.exp(log_i).to(theta.dtype).clamp(0.0, 1.0)
        return torch.binomial(torch.full_like(p, COUNT), p, generator=generator)

    def reference_target(self, x: Tensor):
        """The posterior of observations ``x (B, 10)`` for :mod:`simulators._mcmc`."""
        return make_target(self.prior, lambda theta: log_likelihood(theta, x), x.shape[0])
