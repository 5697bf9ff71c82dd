"""Accuracy of the sbibm tasks' reference posteriors (slow: ``pytest -m slow``).

Three checks per task:

- **Independent route**: the reference posterior (exact sampler, or the stored MCMC draws)
  against a sampler that shares nothing with it but the likelihood, by C2ST
  (:func:`avo_bench.metrics.c2st`, 0.5 = indistinguishable): rejection sampling
  (``gaussian_linear_uniform``, ``gaussian_mixture``), a fine grid on the exact likelihood
  (``two_moons``, ``sir``), a grid on the closed-form marginal of the covariance parameters
  with the mean drawn from its Gaussian conditional (``slcp``), importance sampling from a
  Laplace approximation (``bernoulli_glm``, ``lotka_volterra``), and the MCMC sampler on the
  closed-form ``gaussian_linear`` posterior.
- **Simulation-based calibration** (Talts et al. 2018, https://arxiv.org/abs/1804.06788): the
  rank of θ among posterior draws given data simulated at θ, for a few dozen prior draws θ,
  must be uniform (a KS test on the pooled ranks).
- **Posterior predictive check**: the observed data of the ten standard observations lie
  inside the central 99.5% of data simulated from their reference posteriors (allowing 5%
  of the coordinates outside).
"""

import math

import pytest
import torch
from scipy import optimize, stats

from avo_bench.metrics import c2st
from simulators import get_simulator
from simulators._mcmc import SamplerConfig, sample_posterior
from simulators._sbibm import MCMCPosterior, make_target
from simulators.two_moons import log_likelihood as two_moons_likelihood

pytestmark = pytest.mark.slow

N = 3000  # draws per side of each C2ST
C2ST_MAX = 0.55  # about the C2ST floor at N (two samples of one distribution) plus its noise
NAMES = (
    "gaussian_linear",
    "gaussian_linear_uniform",
    "gaussian_mixture",
    "two_moons",
    "slcp",
    "bernoulli_glm",
    "sir",
    "lotka_volterra",
)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def reference(name: str, number: int) -> tuple[torch.Tensor, torch.Tensor]:
    sim = get_simulator(name)
    x = sim.observation(number)[1]
    return x.double(), sim.posterior(x).sample((N,), generator=gen(number)).double()


def grid_sample(log_density, low, high, cells, n, generator) -> torch.Tensor:
    """``n`` draws from a density on a box by a twice-refined grid (cells ∝ mass, then
    uniform within the cell)."""
    low, high = (
        torch.as_tensor(low, dtype=torch.float64),
        torch.as_tensor(high, dtype=torch.float64),
    )
    for _ in range(3):
        axes = [
            torch.linspace(lo, hi, cells + 1, dtype=torch.float64)
            for lo, hi in zip(low, high, strict=True)
        ]
        centres = torch.cartesian_prod(*[(a[1:] + a[:-1]) / 2 for a in axes]).reshape(-1, len(low))
        logp = torch.cat([log_density(c) for c in centres.split(200_000)])
        logp = torch.nan_to_num(logp, nan=-math.inf)
        keep = centres[logp > logp.max() - 30]
        width = (high - low) / cells
        low, high = (
            torch.maximum(keep.min(0).values - 2 * width, low),
            torch.minimum(keep.max(0).values + 2 * width, high),
        )
    index = torch.multinomial(torch.softmax(logp, 0), n, replacement=True, generator=generator)
    jitter = torch.rand(n, len(low), generator=generator, dtype=torch.float64) - 0.5
    return centres[index] + jitter * width


def importance_sample(log_post, mode, n_pool, n, generator, df=5, inflate=1.3) -> torch.Tensor:
    """``n`` draws by importance resampling from a Student-t around ``mode`` with the
    inverse Hessian of ``log_post`` there as scale (a Laplace approximation)."""
    d = len(mode)
    hessian = torch.autograd.functional.hessian(lambda u: log_post(u[None])[0], mode)
    scale = torch.linalg.cholesky(torch.linalg.inv(-hessian)) * inflate
    z = torch.randn(n_pool, d, generator=generator, dtype=torch.float64)
    chi2 = (torch.randn(n_pool, df, generator=generator, dtype=torch.float64) ** 2).sum(1)
    u = mode + (z @ scale.T) * torch.sqrt(df / chi2)[:, None]
    proposal = torch.distributions.MultivariateNormal(
        torch.zeros(d, dtype=torch.float64), scale_tril=scale
    )
    quad = -2 * (
        proposal.log_prob(u - mode) - proposal.log_prob(torch.zeros(d, dtype=torch.float64))
    )
    log_q = -(df + d) / 2 * torch.log1p(quad / df)
    log_w = torch.cat([log_post(c) for c in u.split(20_000)]) - log_q
    w = torch.softmax(torch.nan_to_num(log_w, nan=-math.inf), 0)
    assert 1 / (w**2).sum() > 10 * n, "importance sampling too inefficient for a fair check"
    return u[torch.multinomial(w, n, replacement=True, generator=generator)]


