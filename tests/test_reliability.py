"""Reliability against hostile methods and simulators, and validation of every run argument.

Hostile methods and simulators are registered from the test (``monkeypatch``), like a user's
script would, and run through the grid in this process (and its forked children): nothing they
do may change another cell's rows, reach θ*, exceed the budget unnoticed, or break the report.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pytest
import torch

import avo_bench
from avo_bench import tasks
from avo_bench.methods import (
    METHODS,
    BudgetExceeded,
    CountingSimulator,
    Method,
    Result,
)
from avo_bench.methods.prior import PriorConfig
from avo_bench.plan import make_plan
from avo_bench.report import write_report
from avo_bench.results import ResultsWarning, load_results
from avo_bench.runner import CellErrors
from simulators import SIMULATORS, get_simulator
from simulators.gaussian import Gaussian

TINY = dict(preset="tiny", budgets=[100], report=False)
VOLATILE = ["wall_time_s", "git_commit"]


def stable(rows: pd.DataFrame) -> pd.DataFrame:
    return rows.drop(columns=VOLATILE).reset_index(drop=True)


def register(monkeypatch, name: str, fit, config=PriorConfig) -> None:
    monkeypatch.setitem(METHODS, name, Method(name, fit, config))


def register_simulator(monkeypatch, name: str, cls: type) -> None:
    cls = type(name, (cls,), {})
    cls.name = name
    monkeypatch.setitem(SIMULATORS, name, cls)


# --- 1. methods receive copies of everything the runner reuses ---------------------------------


@dataclass(frozen=True)
class ListConfig:
    num_samples: int = 200
    layers: list = field(default_factory=lambda: [8, 8])


def vandal(simulator, x_obs, *, budget, config, generator, device):
    """Mutates everything it can reach, then returns prior draws."""
    x_obs.mul_(100.0).add_(7.0)
    for name in ("low", "high", "loc", "scale"):
        if hasattr(simulator.prior, name):
            getattr(simulator.prior, name).mul_(-3.0).add_(1.0)
    config.layers.append(99)
    for name, value in (("n_obs", 1), ("x_shape", (9,)), ("budget", 10**9), ("name", "x")):
        try:
            setattr(simulator, name, value)
        except AttributeError:
            pass
    options = simulator.options()
    options.clear()
    torch.set_default_dtype(torch.float64)  # global state: restored after the cell
    torch.set_grad_enabled(False)
    theta = torch.randn(config.num_samples, simulator.theta_dim, generator=generator)
    return Result(theta.float())


def test_a_vandal_method_changes_no_other_cell(tmp_path, monkeypatch):
    register(monkeypatch, "vandal", vandal, ListConfig)
    given = {"vandal": {"layers": [8, 8]}}
    grid = dict(simulators=["gaussian", "rosenbrock"], seeds=2, preset="tiny", budgets=[100])
    clean = avo_bench.run(methods=["prior"], out=tmp_path / "clean", cell_timeout=0, report=False,
                          **grid)  # fmt: skip
    for timeout in (0, None):  # in this process, and in its forked child
        out = tmp_path / f"vandal-{timeout}"
        rows = avo_bench.run(methods=["vandal", "prior"], method_options=given, out=out,
                             cell_timeout=timeout, report=False, **grid)  # fmt: skip
        prior = rows[rows.method == "prior"]
        pd.testing.assert_frame_equal(stable(prior), stable(clean))  # bitwise
        vandals = rows[rows.method == "vandal"]  # its own scores may suffer, no one else's
        assert all(json.loads(c)["layers"] == [8, 8] for c in vandals.config)
    assert given == {"vandal": {"layers": [8, 8]}}  # the caller's options are untouched
    assert torch.get_default_dtype() == torch.float32 and torch.is_grad_enabled()
    # the tasks cached in this process (observed data, θ*, references, the simulator) are as
    # freshly built
    for cell in make_plan(methods=["vandal"], method_options=given, **grid).cells:
        sizes = tasks.Sizes(**cell.scoring)
        misses = tasks._cached.cache_info().misses
        cached = tasks.build_task(cell.simulator, cell.simulator_options, cell.seed, sizes)
        assert tasks._cached.cache_info().misses == misses  # the grid's own task
        options = json.dumps(cell.simulator_options, sort_keys=True)
        fresh = tasks._cached.__wrapped__(cell.simulator, options, cell.seed, sizes)
        for part in ("x_obs", "theta_star", "again", "reference"):
            a, b = getattr(cached, part), getattr(fresh, part)
            assert (a is None and b is None) or torch.equal(a, b), (cell.key, part)
        assert repr(cached.simulator.prior) == repr(fresh.simulator.prior)
        assert cached.simulator.n_obs == fresh.simulator.n_obs


# --- 9. the counting view: no θ*, no exact posterior, no way around the count -----------------

SURFACE = {"simulate", "num_simulations", "budget", "remaining", "name", "kind", "description",
           "differentiable", "parameter_names", "theta_dim", "x_shape", "n_obs", "options",
           "prior", "summarize", "identified", "features", "provides"}  # fmt: skip
ANSWERS = ("simulator", "_simulator", "_simulate", "true_parameters", "posterior", "observe",
           "observation", "check_theta", "_options", "num_observations")  # fmt: skip


@pytest.mark.parametrize("name", sorted(SIMULATORS))
def test_counting_view_exposes_only_the_documented_surface(name):
    view = CountingSimulator(get_simulator(name), budget=10)
    public = {a for a in dir(view) if not a.startswith("_")} - {"DESCRIPTION", "HOOKS"}
    assert public == SURFACE
    for answer in ANSWERS:
        assert not hasattr(view, answer), answer
    assert not view.provides("posterior") and not view.provides("observation")
    for attribute, value in (("num_simulations", 0), ("budget", 10**9), ("simulate", print)):
        with pytest.raises(AttributeError, match="read-only"):
            setattr(view, attribute, value)
    with pytest.raises(AttributeError, match="read-only"):
        del view.budget


def test_a_cheating_method_cannot_exceed_the_budget_or_reach_the_answers(monkeypatch):
    reached = []

    def cheat(simulator, x_obs, *, budget, config, generator, device):
        for answer in ANSWERS:
            if hasattr(simulator, answer):
                reached.append(answer)
        simulator.simulate(simulator.prior.sample((budget,), generator=generator))
        for attribute, value in (("num_simulations", 0), ("budget", 10 * budget)):
            try:
                setattr(simulator, attribute, value)
            except AttributeError:
                reached.append(f"not {attribute}")
        simulator.simulate(simulator.prior.sample((1,), generator=generator))
        return Result(torch.zeros(5, 2))

    register(monkeypatch, "cheat", cheat)
    sim = get_simulator("gaussian", n_obs=20)
    x_obs = sim.observe(generator=torch.Generator().manual_seed(0))
    with pytest.raises(BudgetExceeded, match=r"1 more simulations .* only 0 of the budget of 50"):
        avo_bench.fit("cheat", sim, x_obs, budget=50)
    assert reached == ["not num_simulations", "not budget"]


# --- 2. simulator output validated: an error naming the simulator, and the report still works --


class NanAway(Gaussian):
    """NaN for theta_1 > 1 (the observed data, at theta_1 = 0.5, are fine)."""

    def _simulate(self, theta, generator):
        x = super()._simulate(theta, generator)
        return torch.where(theta[:, :1] > 1.0, torch.full_like(x, math.nan), x)


class Short(Gaussian):
    def _simulate(self, theta, generator):
        return super()._simulate(theta, generator)[:-1]


class Flat(Gaussian):
    def _simulate(self, theta, generator):
        return super()._simulate(theta, generator)[:, :1]


class NanView(Gaussian):
    """Overrides simulate itself (no base-class check): only the counting view sees the NaN."""

    def simulate(self, theta, generator=None):
        self.check_theta(theta)
        x = self._simulate(theta, generator)
        return torch.where(theta[:, :1] > 1.0, torch.full_like(x, math.nan), x)


@pytest.mark.parametrize(
    "cls, simulating, predictive",
    [
        (NanAway, r"ValueError: nan_away: simulate returned NaN or inf in \d+ of \d+ rows", True),
        (Short, r"short: simulate returned \(255, 2\), expected \(256, 2\)", False),
        (Flat, r"flat: simulate returned \(256, 1\), expected \(256, 2\)", False),
        (NanView, r"SimulatorError: nan_view: simulate returned NaN or inf for \d+ of", True),
    ],
)
def test_bad_simulator_output_is_an_error_naming_it(tmp_path, monkeypatch, cls, simulating,
                                                    predictive):  # fmt: skip
    name = {NanAway: "nan_away", Short: "short", Flat: "flat", NanView: "nan_view"}[cls]
    register_simulator(monkeypatch, name, cls)
    with pytest.warns(CellErrors):
        rows = avo_bench.run([name], ["rejection_abc", "prior"], out=tmp_path, **TINY)
    abc = rows[rows.method == "rejection_abc"]
    assert (abc.status == "error").all() and abc.message.str.contains(simulating).all()
    prior = rows[rows.method == "prior"]
    if predictive:  # the observed data are fine: only the scores of the predictive fail
        failed = prior.message.str.contains(f"{name}: simulate returned|contains NaN or inf")
        assert failed.any() and (prior[failed].space == "data").all()
    else:  # the observed data cannot even be drawn
        assert (prior.status == "error").all() and prior.message.str.contains(simulating).all()
    with pytest.warns(ResultsWarning) if cls is NanView else _nothing():
        assert write_report(tmp_path).exists()  # the report never fails on a cell's data


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


# --- 7. options validated against what the code can handle, before any work ------------------


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(simulators=["gaussian"], simulator_options={"gaussian": {"n_obs": 2**24 + 1}}),
         r"gaussian: n_obs must be <= 16777216 .* got 16777217"),
        (dict(simulators=["two_moons"], seeds=[3, 10]),
         r"seed 10: simulator 'two_moons' has 10 standard observations, so its seeds are 0..9"),
        (dict(simulators=["gaussian"], method_options={"avo": {"gama": 1}}),
         "method 'avo' has no config key 'gama'"),
        (dict(simulators=["gaussian"], simulator_options={"poisson": {"n_obs": 0}}),
         "n_obs must be an integer >= 1, got 0"),
    ],
)  # fmt: skip
def test_options_the_code_cannot_handle_are_refused_before_any_work(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        avo_bench.run(methods=["prior"], preset="tiny", out=tmp_path / "x", **kwargs)
    assert not (tmp_path / "x").exists()


def test_options_for_entries_not_in_the_run_are_validated_then_ignored(tmp_path):
    with pytest.warns(UserWarning, match="options for methods not in this run are ignored: avo"):
        plan = make_plan(["gaussian"], ["prior"], preset="tiny",
                         method_options={"avo": {"gamma": 2.0}})  # fmt: skip
    assert set(plan.identity["methods"]) == {"prior"}
    with pytest.warns(UserWarning, match="simulators not in this run are ignored: poisson"):
        make_plan(["gaussian"], ["prior"], preset="tiny",
                  simulator_options={"poisson": {"n_obs": 5}})  # fmt: skip


def test_task_refuses_an_n_obs_above_the_ceiling():
    simulator = get_simulator("gaussian", dim=2)
    with pytest.raises(ValueError, match=f"n_obs must be <= {simulator.max_n_obs}"):
        avo_bench.task("gaussian", n_obs=simulator.max_n_obs + 1)


# --- 10. API argument types: clear ValueErrors -------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(budgets=300), r"budgets must be a list of integers >= 1, got 300 \(one budget: "),
        (dict(budgets="300"), "budgets must be a list of integers"),
        (dict(seeds=2.0), "seeds must be a count >= 1 or a list of integers in 0..2"),
        (dict(seeds=[2**70]), "seeds must be a count >= 1 or a list of integers in 0..2"),
        (dict(seeds=[1.5]), "seeds must be a count"),
        (dict(seeds="3"), "seeds must be a count"),
        (dict(seeds=True), "seeds must be a count"),
        (dict(out=""), "out must be a directory path, got ''"),
        (dict(out=3), "out must be a directory path, got 3"),
        (dict(simulators=5), "simulators must be a list of names, got 5"),
        (dict(method_options=[("prior", {})]), "method_options must be a table"),
        (dict(quiet="no"), "quiet must be True or False, got 'no'"),
        (dict(report=1), "report must be True or False, got 1"),
        (dict(jobs=2.0), "jobs must be an integer >= 1, got 2.0"),
        (dict(threads=0), "threads must be an integer >= 1, got 0"),
        (dict(cell_timeout=-1), r"cell_timeout must be a number of seconds > 0 \(0 for no limit"),
        (dict(cell_timeout=math.nan), "cell_timeout must be a number of seconds"),
        (dict(cell_timeout="10"), "cell_timeout must be a number of seconds"),
        (dict(replace_methods=["avo"]), "replace_methods: 'avo' not among this run's methods"),
    ],
)
def test_api_arguments_are_checked_with_clear_value_errors(tmp_path, monkeypatch, kwargs, match):
    monkeypatch.chdir(tmp_path)  # out="" must not write into the current directory
    options = {"simulators": ["gaussian"], "methods": ["prior"], "preset": "tiny",
               "out": tmp_path / "x", **kwargs}  # fmt: skip
    with pytest.raises(ValueError, match=match):
        avo_bench.run(**options)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_numpy_seeds_and_budgets_are_accepted(tmp_path):
    rows = avo_bench.run(["gaussian"], ["prior"], seeds=np.arange(2), budgets=np.array([50]),
                         preset="tiny", out=tmp_path, report=False)  # fmt: skip
    assert sorted(set(rows.seed)) == [0, 1] and set(rows.budget) == {50}
    assert load_results(tmp_path).seed.dtype == np.int64
