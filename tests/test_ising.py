"""Exactness tests of the Ising simulator against enumeration, Onsager, Yang and series."""

import math

import pytest
import torch

from simulators import get_simulator
from simulators._ising_kernels import HAS_NUMBA, numba_sweeps, torch_sweeps
from simulators.ising import (
    CRITICAL_TEMPERATURE,
    exact_moments,
    kaufman_energy,
    kaufman_log_partition,
    lattice_statistics,
    onsager_energy,
    onsager_magnetization,
)

BACKENDS = [
    "torch",
    pytest.param("numba", marks=pytest.mark.skipif(not HAS_NUMBA, reason="numba")),
]
Z = 4.5  # standard errors allowed: a false alarm per ~1e5 comparisons


def gen(seed: int, device="cpu") -> torch.Generator:
    return torch.Generator(device).manual_seed(seed)


def grouped_stats(sim, theta: torch.Tensor, groups: int, seed: int) -> torch.Tensor:
    """Per-configuration (e, m) of ``theta`` (rows cycle over ``groups`` settings)."""
    spins = sim.simulate(theta, generator=gen(seed, theta.device))
    stats = lattice_statistics(spins).double().cpu()
    return stats.view(-1, groups, 2).transpose(0, 1)  # (groups, chains, 2)


def assert_close(samples: torch.Tensor, exact: float, slack: float = 0.0):
    mean, se = float(samples.mean()), float(samples.std() / math.sqrt(samples.numel()))
    assert abs(mean - exact) <= Z * se + slack, f"{mean:.5f} +- {se:.5f} vs exact {exact:.5f}"


# exact references ----------------------------------------------------------------------------


def test_onsager_energy_limits():
    # Low-T series from ln Z/N = 2 beta + x^4 + 2x^6 + 9/2 x^8 (x = e^{-2 beta}), the
    # high-T series in t = tanh(beta), and u(T_c) = -sqrt(2) (Domb 1960, Adv. Phys. 9, 149).
    x = math.exp(-2 / 0.8)
    low = -2 + 8 * x**4 + 24 * x**6 + 72 * x**8
    assert onsager_energy(0.8) == pytest.approx(low, abs=1e-8)
    t = math.tanh(1 / 20)
    high = -2 * t - 4 * t**3 * (1 - t**2) - 12 * t**5 * (1 - t**2)
    assert onsager_energy(20.0) == pytest.approx(high, abs=1e-7)
    for side in (1 - 1e-9, 1 + 1e-9):
        assert onsager_energy(side * CRITICAL_TEMPERATURE) == pytest.approx(
            -math.sqrt(2), abs=1e-5
        )


def test_yang_magnetization_limits():
    # Low-T series m = 1 - 2x^4 - 8x^6 - 34x^8 (Domb 1960).
    x = math.exp(-2 / 0.8)
    low = 1 - 2 * x**4 - 8 * x**6 - 34 * x**8
    assert onsager_magnetization(0.8) == pytest.approx(low, abs=1e-8)
    assert onsager_magnetization(CRITICAL_TEMPERATURE * (1 - 1e-12)) < 0.05
    assert onsager_magnetization(3.0) == 0.0


def test_exact_moments_symmetry_and_limits():
    # Low-T expansion of the 4 x 4 torus: Z = 2 e^{32 beta} (1 + 16 x^4 + 32 x^6 + O(x^8)),
    # 16 single flips (dE = 8) and 32 adjacent pairs (dE = 12), x = e^{-2 beta}.
    x = math.exp(-2 / 0.8)
    energy = (-32 + (8 * 16 * x**4 + 12 * 32 * x**6) / (1 + 16 * x**4 + 32 * x**6)) / 16
    assert exact_moments(4, 0.8)["energy"] == pytest.approx(energy, abs=2e-6)
    assert exact_moments(4, 1e4)["energy"] == pytest.approx(0.0, abs=1e-3)
    plus, minus = exact_moments(4, 2.5, 0.3), exact_moments(4, 2.5, -0.3)
    assert plus["magnetization"] > 0
    assert plus["magnetization"] == pytest.approx(-minus["magnetization"])
    assert plus["energy"] == pytest.approx(minus["energy"])
    with pytest.raises(ValueError, match="size <= 4"):
        exact_moments(6, 2.0)


