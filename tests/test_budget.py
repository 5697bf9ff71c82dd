"""Budget enforcement, the same for every registered method (parametrized over METHODS)."""

from __future__ import annotations

import pytest
import torch

from avo_bench.methods import METHODS, BudgetExceeded, CountingSimulator, get_method
from simulators import get_simulator

BUDGET = 300  # small: this file runs every registered method's default config
# A point task and a population task: every method applies to at least one of them.
TASKS = (("gaussian", {"dim": 2, "n_obs": 50}), ("rosenbrock", {"n_obs": 200}))
SMALL = {"num_samples": 100}  # the shared config convention; keeps sampling cheap


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


def fit(method, wrapper, x_obs, budget):
    overrides = {k: v for k, v in SMALL.items() if k in method.config.__dataclass_fields__}
    return method.fit(
        wrapper,
        x_obs,
        budget=budget,
        config=method.make_config(**overrides),
        generator=torch.Generator().manual_seed(0),
        device="cpu",
    )


@pytest.mark.parametrize("name", sorted(METHODS))
def test_result_reports_simulations_within_budget(name):
    method, simulator, x_obs = cell(name)
    wrapper = CountingSimulator(simulator, BUDGET)
    result = fit(method, wrapper, x_obs, BUDGET)
    assert result.num_simulations == wrapper.num_simulations <= BUDGET
    assert result.theta.ndim == 2 and result.theta.shape[1] == simulator.theta_dim
    assert torch.isfinite(result.theta).all()


@pytest.mark.parametrize("name", sorted(METHODS))
def test_wrapper_stops_a_method_that_overspends(name):
    # The method is told BUDGET but the wrapper allows only 10: it must either stop with
    # BudgetExceeded or really use (and report) at most 10 simulations.
    method, simulator, x_obs = cell(name)
    wrapper = CountingSimulator(simulator, 10)
    try:
        result = fit(method, wrapper, x_obs, BUDGET)
    except BudgetExceeded as error:
        assert "budget of 10" in str(error)
    else:
        assert result.num_simulations == wrapper.num_simulations <= 10
    assert wrapper.num_simulations <= 10


@pytest.mark.parametrize("name", sorted(METHODS))
@pytest.mark.parametrize("budget", [0, -1])
def test_nonpositive_budget_is_a_value_error(name, budget):
    method, simulator, x_obs = cell(name)
    with pytest.raises(ValueError, match="budget"):
        fit(method, CountingSimulator(simulator, 1), x_obs, budget)


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
    with pytest.raises(AttributeError):
        wrapper.observe(10)
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="budget must be an integer >= 1"):
            CountingSimulator(simulator, bad)


def test_unknown_method_lists_the_registry():
    with pytest.raises(ValueError, match="unknown method 'nope'") as info:
        get_method("nope")
    assert all(name in str(info.value) for name in METHODS)