def mode_of(log_post, start) -> torch.Tensor:
    """The posterior mode by BFGS with autograd gradients (through the ODE solver too)."""

    def loss(u):
        u = torch.tensor(u, requires_grad=True)
        value = -log_post(u[None])[0]
        (grad,) = torch.autograd.grad(value, u)
        return value.item(), grad.numpy()

    result = optimize.minimize(
        loss, start.numpy(), jac=True, method="BFGS", options={"gtol": 1e-8}
    )
    return torch.tensor(result.x)


# independent routes ---------------------------------------------------------------------


def route_gaussian_linear(x, generator):
    sim = get_simulator("gaussian_linear")
    prior = sim.prior

    def loglik(theta):
        return (-0.5 * (theta - x[:, None]) ** 2 / 0.1).sum(-1)

    config = SamplerConfig(particles=1000, chains=100, warmup=200, thin=10, components=4)
    return sample_posterior(make_target(prior, loglik, 1), 1, N, config, generator).samples[0]


def route_gaussian_linear_uniform(x, generator):
    draws = x[0] + math.sqrt(0.1) * torch.randn(
        400 * N, 10, generator=generator, dtype=torch.float64
    )
    return draws[(draws.abs() <= 1).all(1)][:N]


def route_gaussian_mixture(x, generator):
    scale = torch.where(torch.rand(40 * N, 1, generator=generator) < 0.5, 1.0, 0.1).double()
    draws = x[0] + scale * torch.randn(40 * N, 2, generator=generator, dtype=torch.float64)
    return draws[(draws.abs() <= 10).all(1)][:N]


def route_two_moons(x, generator):
    return grid_sample(
        lambda t: two_moons_likelihood(t, x[0]), [-1, -1], [1, 1], 800, N, generator
    )


def route_slcp(x, generator):
    # p(theta3..5 | x) ∝ |S|^{-3/2} exp(-tr(S^-1 W)/2) P(mean in box) on the folded box; the mean
    # given theta3..5 is N(xbar, S/4), truncated to the box by rejection.
    data = x[0].reshape(4, 2)
    xbar = data.mean(0)
    centred = data - xbar
    scatter = centred.T @ centred

    def covariance(t):
        s1, s2, rho = t[:, 0] ** 2, t[:, 1] ** 2, torch.tanh(t[:, 2])
        return s1**2 + 1e-6, s2**2 + 1e-6, rho * s1 * s2

    def log_marginal(t):
        a, c, b = covariance(t)
        det = a * c - b**2
        trace = (c * scatter[0, 0] - 2 * b * scatter[0, 1] + a * scatter[1, 1]) / det
        return -1.5 * torch.log(det) - 0.5 * trace

    kept = []
    while sum(len(k) for k in kept) < N:
        t = grid_sample(log_marginal, [0, 0, -3], [3, 3, 3], 96, 4 * N, generator)
        a, c, b = covariance(t)
        cov = torch.stack([torch.stack([a, b], -1), torch.stack([b, c], -1)], -2) / 4
        mean = (
            xbar
            + (
                torch.linalg.cholesky(cov)
                @ torch.randn(len(t), 2, 1, generator=generator, dtype=torch.float64)
            )[..., 0]
        )
        inside = (mean.abs() <= 3).all(1)
        kept.append(torch.cat([mean, t], 1)[inside])
    theta = torch.cat(kept)[:N]
    signs = torch.where(torch.rand(N, 2, generator=generator) < 0.5, -1.0, 1.0).double()
    return torch.cat([theta[:, :2], theta[:, 2:4] * signs, theta[:, 4:]], 1)


def route_bernoulli_glm(x, generator):
    sim = get_simulator("bernoulli_glm")
    target = sim.reference_target(x)
    log_post = lambda u: target.log_prior(u[None])[0] + target.log_likelihood(u[None])[0]  # noqa: E731
    mode = mode_of(log_post, torch.zeros(10, dtype=torch.float64))
    return importance_sample(log_post, mode, 200_000, N, generator)


