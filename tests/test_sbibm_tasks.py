"""Fast tests of sbibm's ten tasks: definitions, stored observations and references, bad input.

The accuracy of the reference posteriors (independent routes, SBC, predictive checks) is in
``tests/test_sbibm_references.py`` (marked slow).
"""

import json
import math

import numpy as np
import pytest
import torch
from scipy import stats
from scipy.integrate import solve_ivp

from simulators import DiagNormal, get_simulator
from simulators._diagnostics import diagnostics
from simulators._distributions import LogNormal, MultivariateNormal, TruncatedDiagNormal
from simulators._sbibm import MCMCPosterior, draw_observation
from simulators._stored import STORED_SAMPLES, StoredPosterior, load_data
from simulators.bernoulli_glm import design_matrix
from simulators.lotka_volterra import log_populations
from simulators.sir import infected_fraction
from simulators.slcp_distractors import distractor_mixture

# name: (theta dim, x shape), as sbibm defines them
TASKS = {
    "gaussian_linear": (10, (10,)),
    "gaussian_linear_uniform": (10, (10,)),
    "gaussian_mixture": (2, (2,)),
    "two_moons": (2, (2,)),
    "slcp": (5, (8,)),
    "slcp_distractors": (5, (100,)),
    "bernoulli_glm": (10, (10,)),
    "bernoulli_glm_raw": (10, (100,)),
    "sir": (2, (10,)),
    "lotka_volterra": (4, (20,)),
}
MCMC = ("slcp", "slcp_distractors", "bernoulli_glm", "bernoulli_glm_raw", "sir", "lotka_volterra")
STORED = ("slcp", "bernoulli_glm", "sir", "lotka_volterra")


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("name", sorted(TASKS))
def test_definition(name):
    sim = get_simulator(name)
    dim, x_shape = TASKS[name]
    assert (sim.theta_dim, sim.x_shape, sim.kind, sim.n_obs) == (dim, x_shape, "point", 1)
    assert sim.num_observations == 10 and sim.provides("posterior")
    assert len(sim.observation_seeds) == 10 and sim.options() == {}


@pytest.mark.parametrize("name", sorted(TASKS))
def test_observations(name):
    sim = get_simulator(name)
    for number in (1, 10):
        theta, x = sim.observation(number)
        assert theta.shape == (sim.theta_dim,) and x.shape == (1, *sim.x_shape)
        assert theta.dtype == x.dtype == torch.float32
        assert torch.isfinite(sim.prior.log_prob(theta[None].double())).all()
        assert torch.isfinite(x).all()
    assert torch.equal(sim.true_parameters, sim.observation(1)[0])
    for bad in (0, 11):
        with pytest.raises(ValueError, match=f"{name}.*observation"):
            sim.observation(bad)


