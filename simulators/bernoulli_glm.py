r"""sbibm's ``bernoulli_glm``: a Bernoulli GLM of a spiking neuron, with sufficient statistics.

.. math:: y_t \mid \theta \sim \mathrm{Bernoulli}(\sigma(X_t^\top \theta)), \quad t = 1..100,
          \qquad x = X^\top y \in \mathbb{R}^{10},

with a fixed design matrix :math:`X` (100 x 10): a column of ones (offset) and nine delayed
copies of a white-noise stimulus, :math:`X_{t, j+1} = I_{t-j}` (zero before the stimulus).
The stimulus is ``np.random.RandomState(42).randn(100)`` in float32, as sbibm built it; the
stimulus and :math:`X` are identical to sbibm's stored ``stimulus_I.pt`` and
``design_matrix.pt`` (compared bit for bit with sbibm's files at commit f0bc440), and so is the
prior precision below (computed in float32 as sbibm does). The summary is sbibm's: the spike
count and the spike-triggered sums of the last nine lags (sbibm computes them with a
``conv1d``, which equals :math:`X^\top y`). The prior is
:math:`\mathcal{N}(0, B^{-1})` with precision :math:`B_{00} = 0.5` (offset) and
:math:`B_{1:, 1:} = F^\top F`, :math:`F = D^2 + \mathrm{diag}(\sqrt{k/9})`, :math:`D` the first
difference matrix (a smoothness prior on the filter).

**Reference posterior.** :math:`x = X^\top y` is sufficient:
:math:`\log p(y \mid \theta) = \theta^\top X^\top y - \sum_t \log(1 + e^{X_t^\top\theta})`, so the
likelihood of the summary is exact and the posterior equals that of the raw spikes
(``bernoulli_glm_raw`` shares its references). It is sampled by :mod:`simulators._mcmc`;
sbibm used Pólya-Gamma Gibbs sampling. Standard observations: seeds ``1_000_000 + k - 1``;
their :math:`\theta^*` (to float32 rounding) and spike trains are sbibm's.

References:
    Lueckmann et al., "Benchmarking Simulation-Based Inference", AISTATS 2021,
    https://arxiv.org/abs/2101.04653 (appendix T.5, Bernoulli GLM)

    Polson, Scott, Windle, "Bayesian inference for logistic models using Pólya-Gamma latent
    variables", JASA 108(504), 2013, https://arxiv.org/abs/1205.0310

    sbibm (commit f0bc440), ``sbibm/tasks/bernoulli_glm/task.py``
"""

from __future__ import annotations

import functools
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor

from . import register
from ._base import Simulator
from ._distributions import MultivariateNormal
from ._mcmc import SamplerConfig
from ._sbibm import StoredReference, make_target

__all__ = ["BernoulliGLM", "design_matrix", "log_likelihood", "prior_precision"]

STEPS, LAGS, STIMULUS_SEED = 100, 9, 42


@functools.cache
def design_matrix() -> Tensor:
    """sbibm's design matrix ``(100, 10)`` float32: ones, then the stimulus at lags 0..8."""
    stimulus = torch.from_numpy(
        np.random.RandomState(STIMULUS_SEED).randn(STEPS).astype(np.float32)
    )
    columns = [torch.ones(STEPS)]
    for lag in range(LAGS):
        columns.append(torch.cat([torch.zeros(lag), stimulus[: STEPS - lag]]))
    return torch.stack(columns, dim=1)


def prior_precision() -> Tensor:
    """sbibm's prior precision ``(10, 10)`` (computed in float32, as sbibm does)."""
    d = torch.eye(LAGS) - torch.diag(torch.ones(LAGS - 1), -1)
    f = d @ d + torch.diag(torch.arange(LAGS) / LAGS) ** 0.5
    precision = torch.zeros(LAGS + 1, LAGS + 1)
    precision[0, 0] = 0.5
    precision[1:, 1:] = f.T @ f
    return precision


def log_likelihood(theta: Tensor, x: Tensor) -> Tensor:
    """Exact :math:`\\log p(y \\mid \\theta)` from ``x = X^T y (B, 10)``, ``theta (B, N, 10)``."""
    design = design_matrix().double().to(theta.device)
    logits = theta.double() @ design.T  # (B, N, 100)
    return (theta.double() * x.double()[:, None, :]).sum(-1) - torch.nn.functional.softplus(
        logits
    ).sum(-1)


@register("bernoulli_glm")
class BernoulliGLM(StoredReference, Simulator):
    r"""sbibm's Bernoulli GLM task: spike count and spike-triggered sums of 100 time steps."""

    kind = "point"
    description = "sbibm bernoulli_glm: Bernoulli GLM neuron, 10 sufficient summary statistics"
    differentiable = False
    parameter_names = ("offset", *(f"filter{j}" for j in range(LAGS)))
    x_shape = (10,)
    raw: ClassVar[bool] = False
    sampler: ClassVar[SamplerConfig] = SamplerConfig(
        particles=2000, moves=5, chains=200, warmup=200, thin=20
    )

    def __init__(self):
        self.prior = MultivariateNormal(torch.zeros(LAGS + 1), prior_precision())

    def _simulate(self, theta: Tensor, generator: torch.Generator | None) -> Tensor:
        design = design_matrix().to(theta.device, theta.dtype)
        p = 1 / (1 + torch.exp(-(theta @ design.T)))  # as sbibm writes the logistic function
        spikes = (torch.rand(p.shape, generator=generator, device=p.device, dtype=p.dtype) < p).to(
            p.dtype
        )
        return spikes if self.raw else spikes @ design

    def summary(self, spikes: Tensor) -> Tensor:
        """sbibm's summary of raw spikes ``(n, 100) -> (n, 10)``: :math:`X^\\top y`."""
        return spikes @ design_matrix().to(spikes.device, spikes.dtype)

    def reference_target(self, x: Tensor):
        """The posterior of observations ``x (B, *x_shape)`` for :mod:`simulators._mcmc`."""
        summary = self.summary(x) if self.raw else x
        return make_target(self.prior, lambda theta: log_likelihood(theta, summary), x.shape[0])
