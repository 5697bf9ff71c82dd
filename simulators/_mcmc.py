r"""Reference-posterior MCMC on an exact likelihood, batched over observations and chains.

Two stages, both one tensor program over ``B`` observations at once:

1. **Tempered SMC** (Del Moral, Doucet, Jasra 2006): ``particles`` prior draws are moved from
   the prior to the posterior through :math:`p(\theta) L(\theta)^{\beta}`, each next
   :math:`\beta` chosen so that the effective sample size of the incremental weights is
   ``ess_fraction`` of the particles (Jasra et al. 2011), followed by systematic resampling and
   ``moves`` random-walk Metropolis moves whose covariance is the particles'. It finds every
   mode with its mass and needs no starting point.
2. **Metropolis-Hastings chains**: ``chains`` chains per observation start from distinct
   final particles. Each step is, with probability ``independence``, an independence proposal
   from a Student-t mixture fitted to the final particles (:mod:`simulators._mixture`; it
   jumps between modes), else a random walk with the particles' covariance scaled by a factor
   adapted (towards acceptance 0.3) during ``warmup`` steps and then frozen. Every
   ``thin``-th state is kept.

The convergence diagnostics (:mod:`simulators._diagnostics`) are the rank-normalized
split-:math:`\hat R` and the bulk effective sample size of Vehtari et al. (2021) over the kept
draws of all chains.

References:
    Del Moral, Doucet, Jasra, "Sequential Monte Carlo samplers", JRSS B 68(3), 2006,
    https://arxiv.org/abs/cond-mat/0212648

    Jasra, Stephens, Doucet, Tsagaris, "Inference for Lévy-driven stochastic volatility models
    via adaptive sequential Monte Carlo", Scand. J. Stat. 38(1), 2011.

    Vehtari, Gelman, Simpson, Carpenter, Bürkner, "Rank-normalization, folding, and
    localization: an improved R-hat for assessing the convergence of MCMC", Bayesian Analysis
    16(2), 2021, https://arxiv.org/abs/1903.08008

    Tierney, "Markov chains for exploring posterior distributions", Annals of Statistics
    22(4), 1994 (mixtures of Metropolis-Hastings kernels).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from ._diagnostics import diagnostics
from ._mixture import TMixture

__all__ = ["Draws", "SamplerConfig", "Target", "sample_posterior"]

ACCEPT_TARGET = 0.3  # random-walk acceptance aimed at (near-optimal in 2-10 dimensions)


@dataclass(frozen=True)
class Target:
    """A batch of ``B`` posteriors in unconstrained coordinates ``u``.

    Attributes:
        log_prior: ``(B, N, d) -> (B, N)``; ``-inf`` outside the support.
        log_likelihood: ``(B, N, d) -> (B, N)``, row ``b`` for observation ``b``; ``-inf``
            where the model cannot be evaluated (e.g. a failed ODE solve).
        sample_prior: ``(N, generator) -> (B, N, d)``, prior draws of ``u``.
        to_theta: ``u -> theta`` (elementwise in the leading dimensions).
        invariant: Optional ``theta (..., d) -> (..., k)`` on which the diagnostics are
            computed, for posteriors with known symmetries (``None``: ``theta`` itself).
        symmetrize: Optional ``(theta (B, n, d), generator) -> theta``: applies a random
            element of the posterior's symmetry group to each draw, so that modes related by
            the symmetry get exactly equal mass whatever the chains visited.
    """

    log_prior: Callable[[Tensor], Tensor]
    log_likelihood: Callable[[Tensor], Tensor]
    sample_prior: Callable[[int, torch.Generator], Tensor]
    to_theta: Callable[[Tensor], Tensor]
    invariant: Callable[[Tensor], Tensor] | None = None
    symmetrize: Callable[[Tensor, torch.Generator], Tensor] | None = None


@dataclass(frozen=True)
class SamplerConfig:
    """Sizes of the sampler; the defaults are the stored references' unless a task says."""

    particles: int = 2000
    moves: int = 5
    ess_fraction: float = 0.5
    chains: int = 200
    warmup: int = 200
    thin: int = 10
    components: int = 8
    independence: float = 0.5
    max_stages: int = 1000

    def __post_init__(self):
        for field in (
            "particles",
            "moves",
            "chains",
            "warmup",
            "thin",
            "components",
            "max_stages",
        ):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"SamplerConfig: {field} must be an integer >= 1, got {value!r}")
        if not 0 < self.ess_fraction < 1:
            raise ValueError(
                f"SamplerConfig: ess_fraction must be in (0, 1), got {self.ess_fraction}"
            )
        if not 0 <= self.independence < 1:
            raise ValueError(
                f"SamplerConfig: independence must be in [0, 1), got {self.independence}"
            )
        if self.chains > self.particles:
            raise ValueError("SamplerConfig: chains must not exceed particles")


