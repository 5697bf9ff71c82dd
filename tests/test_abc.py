"""Tests of the ABC baselines (rejection_abc, smc_abc) against exact references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import wasserstein_distance

import avo_bench
from avo_bench.methods import get_method
from avo_bench.methods.smc_abc import _log_kernel, _weighted_kernel
from avo_bench.published import SBIBM_GAUSSIAN_LINEAR_C2ST
from simulators import SIMULATORS, get_simulator
from simulators.gaussian import Gaussian

ABC = ("rejection_abc", "smc_abc")


def run(name, sim, x_obs, budget, seed=0, **config):
    return avo_bench.fit(name, sim, x_obs, budget=budget, seed=seed, **config)


def observe(sim, seed=1, n=None):
    return sim.observe(n, generator=torch.Generator().manual_seed(seed))


def standardized_errors(theta, posterior):
    """Error of the mean in posterior standard deviations, and the ratio of the stds."""
    mean, std = posterior.mean().double(), posterior.stddev().double()
    error = ((theta.double().mean(0) - mean) / std).abs().max()
    ratio = theta.double().std(0) / std
    return float(error), ratio


def c2st(a, b):
    """C2ST accuracy: avo_bench.metrics when it has landed, else an sklearn MLP (sbibm's)."""
    try:
        from avo_bench.metrics import c2st as metric

        metric = getattr(metric, "c2st", metric)  # the function, or its module while in progress
    except ImportError:
        metric = None
    if metric is not None:
        return metric(a, b)
    from sklearn.model_selection import cross_val_score
    from sklearn.neural_network import MLPClassifier

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    x = (np.concatenate([a, b]) - a.mean(0)) / a.std(0)
    y = np.r_[np.zeros(len(a)), np.ones(len(b))]
    h = 10 * a.shape[1]
    clf = MLPClassifier(hidden_layer_sizes=(h, h), max_iter=500, random_state=0)
    return float(cross_val_score(clf, x, y, cv=5, scoring="accuracy").mean())


class Recording(Gaussian):
    """The gaussian simulator, keeping every simulated (theta, x) batch."""

    name = "gaussian"

    def __init__(self, **options):
        super().__init__(**options)
        self.calls = []

    def simulate(self, theta, generator=None):
        x = super().simulate(theta, generator)
        self.calls.append((theta.clone(), x.clone()))
        return x


class Stretched(Recording):
    """Recording with the first data coordinate stretched 30-fold."""

    def simulate(self, theta, generator=None):
        x = Gaussian.simulate(self, theta, generator) * torch.tensor([30.0, 1.0, 1.0])
        self.calls.append((theta.clone(), x.clone()))
        return x


# configs and bad input --------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, field, value",
    [
        ("rejection_abc", "quantile", 0.0),
        ("rejection_abc", "quantile", 1.5),
        ("rejection_abc", "num_samples", 0),
        ("rejection_abc", "set_size", 1),
        ("rejection_abc", "distance", "l1"),
        ("smc_abc", "alpha", 1.0),
        ("smc_abc", "alpha", 0),
        ("smc_abc", "population_size", 1),
        ("smc_abc", "kernel_scale", -1.0),
        ("smc_abc", "min_acceptance", 1.0),
    ],
)
def test_bad_config_names_field(name, field, value):
    with pytest.raises(ValueError, match=field):
        get_method(name).make_config(**{field: value})


@pytest.mark.parametrize("name", ABC)
@pytest.mark.parametrize("budget", [0, -5, 1])
def test_budget_below_minimum_names_minimum(name, budget):
    sim = get_simulator("gaussian", dim=2, n_obs=50)
    with pytest.raises(ValueError, match=r"budget must be an integer >= \d+"):
        run(name, sim, observe(sim), budget)


def test_smc_population_larger_than_budget():
    sim = get_simulator("gaussian", dim=2, n_obs=1)
    with pytest.raises(ValueError, match=r">= 401 .*population 200"):
        run("smc_abc", sim, observe(sim), 300, population_size=200)


@pytest.mark.parametrize("name", ABC)
def test_population_task_not_applicable(name):
    reason = get_method(name).applicable(get_simulator("rosenbrock"))
    assert reason is not None and "population" in reason


@pytest.mark.parametrize("name", ABC)
def test_bad_x_obs_shape(name):
    sim = get_simulator("gaussian", dim=2, n_obs=1)
    with pytest.raises(ValueError, match="x_obs must have shape"):
        run(name, sim, torch.zeros(1, 3), 1000)


# contract -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ABC)
def test_reproducible_and_within_budget(name):
    sim = get_simulator("gaussian", dim=2, n_obs=30)
    x_obs = observe(sim)
    a = run(name, sim, x_obs, 3000, seed=3)
    b = run(name, sim, x_obs, 3000, seed=3)
    c = run(name, sim, x_obs, 3000, seed=4)
    assert torch.equal(a.theta, b.theta) and not torch.equal(a.theta, c.theta)
    assert a.num_simulations <= 3000 and a.theta.shape == (10_000, 2)
    assert a.num_simulations % a.extras["set_size"] == 0
    assert len(a.history) >= 1 and math.isfinite(a.extras["epsilon"])


