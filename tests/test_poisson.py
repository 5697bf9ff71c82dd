"""Poisson simulator: samples against scipy, exact posterior against quadrature and scipy."""

import math

import numpy as np
import pytest
import torch
from scipy import integrate, special, stats

from simulators import get_simulator


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def counts(total: int, n: int) -> torch.Tensor:
    """A set of ``n`` counts summing to ``total`` (the posterior depends on nothing else)."""
    x = torch.full((n, 1), float(total // n))
    x[: total % n] += 1
    return x


# (total S, count n, box): bulk inside the default box, truncated on one side, S = 0, and a
# mode below the box (the upper-tail branch).
CASES = [
    (140, 20, (-2.0, 5.0)),
    (1400, 200, (1.8, 2.0)),
    (0, 3, (-2.0, 5.0)),
    (3, 10, (0.0, 1.0)),
    (7, 1, (-2.0, 5.0)),
]


def quadrature(total: int, n: int, box: tuple[float, float]):
    """Normalized posterior density of theta and its moments by adaptive quadrature."""
    mode = min(max(math.log(max(total, 1e-300) / n), box[0]), box[1]) if total else box[0]
    peak = total * mode - n * math.exp(mode)

    def unnorm(t):
        return math.exp(total * t - n * math.exp(t) - peak)

    width = 1 / math.sqrt(max(total, 1))
    points = [p for p in (mode - width, mode, mode + width) if box[0] < p < box[1]]
    z = integrate.quad(unnorm, *box, points=points, epsabs=0, epsrel=1e-12, limit=200)[0]

    def moment(k, center=0.0):
        f = lambda t: (t - center) ** k * unnorm(t) / z  # noqa: E731
        return integrate.quad(f, *box, points=points, epsabs=0, epsrel=1e-12, limit=200)[0]

    mean = moment(1)
    return unnorm, z, peak, mean, math.sqrt(moment(2, mean)), points


@pytest.mark.parametrize("total, n, box", CASES)
def test_posterior_matches_quadrature(total, n, box):
    sim = get_simulator("poisson", log_rate_low=box[0], log_rate_high=box[1], theta_star=box[0])
    post = sim.posterior(counts(total, n))
    unnorm, z, peak, mean, sd, points = quadrature(total, n, box)
    assert float(post.mean()) == pytest.approx(mean, rel=1e-9, abs=1e-11)
    assert float(post.stddev()) == pytest.approx(sd, rel=1e-8)
    t = torch.linspace(box[0], box[1], 9, dtype=torch.float64)[1:-1, None]
    # the quadrature normalizer is exp(peak) * z
    expected = total * t[:, 0] - n * torch.exp(t[:, 0]) - peak - math.log(z)
    np.testing.assert_allclose(post.log_prob(t).numpy(), expected.numpy(), rtol=1e-9, atol=1e-9)
    for v in (mean - sd, mean, mean + 0.5 * sd):
        if box[0] < v < box[1]:
            inner = [p for p in points if p < v]
            cdf = integrate.quad(unnorm, box[0], v, points=inner, epsabs=0, epsrel=1e-12)[0] / z
            got = float(post.cdf(torch.tensor([[v]], dtype=torch.float64)))
            assert got == pytest.approx(cdf, rel=1e-8, abs=1e-12)


@pytest.mark.parametrize("total, n, box", [c for c in CASES if c[0] > 0])
def test_posterior_matches_truncated_scipy_gamma(total, n, box):
    sim = get_simulator("poisson", log_rate_low=box[0], log_rate_high=box[1], theta_star=box[0])
    post = sim.posterior(counts(total, n))
    rate = stats.gamma(a=total, scale=1.0 / n)  # posterior of lambda before truncation
    lo, hi = math.exp(box[0]), math.exp(box[1])
    mass = rate.cdf(hi) - rate.cdf(lo)
    if mass < 1e-3:  # the mode is outside the box: use the upper tail for accuracy
        mass = rate.sf(lo) - rate.sf(hi)
    t = np.linspace(box[0], box[1], 7)[1:-1]
    lam = np.exp(t)
    log_pdf = rate.logpdf(lam) + t - math.log(mass)  # change of variables theta = log lambda
    tt = torch.as_tensor(t)[:, None]
    np.testing.assert_allclose(post.log_prob(tt).numpy(), log_pdf, rtol=1e-8, atol=1e-8)
    cdf = (rate.cdf(lam) - rate.cdf(lo)) / (rate.cdf(hi) - rate.cdf(lo))
    np.testing.assert_allclose(post.cdf(tt).numpy(), cdf, rtol=1e-6, atol=1e-9)


def test_untruncated_moments_match_digamma():
    # Far from the box edges, E[log lambda] = psi(S) - log n and Var = psi'(S) (Gamma(S, n)).
    post = get_simulator("poisson").posterior(counts(140_000, 20_000))
    assert float(post.mean()) == pytest.approx(special.digamma(140_000) - math.log(20_000), 1e-12)
    assert float(post.stddev()) == pytest.approx(math.sqrt(special.polygamma(1, 140_000)), 1e-9)


@pytest.mark.parametrize("total, n, box", CASES)
def test_posterior_samples(total, n, box):
    sim = get_simulator("poisson", log_rate_low=box[0], log_rate_high=box[1], theta_star=box[0])
    post = sim.posterior(counts(total, n))
    theta = post.sample((4000,), generator=gen(0), dtype=torch.float64)
    assert theta.shape == (4000, 1) and torch.equal(
        theta, post.sample((4000,), generator=gen(0), dtype=torch.float64)
    )
    assert ((theta >= box[0]) & (theta <= box[1])).all()
    u = post.cdf(theta)
    assert stats.kstest(u.numpy(), "uniform").pvalue > 1e-3
    se = float(post.stddev()) / math.sqrt(4000)
    assert abs(float(theta.mean()) - float(post.mean())) < 5 * se


def test_posterior_is_calibrated():
    # Simulation-based calibration: theta ~ prior, x ~ simulator, F_post(theta | x) ~ U(0, 1).
    sim = get_simulator("poisson", log_rate_low=-1.0, log_rate_high=3.0)
    g = gen(1)
    theta = sim.prior.sample((400,), generator=g, dtype=torch.float64)
    x = sim.simulate(theta.repeat_interleave(4, 0), generator=g).reshape(400, 4, 1)
    u = [float(sim.posterior(xi).cdf(ti[None])) for xi, ti in zip(x, theta, strict=True)]
    assert stats.kstest(u, "uniform").pvalue > 1e-3


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_simulated_counts_match_scipy_poisson(dtype):
    sim = get_simulator("poisson")
    theta = torch.full((100_000, 1), math.log(7.0), dtype=dtype)
    x = sim.simulate(theta, generator=gen(2))
    assert x.dtype == dtype and torch.equal(x, torch.round(x)) and (x >= 0).all()
    assert float(x.mean()) == pytest.approx(7.0, abs=5 * math.sqrt(7 / 1e5))
    assert float(x.var()) == pytest.approx(7.0, abs=5 * 7 * math.sqrt(2 / 1e5 + 1 / (7 * 1e5)))
    observed = np.bincount(x[:, 0].long().numpy(), minlength=21)[:20]
    expected = 1e5 * stats.poisson.pmf(np.arange(20), 7.0)
    chi2 = np.sum((observed - expected) ** 2 / expected)
    assert stats.chi2.sf(chi2, df=19) > 1e-3


def test_generator_determinism_and_rows():
    sim = get_simulator("poisson")
    theta = torch.tensor([[0.0], [2.0], [4.0]]).repeat(2000, 1)
    x1, x2 = sim.simulate(theta, gen(5)), sim.simulate(theta, gen(5))
    assert torch.equal(x1, x2) and not torch.equal(x1, sim.simulate(theta, gen(6)))
    means = x1.reshape(2000, 3).mean(0)
    assert torch.allclose(means, torch.tensor([1.0, math.e**2, math.e**4]), rtol=0.05)


def test_defaults_and_summary():
    sim = get_simulator("poisson")
    assert sim.n_obs == 20_000 and float(sim.true_parameters) == pytest.approx(math.log(7))
    assert sim.observe(generator=gen(0)).shape == (20_000, 1)
    x = torch.arange(24.0).reshape(2, 3, 4, 1)
    assert torch.equal(sim.summarize(x), x.mean(dim=-2))


@pytest.mark.parametrize(
    "options, match",
    [
        ({"n_obs": 0}, "n_obs"),
        ({"log_rate_low": 3.0, "log_rate_high": 2.0}, "log_rate_low < log_rate_high"),
        ({"log_rate_high": 50.0}, r"log_rate_high must be a number in \[-20.0, 15.0\]"),
        ({"theta_star": 6.0}, r"theta_star must be a number in \[-2.0, 5.0\]"),
        ({"theta_star": math.nan}, "theta_star"),
    ],
)
def test_bad_options(options, match):
    with pytest.raises(ValueError, match=match):
        get_simulator("poisson", **options)


@pytest.mark.parametrize(
    "x_obs, match",
    [
        (torch.tensor([[1.0], [-1.0]]), "integers >= 0"),
        (torch.tensor([[1.5]]), "integers >= 0"),
        (torch.tensor([[math.nan]]), "integers >= 0"),
        (torch.ones(3), r"shape \(n >= 1, 1\)"),
        (torch.ones(0, 1), r"shape \(n >= 1, 1\)"),
    ],
)
def test_bad_posterior_input(x_obs, match):
    with pytest.raises(ValueError, match=match):
        get_simulator("poisson").posterior(x_obs)


def test_data_inconsistent_with_box_is_a_clear_error():
    sim = get_simulator("poisson", log_rate_low=-2.0, log_rate_high=-1.9, theta_star=-2.0)
    with pytest.raises(ValueError, match="no representable mass"):
        sim.posterior(counts(100_000, 1000))
