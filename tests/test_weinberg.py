"""Weinberg (e+e- -> mu+mu-) simulator against an independent numpy/scipy reference."""

import math
from functools import cache

import numpy as np
import pytest
import torch
from numpy.polynomial.legendre import leggauss
from scipy import integrate, special, stats

from simulators import get_simulator
from simulators.weinberg import _abs_cos, asymmetry

# (E_beam, G_f) covering c = -1.05 (theta*), 0, ~0.02, 1.28, 2.09 and +-2.41 (clipped density)
THETAS = [
    (42.0, 0.9),
    (45.0, 1.0),
    (45.05, 1.0),
    (48.0, 1.1),
    (50.0, 1.3),
    (50.0, 1.5),
    (40.0, 1.5),
]
MILD = [t for t in THETAS if abs(float(asymmetry(torch.tensor(t, dtype=torch.float64)))) <= 2]


@cache
def legendre() -> tuple[np.ndarray, np.ndarray]:
    return leggauss(200)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def c_of(theta) -> float:
    """c(theta) straight from the AVO paper's formula (independent of the library)."""
    e_beam, g_f = theta
    return 2.0 * math.tanh((2.0 * e_beam - 90.0) / 90.0 * 10.0) * g_f


class Reference:
    """max(0, 1 + x^2 + c x) on [-1, 1], normalized by quadrature; roots from numpy."""

    def __init__(self, c: float):
        self.c = c
        roots = np.roots([1.0, c, 1.0])
        real = [float(r.real) for r in roots if abs(r.imag) < 1e-12 and -1 < r.real < 1]
        self.low = max([-1.0] + [r for r in real if r < 0])
        self.high = min([1.0] + [r for r in real if r > 0])
        self.z = integrate.quad(self._g, self.low, self.high, epsabs=0, epsrel=1e-13)[0]

    def _g(self, x: float) -> float:
        return max(0.0, 1.0 + x * x + self.c * x)

    def pdf(self, x: float) -> float:
        return self._g(x) / self.z if -1 <= x <= 1 else 0.0

    def cdf(self, x: float) -> float:
        x = min(max(x, self.low), self.high)
        return integrate.quad(self._g, self.low, x, epsabs=0, epsrel=1e-13)[0] / self.z

    def smeared_cdf(self, s: np.ndarray, sigma: float) -> np.ndarray:
        """CDF of x + sigma N(0, 1): integral of pdf(x) Phi((s - x) / sigma) by Gauss-Legendre."""
        nodes, weights = legendre()
        x = self.low + (self.high - self.low) * (nodes + 1) / 2
        w = weights * (self.high - self.low) / 2 * np.array([self.pdf(v) for v in x])
        return special.ndtr((np.asarray(s)[:, None] - x) / sigma) @ w


def simulate(sim, theta, n, seed, dtype=torch.float64) -> np.ndarray:
    t = torch.tensor([theta], dtype=dtype).expand(n, 2).contiguous()
    return sim.simulate(t, generator=gen(seed))[:, 0].double().numpy()


def test_asymmetry_matches_paper_formula():
    theta = torch.tensor([[42.0, 0.9], [45.0, 1.0], [50.0, 1.5], [40.0, 0.5]], dtype=torch.float64)
    expected = [c_of(t) for t in theta.tolist()]
    np.testing.assert_allclose(asymmetry(theta).numpy(), expected, rtol=1e-14)
    assert expected[0] == pytest.approx(-1.0490093, abs=1e-7) and expected[1] == 0.0
    assert expected[2] == pytest.approx(2.4133644, abs=1e-7)  # the prior box exceeds |c| = 2


@pytest.mark.parametrize("dtype, tol", [(torch.float32, 4e-7), (torch.float64, 2e-15)])
def test_inverse_cdf_of_abs_cos_is_the_cubic_root(dtype, tol):
    # |x| has CDF (y + y^3/3) / (4/3); its inverse at u is the real root of y^3 + 3y = 4u, which
    # is also 2 sinh(asinh(2u) / 3) (the hyperbolic form of Cardano's formula).
    u = torch.cat(
        [
            torch.rand(10_000, generator=gen(0), dtype=torch.float64),
            torch.tensor([0.0, 1e-300, 1e-12, 1e-6, 0.5, 1.0], dtype=torch.float64),
        ]
    )
    u = u.to(dtype)
    y = _abs_cos(u).double()
    expected = 2 * torch.sinh(torch.asinh(2 * u.double()) / 3)
    assert torch.allclose(y, expected, rtol=tol, atol=0)
    assert float(_abs_cos(torch.tensor(1.0, dtype=dtype))) == pytest.approx(1.0, abs=tol)