# the acceptance rule, checked by an independent numpy computation --------------------------


def test_rejection_keeps_the_closest_quantile():
    recorder = Recording(dim=3, n_obs=1)
    x_obs = observe(recorder)
    result = run("rejection_abc", recorder, x_obs, 2000, quantile=0.05)
    theta = torch.cat([t for t, _ in recorder.calls]).numpy()
    x = torch.cat([x for _, x in recorder.calls]).numpy()
    # torch's median of an even count is the lower middle value
    median = np.quantile(x, 0.5, axis=0, method="lower")
    mad = 1.4826 * np.quantile(np.abs(x - median), 0.5, axis=0, method="lower")
    d = np.linalg.norm((x - x_obs.numpy()) / mad, axis=1)
    expected = theta[np.argsort(d, kind="stable")[:100]]
    accepted = np.unique(result.theta.numpy(), axis=0)
    assert result.extras["num_accepted"] == 100 and result.num_simulations == 2000
    assert set(map(tuple, accepted)) <= set(map(tuple, expected))
    assert len(accepted) >= 95  # 1000 draws with replacement from 100 miss few of them
    assert result.extras["epsilon"] == pytest.approx(np.sort(d)[99], rel=1e-5)


def test_rejection_l2_keeps_the_closest_unscaled():
    # distance="l2" (sbi's MCABC and sbibm): the unscaled Euclidean distance
    recorder = Stretched(dim=3, n_obs=1)
    x_obs = observe(recorder)
    result = run("rejection_abc", recorder, x_obs, 2000, num_top_samples=50, distance="l2")
    theta = torch.cat([t for t, _ in recorder.calls]).numpy()
    x = torch.cat([x for _, x in recorder.calls]).numpy()
    d = np.linalg.norm(x - x_obs.numpy(), axis=1)
    expected = theta[np.argsort(d, kind="stable")[:50]]
    assert set(map(tuple, np.unique(result.theta.numpy(), axis=0))) <= set(map(tuple, expected))
    assert result.extras["epsilon"] == pytest.approx(np.sort(d)[49], rel=1e-5)
    # the default MAD scaling keeps other draws here (the coordinates' scales differ 30-fold)
    scaled = run("rejection_abc", Stretched(dim=3, n_obs=1), x_obs, 2000, num_top_samples=50)
    assert not set(map(tuple, scaled.theta.numpy())) <= set(map(tuple, expected))


def test_sbibm_preset_uses_unscaled_l2():
    assert get_method("rejection_abc").config.presets["sbibm"]["distance"] == "l2"


def test_smc_kernel_matches_torch_distributions():
    g = torch.Generator().manual_seed(0)
    theta = torch.randn(50, 3, generator=g)
    weights = torch.softmax(torch.randn(50, generator=g, dtype=torch.float64), 0)
    chol = _weighted_kernel(theta, weights, 2.0)
    cov = np.cov(theta.numpy().T, aweights=weights.numpy(), ddof=1)
    np.testing.assert_allclose((chol @ chol.T).numpy(), 2 * cov, rtol=1e-5, atol=1e-7)
    new = torch.randn(7, 3, generator=g)
    normal = torch.distributions.MultivariateNormal(theta.double(), scale_tril=chol)
    expected = normal.log_prob(new.double()[:, None, :])
    torch.testing.assert_close(_log_kernel(new, theta, chol), expected)


def test_smc_tolerance_decreases_and_spends_budget():
    sim = get_simulator("gaussian", dim=2, n_obs=1)
    result = run("smc_abc", sim, observe(sim), 5000)
    eps = result.history["epsilon"].to_numpy()
    assert (np.diff(eps) <= 1e-6).all() and eps[-1] < eps[0]
    assert result.num_simulations == 5000
    assert result.history["num_simulations"].iloc[-1] == 5000


# accuracy against exact posteriors -----------------------------------------------------------


@pytest.mark.parametrize("name", ABC)
def test_gaussian_posterior_mean_and_width(name):
    sim = get_simulator("gaussian", dim=2, n_obs=1)
    x_obs = observe(sim)
    result = run(name, sim, x_obs, 10_000)
    error, ratio = standardized_errors(result.theta, sim.posterior(x_obs))
    assert error < 0.35
    assert ((ratio > 0.8) & (ratio < 1.5)).all(), ratio


@pytest.mark.parametrize("name", ABC)
def test_iid_set_with_full_set_size_matches_exact_posterior(name):
    sim = get_simulator("gaussian", dim=2, n_obs=20)
    x_obs = observe(sim)
    result = run(name, sim, x_obs, 60_000, set_size=20)
    error, ratio = standardized_errors(result.theta, sim.posterior(x_obs))
    assert error < 0.35
    assert ((ratio > 0.8) & (ratio < 1.5)).all(), ratio