def test_kaufman_matches_enumeration_and_onsager():
    for temperature in (0.8, 1.6, CRITICAL_TEMPERATURE, 3.3, 10.0):
        assert kaufman_energy(4, temperature) == pytest.approx(
            exact_moments(4, temperature)["energy"], abs=1e-8
        )
    for temperature in (1.8, 3.0):  # finite-size effects vanish exponentially away from T_c
        assert kaufman_energy(128, temperature) == pytest.approx(
            onsager_energy(temperature), abs=1e-8
        )
    assert kaufman_log_partition(8, torch.ones(3, 2) * 2.0).shape == (3, 2)
    # T -> infinity: Z -> 2^N
    assert float(kaufman_log_partition(6, 1e6)) == pytest.approx(36 * math.log(2), rel=1e-6)


# simulator vs exact enumeration (4 x 4) ----------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_enumeration_no_field(backend):
    temperatures = [1.6, 2.3, 3.3]
    sim = get_simulator("ising", size=4, sweeps=20, output="lattice", backend=backend)
    theta = torch.tensor(temperatures, dtype=torch.float64).repeat(3000)[:, None]
    stats = grouped_stats(sim, theta, len(temperatures), seed=11)
    for temperature, s in zip(temperatures, stats, strict=True):
        exact = exact_moments(4, temperature)
        assert_close(s[:, 0], exact["energy"])
        assert_close(s[:, 1].abs(), exact["abs_magnetization"])
        assert_close(s[:, 1], 0.0)  # the global flip symmetrizes the ordered start


@pytest.mark.parametrize("backend", BACKENDS)
def test_enumeration_field(backend):
    settings = [(1.6, -0.3), (2.3, 0.05), (3.3, 0.5)]
    sim = get_simulator("ising", size=4, sweeps=20, output="lattice", field=True, backend=backend)
    theta = torch.tensor(settings).repeat(3000, 1)
    stats = grouped_stats(sim, theta, len(settings), seed=12)
    for (temperature, h), s in zip(settings, stats, strict=True):
        exact = exact_moments(4, temperature, h)
        assert_close(s[:, 0], exact["energy"])
        assert_close(s[:, 1], exact["magnetization"])


@pytest.mark.gpu
def test_enumeration_cuda():
    sim = get_simulator("ising", size=4, sweeps=20, output="lattice", field=True)
    theta = torch.tensor([[2.3, 0.1]], device="cuda").repeat(8000, 1)
    stats = grouped_stats(sim, theta, 1, seed=13)[0]
    exact = exact_moments(4, 2.3, 0.1)
    assert_close(stats[:, 0], exact["energy"])
    assert_close(stats[:, 1], exact["magnetization"])


# simulator vs Onsager / Yang (infinite lattice) ------------------------------------------------


def check_onsager(backend, size, temperatures, chains, sweeps, seed):
    sim = get_simulator("ising", size=size, sweeps=sweeps, backend=backend)
    theta = torch.tensor(temperatures, dtype=torch.float64).repeat(chains)[:, None]
    x = sim.simulate(theta, generator=gen(seed)).view(chains, len(temperatures), 2)
    for temperature, s in zip(temperatures, x.transpose(0, 1), strict=True):
        assert_close(s[:, 0], onsager_energy(temperature), slack=1e-3)
        if temperature < CRITICAL_TEMPERATURE:
            assert_close(s[:, 1], onsager_magnetization(temperature), slack=1e-3)


@pytest.mark.parametrize("backend", BACKENDS)
def test_onsager_away_from_critical(backend):
    # Correlation length < 2 sites at these temperatures: L = 16 is effectively infinite.
    check_onsager(backend, size=16, temperatures=[1.7, 3.3], chains=200, sweeps=60, seed=21)


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_onsager_closer_to_critical(backend):
    # Correlation length ~ 4.4 sites at T = 2.0 and 2.6 (exact: 1/xi = 2|K - K*|, K* the dual
    # coupling): L = 48 keeps e^{-L/xi} ~ 2e-5; tau_int < 10 sweeps there, so 200 sweeps suffice.
    check_onsager(backend, size=48, temperatures=[2.0, 2.6], chains=200, sweeps=200, seed=22)