@pytest.mark.parametrize("theta", THETAS)
def test_density_and_cdf_match_reference(theta):
    sim, ref = get_simulator("weinberg"), Reference(c_of(theta))
    x = torch.linspace(-1, 1, 41, dtype=torch.float64)[:, None]
    t = torch.tensor(theta, dtype=torch.float64)
    np.testing.assert_allclose(
        sim.density(x, t).numpy(), [ref.pdf(float(v)) for v in x], rtol=1e-10, atol=1e-12
    )
    np.testing.assert_allclose(
        sim.cdf(x, t).numpy(), [ref.cdf(float(v)) for v in x], rtol=1e-10, atol=1e-12
    )
    f = lambda v: float(sim.density(torch.tensor([[v]], dtype=torch.float64), t))  # noqa: E731
    points = [p for p in (ref.low, ref.high) if -1 < p < 1]
    assert integrate.quad(f, -1, 1, points=points or None)[0] == pytest.approx(1.0, abs=1e-9)
    if abs(ref.c) <= 2:  # the textbook density 3/8 (1 + x^2 + c x), positive everywhere
        expected = 3 / 8 * (1 + x[:, 0] ** 2 + ref.c * x[:, 0])
        np.testing.assert_allclose(sim.density(x, t).numpy(), expected.numpy(), rtol=1e-12)


def test_density_broadcasts_over_a_parameter_grid():
    sim = get_simulator("weinberg")
    x = torch.linspace(-0.9, 0.9, 7, dtype=torch.float64)[:, None]
    theta = torch.tensor([[[42.0, 0.9]], [[50.0, 1.5]]], dtype=torch.float64)  # (2, 1, 2)
    grid = sim.density(x, theta)
    assert grid.shape == (2, 7)
    assert torch.allclose(grid[1], sim.density(x, theta[1, 0]))


@pytest.mark.parametrize("theta", MILD)
def test_sample_moments(theta):
    c, n = c_of(theta), 200_000
    x = simulate(get_simulator("weinberg"), theta, n, seed=1)
    assert abs(x).max() <= 1
    # E[x] = c/4, Var x = 2/5 - c^2/16; E[x^2] = 2/5, Var x^2 = E[x^4] - 4/25 = 9/35 - 4/25
    assert abs(x.mean() - c / 4) < 5 * math.sqrt((0.4 - c**2 / 16) / n)
    assert abs((x**2).mean() - 0.4) < 5 * math.sqrt((9 / 35 - 0.16) / n)


@pytest.mark.parametrize("theta", THETAS)
def test_samples_goodness_of_fit(theta):
    ref = Reference(c_of(theta))
    x = simulate(get_simulator("weinberg"), theta, 20_000, seed=2)
    assert ref.low <= x.min() and x.max() <= ref.high
    edges = np.linspace(-1, 1, 21)
    expected = 20_000 * np.diff([ref.cdf(e) for e in edges])
    observed = np.histogram(x, bins=edges)[0]
    used = expected > 0
    chi2 = np.sum((observed[used] - expected[used]) ** 2 / expected[used])
    assert stats.chi2.sf(chi2, df=used.sum() - 1) > 1e-3
    assert (observed[~used] == 0).all()
    sim = get_simulator("weinberg")
    u = sim.cdf(torch.as_tensor(x)[:, None], torch.tensor(theta, dtype=torch.float64))
    assert stats.kstest(u.numpy(), "uniform").pvalue > 1e-3


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_mixed_batch_probability_integral_transform(dtype):
    # One event per row, each row its own theta from the prior: F(x_i | theta_i) ~ U(0, 1).
    sim = get_simulator("weinberg")
    theta = sim.prior.sample((20_000,), generator=gen(3), dtype=dtype)
    x = sim.simulate(theta, generator=gen(4))
    assert x.dtype == dtype
    u = sim.cdf(x.double(), theta.double())
    assert stats.kstest(u.numpy(), "uniform").pvalue > 1e-3


@pytest.mark.parametrize("theta", [(42.0, 0.9), (50.0, 1.5)])
def test_smearing(theta):
    sigma, n = 0.2, 20_000
    ref = Reference(c_of(theta))
    x = simulate(get_simulator("weinberg", resolution=sigma), theta, n, seed=5)
    assert stats.kstest(x, lambda s: ref.smeared_cdf(s, sigma)).pvalue > 1e-3
    if abs(ref.c) <= 2:
        var = 0.4 - ref.c**2 / 16 + sigma**2
        assert abs(x.mean() - ref.c / 4) < 5 * math.sqrt(var / n)
    assert abs(x).max() > 1  # smearing moves some events out of [-1, 1]


@pytest.mark.parametrize("theta", [(42.0, 0.9), (40.0, 1.5), (50.0, 1.5)])
def test_acceptance(theta):
    a, ref = 0.6, Reference(c_of(theta))
    sim = get_simulator("weinberg", acceptance=a)
    x = simulate(sim, theta, 20_000, seed=6)
    assert abs(x).max() <= a
    lo, hi = ref.cdf(-a), ref.cdf(a)
    assert stats.kstest(x, lambda s: (np.vectorize(ref.cdf)(s) - lo) / (hi - lo)).pvalue > 1e-3
    t = torch.tensor(theta, dtype=torch.float64)
    f = lambda v: float(sim.density(torch.tensor([[v]], dtype=torch.float64), t))  # noqa: E731
    assert integrate.quad(f, -a, a)[0] == pytest.approx(1.0, abs=1e-9)
    assert float(sim.density(torch.tensor([[0.7]], dtype=torch.float64), t)) == 0.0
    s = torch.tensor([[-0.3], [0.2]], dtype=torch.float64)
    expected = [(ref.cdf(-0.3) - lo) / (hi - lo), (ref.cdf(0.2) - lo) / (hi - lo)]
    np.testing.assert_allclose(sim.cdf(s, t).numpy(), expected, rtol=1e-10)


