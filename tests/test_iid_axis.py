"""The number of observations as an axis of the grid: plan, CLI, rows, resume, plot, scores."""

from __future__ import annotations

import json
import warnings

import pandas as pd
import pytest
import torch

import avo_bench
from avo_bench import metrics
from avo_bench.axes import axis_tasks
from avo_bench.cli import main
from avo_bench.plan import PRESETS, make_plan
from avo_bench.plots_nobs import plot_scores_vs_n_obs
from avo_bench.results import CELL_KEY, ResultsError, load_results, read_artifacts
from avo_bench.scoring import SCORES
from avo_bench.tasks import build_task


def grid(**kwargs):
    return make_plan(["gaussian", "poisson"], ["prior"], **{"seeds": 1, **kwargs})


def test_axis_expands_cells_with_n_obs_in_key_options_and_identity():
    plan = grid(n_obs=[1, 10, 100], seeds=2)
    assert len(plan.cells) == 2 * 3 * 2
    assert [c.key for c in plan.cells[:3]] == [
        ("gaussian", "prior", 0, 1_000, 1),
        ("gaussian", "prior", 1, 1_000, 1),
        ("gaussian", "prior", 0, 1_000, 10),
    ]
    assert all(c.simulator_options["n_obs"] == c.n_obs for c in plan.cells)
    assert plan.identity["n_obs"] == [1, 10, 100]
    # common random numbers along the axis: the cell seed does not depend on n_obs
    seeds = {c.n_obs: c.cell_seed for c in plan.cells if c.simulator == "gaussian" and c.seed == 0}
    assert len(set(seeds.values())) == 1


def test_without_axis_cells_keep_their_options_and_identity():
    plan = grid()
    assert [c.n_obs for c in plan.cells] == [1000, 1000]  # the quick preset's cap
    assert "n_obs" not in plan.identity


