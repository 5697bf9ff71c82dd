"""Tests of the conditional-GAN inverse method (``avo_bench/methods/cgan.py``)."""

import dataclasses
import math

import pytest
import torch
from scipy.stats import wasserstein_distance

import avo_bench
from avo_bench.methods import NotApplicable
from avo_bench.methods._cgan_data import (
    SupportMap,
    choose_set_size,
    outside_fraction,
    summary_width_ratio,
)
from avo_bench.methods._cgan_nn import mlp
from avo_bench.methods.cgan import CGANConfig, _history_row
from simulators import SIMULATORS, BoxUniform, DiagNormal, get_simulator

TINY = dict(steps=30, hidden_features=16, hidden_layers=1, batch_size=64, num_samples=200)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def run(sim, x_obs, budget: int, seed: int = 0, **overrides):
    return avo_bench.fit("cgan", sim, x_obs, budget=budget, seed=seed, **overrides)


def c2st_gaussian(a: torch.Tensor, b: torch.Tensor) -> float:
    """C2ST with a quadratic-discriminant classifier fitted on one half, scored on the other.

    QDA is the Bayes classifier between two Gaussians, so it is the right (and independent)
    classifier when one sample is an exact Gaussian posterior.
    """
    a, b = a.double(), b.double()
    half_a, half_b = len(a) // 2, len(b) // 2

    def log_density(train: torch.Tensor):
        dist = torch.distributions.MultivariateNormal(train.mean(0), torch.cov(train.T))
        return dist.log_prob

    log_a, log_b = log_density(a[:half_a]), log_density(b[:half_b])
    test_a, test_b = a[half_a:], b[half_b:]
    correct = (log_a(test_a) > log_b(test_a)).sum() + (log_b(test_b) >= log_a(test_b)).sum()
    return float(correct) / (len(test_a) + len(test_b))


# configuration and bad input --------------------------------------------------------------


@pytest.mark.parametrize(
    "field, value",
    [
        ("num_samples", 0),
        ("latent_dim", 0),
        ("hidden_features", 2.5),
        ("hidden_layers", True),
        ("batch_size", 1),
        ("steps", -1),
        ("min_steps", 0),
        ("epochs", 0),
        ("lr_generator", 0.0),
        ("lr_discriminator", math.nan),
        ("generator_loss", "wasserstein"),
        ("set_size", -2),
        ("min_pairs", 10),
    ],
)
def test_config_rejects_bad_values(field, value):
    with pytest.raises(ValueError, match=field):
        CGANConfig(**{field: value})


def test_default_config_is_valid_and_frozen():
    config = CGANConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.num_samples = 3


@pytest.mark.parametrize(
    "make_x, match",
    [
        (lambda: torch.zeros(10, 2), r"x_obs must have shape \(n(_obs)? >= 1, 1\)"),
        (lambda: torch.zeros(10), "x_obs must have shape"),
        (lambda: torch.zeros(0, 1), "x_obs must have shape"),
        (lambda: torch.tensor([[300.0], [math.nan]]), "x_obs (contains NaN|must be finite)"),
        (lambda: torch.ones(5, 1, dtype=torch.int64), "floating-point"),
        (lambda: [[300.0]], "x_obs must be a"),
    ],
)
def test_bad_observed_data_raises_before_simulating(make_x, match):
    sim = get_simulator("rosenbrock")
    with pytest.raises(ValueError, match=match):
        run(sim, make_x(), 1000)


def test_set_size_out_of_range_is_a_value_error():
    sim = get_simulator("gaussian", n_obs=20)
    with pytest.raises(ValueError, match=r"set_size must be in \[2, n_obs = 20\], got 50"):
        run(sim, sim.observe(generator=gen(1)), 5000, set_size=50, **TINY)


def test_budget_too_small_for_point_task_is_not_applicable():
    sim = get_simulator("gaussian", n_obs=100)
    with pytest.raises(NotApplicable, match="at least"):
        run(sim, sim.observe(generator=gen(1)), 200, set_size=10, **TINY)


# building blocks against closed forms -------------------------------------------------------


def test_support_map_box_is_a_scaled_tanh_and_never_leaves_the_box():
    prior = BoxUniform([-2.0, -1.0], [2.0, 3.0])
    support = SupportMap(prior, "cpu")
    u = torch.tensor([[0.0, 0.0], [0.3, -1.2], [1e4, -1e4]])
    expected = torch.stack([2 * torch.tanh(u[:, 0]), 1 + 2 * torch.tanh(u[:, 1])], dim=1)
    torch.testing.assert_close(support(u), expected)
    assert torch.isfinite(prior.log_prob(support(u.double()))).all()