def test_acceptance_with_smearing():
    a, sigma, theta = 0.8, 0.3, (50.0, 1.5)
    ref = Reference(c_of(theta))
    x = simulate(get_simulator("weinberg", resolution=sigma, acceptance=a), theta, 20_000, 7)
    assert abs(x).max() <= a
    lo, hi = ref.smeared_cdf(np.array([-a, a]), sigma)
    assert stats.kstest(x, lambda s: (ref.smeared_cdf(s, sigma) - lo) / (hi - lo)).pvalue > 1e-3


def test_closed_form_needs_no_smearing():
    sim = get_simulator("weinberg", resolution=0.1)
    with pytest.raises(ValueError, match="resolution"):
        sim.density(torch.zeros(3, 1), sim.true_parameters)
    with pytest.raises(ValueError, match="resolution"):
        sim.cdf(torch.zeros(3, 1), sim.true_parameters)


def test_rejection_paths_are_reproducible():
    sim = get_simulator("weinberg", resolution=0.1, acceptance=0.5)
    theta = torch.tensor([[50.0, 1.5], [42.0, 0.9], [40.0, 1.5]]).repeat(500, 1)
    x1, x2 = sim.simulate(theta, gen(8)), sim.simulate(theta, gen(8))
    assert torch.equal(x1, x2) and not torch.equal(x1, sim.simulate(theta, gen(9)))
    means = x1.reshape(500, 3).mean(0)
    assert means[0] > 0.05 and means[2] < -0.05  # each row keeps its own asymmetry


def test_defaults_and_summary():
    sim = get_simulator("weinberg")
    assert sim.n_obs == 50_000 and sim.true_parameters.tolist() == pytest.approx([42.0, 0.9])
    assert sim.parameter_names == ("E_beam", "G_f") and not sim.differentiable
    x = sim.observe(generator=gen(0))
    assert x.shape == (50_000, 1) and x.dtype == torch.float32
    s = sim.summarize(x)
    assert s.shape == (2,)
    assert torch.allclose(s, torch.stack([x.mean(), (x**2).mean()]))
    assert float(s[0]) == pytest.approx(c_of((42.0, 0.9)) / 4, abs=0.015)
    assert sim.summarize(torch.zeros(4, 3, 10, 1)).shape == (4, 3, 2)


@pytest.mark.parametrize(
    "options, match",
    [
        ({"n_obs": 0}, "n_obs"),
        ({"resolution": -0.1}, "resolution"),
        ({"resolution": 2.0}, r"resolution must be in \[0, 1\]"),
        ({"acceptance": 0.0}, "acceptance"),
        ({"acceptance": 0.05}, r"acceptance must be None or in \[0.1, 1\]"),
        ({"acceptance": 1.5}, r"acceptance must be None or in \[0.1, 1\]"),
        ({"theta_star": (39.0, 1.0)}, "theta_star must lie in the prior box"),
        ({"theta_star": (42.0,)}, "theta_star"),
    ],
)
def test_bad_options(options, match):
    with pytest.raises(ValueError, match=match):
        get_simulator("weinberg", **options)


@pytest.mark.slow
@pytest.mark.parametrize("theta", [(42.0, 0.9), (45.01, 1.0), (50.0, 1.5), (40.0, 1.2)])
def test_large_sample_chi_square(theta):
    n, ref = 2_000_000, Reference(c_of(theta))
    x = simulate(get_simulator("weinberg"), theta, n, seed=10)
    edges = np.linspace(-1, 1, 101)
    expected = n * np.diff([ref.cdf(e) for e in edges])
    observed = np.histogram(x, bins=edges)[0]
    used = expected > 0
    chi2 = np.sum((observed[used] - expected[used]) ** 2 / expected[used])
    assert stats.chi2.sf(chi2, df=used.sum() - 1) > 1e-4


def test_identified_parameter_is_the_asymmetry():
    # theta on the same c-ridge as theta* is indistinguishable from it: distance 0 in c.
    sim = get_simulator("weinberg")
    star = sim.true_parameters.double()[None]
    c_star = float(asymmetry(star))
    e_beam = torch.tensor(44.0, dtype=torch.float64)
    g_f = c_star / (2 * torch.tanh(10 * (2 * e_beam - 90) / 90))  # the paper's c with M_Z = 90
    ridge = torch.stack([e_beam, g_f])[None]
    assert torch.allclose(sim.identified(ridge), sim.identified(star), atol=1e-9)
    assert sim.identified(star).shape == (1, 1)
