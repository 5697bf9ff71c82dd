"""Budget enforcement, the same for every registered method (parametrized over METHODS)."""

from __future__ import annotations

import pytest
import torch

import avo_bench
from avo_bench.methods import (
    METHODS,
    BudgetExceeded,
    CountingSimulator,
    Method,
    Result,
    get_method,
)
from avo_bench.methods.prior import PriorConfig
from simulators import get_simulator

BUDGET = 300  # small: this file runs every registered method's default config
# A point task and a population task: every method applies to at least one of them.
TASKS = (("gaussian", {"dim": 2, "n_obs": 50}), ("rosenbrock", {"n_obs": 200}))
# Defaults but cheap sampling and two rounds (sequential methods): what is under test is the
# budget, which none of these changes (fields apply only to methods that have them).
SMALL = {"num_samples": 100, "num_chains": 4, "warmup_steps": 10, "num_rounds": 2}


def cell(name: str):
    """The method, an applicable simulator and its observed data (skips if none applies)."""
    method = METHODS[name]
    if not method.available():
        pytest.skip(f"{name} needs {method.requires}: {method.install_hint}")
    for simulator_name, options in TASKS:
        simulator = get_simulator(simulator_name, **options)
        if method.applicable(simulator) is None:
            x_obs = simulator.observe(generator=torch.Generator().manual_seed(1))
            return method, simulator, x_obs
    pytest.skip(f"{name} applies to none of {[t for t, _ in TASKS]}")


def fit(method, simulator, x_obs, budget):
    overrides = {k: v for k, v in SMALL.items() if k in method.config.__dataclass_fields__}
    return avo_bench.fit(method, simulator, x_obs, budget=budget, seed=0, **overrides)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_result_reports_simulations_within_budget(name):
    # a method that overspent would raise BudgetExceeded from the registry's counting wrapper
    method, simulator, x_obs = cell(name)
    result = fit(method, simulator, x_obs, BUDGET)
    assert 0 <= result.num_simulations <= BUDGET
    assert result.theta.ndim == 2 and result.theta.shape[1] == simulator.theta_dim
    assert torch.isfinite(result.theta).all()
    assert result.wall_time_s >= 0


def test_registry_counts_what_a_method_simulates_whatever_it_reports(monkeypatch):
    def liar(simulator, x_obs, *, budget, config, generator, device):
        simulator.simulate(simulator.prior.sample((40,), generator=generator))
        return Result(torch.zeros(5, 2), num_simulations=0)  # claims it simulated nothing

    def spender(simulator, x_obs, *, budget, config, generator, device):
        for _ in range(budget + 1):
            simulator.simulate(simulator.prior.sample((1,), generator=generator))
        return Result(torch.zeros(5, 2))

    sim = get_simulator("gaussian", dim=2, n_obs=10)
    x_obs = sim.observe(generator=torch.Generator().manual_seed(0))
    for name, function in (("liar", liar), ("spender", spender)):
        monkeypatch.setitem(METHODS, name, Method(name, function, PriorConfig))
    assert avo_bench.fit("liar", sim, x_obs, budget=100).num_simulations == 40
    with pytest.raises(BudgetExceeded, match=r"1 more simulations .* only 0 of the budget of 7"):
        avo_bench.fit("spender", sim, x_obs, budget=7)


@pytest.mark.parametrize("name", sorted(METHODS))
@pytest.mark.parametrize("budget", [0, -1])
def test_nonpositive_budget_is_a_value_error(name, budget):
    method, simulator, x_obs = cell(name)
    with pytest.raises(ValueError, match="budget must be an integer >= 1"):
        fit(method, simulator, x_obs, budget)


def test_counting_simulator_counts_and_refuses():
    simulator = get_simulator("gaussian", dim=2)
    wrapper = CountingSimulator(simulator, 5)
    theta = torch.zeros(3, 2)
    wrapper.simulate(theta)
    assert (wrapper.num_simulations, wrapper.remaining) == (3, 2)
    with pytest.raises(BudgetExceeded, match=r"3 more simulations .* only 2 of the budget of 5"):
        wrapper.simulate(theta)
    assert wrapper.num_simulations == 3  # a refused call costs nothing
    wrapper.simulate(theta[:2])
    assert wrapper.remaining == 0
    # the method-facing surface: no answers, no way around the count
    for hidden in ("observe", "observation", "posterior", "true_parameters", "simulator",
                   "_simulate"):  # fmt: skip
        with pytest.raises(AttributeError):
            getattr(wrapper, hidden)
    assert not wrapper.provides("posterior") and wrapper.provides("summarize")
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="budget must be an integer >= 1"):
            CountingSimulator(simulator, bad)


def test_unknown_method_lists_the_registry():
    with pytest.raises(ValueError, match="unknown method 'nope'") as info:
        get_method("nope")
    assert all(name in str(info.value) for name in METHODS)