@dataclass(frozen=True)
class Draws:
    """Posterior draws and diagnostics for ``B`` observations.

    Attributes:
        samples: ``(B, n, d)`` float64 draws of ``theta``, rows in random order.
        rhat: ``(B, k)`` rank-normalized split-R-hat per (invariant) coordinate.
        ess: ``(B, k)`` bulk effective sample size per coordinate (out of ``n``).
        acceptance: ``(B,)`` mean acceptance rate of the chains after warm-up.
        stages: Number of tempering stages.
        evaluations: Likelihood evaluations per observation.
    """

    samples: Tensor
    rhat: Tensor
    ess: Tensor
    acceptance: Tensor
    stages: int
    evaluations: int


def sample_posterior(
    target: Target, batch: int, n: int, config: SamplerConfig, generator: torch.Generator
) -> Draws:
    """``n`` draws from each of the ``batch`` posteriors of ``target`` (see the module)."""
    draws_per_chain = math.ceil(n / config.chains)
    u, lp, ll, stages = _temper(target, batch, config, generator)
    chol = _proposal(u)
    seed = int(torch.randint(2**31 - 1, (1,), generator=generator))
    mixture = TMixture.fit(u, config.components, seed)
    start = torch.argsort(torch.rand(u.shape[:2], generator=generator), dim=1)[:, : config.chains]
    u = u.gather(1, start[..., None].expand(-1, -1, u.shape[-1]))
    state = (u, lp.gather(1, start), ll.gather(1, start), mixture.log_prob(u))
    kept, acceptance = _chains(target, state, chol, mixture, config, draws_per_chain, generator)
    theta = target.to_theta(kept)  # (B, C, S, d)
    watched = theta if target.invariant is None else target.invariant(theta)
    rhat, ess = diagnostics(watched)
    flat = theta.reshape(batch, -1, theta.shape[-1])
    order = torch.argsort(torch.rand(flat.shape[:2], generator=generator), dim=1)[:, :n]
    samples = flat.gather(1, order[..., None].expand(-1, -1, flat.shape[-1]))
    if target.symmetrize is not None:
        samples = target.symmetrize(samples, generator)
    evaluations = config.particles * (1 + stages * config.moves) + config.chains * (
        config.warmup + draws_per_chain * config.thin
    )
    return Draws(samples, rhat, ess, acceptance, stages, evaluations)


def _log_target(ll: Tensor, lp: Tensor, beta: Tensor) -> Tensor:
    # 0 * -inf must stay -inf: a failed likelihood evaluation is excluded at every temperature.
    tempered = torch.where(ll == -math.inf, -math.inf, beta[:, None] * ll)
    return lp + tempered


def _evaluate(target: Target, u: Tensor) -> tuple[Tensor, Tensor]:
    lp = target.log_prior(u)
    ll = target.log_likelihood(u)
    ll = torch.where(torch.isnan(ll) | torch.isinf(lp), -math.inf, ll)
    return lp, ll


def _temper(target: Target, batch: int, config: SamplerConfig, generator: torch.Generator):
    u = target.sample_prior(config.particles, generator).double()
    lp, ll = _evaluate(target, u)
    beta = torch.zeros(batch, dtype=torch.float64)
    scale = torch.full((batch,), 2.38 / math.sqrt(u.shape[-1]), dtype=torch.float64)
    stages = 0
    while bool((beta < 1).any()):
        if stages == config.max_stages:
            raise RuntimeError(f"SMC did not reach the posterior in {stages} stages")
        stages += 1
        new = _next_beta(ll, beta, config.ess_fraction)
        index = _systematic(
            torch.where(ll == -math.inf, -math.inf, (new - beta)[:, None] * ll), generator
        )
        u = u.gather(1, index[..., None].expand(-1, -1, u.shape[-1]))
        lp, ll, beta = lp.gather(1, index), ll.gather(1, index), new
        chol = _proposal(u)
        rates = []
        for _ in range(config.moves):
            u, lp, ll, accepted = _rwm(
                target, (u, lp, ll), chol * scale[:, None, None], beta, generator
            )
            rates.append(accepted.double().mean(dim=1))
        rate = torch.stack(rates).mean(dim=0)
        scale = scale * torch.exp(rate - ACCEPT_TARGET)  # a cheap per-stage correction
    return u, lp, ll, stages


def _next_beta(ll: Tensor, beta: Tensor, fraction: float) -> Tensor:
    """The largest next temperature whose incremental weights keep ``fraction`` ESS."""

    def ess(delta: Tensor) -> Tensor:
        logw = torch.where(ll == -math.inf, -math.inf, delta[:, None] * ll)
        return torch.exp(2 * torch.logsumexp(logw, 1) - torch.logsumexp(2 * logw, 1))

    need = fraction * ll.shape[1]
    low, high = torch.zeros_like(beta), 1 - beta
    done = ess(high) >= need
    for _ in range(60):  # bisection to ~1e-18 of the remaining range
        mid = (low + high) / 2
        enough = ess(mid) >= need
        low, high = torch.where(enough, mid, low), torch.where(enough, high, mid)
    return torch.where(done, torch.ones_like(beta), beta + torch.clamp(low, min=1e-12)).clamp(
        max=1
    )


