"""Tests of ``--preset sbibm``: the ABC methods' KDE step, the presets' method configs, sbibm's
published C2ST table and the report's published-vs-ours tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KernelDensity

import avo_bench
from avo_bench.methods import get_method
from avo_bench.methods._kde import GRID_RANGE, cv_bandwidth, fit_kde
from avo_bench.methods.smc_abc import _population_size
from avo_bench.plan import PRESETS, method_config
from avo_bench.published import (
    SBIBM_C2ST,
    SBIBM_C2ST_SOURCES,
    SBIBM_GAUSSIAN_LINEAR_C2ST,
    sbibm_published,
    sbibm_published_observations,
)
from avo_bench.report_published import published_table, sbibm_section

ABC = ("rejection_abc", "smc_abc")


def points(n=200, d=2, seed=0):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed))


# --- configs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, config, match",
    [
        ("rejection_abc", {"kde": "yes"}, "kde must be True or False"),
        ("rejection_abc", {"num_top_samples": 0}, "num_top_samples"),
        ("rejection_abc", {"num_top_samples": 100, "quantile": 0.1}, "not both"),
        ("rejection_abc", {"num_top_samples": 1, "kde": True}, "kde needs"),
        ("smc_abc", {"kde": 1}, "kde must be True or False"),
        ("smc_abc", {"variant": "abc"}, r"variant must be one of \('pooled', 'sbi'\), got 'abc'"),
        ("smc_abc", {"variant": "sbi", "min_acceptance": 0.1}, "min_acceptance must be 0"),
    ],
)
def test_bad_config(name, config, match):
    with pytest.raises(ValueError, match=match):
        get_method(name).make_config(**config)


def test_sbibm_configs():
    rej, smc = (method_config(m, {}, "sbibm") for m in ABC)
    assert (rej["num_top_samples"], rej["kde"]) == (100, True)
    assert (smc["population_size"], smc["alpha"], smc["kernel_scale"], smc["kde"]) == (
        None, 0.2, 0.5, True)  # fmt: skip
    assert smc["variant"] == "sbi" and method_config("smc_abc", {}, "quick")["variant"] == "pooled"
    npe, nle, nre = (method_config(m, {}, "sbibm") for m in ("npe", "nle", "nre"))
    assert (npe["estimator"], nle["estimator"], nre["estimator"]) == ("nsf", "maf", "resnet")
    assert {npe["training_batch_size"], nle["training_batch_size"]} == {10_000}
    assert (nle["num_chains"], nle["thin"], nre["num_chains"]) == (100, 10, 100)
    # the defaults are unchanged, and a user override wins over the preset
    assert not method_config("rejection_abc", {}, "quick")["kde"]
    assert method_config("npe", {}, None)["estimator"] == "maf"
    assert method_config("smc_abc", {"population_size": 500}, "sbibm")["population_size"] == 500
    # sbibm's population rule for its SMC-ABC: 100 up to 10^4 simulations, 1000 above
    sized = lambda n: _population_size(get_method("smc_abc").make_config(variant="sbi"), n)  # noqa: E731
    assert (sized(1000), sized(10_000), sized(100_000), sized(50)) == (100, 100, 1000, 50)
    assert PRESETS["sbibm"].c2st == "sbibm"


def test_smc_abc_sbi_variant_is_seeded_counted_and_leaves_global_rngs_alone():
    pytest.importorskip("sbi")
    task = avo_bench.task("two_moons", seed=0, preset="sbibm")
    fit = lambda seed: avo_bench.fit("smc_abc", "two_moons", task.x_obs, budget=700,  # noqa: E731
                                     seed=seed, preset="sbibm", num_samples=500)  # fmt: skip
    torch.manual_seed(5)
    np.random.seed(5)  # noqa: NPY002
    before = torch.rand(2), np.random.rand(2)  # noqa: NPY002
    torch.manual_seed(5)
    np.random.seed(5)  # noqa: NPY002
    a, b, c = fit(1), fit(1), fit(2)
    after = torch.rand(2), np.random.rand(2)  # noqa: NPY002
    assert torch.equal(before[0], after[0]) and np.array_equal(before[1], after[1])
    assert torch.equal(a.theta, b.theta) and not torch.equal(a.theta, c.theta)
    assert a.num_simulations == 700 and a.theta.shape == (500, 2)
    # first round of ceil(100 / 0.2) = 500 prior draws, then sbi's rounds; tolerances shrink
    epsilon = a.history["epsilon"].to_numpy()
    assert len(epsilon) == a.extras["rounds"] >= 2 and (np.diff(epsilon) <= 0).all()


# --- KDE -------------------------------------------------------------------------------------


def test_kde_shape_dtype_seeding():
    kde = fit_kde(points().float())
    draw = lambda seed: kde.sample(5000, torch.Generator().manual_seed(seed))  # noqa: E731
    a, b, c = draw(1), draw(1), draw(2)
    assert a.shape == (5000, 2) and a.dtype == torch.float32
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert len(torch.unique(a, dim=0)) == 5000  # no repeated points, unlike resampling


def test_kde_bandwidth_is_best_of_a_fine_grid():
    x = points(200, 2, seed=3)
    h = cv_bandwidth(x)
    spread = float(x.double().std())
    assert 0 < h <= GRID_RANGE[1] * spread + 1e-12
    fine = np.linspace(GRID_RANGE[0] * spread, GRID_RANGE[1] * spread, 81)
    search = GridSearchCV(KernelDensity(), {"bandwidth": fine}, cv=20).fit(x.double().numpy())
    chosen = GridSearchCV(KernelDensity(), {"bandwidth": [h]}, cv=20).fit(x.double().numpy())
    assert chosen.best_score_ >= search.best_score_ - 1e-3, (h, search.best_params_)


def test_kde_bandwidth_goes_below_the_grid_for_thin_structure_as_sbibms_does():
    # 200 points in 4 clusters of sd 0.01 spread over about [-1, 1]: the grid's lowest value
    # (0.1 s) wins, and sbibm's update then searches below it (see the module docstring)
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[-1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    x = centres[torch.arange(200) % 4] + 0.01 * torch.randn(200, 2, generator=g)
    spread = float(x.double().std())
    h = cv_bandwidth(x)
    assert 0 < h < GRID_RANGE[0] * spread
    data = x.double().numpy()

    def score(bandwidth):
        search = GridSearchCV(KernelDensity(), {"bandwidth": [bandwidth]}, cv=20)
        return search.fit(data).best_score_

    assert score(h) > score(GRID_RANGE[0] * spread) + 1.0


def test_kde_weights_and_spread():
    x = points(100, 3, seed=4)
    weights = torch.zeros(100)
    weights[7] = 1.0
    kde = fit_kde(x, weights)
    draws = kde.sample(20_000, torch.Generator().manual_seed(0)).double()
    assert torch.allclose(draws.mean(0), x[7].double(), atol=0.05 * kde.bandwidth)
    assert torch.allclose(draws.std(0), torch.full((3,), kde.bandwidth).double(), rtol=0.03)


@pytest.mark.parametrize(
    "x, weights, match",
    [
        (torch.zeros(1, 2), None, "shape"),
        (torch.ones(10, 2), None, "not all equal"),
        (torch.randn(10, 2), -torch.ones(10), "weights"),
        (torch.randn(10, 2), torch.ones(9), "weights"),
    ],
)
def test_kde_bad_input(x, weights, match):
    with pytest.raises(ValueError, match=match):
        fit_kde(x, weights)


@pytest.mark.parametrize("name", ABC)
def test_abc_kde_end_to_end(name):
    if name == "smc_abc":  # the sbibm preset runs sbi's SMCABC, as sbibm did
        pytest.importorskip("sbi")
    task = avo_bench.task("two_moons", seed=0, preset="sbibm")
    result = avo_bench.fit(name, "two_moons", task.x_obs, budget=1000, seed=0, preset="sbibm",
                           num_samples=2000)  # fmt: skip
    assert result.theta.shape == (2000, 2) and torch.isfinite(result.theta).all()
    assert len(torch.unique(result.theta, dim=0)) == 2000
    assert result.num_simulations <= 1000 and result.extras["kde_bandwidth"] > 0
    if name == "rejection_abc":
        assert result.extras["num_accepted"] == 100


# --- published values and the report ----------------------------------------------------------


def test_published_table():
    tasks = {t for t, _, _ in SBIBM_C2ST}
    assert len(tasks) == 10
    for task, method, _ in SBIBM_C2ST:
        assert all((task, method, b) in SBIBM_C2ST for b in (1_000, 10_000, 100_000))
        assert (task, method) in SBIBM_C2ST_SOURCES
    for (method, budget), value in SBIBM_GAUSSIAN_LINEAR_C2ST.items():
        assert sbibm_published("gaussian_linear", method, budget) == value
    assert all(0.5 <= m <= 1 and s >= 0 and n == 10 for m, s, n in SBIBM_C2ST.values())
    assert sbibm_published("two_moons", "avo", 1000) is None
    assert ("gaussian_mixture", "abc_rf", 1000) not in SBIBM_C2ST  # not rerun on sbibm 1.1.0


def test_published_observations_reproduce_the_published_means_and_sds():
    # The per-observation file and the table were copied separately from sbi-benchmark/results:
    # each checks the other (mean and sample sd over observations 1-10, to the table's 4 digits)
    for (task, method, budget), (mean, sd, n) in SBIBM_C2ST.items():
        values = sbibm_published_observations(task, method, budget)
        assert sorted(values) == list(range(1, n + 1)), (task, method, budget)
        series = pd.Series(list(values.values()))
        assert abs(series.mean() - mean) < 1e-4 and abs(series.std(ddof=1) - sd) < 1e-4
    assert sbibm_published_observations("two_moons", "avo", 1000) == {}


def frame(values: dict) -> pd.DataFrame:
    rows = []
    for (sim, method, seed, budget), value in values.items():
        status = "ok" if np.isfinite(value) else "error"
        rows.append({"simulator": sim, "method": method, "seed": seed, "budget": budget,
                     "n_obs": 1, "space": "posterior", "metric": "c2st", "value": value,
                     "variant": "sbibm", "status": status})  # fmt: skip
    rows.append({**rows[0], "metric": "w1", "value": 0.1})
    return pd.DataFrame(rows)


def test_report_tables():
    rows = frame({("two_moons", "npe", 0, 1000): 0.7, ("two_moons", "npe", 1, 1000): 0.8,
                  ("two_moons", "avo", 0, 1000): 0.9, ("two_moons", "avo", 1, 1000): np.nan,
                  ("weinberg", "npe", 0, 1000): 0.6})  # fmt: skip
    table = published_table(rows, "two_moons").set_index("method")
    assert table.loc["npe", "ours"] == "0.750 ± 0.071 (2)"
    mean, sd, n = SBIBM_C2ST["two_moons", "npe", 1000]
    assert table.loc["npe", "sbibm"] == f"{mean:.3f} ± {sd:.3f} ({n})"
    assert table.loc["avo", "sbibm"] == "-" and table.loc["avo", "not ok"] == "1 error"
    # sbibm on the observations our ok cells ran (seeds 0 and 1: observations 1 and 2)
    same = sbibm_published_observations("two_moons", "npe", 1000)
    pair = pd.Series([same[1], same[2]])
    assert table.loc["npe", "sbibm, same observations"] == (
        f"{pair.mean():.3f} ± {pair.std():.3f} (2)")  # fmt: skip
    assert table.loc["avo", "sbibm, same observations"] == "-"
    text = "\n".join(sbibm_section(rows))
    assert "### two_moons" in text and "weinberg" not in text and "main_paper.csv" in text
    assert sbibm_section(rows[rows.simulator == "weinberg"]) == []
    assert "not its data" not in text
    sir = "\n".join(
        sbibm_section(rows.assign(simulator=rows.simulator.replace("two_moons", "sir")))
    )
    assert "### sir" in sir and "sir's observations here have sbibm's θ* but not its data" in sir


# --- against sbibm's published C2ST (slow: one C2ST at 10^4 samples per side each) -------------


# sbibm's gaussian_linear observation 1 at 10^3 (and SMC-ABC at 10^4) simulations: ours with the
# sbibm preset within the published mean +- (2 published sd + 0.02) (rejection ABC at 10^3:
# [0.841, 0.986], which its default config's 0.99 misses; SMC-ABC at 10^4: [0.711, 0.947]).
# Measured (fast C2ST at 10^4 per side, sbibm's observations): rejection_abc 0.917 / 0.868 at
# 10^3 / 10^4; smc_abc (sbi's SMCABC) 0.903 / 0.847 (published 0.914 / 0.858, 0.922 / 0.829).
# The pooled SMC scheme with sbibm's settings read 0.914 / 0.968 on this observation (the
# grid's cell) and 0.94-0.995 at 10^4 on others: it got worse with the budget, which the 10^4
# case catches (issue 14).
@pytest.mark.slow
@pytest.mark.parametrize(
    "name, budget", [("rejection_abc", 1000), ("smc_abc", 1000), ("smc_abc", 10_000)]
)
def test_sbibm_abc_matches_published(name, budget):
    from avo_bench.metrics import c2st

    task = avo_bench.task("gaussian_linear", seed=0, preset="sbibm")
    result = avo_bench.fit(name, "gaussian_linear", task.x_obs, budget=budget, seed=0,
                           preset="sbibm")  # fmt: skip
    reference = task.reference[:10_000]
    accuracy = c2st(reference, result.theta, variant="fast", seed=1)
    mean, sd, _ = SBIBM_C2ST["gaussian_linear", name, budget]
    assert abs(accuracy - mean) <= 2 * sd + 0.02, (accuracy, mean, sd)