@pytest.mark.parametrize("name", ["gaussian_linear", "two_moons", "slcp", "bernoulli_glm_raw"])
def test_observations_redraw(name):
    # The stored observations are draw_observation's with sbibm's seeds (this torch's streams).
    sim = get_simulator(name)
    info = json.loads(str(load_data(name)["info"]))
    if info["torch"].split(".")[:2] != torch.__version__.split(".")[:2]:
        pytest.skip("stored with another torch version; its random streams may differ")
    # Same draws, up to float32 rounding: the priors and simulators with a covariance (slcp,
    # bernoulli_glm) go through MKL's linear algebra, whose kernels differ by CPU (AVX2 vs
    # AVX-512) in the last bits (measured: 1.4e-6 on an AVX2 machine); other draws differ by O(1).
    for number in (1, 7):
        theta, x = draw_observation(sim, sim.observation_seeds[number - 1])
        torch.testing.assert_close(theta, sim.observation(number)[0], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(x, sim.observation(number)[1], rtol=1e-5, atol=1e-5)


def test_related_tasks_share_observations():
    slcp, distractors = get_simulator("slcp"), get_simulator("slcp_distractors")
    raw, glm = get_simulator("bernoulli_glm_raw"), get_simulator("bernoulli_glm")
    for k in range(1, 11):
        assert torch.equal(slcp.observation(k)[0], distractors.observation(k)[0])
        assert torch.equal(
            slcp.observation(k)[1], distractors.informative(distractors.observation(k)[1])
        )
        assert torch.equal(glm.observation(k)[0], raw.observation(k)[0])
        assert torch.equal(glm.observation(k)[1], raw.summary(raw.observation(k)[1]))


def test_gaussian_linear_is_gaussian():
    task = get_simulator("gaussian_linear")
    plain = get_simulator("gaussian", dim=10, prior_var=0.1, noise_var=0.1, n_obs=1)
    assert torch.equal(task.prior.loc, plain.prior.loc) and torch.equal(
        task.prior.scale, plain.prior.scale
    )
    assert (task.noise_var, task.n_obs, task.parameter_names) == (0.1, 1, plain.parameter_names)
    x = task.observation(3)[1]
    mine, exact = task.posterior(x), plain.posterior(x)
    assert torch.allclose(mine.loc, x[0].double() / 2) and torch.equal(mine.scale, exact.scale)


@pytest.mark.parametrize("name", sorted(TASKS))
def test_posterior_routing(name):
    sim = get_simulator(name)
    posterior = sim.posterior(sim.observation(2)[1])
    draws = posterior.sample((500,), generator=gen(0))
    assert draws.shape == (500, sim.theta_dim) and torch.isfinite(draws).all()
    assert torch.isfinite(sim.prior.log_prob(draws.double())).all()
    assert isinstance(posterior, StoredPosterior) == (name in MCMC)
    if name in MCMC:  # any other observation gets a fresh sampler
        other = sim.observation(2)[1].clone()
        index = int(torch.argsort(distractor_mixture()[2])[0]) if name == "slcp_distractors" else 0
        other[0, index] = (
            1 - other[0, index] if name == "bernoulli_glm_raw" else other[0, index] + 1
        )
        assert isinstance(sim.posterior(other), MCMCPosterior)
    assert torch.equal(
        draws, sim.posterior(sim.observation(2)[1]).sample((500,), generator=gen(0))
    )
    with pytest.raises(ValueError, match=f"{name}: x_obs must have shape"):
        sim.posterior(torch.zeros(2, *sim.x_shape))
    with pytest.raises(ValueError, match=f"{name}: x_obs must be finite"):
        sim.posterior(torch.full((1, *sim.x_shape), math.nan))


def test_distractors_do_not_change_the_posterior():
    sim = get_simulator("slcp_distractors")
    x = sim.observation(4)[1].clone()
    x[0, int(torch.argsort(distractor_mixture()[2])[50])] += 100.0  # a distractor
    assert isinstance(sim.posterior(x), StoredPosterior)


def test_stored_posterior_without_replacement():
    posterior = get_simulator("sir").posterior(get_simulator("sir").observation(1)[1])
    draws = posterior.sample((STORED_SAMPLES,), generator=gen(1))
    assert torch.equal(draws.sort(dim=0).values, posterior.samples.sort(dim=0).values)
    assert not torch.equal(draws, posterior.sample((STORED_SAMPLES,), generator=gen(2)))
    with pytest.raises(ValueError, match="sir observation 1: 20001 reference posterior draws"):
        posterior.sample((STORED_SAMPLES + 1,), generator=gen(0))


@pytest.mark.parametrize("name", STORED)
def test_stored_diagnostics(name):
    info = json.loads(str(load_data(name)["info"]))["reference"]
    assert max(info["rhat_max"]) < 1.05
    assert min(info["ess_min"]) > 1000
    assert min(info["distinct_draws"]) > 0.95 * STORED_SAMPLES
    samples = load_data(name)["samples"]
    assert samples.shape == (10, STORED_SAMPLES, get_simulator(name).theta_dim)


def test_distractor_mixture_is_sbibms():
    loc, tril, permutation = distractor_mixture()
    assert loc.shape == (20, 92) and tril.shape == (20, 92, 92)
    # sbibm's permutation_idx.torch (commit f0bc440) begins with these
    assert permutation[:10].tolist() == [87, 47, 39, 9, 25, 21, 26, 94, 41, 30]
    assert float(loc[0, 0]) == pytest.approx(7.4507123, abs=1e-6)


def test_glm_summary_is_sbibms_conv1d():
    x = design_matrix()
    assert x.shape == (100, 10) and torch.equal(x[:, 0], torch.ones(100))
    assert torch.equal(x[3:, 4], x[:97, 1]) and torch.equal(x[:3, 4], torch.zeros(3))
    spikes = (torch.rand(5, 100, generator=gen(0)) < 0.3).float()
    stimulus = x[:, 1].reshape(1, 1, -1)
    sta = torch.nn.functional.conv1d(spikes[:, None], stimulus, padding=8)[:, 0, -9:]
    sbibm = torch.cat([spikes.sum(1, keepdim=True), sta], dim=1)
    assert torch.allclose(get_simulator("bernoulli_glm").summary(spikes), sbibm, atol=1e-5)


def _sir_scipy(theta):
    beta, gamma = theta
    n = 1e6
    rhs = lambda t, u: [-beta * u[0] * u[1] / n, beta * u[0] * u[1] / n - gamma * u[1]]  # noqa: E731
    solution = solve_ivp(
        rhs, (0, 153), [n - 1, 1], "DOP853", np.arange(0, 154, 17), rtol=1e-12, atol=1e-12
    )
    return np.log(solution.y[1] / n)


def _lv_scipy(theta):
    a, b, c, d = theta
    rhs = lambda t, u: [a * u[0] - b * u[0] * u[1], -c * u[1] + d * u[0] * u[1]]  # noqa: E731
    times = 2.1 * np.arange(10)
    solution = solve_ivp(rhs, (0, 19.0), [30, 1], "DOP853", times, rtol=1e-12, atol=1e-14)
    return np.clip(np.log(np.maximum(solution.y, 1e-300)), math.log(1e-10), math.log(1e4)).reshape(
        -1
    )


def _ode_thetas(name: str) -> torch.Tensor:
    # Prior draws, two from its tails (3 standard deviations out) and, for sir, the far-tail
    # contact rates where a trial step used to overflow and fail the row (SNLE's MCMC proposed
    # beta = 19.19, 7.6 prior sds out)
    prior = get_simulator(name).prior
    theta = prior.sample((24,), generator=gen(0), dtype=torch.float64)
    tails = torch.exp(prior.loc + 3 * prior.scale * torch.tensor([[1.0], [-1.0]]))
    if name != "sir":
        return torch.cat([theta, tails])
    far = [[15.0, 0.2], [19.188920974731445, 0.20172640681266785], [25.0, 0.1]]
    return torch.cat([theta, tails, torch.tensor(far, dtype=torch.float64)])


def test_sir_ode_against_solve_ivp():
    theta = _ode_thetas("sir")
    mine, failed = infected_fraction(theta)
    exact = np.stack([_sir_scipy(t) for t in theta.numpy()])
    assert not failed.any()
    # log I/N where the binomial mean is not negligible (below, scipy's absolute tolerance on
    # the counts is the limit), and expected counts everywhere
    relevant = 1000 * np.exp(exact) > 1e-3
    assert np.abs(mine.numpy() - exact)[relevant].max() < 1e-7
    assert np.abs(1000 * (np.exp(mine.numpy()) - np.exp(exact))).max() < 1e-5


def test_lotka_volterra_ode_against_solve_ivp():
    theta = _ode_thetas("lotka_volterra")
    mine, failed = log_populations(theta)
    exact = np.stack([_lv_scipy(t) for t in theta.numpy()])
    assert not failed.any()
    assert np.abs(mine.numpy() - exact).max() < 1e-5  # log populations; the noise sd is 0.1


@pytest.mark.parametrize("name", ["sir", "lotka_volterra"])
def test_bad_theta_lognormal(name):
    sim = get_simulator(name)
    theta = sim.prior.sample((2,), generator=gen(0))
    theta[1, 1] = -0.5
    with pytest.raises(ValueError, match=f"{name}: {sim.parameter_names[1]} = -0.5.*outside"):
        sim.simulate(theta)


@pytest.mark.parametrize(
    ("name", "theta", "shown"),
    [
        ("sir", [2.0**40, 0.1], "1099511627776"),
        ("lotka_volterra", [1.0, 0.05, 1.0, 1e9], "1000000000"),
    ],
)
def test_ode_failure_is_an_error(name, theta, shown):
    # sir solves up to beta ~ 1e9 since an overflowing trial step is shrunk (simulators/_ode.py)
    sim = get_simulator(name)
    with pytest.raises(ValueError, match=f"{name}: the ODE solver failed for theta = .*{shown}"):
        sim.simulate(torch.tensor([theta]))
    x = sim.observation(1)[1].double()
    target = sim.reference_target(x)
    u = torch.log(torch.tensor([[theta]], dtype=torch.float64))
    assert target.log_likelihood(u).item() == -math.inf  # never NaN in the reference sampler


def test_lognormal_prior():
    prior = LogNormal([0.1, -3.0], [0.5, 0.2])
    theta = prior.sample((20_000,), generator=gen(0), dtype=torch.float64)
    exact = torch.distributions.LogNormal(prior.loc, prior.scale).log_prob(theta).sum(-1)
    assert torch.allclose(prior.log_prob(theta), exact)
    assert torch.allclose(prior.to_torch().log_prob(theta.float()).double(), exact, atol=1e-4)
    assert torch.allclose(theta.mean(0), prior.mean(), rtol=0.02)
    assert torch.allclose(theta.std(0), prior.stddev(), rtol=0.05)
    assert prior.log_prob(torch.tensor([[-1.0, 1.0]])).item() == -math.inf
    assert prior.low.tolist() == [0, 0] and prior.high.tolist() == [math.inf] * 2


def test_multivariate_normal_prior():
    prior = get_simulator("bernoulli_glm").prior
    assert isinstance(prior, MultivariateNormal)
    theta = prior.sample((5,), generator=gen(0), dtype=torch.float64)
    exact = torch.distributions.MultivariateNormal(prior.loc, precision_matrix=prior.precision)
    assert torch.allclose(prior.log_prob(theta), exact.log_prob(theta))
    assert torch.allclose(
        prior.to_torch().log_prob(theta.float()).double(), exact.log_prob(theta), rtol=1e-4
    )


def test_truncated_normal():
    low, high = torch.tensor([-1.0, -1.0, 2.0]), torch.tensor([1.0, 1.0, 3.0])
    loc, scale = torch.tensor([0.3, 5.0, -1.0]), 0.5
    dist = TruncatedDiagNormal(loc, scale, low, high)
    draws = dist.sample((40_000,), generator=gen(0), dtype=torch.float64)
    a, b = ((low - loc) / scale).numpy(), ((high - loc) / scale).numpy()
    exact = stats.truncnorm(a, b, loc=loc.numpy(), scale=scale)
    assert np.allclose(draws.mean(0).numpy(), exact.mean(), atol=0.01)
    assert np.allclose(dist.log_prob(draws[:5]).numpy(), exact.logpdf(draws[:5].numpy()).sum(1))
    assert ((draws >= low) & (draws <= high)).all()


def test_diagnostics():
    iid = torch.randn(2, 8, 500, 3, generator=gen(0), dtype=torch.float64)
    rhat, ess = diagnostics(iid)
    assert (rhat - 1).abs().max() < 0.01 and (ess > 2500).all()
    stuck = iid + torch.arange(8, dtype=torch.float64)[None, :, None, None]
    assert (diagnostics(stuck)[0] > 2).all()


def test_diag_normal_is_not_touched():
    # gaussian_linear reuses the base DiagNormal prior
    assert isinstance(get_simulator("gaussian_linear").prior, DiagNormal)