def _systematic(logw: Tensor, generator: torch.Generator) -> Tensor:
    """Systematic resampling indices ``(B, N)`` from log weights ``(B, N)``."""
    batch, n = logw.shape
    w = torch.softmax(logw, dim=1)
    cumulative = torch.cumsum(w, dim=1)
    cumulative[:, -1] = 1.0
    offset = torch.rand(batch, 1, generator=generator, dtype=torch.float64)
    positions = (offset + torch.arange(n, dtype=torch.float64)) / n
    return torch.searchsorted(cumulative, positions.contiguous()).clamp(max=n - 1)


def _proposal(u: Tensor) -> Tensor:
    """Cholesky factor ``(B, d, d)`` of the particles' covariance (floored for stability)."""
    centred = u - u.mean(dim=1, keepdim=True)
    cov = centred.transpose(1, 2) @ centred / max(u.shape[1] - 1, 1)
    floor = 1e-12 * cov.diagonal(dim1=1, dim2=2).mean(dim=1).clamp_min(1e-30)
    eye = torch.eye(u.shape[-1], dtype=u.dtype)
    chol, info = torch.linalg.cholesky_ex(cov + floor[:, None, None] * eye)
    diag = torch.diag_embed(cov.diagonal(dim1=1, dim2=2).clamp_min(1e-30).sqrt())
    return torch.where((info > 0)[:, None, None], diag, chol)


def _rwm(target: Target, state: tuple, chol: Tensor, beta: Tensor, generator: torch.Generator):
    """One random-walk Metropolis step of every particle ``(B, N, d)`` at temperature ``beta``."""
    u, lp, ll = state
    z = torch.randn(u.shape, generator=generator, dtype=u.dtype)
    proposal = u + z @ chol.transpose(1, 2)
    lp_new, ll_new = _evaluate(target, proposal)
    log_ratio = _log_target(ll_new, lp_new, beta) - _log_target(ll, lp, beta)
    accept = _accept(log_ratio, generator)
    u = torch.where(accept[..., None], proposal, u)
    return u, torch.where(accept, lp_new, lp), torch.where(accept, ll_new, ll), accept


def _accept(log_ratio: Tensor, generator: torch.Generator) -> Tensor:
    log_u = torch.log(torch.rand(log_ratio.shape, generator=generator, dtype=log_ratio.dtype))
    return log_u < torch.nan_to_num(log_ratio, nan=-math.inf)


def _mh(target: Target, state: tuple, chol: Tensor, mixture: TMixture, p_ind: float, generator):
    """One step of every chain: an independence proposal (probability ``p_ind``) or a walk.

    Returns the new state, and which chains made a walk step and which accepted.
    """
    u, lp, ll, lq = state
    z = torch.randn(u.shape, generator=generator, dtype=u.dtype)
    walk = u + z @ chol.transpose(1, 2)
    independent = torch.rand(u.shape[:2], generator=generator, dtype=u.dtype) < p_ind
    proposal = torch.where(independent[..., None], mixture.sample(u.shape[1], generator), walk)
    lp_new, ll_new = _evaluate(target, proposal)
    lq_new = mixture.log_prob(proposal)
    log_ratio = lp_new + ll_new - lp - ll + torch.where(independent, lq - lq_new, 0.0)
    accept = _accept(log_ratio, generator)
    keep = lambda new, old: torch.where(accept, new, old)  # noqa: E731
    u = torch.where(accept[..., None], proposal, u)
    return (u, keep(lp_new, lp), keep(ll_new, ll), keep(lq_new, lq)), ~independent, accept


def _chains(target, state, chol, mixture, config, draws, generator) -> tuple[Tensor, Tensor]:
    """Runs the chains: adaptive warm-up, then ``draws`` kept states every ``thin`` steps."""
    batch = chol.shape[0]
    log_scale = torch.full(
        (batch,), math.log(2.38 / math.sqrt(chol.shape[-1])), dtype=torch.float64
    )
    for step in range(config.warmup):
        scaled = chol * torch.exp(log_scale)[:, None, None]
        state, walked, accepted = _mh(
            target, state, scaled, mixture, config.independence, generator
        )
        rate = (accepted & walked).double().sum(1) / walked.double().sum(1).clamp_min(1)
        # Robbins-Monro on the log scale of the walk, step sizes decaying as t^-0.6.
        log_scale = log_scale + (rate - ACCEPT_TARGET) / (1 + step) ** 0.6
    scaled = chol * torch.exp(log_scale)[:, None, None]
    kept, rate = [], torch.zeros(batch, dtype=torch.float64)
    for step in range(draws * config.thin):
        state, _, accepted = _mh(target, state, scaled, mixture, config.independence, generator)
        rate = rate + accepted.double().mean(dim=1)
        if (step + 1) % config.thin == 0:
            kept.append(state[0])
    return torch.stack(kept, dim=2), rate / (draws * config.thin)