@pytest.mark.parametrize(
    "bad, message",
    [
        ([0], "n_obs values must be integers >= 1, got 0"),
        ([10, -3], "n_obs values must be integers >= 1, got -3"),
        ([1.5], "n_obs values must be integers >= 1, got 1.5"),
        ([True], "n_obs values must be integers >= 1, got True"),
        (["10"], "n_obs values must be integers >= 1, got '10'"),
        ([], "n_obs: give at least one value"),
        (100, "n_obs must be a list of integers >= 1, got 100"),
    ],
)
def test_bad_n_obs_values_name_the_value(bad, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        grid(n_obs=bad)


def test_n_obs_above_a_tasks_maximum_names_task_and_range():
    with pytest.raises(
        ValueError, match=r"n_obs 33554432 is above .* 'gaussian' .* 1\.\.16777216"
    ):
        grid(n_obs=[10, 2**25])


def test_single_observation_task_accepts_only_one():
    with pytest.raises(ValueError, match=r"'two_moons' has a single observation .* only valid "
                       r"value is 1; the n_obs axis applies to gaussian"):  # fmt: skip
        make_plan(["gaussian", "two_moons"], ["prior"], n_obs=[1, 10])
    plan = make_plan(["two_moons"], ["prior"], n_obs=[1], seeds=1)
    assert [c.n_obs for c in plan.cells] == [1]
    assert {"gaussian", "poisson", "weinberg", "ising"} <= set(axis_tasks())
    assert "two_moons" not in axis_tasks()


def test_iid_preset_ladder_skips_single_observation_tasks():
    assert PRESETS["iid"].n_obs == (1, 10, 100, 1000)
    plan = make_plan(["poisson", "two_moons"], ["prior"], preset="iid")
    assert [(c.simulator, c.n_obs) for c in plan.cells] == [
        ("poisson", 1), ("poisson", 10), ("poisson", 100), ("poisson", 1000), ("two_moons", 1)
    ]  # fmt: skip
    explicit = make_plan(["poisson"], ["prior"], preset="iid", n_obs=[5])
    assert [c.n_obs for c in explicit.cells] == [5] and explicit.identity["n_obs"] == [5]


@pytest.mark.parametrize("name, options", [("gaussian", {"dim": 2}), ("poisson", {})])
def test_observed_sets_nest_along_the_axis(name, options):
    small = build_task(name, {**options, "n_obs": 10}, seed=3)
    large = build_task(name, {**options, "n_obs": 300}, seed=3)  # crosses a 256-row block
    assert torch.equal(small.x_obs, large.x_obs[:10])
    assert torch.equal(small.again, large.again[:10])
    assert not torch.equal(large.x_obs[:10], build_task(name, {**options, "n_obs": 10}, 4).x_obs)


def test_cli_n_obs_flag_and_toml(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["run", "--simulators", "gaussian", "--methods", "prior", "--preset", "tiny",
            "--n-obs", "1,10", "--out", str(out), "--no-report", "-q"]  # fmt: skip
    assert main(argv) == 0
    rows = load_results(out)
    assert sorted(rows.n_obs.unique()) == [1, 10]
    assert "2 cells" in capsys.readouterr().out
    config = tmp_path / "run.toml"
    config.write_text('[run]\nn_obs = [1, 10, 0]\nsimulators = ["gaussian"]\n')
    assert main(["run", "--config", str(config), "--methods", "prior", "--preset", "tiny"]) == 2
    assert "n_obs values must be integers >= 1, got 0" in capsys.readouterr().err
    assert main([*argv[:-4], "--n-obs", "x", "--out", str(tmp_path / "b"), "-q"]) == 2
    assert "bad n_obs 'x': expected an integer" in capsys.readouterr().err


@pytest.fixture(scope="module")
def axis_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("axis") / "run"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows = avo_bench.run(["gaussian"], ["prior"], n_obs=[1, 3, 30], preset="tiny",
                             seeds=2, out=out, report=False)  # fmt: skip
    return out, rows


def test_rows_carry_n_obs_and_the_run_resumes(axis_run):
    out, rows = axis_run
    assert list(rows.columns[:5]) == CELL_KEY == ["simulator", "method", "seed", "budget", "n_obs"]
    assert rows.drop_duplicates(CELL_KEY).n_obs.tolist() == [1, 1, 3, 3, 30, 30]
    options = rows.simulator_options.map(json.loads).map(lambda o: o["n_obs"])
    assert (options == rows.n_obs).all()
    again = avo_bench.run(["gaussian"], ["prior"], n_obs=[1, 3, 30], preset="tiny", seeds=2,
                          out=out, report=False)  # fmt: skip
    pd.testing.assert_frame_equal(again, rows)  # nothing ran again
    with pytest.raises(ResultsError, match="n_obs"):
        avo_bench.run(["gaussian"], ["prior"], n_obs=[1, 3], preset="tiny", seeds=2, out=out,
                      report=False)  # fmt: skip


def test_runs_from_before_the_axis_still_load(axis_run, tmp_path):
    out, rows = axis_run
    old = tmp_path / "old"
    old.mkdir()
    legacy = rows[rows.n_obs == 30].drop(columns="n_obs")
    legacy.to_csv(old / "results.csv", index=False)
    loaded = load_results(old)
    assert (loaded.n_obs == 30).all() and list(loaded.columns) == list(rows.columns)
    # artifacts stored without n_obs in their name are found by a 5-part key, and a 4-part key
    # finds the one n_obs stored for a cell
    (old / "cells").mkdir()
    stored = next((out / "cells").glob("gaussian__prior__seed0__budget300__nobs30.npz"))
    (old / "cells" / "gaussian__prior__seed0__budget300.npz").write_bytes(stored.read_bytes())
    arrays, _ = read_artifacts(old, ("gaussian", "prior", 0, 300, 30))
    assert "theta" in arrays
    arrays, _ = read_artifacts(out, ("gaussian", "prior", 0, 300))
    assert arrays == {}  # three n_obs stored: a 4-part key is ambiguous
    arrays, _ = read_artifacts(out, ("gaussian", "prior", 0, 300, 3))
    assert arrays["x_obs"].shape[0] == 3


def test_plot_scores_vs_n_obs(axis_run, tmp_path):
    _, rows = axis_run
    path = plot_scores_vs_n_obs(rows, tmp_path / "plots" / "n_obs.png")
    assert path is not None and path.stat().st_size > 1000
    assert plot_scores_vs_n_obs(rows[rows.n_obs == 3], tmp_path / "none.png") is None
    assert not (tmp_path / "none.png").exists()


def test_the_report_of_an_axis_run_draws_the_n_obs_plot(axis_run, tmp_path):
    out, _ = axis_run
    pytest.importorskip("matplotlib")
    from avo_bench.report import write_report

    copy = tmp_path / "run"
    copy.mkdir()
    for name in ("manifest.json", "results.csv"):
        (copy / name).write_bytes((out / name).read_bytes())
    write_report(copy)
    assert (copy / "plots" / "scores_vs_n_obs.png").stat().st_size > 1000
    assert "plots/scores_vs_n_obs.png" in (copy / "report.md").read_text()
    assert not (copy / "plots.png").exists()  # the plot once went to DIR/plots.png and crashed


# scores that stay informative where C2ST saturates -------------------------------------------


def test_z_and_sd_ratio_scores():
    g = torch.Generator().manual_seed(0)
    reference = torch.randn(20_000, 2, generator=g, dtype=torch.float64)
    wide = torch.randn(20_000, 2, generator=g, dtype=torch.float64) * torch.tensor([1.0, 3.0])
    shifted = wide + torch.tensor([5.0, 0.0])
    assert metrics.max_abs_z(shifted, reference) == pytest.approx(5.0, abs=0.05)
    assert metrics.log_sd_ratio(shifted, reference) == pytest.approx(1.0986, abs=0.02)  # log 3
    assert metrics.log_sd_ratio(wide[:, :1] / 4, reference[:, :1]) == pytest.approx(
        -1.386, abs=0.02
    )
    with pytest.raises(ValueError, match="theta has zero spread in dimensions \\[1\\]"):
        metrics.log_sd_ratio(torch.zeros(5, 2) + torch.arange(5.0)[:, None] * torch.tensor([1, 0]),
                             reference)  # fmt: skip
    specs = {spec.key: spec for spec in SCORES}
    assert specs["posterior", "max_abs_z"].direction == "lower"
    assert (specs["posterior", "log_sd_ratio"].direction, specs["posterior", "log_sd_ratio"].ideal) \
        == ("nearest", 0.0)  # fmt: skip


def test_z_and_sd_ratio_rows_with_floors(axis_run):
    _, rows = axis_run
    part = rows[rows.metric.isin(["max_abs_z", "log_sd_ratio"])]
    assert len(part) == 2 * 6 and (part.status == "ok").all()
    assert part.floor.notna().all()
    # the prior as the answer: too wide by about log(sd_prior / sd_posterior) = log(sqrt(1 + n))
    wide = part[(part.metric == "log_sd_ratio") & (part.n_obs == 30)].value
    assert ((wide > 1.4) & (wide < 2.0)).all(), wide
