"""Tests of the newer sbi-backed methods: fmpe, npse, nre_c, bnre, npe_ensemble.

Fast: configs and bad input, budget minimums, exact simulation counts, determinism, untouched
global RNGs, iid routes, the ensemble's member data. Slow (``-m slow``): each recovers the
analytic posterior of sbibm's gaussian_linear at 10^4 simulations (C2ST bound below).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import avo_bench
from avo_bench.methods import METHODS, get_method
from avo_bench.published import SBIBM_GAUSSIAN_LINEAR_C2ST
from simulators import get_simulator

NEW = ("fmpe", "npse", "nre_c", "bnre", "npe_ensemble")
MCMC = ("nre_c", "bnre")
FAST = {"max_num_epochs": 3, "num_samples": 60}
FAST_MCMC = {"num_chains": 6, "warmup_steps": 5, "init_strategy": "proposal"}


def needs(name):
    method = METHODS[name]
    if not method.available():
        pytest.skip(f"{name} needs {method.requires}: {method.install_hint}")
    return method


def observe(sim, seed=1):
    return sim.observe(generator=torch.Generator().manual_seed(seed))


def fast(name, **changes):
    extra = {"steps": 50} if name == "npse" else {}
    extra |= {"ensemble_size": 2} if name == "npe_ensemble" else {}
    return {**FAST, **(FAST_MCMC if name in MCMC else {}), **extra, **changes}


def run(name, sim, x_obs, budget, seed=0, **config):
    needs(name)
    return avo_bench.fit(name, sim, x_obs, budget=budget, seed=seed, **config)


# registration and configs ---------------------------------------------------------------


@pytest.mark.parametrize("name", NEW)
def test_registered_with_defaults_and_rules(name):
    method = METHODS[name]
    assert method.requires == "sbi" and "avo-bench[sbi]" in method.install_hint
    assert method.description and "\n" not in method.description
    config = method.make_config()
    assert config.num_samples == 10_000 and config.learning_rate == 5e-4
    assert config.training_batch_size == 200 and config.stop_after_epochs == 20
    assert method.applicable(get_simulator("rosenbrock")) is not None  # population task
    assert method.applicable(get_simulator("gaussian")) is None


def test_sbi_defaults():
    assert get_method("npse").make_config().sde_type == "ve"
    assert get_method("npse").make_config().sample_with == "sde"
    nre_c = get_method("nre_c").make_config()
    assert (nre_c.num_classes, nre_c.gamma) == (5, 1.0)
    assert get_method("bnre").make_config().regularization_strength == 100.0
    ensemble = get_method("npe_ensemble").make_config()
    assert (ensemble.ensemble_size, ensemble.data, ensemble.estimator) == (5, "shared", "maf")


BAD = [
    ("npse", "sde_type", "edm", "one of 've', 'vp', 'subvp'"),
    ("npse", "sample_with", "euler", "one of 'ode', 'sde'"),
    ("npse", "steps", 0, "an integer >= 1"),
    ("npse", "iid", "sum", "one of 'auto', 'summary', 'compose'"),
    ("npse", "iid_method", "mean", "one of 'auto_gauss', 'gauss', 'jac_gauss', 'fnpe'"),
    ("fmpe", "estimator", "maf", "one of 'mlp', 'ada_mlp'"),
    ("fmpe", "iid", "sum", "one of 'auto', 'summary'"),
    ("fmpe", "learning_rate", 0.0, "> 0"),
    ("fmpe", "amortized_check", "no", "True or False"),
    ("nre_c", "num_classes", 0, "an integer >= 1"),
    ("nre_c", "gamma", -1.0, "> 0"),
    ("nre_c", "estimator", "maf", "one of 'resnet', 'mlp', 'linear'"),
    ("bnre", "regularization_strength", -1.0, ">= 0"),
    ("bnre", "num_chains", 0, "an integer >= 1"),
    ("npe_ensemble", "ensemble_size", 1, "an integer >= 2"),
    ("npe_ensemble", "ensemble_size", True, "an integer >= 2"),
    ("npe_ensemble", "data", "jackknife", "one of 'shared', 'bootstrap', 'split'"),
    ("npe_ensemble", "estimator", "mlp", "one of 'maf', 'nsf'"),
]


@pytest.mark.parametrize("name, field, value, valid", BAD)
def test_bad_config_names_key_and_valid_values(name, field, value, valid):
    with pytest.raises(ValueError, match=field) as error:
        get_method(name).make_config(**{field: value})
    assert valid in str(error.value), str(error.value)


@pytest.mark.parametrize("name", NEW)
def test_budget_below_minimum_names_it(name):
    sim = get_simulator("gaussian", dim=2, n_obs=1)
    with pytest.raises(ValueError, match=r"budget must be an integer >= 20\b"):
        run(name, sim, observe(sim), 19, **fast(name))


def test_split_ensemble_needs_twenty_sets_per_member():
    sim = get_simulator("gaussian", dim=2, n_obs=1)
    with pytest.raises(ValueError, match=r"budget must be an integer >= 100\b"):
        run("npe_ensemble", sim, observe(sim), 99, **fast("npe_ensemble", data="split",
                                                          ensemble_size=5))  # fmt: skip


# contract (tiny trainings) ----------------------------------------------------------------


@pytest.mark.parametrize("name", NEW)
def test_counts_reproducible_and_leaves_global_rng_alone(name):
    sim = get_simulator("gaussian", dim=2, n_obs=1)
    x_obs = observe(sim)
    torch_state, numpy_state = torch.get_rng_state(), np.random.get_state()  # noqa: NPY002
    a = run(name, sim, x_obs, 203, seed=3, **fast(name))
    assert torch.equal(torch.get_rng_state(), torch_state)
    after = np.random.get_state()  # noqa: NPY002
    assert all(np.array_equal(u, v) for u, v in zip(after, numpy_state, strict=True))
    b = run(name, sim, x_obs, 203, seed=3, **fast(name))
    c = run(name, sim, x_obs, 203, seed=4, **fast(name))
    assert torch.equal(a.theta, b.theta) and not torch.equal(a.theta, c.theta)
    assert a.theta.shape == (60, 2) and a.num_simulations == 203
    assert len(a.history) == a.extras["epochs"] >= 1
    assert {"training_loss", "validation_loss"} <= set(a.history.columns)


@pytest.mark.parametrize("name", ["fmpe", "npse", "npe_ensemble"])
def test_iid_set_takes_the_summary_route(name):
    sim = get_simulator("gaussian", dim=2, n_obs=40)
    result = run(name, sim, observe(sim), 400, **fast(name))
    m = result.extras["set_size"]
    assert result.extras["iid"] == "summary" and m > 1
    assert result.num_simulations == (400 // m) * m


def test_npse_compose_needs_the_sde_sampler():
    with pytest.raises(ValueError, match=r"iid='compose'.*sample_with='sde'.*'ode'"):
        get_method("npse").make_config(iid="compose", sample_with="ode")


def test_npse_composes_the_scores_of_every_observation():
    sim = get_simulator("gaussian", dim=2, n_obs=40)
    x_obs = observe(sim)
    result = run("npse", sim, x_obs, 200, iid="compose", **fast("npse"))
    assert result.extras["iid"] == "compose" and result.extras["set_size"] == 1
    assert result.extras["iid_method"] == "auto_gauss" and result.num_simulations == 200
    # the same network conditioned on one observation gives other draws: every row is used
    first = run("npse", sim, x_obs[:1], 200, iid="compose", **fast("npse"))
    assert "iid_method" not in first.extras and not torch.equal(first.theta, result.theta)


@pytest.mark.parametrize("name", MCMC)
def test_iid_set_sums_ratios_over_observations(name):
    sim = get_simulator("poisson", n_obs=30)
    result = run(name, sim, observe(sim), 200, **fast(name))
    assert result.extras["iid"] == "sum" and result.extras["set_size"] == 1
    assert result.num_simulations == 200
    assert result.extras["observed_points"] <= 30


@pytest.mark.parametrize("sde_type", ["vp", "subvp"])
def test_npse_sde_types_and_ode_sampler(sde_type):
    sim = get_simulator("gaussian", dim=2, n_obs=1)
    result = run("npse", sim, observe(sim), 100, **fast("npse", sde_type=sde_type,
                                                        sample_with="ode"))  # fmt: skip
    assert result.extras["sde_type"] == sde_type and result.extras["sample_with"] == "ode"
    assert result.log_prob is None and result.sample_at is None


@pytest.mark.parametrize("name", ["fmpe", "npe_ensemble"])
def test_amortized_fields(name):
    sim = get_simulator("gaussian", dim=2, n_obs=1)
    result = run(name, sim, observe(sim), 200, **fast(name))
    assert result.log_prob(result.theta[:7]).shape == (7,)
    x = sim.simulate(torch.zeros(3, 2), generator=torch.Generator().manual_seed(0))
    draws = result.sample_at(x[:, None], 5, torch.Generator().manual_seed(0))
    assert draws.shape == (5, 3, 2)


def test_fmpe_samples_each_set_by_its_own_ode_solve():
    # zuko's adaptive step is one for the whole batch: the sets are solved one at a time, so
    # a set's draws do not depend on which other sets share the call (sbi draws the base
    # noise from the forked global RNG, reseeded per call from the generator)
    sim = get_simulator("gaussian", dim=2, n_obs=1)
    result = run("fmpe", sim, observe(sim), 200, **fast("fmpe"))
    x = sim.simulate(torch.zeros(3, 2), generator=torch.Generator().manual_seed(0))[:, None]
    both = result.sample_at(x[:2], 50, torch.Generator().manual_seed(1))
    again = result.sample_at(x[:2], 50, torch.Generator().manual_seed(1))
    assert torch.equal(both, again)
    first = result.sample_at(x[:1], 50, torch.Generator().manual_seed(1))
    assert torch.equal(first[:, 0], both[:, 0])  # the first set's solve is the same


def test_fmpe_without_the_amortized_check_says_why():
    from avo_bench.calibration import NotScored, amortized

    sim = get_simulator("gaussian", dim=2, n_obs=1)
    result = run("fmpe", sim, observe(sim), 200, **fast("fmpe", amortized_check=False))
    assert result.sample_at is None and result.log_prob is not None
    scored = type("Scored", (), {"result": result, "artifacts": {}})()
    with pytest.raises(NotScored, match="amortized_check=False"):
        amortized(scored)
    assert get_method("fmpe").config.presets["reference"] == {"amortized_check": False}


def test_ensemble_member_data():
    from avo_bench.methods._sbi_direct import Prepared
    from avo_bench.methods.ensemble import member_data

    data = Prepared("sum", 1, torch.arange(10.0)[:, None], torch.arange(10.0)[:, None], None)
    config = get_method("npe_ensemble").make_config(ensemble_size=3, data="split")
    parts = member_data(data, config, torch.Generator().manual_seed(0))
    assert sorted(torch.cat([p.theta for p in parts]).flatten().tolist()) == list(range(10))
    config = get_method("npe_ensemble").make_config(ensemble_size=3, data="bootstrap")
    parts = member_data(data, config, torch.Generator().manual_seed(0))
    assert [len(p.theta) for p in parts] == [10] * 3
    assert all(torch.equal(p.theta, p.x) for p in parts)  # pairs stay together
    assert len({tuple(p.theta.flatten().tolist()) for p in parts}) == 3


@pytest.mark.parametrize("name", ["fmpe", "npse", "npe_ensemble"])
def test_pilot_leaves_the_draws_alone(name, monkeypatch):
    # the pilot that guards sbi's unbounded rejection runs in a forked RNG: the draws equal
    # those of a run without it; it sees the fraction inside the prior's support
    from avo_bench.methods import _sbi_direct

    sim = get_simulator("two_moons")
    x_obs = observe(sim)
    a = run(name, sim, x_obs, 300, seed=3, **fast(name))
    assert 0.0 < a.extras["acceptance"] <= 1.0
    monkeypatch.setattr(_sbi_direct, "fraction_inside", lambda *args, **kwargs: 1.0)
    assert torch.equal(a.theta, run(name, sim, x_obs, 300, seed=3, **fast(name)).theta)


def test_an_estimate_with_no_pilot_draw_inside_the_prior_fails_clearly(monkeypatch):
    from avo_bench.methods import _sbi_direct

    sim = get_simulator("two_moons")
    monkeypatch.setattr(_sbi_direct, "fraction_inside", lambda *args, **kwargs: 0.0)
    with pytest.raises(ValueError, match=r"fmpe: none of 1,000 draws .* prior.s support"):
        run("fmpe", sim, observe(sim), 300, seed=3, **fast("fmpe"))


# accuracy (slow) ------------------------------------------------------------------------

# sbibm published no values for these methods. Bound: sbibm's NPE-NSF C2ST on gaussian_linear
# at 10^4 (mean + 3 sd over its 10 observations; avo_bench.published) + WIDEN, the margin of
# tests/test_neural.py for our 1,000-sample C2ST on one observation and sbi's default configs:
# a current method that does worse than NPE did in 2021 at the same budget is broken. The
# means and widths are checked too: max |mean error| < 0.5 posterior sd (measured < 0.2).
NPE_10K = SBIBM_GAUSSIAN_LINEAR_C2ST["npe", 10_000]
BOUND = NPE_10K[0] + 3 * NPE_10K[1] + 0.05  # 0.697


@pytest.mark.slow
@pytest.mark.parametrize("name", NEW)
def test_gaussian_linear_posterior_at_ten_thousand(name):
    from avo_bench.metrics import c2st

    sim = get_simulator("gaussian", dim=10, prior_var=0.1, noise_var=0.1, n_obs=1)
    x_obs = observe(sim, seed=11)
    result = run(name, sim, x_obs, 10_000, seed=11, num_samples=1000)
    posterior = sim.posterior(x_obs)
    reference = posterior.sample((1000,), generator=torch.Generator().manual_seed(5))
    accuracy = c2st(reference, result.theta)
    print(f"{name}: C2ST {accuracy:.3f}, {result.extras['training_cpu_s']:.0f} s training CPU")
    assert accuracy < BOUND, (accuracy, BOUND)
    mean, std = posterior.mean().double(), posterior.stddev().double()
    error = ((result.theta.double().mean(0) - mean) / std).abs().max()
    ratio = result.theta.double().std(0) / std
    assert error < 0.5 and ((ratio > 0.7) & (ratio < 1.4)).all(), (error, ratio)
