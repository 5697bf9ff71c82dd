"""The contributor examples: examples/custom_simulator.py and examples/custom_method.py.

Each example is imported by path (its ``@register`` runs), checked against exact references and
run end to end through ``avo_bench.run`` with the tiny preset. The module fixture removes the
registry entries afterwards, so tests that read ``SIMULATORS``/``METHODS`` are not affected.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from _scripts import load_module
from scipy import special, stats
from scipy.integrate import trapezoid

import avo_bench
from avo_bench.methods import METHODS
from avo_bench.runner import CellErrors
from simulators import SIMULATORS, get_simulator

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def _load(name: str) -> ModuleType:
    return load_module(EXAMPLES / f"{name}.py", f"_example_{name}")


@pytest.fixture(scope="module")
def examples():
    simulators, methods, modules = set(SIMULATORS), set(METHODS), set(sys.modules)
    try:
        yield SimpleNamespace(simulator=_load("custom_simulator"), method=_load("custom_method"))
    finally:
        for name in set(SIMULATORS) - simulators:
            del SIMULATORS[name]
        for name in set(METHODS) - methods:
            del METHODS[name]
        for name in set(sys.modules) - modules:
            if name.startswith("_example_"):
                del sys.modules[name]


def _scores(rows: pd.DataFrame, space: str, metric: str) -> pd.Series:
    chosen = rows[(rows["space"] == space) & (rows["metric"] == metric)]
    return chosen.set_index("method")["value"]


def test_registration(examples):
    assert SIMULATORS["binomial"] is examples.simulator.Binomial
    method = METHODS["regression_abc"]
    assert method.config is examples.method.RegressionABCConfig
    assert method.applicable(get_simulator("binomial")) is None
    assert "population task" in method.applicable(get_simulator("rosenbrock"))
    with pytest.raises(ValueError, match="'binomial' is already registered"):
        examples.simulator.register("binomial")(examples.simulator.Binomial)


def test_binomial_simulate(examples):
    sim = get_simulator("binomial", dim=3, trials=7)
    theta = sim.prior.sample((500,), generator=torch.Generator().manual_seed(1)).double()
    x = sim.simulate(theta, torch.Generator().manual_seed(2))
    again = sim.simulate(theta, torch.Generator().manual_seed(2))
    assert x.shape == (500, 3) and x.dtype == torch.float64 and torch.equal(x, again)
    assert torch.equal(x, x.round()) and x.min() >= 0 and x.max() <= 7
    # E[x] = trials * theta: the mean residual is within 5 standard errors
    residual = (x - 7 * theta).mean() / math.sqrt(7 * 0.25 / (500 * 3))
    assert abs(float(residual)) < 5
    assert sim.observe(generator=torch.Generator()).shape == (100, 3)
    with pytest.raises(ValueError, match=r"binomial: p2 = 1\.5 .* outside the prior support"):
        sim.simulate(torch.tensor([[0.5, 1.5, 0.5]]))


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"dim": 0}, "dim must be an integer >= 1, got 0"),
        ({"trials": 2.5}, "trials must be an integer >= 1, got 2.5"),
        ({"theta_star": 1.5}, "theta_star must be a scalar or 2 values in"),
        ({"theta_star": [0.1, 0.2, 0.3]}, "theta_star must be a scalar or 2 values in"),
        ({"theta_star": "high"}, "theta_star must be a scalar or 2 values in"),
        ({"arms": 2}, "has no option 'arms'; valid options: dim, trials, n_obs, theta_star"),
    ],
)
def test_binomial_rejects_bad_options(examples, options, match):
    with pytest.raises(ValueError, match=match):
        get_simulator("binomial", **options)


def test_binomial_posterior_is_exact(examples):
    sim = get_simulator("binomial", theta_star=[0.02, 0.7], n_obs=30)
    x_obs = sim.observe(generator=torch.Generator().manual_seed(3))
    exact = sim.posterior(x_obs)
    # Independent reference: likelihood x uniform prior normalized by quadrature on a grid
    grid = np.linspace(0.0, 1.0, 200_001)
    successes, failures = x_obs.sum(0).double().numpy(), 30 * 10 - x_obs.sum(0).double().numpy()
    for j in range(2):
        log_density = special.xlogy(successes[j], grid) + special.xlog1py(failures[j], -grid)
        density = np.exp(log_density - log_density.max())
        density /= trapezoid(density, grid)
        mean = trapezoid(grid * density, grid)
        sd = math.sqrt(trapezoid((grid - mean) ** 2 * density, grid))
        assert float(exact.mean()[j]) == pytest.approx(mean, rel=1e-6)
        assert float(exact.stddev()[j]) == pytest.approx(sd, rel=1e-5)
    draws = exact.sample((4000,), generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    assert draws.shape == (4000, 2) and ((draws >= 0) & (draws <= 1)).all()
    for j in range(2):
        beta = stats.beta(1 + successes[j], 1 + failures[j])
        assert stats.kstest(draws[:, j].numpy(), beta.cdf).pvalue > 1e-3
        log_prob = exact.log_prob(draws[:5].clone())
        other = beta.logpdf(draws[:5, j].numpy())
        rest = stats.beta(1 + successes[1 - j], 1 + failures[1 - j]).logpdf(draws[:5, 1 - j])
        np.testing.assert_allclose(log_prob.numpy(), other + rest, rtol=1e-9)
    assert exact.log_prob(torch.tensor([[0.5, 1.2]])).item() == -math.inf


def test_binomial_posterior_rejects_bad_data(examples):
    sim = get_simulator("binomial")
    for bad, match in [
        (torch.zeros(5, 3), r"shape \(n >= 1, 2\), got \(5, 3\)"),
        (torch.full((5, 2), 11.0), "counts in 0..10, got 11.0"),
        (torch.full((5, 2), 0.5), "counts in 0..10, got 0.5"),
    ]:
        with pytest.raises(ValueError, match=match):
            sim.posterior(bad)


def _check_statuses(rows):
    """Every score ran; the only ``n/a`` rows are calibration scores of a sampler (they need an
    amortized posterior or a density) and the data score of the other kind of observed data
    (median distance for one observation, W1/JS for an iid set), each with its reason."""
    assert rows["status"].isin(["ok", "n/a"]).all(), rows[rows.status != "ok"].message.tolist()
    na = rows[rows["status"] == "n/a"]
    reason = na["message"].str.contains("amortized|density|n_obs = ")
    assert na["space"].isin(["calibration", "data"]).all() and reason.all()
    for space in ("posterior", "theta", "truth"):
        assert (rows[rows["space"] == space]["status"] == "ok").all()


def test_custom_simulator_example_runs_the_benchmark(examples, tmp_path, capsys):
    out = tmp_path / "run"
    rows = examples.simulator.main(
        ["--seed", "7", "--out", str(out), "--methods", "prior", "rejection_abc"]
    )
    _check_statuses(rows)
    assert set(rows["simulator"]) == {"binomial"}
    assert len(avo_bench.load_results(out)) == len(rows)
    assert "rejection_abc" in capsys.readouterr().out
    for metric in ("wasserstein1", "c2st", "mean_error"):
        posterior = rows[(rows["space"] == "posterior") & (rows["metric"] == metric)]
        assert len(posterior) == 2 and np.isfinite(posterior[["value", "floor"]]).all().all()
    # scored against the exact Beta posterior: ABC beats the prior on W1 and the error of the mean
    for metric in ("wasserstein1", "mean_error"):
        score = _scores(rows, "posterior", metric)
        assert score["rejection_abc"] < 0.7 * score["prior"], metric
    assert rows.loc[rows["method"] == "rejection_abc", "num_simulations"].max() <= 300


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"quantile": 0.0}, r"quantile must be in \(0, 1\], got 0.0"),
        ({"quantile": 1.5}, r"quantile must be in \(0, 1\], got 1.5"),
        ({"quantile": True}, r"quantile must be in \(0, 1\], got True"),
        ({"num_samples": 0}, "num_samples must be an integer >= 1, got 0"),
        ({"set_size": 1}, "set_size must be an integer >= 2, got 1"),
        ({"window": 0.1}, "no config key 'window'; valid keys: num_samples, quantile, set_size"),
    ],
)
def test_regression_abc_rejects_bad_config(examples, overrides, match):
    with pytest.raises(ValueError, match=match):
        METHODS["regression_abc"].make_config(**overrides)


def _fit(name: str, budget: int, seed: int, **options):
    sim = get_simulator(name, **options)
    x_obs = sim.observe(generator=torch.Generator().manual_seed(seed))
    return avo_bench.fit("regression_abc", sim, x_obs, budget=budget, seed=seed)


def test_regression_abc_budget_and_support(examples):
    result = _fit("binomial", 301, seed=0)
    assert 0 < result.num_simulations <= 301
    assert result.theta.shape == (1000, 2)
    assert ((result.theta >= 0) & (result.theta <= 1)).all()  # the logit keeps the box
    assert result.extras["num_kept"] == round(0.5 * result.extras["num_draws"])
    with pytest.raises(ValueError, match=r"regression_abc: budget must be an integer >= 16"):
        _fit("binomial", 15, seed=0)


def test_regression_abc_is_exact_for_the_linear_gaussian_model(examples):
    # theta | mean summary is linear-Gaussian: with set_size = n_obs the adjustment recovers
    # the exact posterior up to the regression's estimation error.
    sim = get_simulator("gaussian", dim=2, n_obs=10)
    g = torch.Generator().manual_seed(5)
    x_obs = sim.observe(generator=g)
    result = avo_bench.fit("regression_abc", sim, x_obs, budget=20_000, generator=g,
                           set_size=10, quantile=1.0, num_samples=4000)  # fmt: skip
    exact = sim.posterior(x_obs)
    error = (result.theta.double().mean(0) - exact.mean()) / exact.stddev()
    assert error.abs().max() < 0.15
    ratio = result.theta.double().std(0) / exact.stddev()
    assert ((ratio > 0.9) & (ratio < 1.1)).all()


def test_custom_method_example_runs_the_benchmark(examples, tmp_path):
    out = tmp_path / "run"
    rows = examples.method.main(["--seed", "9", "--out", str(out), "--budget", "1000"])
    _check_statuses(rows)
    assert set(rows["method"]) == {"prior", "rejection_abc", "regression_abc"}
    used = rows.groupby("method")["num_simulations"].max()
    assert used["regression_abc"] <= 1000 and used["prior"] == 0
    # against the exact Gaussian posterior (measured on seeds 20-29: W1 0.12-0.19 vs the
    # prior's 0.92-1.18, C2ST 0.57-0.72 vs 0.85-0.89)
    w1 = _scores(rows, "posterior", "wasserstein1")
    assert w1["regression_abc"] < 0.5 * w1["prior"]
    c2st = _scores(rows, "posterior", "c2st")
    assert c2st["regression_abc"] < min(0.8, c2st["prior"])


def _script(name: str, out: Path, jobs: int) -> pd.DataFrame:
    args = ["--seed", "2", "--out", str(out), "--methods", "prior", "--jobs", str(jobs)]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    subprocess.run([sys.executable, str(EXAMPLES / f"{name}.py"), *args], check=True, env=env,
                   cwd=ROOT, capture_output=True, timeout=600)  # fmt: skip
    return avo_bench.load_results(out)


@pytest.mark.slow
def test_worker_processes_see_registration_only_from_the_main_script(examples, tmp_path):
    # What the examples' docstrings claim: spawned workers re-run the main script's top level
    serial = _script("custom_simulator", tmp_path / "one", jobs=1)
    parallel = _script("custom_simulator", tmp_path / "two", jobs=2)
    _check_statuses(parallel)
    pd.testing.assert_series_equal(serial["status"], parallel["status"])
    pd.testing.assert_series_equal(serial["value"], parallel["value"])
    # ... but not a module registered only in this process (here: imported by pytest)
    with pytest.warns(CellErrors):
        rows = avo_bench.run(simulators=["binomial"], methods=["prior"], preset="tiny",
                             out=tmp_path / "three", jobs=2)  # fmt: skip
    assert (rows["status"] == "error").all()
    assert rows["message"].str.contains("unknown simulator 'binomial'.*jobs=1").all()