def route_sir(x, generator):
    target = get_simulator("sir").reference_target(x)
    log_post = lambda u: target.log_prior(u[None])[0] + target.log_likelihood(u[None])[0]  # noqa: E731
    low, high = (
        [math.log(0.4) - 2.5, math.log(1 / 8) - 1],
        [math.log(0.4) + 2.5, math.log(1 / 8) + 1],
    )
    return torch.exp(grid_sample(log_post, low, high, 120, N, generator))


def route_lotka_volterra(x, generator):
    sim = get_simulator("lotka_volterra")
    target = sim.reference_target(x)
    log_post = lambda u: target.log_prior(u[None])[0] + target.log_likelihood(u[None])[0]  # noqa: E731
    mode = mode_of(log_post, torch.log(sim.observation(1)[0].double()))
    return torch.exp(importance_sample(log_post, mode, 100_000, N, generator))


@pytest.mark.parametrize("name", NAMES)
def test_independent_route(name):
    x, draws = reference(name, 1)
    other = globals()[f"route_{name}"](x, gen(100))
    score = c2st(draws, other, seed=0)
    print(f"{name}: C2ST reference vs independent route = {score:.3f}")
    assert score < C2ST_MAX


def test_two_moons_where_sbibms_sampler_is_wrong():
    # x1 > 0.25: sbibm's sampler would flip the sign of p1 - x1 < 0 instead of rejecting it.
    x = torch.tensor([[0.3, 0.05]], dtype=torch.float64)
    draws = get_simulator("two_moons").posterior(x).sample((N,), generator=gen(0)).double()
    assert c2st(draws, route_two_moons(x, gen(1)), seed=0) < C2ST_MAX


# simulation-based calibration ----------------------------------------------------------

SBC_DRAWS = {"sir": 24, "lotka_volterra": 16, "bernoulli_glm": 24}  # others: 40
SBC_CONFIG = SamplerConfig(particles=300, moves=5, chains=20, warmup=100, thin=5, components=4)


def posterior_draws(sim, x, n, generator):
    """``(B, n, d)`` posterior draws for observations ``x (B, ...)``, batched for MCMC tasks."""
    if hasattr(sim, "reference_target"):
        target = sim.reference_target(x.double())
        return sample_posterior(target, len(x), n, SBC_CONFIG, generator).samples
    return torch.stack(
        [sim.posterior(row[None]).sample((n,), generator=generator).double() for row in x]
    )


@pytest.mark.parametrize("name", NAMES)
def test_simulation_based_calibration(name):
    sim, g = get_simulator(name), gen(7)
    m = SBC_DRAWS.get(name, 40)
    theta = sim.prior.sample((m,), generator=g)
    x = sim.simulate(theta, generator=g)
    draws = posterior_draws(sim, x, 100, g)
    ranks = (draws < theta.double()[:, None, :]).sum(1)  # (m, d) in 0..100
    u = (ranks + torch.rand(ranks.shape, generator=g, dtype=torch.float64)) / 101
    p = stats.kstest(u.flatten().numpy(), "uniform").pvalue
    print(f"{name}: SBC KS p-value over {m} x {sim.theta_dim} ranks = {p:.3f}")
    assert p > 1e-3


# posterior predictive checks -----------------------------------------------------------


@pytest.mark.parametrize("name", (*NAMES, "slcp_distractors", "bernoulli_glm_raw"))
def test_posterior_predictive(name):
    sim, g = get_simulator(name), gen(11)
    outside, total = 0, 0
    for number in range(1, 11):
        x = sim.observation(number)[1]
        theta = sim.posterior(x).sample((1000,), generator=g)
        predictive = sim.simulate(theta, generator=g)
        below = (predictive < x).double().mean(0)
        above = (predictive > x).double().mean(0)
        outside += int(((below > 0.9975) | (above > 0.9975)).sum())
        total += x.numel()
    print(f"{name}: {outside} of {total} observed values outside the 99.5% predictive interval")
    assert outside <= 0.05 * total


def test_mcmc_on_demand_matches_stored():
    # The sampler a non-standard observation gets (MCMCPosterior), run on observation 1's data
    # with smaller sizes, against the stored draws.
    sim = get_simulator("sir")
    x = sim.observation(1)[1]
    stored = sim.posterior(x).sample((N,), generator=gen(0)).double()
    config = SamplerConfig(particles=1000, chains=100, warmup=100, thin=5, components=4)
    fresh = MCMCPosterior(sim.reference_target(x.double()), config, "sir").sample(
        (N,), generator=gen(3)
    )
    assert torch.isfinite(fresh).all()
    assert c2st(stored, fresh.double(), seed=0) < C2ST_MAX