@pytest.mark.skipif("poisson" not in SIMULATORS, reason="poisson simulator not registered")
@pytest.mark.parametrize("name", ABC)
def test_poisson_posterior_and_predictive(name):
    sim = get_simulator("poisson", n_obs=10)
    x_obs = observe(sim)
    result = run(name, sim, x_obs, 50_000, set_size=10)
    posterior = sim.posterior(x_obs)
    error, ratio = standardized_errors(result.theta, posterior)
    assert error < 0.35 and 0.75 < float(ratio) < 1.5, (error, ratio)
    exact = posterior.sample((1000,), generator=torch.Generator().manual_seed(2))
    assert wasserstein_distance(result.theta[:, 0], exact[:, 0]) < 0.3 * float(posterior.stddev())
    # posterior predictive vs the observed counts, relative to the same-size floor at theta*
    g = torch.Generator().manual_seed(9)
    predictive = sim.simulate(result.theta, g)[:, 0]
    reference = observe(sim, seed=11, n=1000)[:, 0]
    floor = wasserstein_distance(observe(sim, seed=12, n=1000)[:, 0], reference)
    assert wasserstein_distance(predictive, reference) < 3 * floor + 0.3


def weinberg_predictive_distances(name, budget):
    """W1 of the posterior predictive and of the prior predictive to x_obs, and the floor."""
    sim = get_simulator("weinberg", n_obs=2000)
    x_obs = observe(sim)[:, 0]
    result = run(name, sim, x_obs[:, None], budget)
    g = torch.Generator().manual_seed(9)
    predictive = sim.simulate(result.theta.repeat(10, 1), g)[:, 0]
    prior_predictive = sim.simulate(sim.prior.sample((10_000,), generator=g), g)[:, 0]
    floor = wasserstein_distance(observe(sim, seed=12, n=10_000)[:, 0], x_obs)
    return (
        wasserstein_distance(predictive, x_obs),
        wasserstein_distance(prior_predictive, x_obs),
        floor,
    )


@pytest.mark.skipif("weinberg" not in SIMULATORS, reason="weinberg simulator not registered")
@pytest.mark.parametrize("name", ABC)
def test_weinberg_predictive_beats_prior(name):
    # 10 events per simulated set at 10^4 (module docstring of _summaries): a wide posterior
    distance, prior_distance, floor = weinberg_predictive_distances(name, 10_000)
    assert distance < 0.5 * prior_distance, (distance, prior_distance, floor)


@pytest.mark.slow
@pytest.mark.skipif("weinberg" not in SIMULATORS, reason="weinberg simulator not registered")
@pytest.mark.parametrize("name", ABC)
def test_weinberg_predictive_near_floor_at_large_budget(name):
    distance, prior_distance, floor = weinberg_predictive_distances(name, 100_000)
    assert distance < 0.25 * prior_distance and distance < 8 * floor, (distance, floor)


# sbibm gaussian_linear comparison (slow) ----------------------------------------------------

# Published C2ST on gaussian_linear, mean and sample sd over sbibm's 10 observations
# (Lueckmann et al. 2021; values and exact source in avo_bench.published).
# Bounds: published mean +- (3 published sd + WIDEN). WIDEN = 0.05 covers our differences from
# sbibm: a 1,000-sample C2ST of the fast variant on one observation (sbibm: 10,000 per side,
# its sklearn protocol; +0.044 between the two measured at 1,000 per side in d = 10, see
# avo_bench/metrics/classifier.py), and our ABC returning resampled accepted draws (32 of 10^3,
# 100 of 10^4 for rejection) where sbibm samples a KDE fitted to the 100 closest: repeated points
# are easy for the classifier, so ours sit at the top of the range (scripts/reproduce_sbibm.py).
PUBLISHED = {
    key: SBIBM_GAUSSIAN_LINEAR_C2ST[key][:2]  # (mean, sd)
    for key in [
        ("rejection_abc", 1_000),
        ("rejection_abc", 10_000),
        ("smc_abc", 1_000),
        ("smc_abc", 10_000),
    ]
}
WIDEN = 0.05


@pytest.mark.slow
@pytest.mark.parametrize("name, budget", sorted(PUBLISHED))
def test_sbibm_gaussian_linear_c2st(name, budget):
    sim = get_simulator("gaussian", dim=10, prior_var=0.1, noise_var=0.1, n_obs=1)
    x_obs = observe(sim)
    result = run(name, sim, x_obs, budget)
    posterior = sim.posterior(x_obs)
    reference = posterior.sample((1000,), generator=torch.Generator().manual_seed(5))
    mean, sd = PUBLISHED[name, budget]
    accuracy = c2st(reference, result.theta)
    assert abs(accuracy - mean) <= 3 * sd + WIDEN, (accuracy, mean, sd)
    error, _ = standardized_errors(result.theta, posterior)
    assert error < 1.0