def test_support_map_normal_is_affine_and_half_bounded_uses_softplus():
    prior = DiagNormal([1.0, -2.0], [0.5, 3.0])
    u = torch.randn(50, 2, generator=gen(0))
    torch.testing.assert_close(
        SupportMap(prior, "cpu")(u), prior.loc.float() + prior.scale.float() * u
    )

    class HalfBounded:  # [0, inf) x (-inf, 5]
        low = torch.tensor([0.0, -math.inf], dtype=torch.float64)
        high = torch.tensor([math.inf, 5.0], dtype=torch.float64)

        def mean(self):
            return torch.zeros(2, dtype=torch.float64)

        def stddev(self):
            return torch.ones(2, dtype=torch.float64)

    theta = SupportMap(HalfBounded(), "cpu")(u)
    softplus = torch.nn.functional.softplus(u)
    torch.testing.assert_close(theta, torch.stack([softplus[:, 0], 5 - softplus[:, 1]], dim=1))


def test_mlp_initialisation_is_seeded_and_leaves_global_rng_alone():
    state = torch.get_rng_state()
    a = mlp(3, 2, 32, 2, generator=gen(5))
    assert torch.equal(state, torch.get_rng_state())
    b = mlp(3, 2, 32, 2, generator=gen(5))
    c = mlp(3, 2, 32, 2, generator=gen(6))
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)
    assert not torch.equal(a[0].weight, c[0].weight)
    # PyTorch's default bounds U(-1/sqrt(fan_in), 1/sqrt(fan_in)), exercised by 32*32 draws.
    w = a[2].weight.detach()
    assert w.abs().max() <= 1 / math.sqrt(32) and w.abs().max() > 0.9 / math.sqrt(32)
    assert abs(float(w.mean())) < 0.02


def test_choose_set_size():
    assert choose_set_size(1000, 10_000, 1000, 0) == 10
    assert choose_set_size(1000, 10**7, 1000, 0) == 1000  # capped at n_obs
    assert choose_set_size(1000, 1500, 1000, 0) == 2  # never a single observation per set
    assert choose_set_size(1, 10_000, 1000, 0) == 1  # one observation: conditioned on directly
    assert choose_set_size(100, 10_000, 1000, 25) == 25
    assert summary_width_ratio(1000, 10) == pytest.approx(10.0)


def test_outside_fraction():
    training = torch.tensor([[0.0, 0.0], [1.0, 2.0]])
    features = torch.tensor([[0.5, 1.0], [1.5, 1.0], [0.5, -1.0], [0.0, 2.0]])
    assert outside_fraction(features, training) == 0.5


def test_nan_loss_stops_the_fit():
    with pytest.raises(FloatingPointError, match=r"NaN .* at epoch 7"):
        _history_row(7, 70, torch.tensor([math.nan, 0.1, 0.5, 0.5]))


# fits -----------------------------------------------------------------------------------


def test_population_fit_contract_and_determinism():
    sim = get_simulator("rosenbrock", n_obs=300)
    x_obs = sim.observe(generator=gen(1))
    result = run(sim, x_obs, 1000, **TINY)
    again = run(sim, x_obs, 1000, **TINY)
    other = run(sim, x_obs, 1000, seed=1, **TINY)
    assert result.theta.shape == (200, 2) and result.theta.dtype == torch.float32
    assert result.num_simulations == 1000
    assert torch.equal(result.theta, again.theta)
    assert not torch.equal(result.theta, other.theta)
    assert torch.isfinite(sim.prior.log_prob(result.theta.double())).all()
    history = result.history
    assert list(history.columns) == ["epoch", "step", "d_loss", "g_loss", "d_real", "d_fake"]
    assert history["step"].iloc[-1] == 30 and history["epoch"].tolist() == [1, 2]
    extras = result.extras
    assert extras["fraction_outside_prior"] == 0.0
    assert extras["fraction_obs_outside_training_range"] == 0.0
    assert extras["set_size"] == 1 and extras["num_pairs"] == 1000


def test_fit_runs_on_the_requested_device(device):
    # python -m pytest tests/test_cgan.py --device cuda trains on the GPU.
    sim = get_simulator("rosenbrock", n_obs=100)
    x_obs = sim.observe(generator=gen(1))  # on the CPU: the method moves it
    result = avo_bench.fit("cgan", sim, x_obs, budget=500, device=device, **TINY)
    assert result.theta.device.type == torch.device(device).type
    assert torch.isfinite(sim.prior.log_prob(result.theta.cpu().double())).all()


def test_targets_outside_the_training_range_are_reported():
    sim = get_simulator("rosenbrock")
    # The model's range on the prior box is [0, 2509]: half of these targets are unreachable.
    x_obs = torch.cat([torch.full((50, 1), 300.0), torch.full((50, 1), 5000.0)])
    result = run(sim, x_obs, 1000, **dict(TINY, num_samples=1000))
    assert result.extras["fraction_obs_outside_training_range"] == pytest.approx(0.5, abs=0.05)