def check_kaufman(backend, chains, seed):
    sim = get_simulator("ising", backend=backend)  # the defaults: L = 16, 250 sweeps
    temperatures = [1.8, CRITICAL_TEMPERATURE, 2.6, 3.3]
    theta = torch.tensor(temperatures, dtype=torch.float64).repeat(chains)[:, None]
    x = sim.simulate(theta, generator=gen(seed)).view(chains, len(temperatures), 2)
    for temperature, s in zip(temperatures, x.transpose(0, 1), strict=True):
        assert_close(s[:, 0], kaufman_energy(16, temperature))


@pytest.mark.skipif(not HAS_NUMBA, reason="numba")
def test_default_simulator_matches_kaufman_numba():
    # Exact finite-lattice energy at the default size, including T_c: checks the burn-in too.
    check_kaufman("numba", chains=1000, seed=41)


@pytest.mark.slow
def test_default_simulator_matches_kaufman_torch():
    check_kaufman("torch", chains=1000, seed=42)


def check_calibration(backend, seed):
    # z = (posterior mean - T*) / posterior sd over 100 data sets: mean 0, sd 1.
    sim = get_simulator("ising", backend=backend, theta_star=2.5)
    x = sim.observe(100 * 30, generator=gen(seed)).view(100, 30, 2)
    z = torch.stack([(p.mean() - 2.5) / p.stddev() for p in map(sim.posterior, x)])
    assert abs(float(z.mean())) < 0.35 and 0.75 < float(z.std()) < 1.25, z


@pytest.mark.skipif(not HAS_NUMBA, reason="numba")
def test_exact_posterior_is_calibrated():
    check_calibration("numba", seed=51)


@pytest.mark.slow
def test_exact_posterior_is_calibrated_torch():
    check_calibration("torch", seed=52)


def test_grid_posterior():
    sim = get_simulator("ising", size=8, output="lattice")
    x = sim.observe(20, generator=gen(0))
    post = sim.posterior(x, cells=500)
    theta = post.sample((4000,), generator=gen(1), dtype=torch.float64)
    assert theta.shape == (4000, 1) and torch.equal(
        theta, post.sample((4000,), generator=gen(1), dtype=torch.float64)
    )
    assert ((theta >= 1.5) & (theta <= 3.5)).all()
    assert float(theta.mean()) == pytest.approx(
        float(post.mean()), abs=4 * float(post.stddev()) / 60
    )
    grid = torch.linspace(1.5, 3.5, 20001, dtype=torch.float64)[:, None]
    integral = torch.trapezoid(post.log_prob(grid).exp(), grid[:, 0])
    assert float(integral) == pytest.approx(1.0, abs=1e-3)
    assert post.log_prob(torch.tensor([[4.0]])).item() == -math.inf
    with pytest.raises(ValueError, match="field=False"):
        get_simulator("ising", field=True).posterior(torch.zeros(3, 2))
    with pytest.raises(ValueError, match="x_obs must have shape"):
        sim.posterior(torch.zeros(3, 2))


@pytest.mark.slow
def test_default_sweeps_equilibrate_at_critical_point():
    # At T_c the default burn-in must give the same distribution as four times longer chains.
    sim, long = get_simulator("ising"), get_simulator("ising", sweeps=4 * 250)
    theta = torch.full((4000, 1), CRITICAL_TEMPERATURE, dtype=torch.float64)
    a, b = sim.simulate(theta, gen(31)), long.simulate(theta, gen(32))
    se = ((a.var(0) + b.var(0)) / theta.shape[0]).sqrt()
    assert ((a.mean(0) - b.mean(0)).abs() <= Z * se).all(), (a.mean(0), b.mean(0), se)


