"""Tests of the sequential sbi methods: snpe, snle, snre (avo_bench/methods/sequential.py).

Fast: registration, presets, bad configs and budgets (each naming key, value and minimum),
every simulation of every round counted, determinism, untouched global RNGs, ``n/a`` rules.
Slow (``-m slow``): each recovers the analytic posterior of sbibm's gaussian_linear at 10^3
simulations (C2ST bound from sbibm's published values, below).
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

import avo_bench
from avo_bench.methods import METHODS
from avo_bench.published import sbibm_published
from simulators import get_simulator

SEQUENTIAL = ("snpe", "snle", "snre")
FAST = {"num_rounds": 2, "max_num_epochs": 3, "num_samples": 30}
FAST_MCMC = {"num_chains": 6, "warmup_steps": 3, "init_strategy": "proposal"}


def needs(name):
    method = METHODS[name]
    if not method.available():
        pytest.skip(f"{name} needs {method.requires}: {method.install_hint}")
    return method


def fast(name, **changes):
    return {**FAST, **(FAST_MCMC if name != "snpe" else {}), **changes}


def small():
    sim = get_simulator("gaussian", dim=2, n_obs=1)
    return sim, sim.observe(generator=torch.Generator().manual_seed(1))


def run(name, budget, seed=0, **changes):
    needs(name)
    sim, x_obs = small()
    return avo_bench.fit(name, sim, x_obs, budget=budget, seed=seed, **fast(name, **changes))


@pytest.mark.parametrize("name", SEQUENTIAL)
def test_registered_with_sbibm_protocol_and_presets(name):
    method = METHODS[name]
    assert method.requires == "sbi" and method.description and "\n" not in method.description
    config = method.make_config()
    assert config.num_rounds == 10 and config.training_batch_size == 200
    presets = method.config.presets
    assert presets["paper"] == presets["sbibm"]
    assert presets["sbibm"]["training_batch_size"] == 10_000
    if name != "snpe":
        assert presets["sbibm"]["num_chains"] == 100 and presets["sbibm"]["thin"] == 10
    assert method.applicable(get_simulator("rosenbrock")) is not None  # population task: n/a
    assert method.applicable(get_simulator("gaussian")) is None


@pytest.mark.parametrize(("preset", "caps"), [(None, [200, 200]), ("sbibm", [20, 40])])
def test_snre_sbibm_batches_are_a_tenth_of_the_simulations_so_far(monkeypatch, preset, caps):
    # sbibm capped the batch at one round's simulations; sbi 0.14 then clipped it to the
    # validation set's size, 10 % of every simulation so far (rounds of 200: 20, then 40)
    from avo_bench.methods import sequential

    seen = []

    def recording(*args, batch_cap=None, **kwargs):
        seen.append(batch_cap)
        return fit_estimator(*args, batch_cap=batch_cap, **kwargs)

    fit_estimator = sequential.fit_estimator
    monkeypatch.setattr(sequential, "fit_estimator", recording)
    needs("snre")
    sim, x_obs = small()
    avo_bench.fit("snre", sim, x_obs, budget=400, seed=0, preset=preset, **fast("snre"))
    assert seen == caps


@pytest.mark.parametrize("name", SEQUENTIAL)
@pytest.mark.parametrize(
    ("key", "value", "minimum"),
    [("num_rounds", 0, "1"), ("num_rounds", 2.5, "1"), ("num_rounds", True, "1")],
)
def test_bad_rounds_name_key_value_and_minimum(name, key, value, minimum):
    with pytest.raises(ValueError, match=rf"{name}: {key} must be an integer >= {minimum}, got"):
        METHODS[name].make_config(**{key: value})
    with pytest.raises(ValueError, match=repr(value).replace(".", r"\.")):
        METHODS[name].make_config(**{key: value})


@pytest.mark.parametrize("name", SEQUENTIAL)
def test_bad_atoms_and_slice_width(name):
    if name != "snle":
        with pytest.raises(ValueError, match="num_atoms must be an integer >= 2, got 1"):
            METHODS[name].make_config(num_atoms=1)
    if name != "snpe":
        with pytest.raises(ValueError, match="slice_width"):
            METHODS[name].make_config(slice_width=0.0)


@pytest.mark.parametrize("name", SEQUENTIAL)
def test_budget_below_one_round_names_the_minimum(name):
    needs(name)
    sim, x_obs = small()
    with pytest.raises(ValueError, match=rf"{name}: budget must be an integer >= 20 .*got 19"):
        avo_bench.fit(name, sim, x_obs, budget=19, num_rounds=2)


@pytest.mark.parametrize("name", SEQUENTIAL)
def test_small_budget_runs_fewer_rounds_and_says_so(name):
    result = run(name, 45, num_rounds=3)  # 45 sets: two rounds of at least 20
    assert result.extras["rounds"] == 2 and result.extras["num_rounds"] == 3
    assert sorted(result.history["round"].unique()) == [0, 1]
    assert result.num_simulations == 45


@pytest.mark.parametrize("name", SEQUENTIAL)
def test_every_round_counted_and_reproducible(name):
    result = run(name, 47, seed=3)  # 47 = 24 + 23 over two rounds: all counted
    assert result.num_simulations == 47
    assert sorted(result.history["round"].unique()) == [0, 1]
    assert result.extras["rounds"] == 2 and result.extras["round_sets"] == 24
    assert result.theta.shape == (30, 2) and torch.isfinite(result.theta).all()
    again = run(name, 47, seed=3)
    assert torch.equal(result.theta, again.theta)
    assert not torch.equal(result.theta, run(name, 47, seed=4).theta)


@pytest.mark.parametrize("name", SEQUENTIAL)
def test_global_rng_states_untouched(name):
    torch.manual_seed(123)
    np.random.seed(123)  # noqa: NPY002 (the state under test)
    random.seed(123)
    states = torch.get_rng_state(), np.random.get_state(), random.getstate()  # noqa: NPY002
    run(name, 40)
    assert torch.equal(torch.get_rng_state(), states[0])
    after = np.random.get_state()  # noqa: NPY002
    assert all(np.array_equal(a, b) for a, b in zip(after, states[1], strict=True))
    assert random.getstate() == states[2]


@pytest.mark.parametrize("name", ["snle", "snre"])
def test_warm_start_continues_the_chains_from_the_third_posterior_on(monkeypatch, name):
    # sbibm's latest_sample: the samplings of the posteriors after rounds 1 and 2 start by
    # init_strategy; the third's and every later one's (the returned draws included) start
    # at the previous sampling's last chain states
    from sbi.inference.posteriors import MCMCPosterior

    starts, ends = [], []
    original = MCMCPosterior._get_initial_params
    original_run = MCMCPosterior._slice_np_mcmc

    def initial(self, init_strategy, *args, **kwargs):
        params = original(self, init_strategy, *args, **kwargs)
        starts.append((init_strategy, params.clone()))
        return params

    def slice_run(self, *args, **kwargs):
        out = original_run(self, *args, **kwargs)
        ends.append(self._mcmc_init_params.clone())
        return out

    monkeypatch.setattr(MCMCPosterior, "_get_initial_params", initial)
    monkeypatch.setattr(MCMCPosterior, "_slice_np_mcmc", slice_run)
    warm = run(name, 60, num_rounds=3, warm_start=True)
    strategies = [strategy for strategy, _ in starts]
    assert strategies == ["proposal", "proposal", "latest_sample"]  # the last: returned draws
    for (_, start), end in zip(starts[2:], ends[1:2], strict=True):
        assert torch.equal(start, end)  # continued where the previous sampling stopped
    assert warm.num_simulations == 60 and torch.isfinite(warm.theta).all()
    starts.clear()
    run(name, 60, num_rounds=3)  # the default: every sampling initialized afresh
    assert [strategy for strategy, _ in starts] == ["proposal"] * 3
    assert METHODS[name].config.presets["sbibm"]["warm_start"] is True
    with pytest.raises(ValueError, match=rf"{name}: warm_start must be True or False, got 'y'"):
        METHODS[name].make_config(warm_start="y")


# accuracy (slow) ------------------------------------------------------------------------

# Bound: sbibm's published C2ST of the same algorithm on gaussian_linear at 10^3 (mean + 3 sd
# over its 10 observations; avo_bench.published) + 0.05, the margin of tests/test_neural.py and
# tests/test_new_methods_sbi.py for our C2ST on one observation with sbi's default configs.


@pytest.mark.slow
@pytest.mark.parametrize("name", SEQUENTIAL)
def test_gaussian_linear_posterior_at_a_thousand(name):
    # 10^3, not 10^4: at 10^4 snpe alone took 5 min CPU (C2ST 0.493, bound 0.637), too long for
    # CI; the 10^4 runs are in the session note of 2026-11-30
    needs(name)
    mean, sd, _ = sbibm_published("gaussian_linear", name, 1_000)
    bound = mean + 3 * sd + 0.05
    task = avo_bench.task("gaussian", dim=10, prior_var=0.1, noise_var=0.1, n_obs=1, seed=11)
    result = avo_bench.fit(name, task.simulator, task.x_obs, budget=1_000, seed=11,
                           num_samples=1000)  # fmt: skip
    assert result.num_simulations == 1_000
    scores = avo_bench.score(task, result.theta)
    accuracy = float(scores.loc[scores.metric == "c2st", "value"].iloc[0])
    print(f"{name}: C2ST {accuracy:.3f} (bound {bound:.3f}), {result.extras}")
    assert accuracy < bound, (accuracy, bound)


def test_snpe_samples_a_leaky_flow_by_mcmc(monkeypatch):
    # below MIN_ACCEPTANCE of the pilot draws inside the prior support, SNPE's proposals and
    # returned draws come from sbi's slice sampler on the flow restricted to the support
    from avo_bench.methods import sequential

    needs("snpe")
    plain = run("snpe", 60)
    assert plain.extras["mcmc_steps"] == 0 and plain.extras["min_acceptance"] == 1.0
    monkeypatch.setattr(sequential, "MIN_ACCEPTANCE", 1.01)  # every step counts as leaky
    leaky = run("snpe", 60)
    assert leaky.extras["mcmc_steps"] == 2  # round 2's proposals and the returned draws
    assert leaky.theta.shape == (30, 2) and torch.isfinite(leaky.theta).all()
    assert leaky.num_simulations == 60
    assert not torch.equal(plain.theta, leaky.theta)


def test_snpe_pilot_does_not_change_the_draws(monkeypatch):
    # the pilot runs in a forked RNG: draws equal those of sbi's rejection sampler alone
    from avo_bench.methods import sequential

    needs("snpe")
    result = run("snpe", 60, seed=3)
    monkeypatch.setattr(sequential._Rounds, "_inside", lambda self, x_o: 1.0)
    assert torch.equal(result.theta, run("snpe", 60, seed=3).theta)