def test_point_fit_uses_sets_within_the_budget():
    sim = get_simulator("gaussian", n_obs=100)
    x_obs = sim.observe(generator=gen(1))
    result = run(sim, x_obs, 3000, min_pairs=100, **TINY)
    assert result.extras["set_size"] == 30 and result.extras["num_pairs"] == 100
    assert result.num_simulations == 3000
    assert result.extras["summary_width_ratio"] == pytest.approx(math.sqrt(100 / 30))
    assert result.extras["fraction_obs_outside_training_range"] in (0.0, 1.0)


@pytest.mark.parametrize("name", sorted(SIMULATORS))
def test_every_simulator_gives_samples_in_the_support_or_a_reason(name):
    sim = get_simulator(name)
    x_obs = sim.observe(min(sim.n_obs, 200), generator=gen(1))
    try:
        result = run(sim, x_obs, 2000, min_pairs=100, **TINY)
    except NotApplicable as reason:
        assert str(reason)
        return
    assert result.theta.shape == (200, sim.theta_dim)
    assert torch.isfinite(sim.prior.log_prob(result.theta.double())).all()
    assert result.num_simulations <= 2000


# accuracy (slow) -------------------------------------------------------------------------


@pytest.mark.slow
def test_rosenbrock_push_forward_matches_observed():
    sim = get_simulator("rosenbrock")
    x_obs = sim.observe(generator=gen(11))
    result = run(sim, x_obs, 10_000, seed=3)
    y = sim.simulate(result.theta, generator=gen(12)).flatten()
    y_prior = sim.simulate(sim.prior.sample((2000,), generator=gen(13))).flatten()
    w_fit = wasserstein_distance(y, x_obs.flatten())
    w_prior = wasserstein_distance(y_prior, x_obs.flatten())
    print(f"rosenbrock W1: cgan {w_fit:.2f}, prior {w_prior:.2f}, ratio {w_fit / w_prior:.3f}")
    assert w_fit < 0.1 * w_prior


@pytest.mark.slow
def test_gaussian_single_observation_matches_analytic_posterior():
    # n_obs = 1: the cGAN conditions on x itself, so it should learn the exact posterior.
    sim = get_simulator("gaussian", n_obs=1)
    x_obs = sim.observe(generator=gen(21))
    result = run(sim, x_obs, 10_000, seed=4, num_samples=4000)
    posterior = sim.posterior(x_obs)
    exact = posterior.sample((4000,), generator=gen(22))
    error = (result.theta.mean(0).double() - posterior.loc).abs().max()
    accuracy = c2st_gaussian(result.theta, exact)
    print(f"gaussian n_obs=1: mean error {error:.3f} (posterior sd 0.71), C2ST {accuracy:.3f}")
    # Stated tolerances: half a posterior standard deviation for the mean; a C2ST well below
    # the 1.0 of disjoint samples (a GAN trained on 10^4 pairs is not an exact sampler).
    assert error < 0.35
    assert accuracy < 0.7


@pytest.mark.slow
def test_gaussian_set_summary_matches_the_set_size_posterior():
    # n_obs = 1000 summarized by the set mean, trained on sets of m = 10: the cGAN learns the
    # exact posterior of a mean of m draws (wider than the n_obs one by ~sqrt(n_obs / m)).
    sim = get_simulator("gaussian")
    x_obs = sim.observe(generator=gen(31))
    result = run(sim, x_obs, 10_000, seed=5, num_samples=4000)
    m = result.extras["set_size"]
    matched = sim.posterior(x_obs.mean(0).expand(m, -1))
    analytic = sim.posterior(x_obs)
    error = (result.theta.mean(0).double() - analytic.loc).abs().max()
    c2st_matched = c2st_gaussian(result.theta, matched.sample((4000,), generator=gen(32)))
    c2st_exact = c2st_gaussian(result.theta, analytic.sample((4000,), generator=gen(33)))
    print(
        f"gaussian n_obs=1000, m={m}: mean error {error:.3f}, C2ST vs m-set posterior "
        f"{c2st_matched:.3f}, vs analytic posterior {c2st_exact:.3f}"
    )
    # Stated tolerances: half the m-set posterior sd (0.30) for the mean, which also covers the
    # shrinkage gap between the m-set and analytic means (~0.05 here); C2ST against the
    # m-set posterior well below that against the analytic one (~0.95, the documented gap).
    assert error < 0.15
    assert c2st_matched < 0.75
    assert c2st_matched < c2st_exact