# contract details --------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_determinism_dtype_and_output_modes(backend):
    summary = get_simulator("ising", size=8, sweeps=5, backend=backend)
    lattice = get_simulator("ising", size=8, sweeps=5, backend=backend, output="lattice")
    theta = summary.prior.sample((6,), generator=gen(0), dtype=torch.float64)
    spins = lattice.simulate(theta, gen(1))
    assert spins.shape == (6, 8, 8) and spins.dtype == torch.float64
    assert set(spins.unique().tolist()) <= {-1.0, 1.0}
    assert torch.equal(spins, lattice.simulate(theta, gen(1)))
    assert not torch.equal(spins, lattice.simulate(theta, gen(2)))
    x = summary.simulate(theta, gen(1))  # same chains as the lattices above
    stats = lattice_statistics(spins)
    assert torch.allclose(x, torch.stack([stats[:, 0], stats[:, 1].abs()], -1))
    sets = torch.stack([spins, spins.flip(0)])  # two sets of 6 lattices
    assert torch.allclose(lattice.summarize(sets), summary.summarize(torch.stack([x, x.flip(0)])))


def zero_temperature_sweep(spins: torch.Tensor) -> torch.Tensor:
    """Reference: one checkerboard sweep at T -> 0, flipping iff s * (neighbour sum) <= 0."""
    index = torch.arange(spins.shape[-1])
    odd = (index[:, None] + index[None, :]) % 2 == 1
    for colour in (~odd, odd):
        k = spins * sum(spins.roll(shift, dim) for shift in (1, -1) for dim in (1, 2))
        spins = torch.where(colour & (k <= 0), -spins, spins)
    return spins


@pytest.mark.parametrize("backend", BACKENDS)
def test_kernels_continue_from_initial_state(backend):
    # At T -> 0 a sweep is deterministic (uphill moves have probability exp(-2000 k) = 0),
    # so a kernel started from ``initial`` must match the reference up to the global flip.
    kernel = numba_sweeps if backend == "numba" else torch_sweeps
    initial = torch.randint(0, 2, (70, 6, 6), generator=gen(0)).double() * 2 - 1
    beta = torch.full((70,), 1000.0, dtype=torch.float64)
    out = kernel(beta, torch.zeros_like(beta), 6, 1, gen(1), initial=initial)
    overlap = (out * zero_temperature_sweep(initial)).mean(dim=(1, 2))
    assert set(overlap.tolist()) == {-1.0, 1.0}  # equal or flipped, both occur


def test_summarize_values():
    sim = get_simulator("ising", field=True)
    x = torch.tensor([[[-1.0, 0.5], [-2.0, -0.5]]])
    expected = torch.tensor([[-1.5, 0.0, math.sqrt(0.5), math.sqrt(0.5)]])
    assert torch.allclose(sim.summarize(x), expected)


def test_field_sign_and_prior():
    sim = get_simulator("ising", field=True)
    assert sim.parameter_names == ("T", "h") and sim.true_parameters.tolist() == pytest.approx(
        [3.0, 0.1]
    )
    theta = torch.tensor([[2.0, 0.2], [2.0, -0.2]]).repeat(50, 1)
    m = sim.simulate(theta, gen(0))[:, 1].view(50, 2)
    assert (m[:, 0] > 0.5).all() and (m[:, 1] < -0.5).all()
    assert sim.prior.low.tolist() == [1.5, -0.5] and sim.prior.high.tolist() == [3.5, 0.5]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"size": 7}, "size must be even"),
        ({"size": 0}, "size must be an integer >= 2"),
        ({"size": True}, "size must be an integer"),
        ({"sweeps": 0}, "sweeps must be an integer >= 1"),
        ({"output": "spins"}, "output must be one of"),
        ({"backend": "cuda"}, "backend must be one of"),
        ({"field": 1}, "field must be True or False"),
        ({"theta_star": 5.0}, "theta_star must lie in the prior"),
        ({"theta_star": [2.0, 0.1]}, "theta_star"),
        ({"n_obs": 0}, "n_obs must be"),
    ],
)
def test_bad_options(options, message):
    with pytest.raises(ValueError, match=message):
        get_simulator("ising", **options)


def test_bad_theta():
    sim = get_simulator("ising", field=True)
    with pytest.raises(
        ValueError, match=r"ising: T = 1.0 .*outside the prior support \[1.5, 3.5\]"
    ):
        sim.simulate(torch.tensor([[1.0, 0.0]]))
    with pytest.raises(
        ValueError, match=r"ising: h = 0.89.*outside the prior support \[-0.5, 0.5\]"
    ):
        sim.simulate(torch.tensor([[2.0, 0.9]]))
