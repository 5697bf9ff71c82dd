"""The benchmark grid: rows, scoring against exact references, resume, determinism, executors."""

import itertools
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import avo_bench
from avo_bench import cell as cell_module
from avo_bench.manifest import read_manifest
from avo_bench.methods import METHODS, Method, NotApplicable, Result
from avo_bench.methods.prior import PriorConfig
from avo_bench.plan import PRESETS, make_plan
from avo_bench.results import COLUMNS, ResultsError, load_results
from avo_bench.scoring import score_plan
from simulators import SIMULATORS, get_simulator

ROOT = Path(avo_bench.__file__).parent.parent  # the checkout under test
CELL = ["simulator", "method", "seed", "budget", "n_obs"]
VOLATILE = ["wall_time_s", "git_commit"]


def stable(rows: pd.DataFrame) -> pd.DataFrame:
    """The table without what legitimately changes between identical runs (timings)."""
    return rows.drop(columns=VOLATILE).reset_index(drop=True)


def register_temporarily(monkeypatch, name, fit, applicable=None):
    method = Method(name, fit, PriorConfig, applicable or (lambda simulator: None))
    monkeypatch.setitem(METHODS, name, method)


def unwrapped(simulator):
    """The simulator behind a method's counting view (test oracles only: methods never can)."""
    return get_simulator(simulator.name, **simulator.options())


def oracle_posterior(simulator, x_obs, *, budget, config, generator, device):
    """Exact posterior draws (what a perfect method returns)."""
    exact = unwrapped(simulator).posterior(x_obs.cpu())
    return Result(exact.sample((config.num_samples,), generator=generator).float(), 0)


def point_mass(simulator, x_obs, *, budget, config, generator, device):
    """All mass at the true parameters: its predictive *is* the observed distribution."""
    theta = unwrapped(simulator).true_parameters.float().expand(config.num_samples, -1)
    return Result(theta.clone(), 0)


def test_tiny_default_grid_rows(tmp_path):
    rows = avo_bench.run(methods=["prior"], preset="tiny", out=tmp_path, report=False)
    assert list(rows.columns) == COLUMNS
    cells = set(map(tuple, rows[CELL].drop_duplicates().values.tolist()))
    assert {c[:4] for c in cells} == {
        (s, "prior", 0, PRESETS["tiny"].budgets[0]) for s in SIMULATORS
    }
    for name in SIMULATORS:
        part = rows[rows.simulator == name]
        assert list(zip(part.space, part.metric, strict=True)) == [
            s.key for s in score_plan(simulator=get_simulator(name))
        ]
    assert (rows.num_simulations == 0).all()
    # n/a only where a score means nothing for the task (one observation vs an iid set)
    na = rows[rows.status == "n/a"]
    data_na = na[na.space == "data"]
    assert data_na.message.str.contains("n_obs = ").all()
    # calibration scores that need a density or an amortized sampler (the prior row has none)
    other = na[na.space != "data"]
    assert (other.space == "calibration").all()
    assert other.message.str.contains("density|amortized").all()
    ok = rows[rows.status == "ok"]
    assert len(ok) + len(na) == len(rows)
    assert np.isfinite(ok.value).all()
    # distances are >= 0 ("nearest" scores such as log ratios are signed, nltp a log density)
    lower = ok[(ok.direction == "lower") & (ok.metric != "nltp")]
    assert (lower.value >= 0).all(), lower[lower.value < 0][["metric", "value"]]
    data = ok[ok.space == "data"]
    assert np.isfinite(data.floor).all()
    # the prior predictive is meaningfully worse than two draws of the observed distribution
    w1 = data[data.metric == "wasserstein1"]
    assert (w1.value > w1.floor).all()
    assert load_results(tmp_path).equals(rows)


@pytest.mark.parametrize(
    "name", [n for n in sorted(SIMULATORS) if get_simulator(n).provides("posterior")]
)
def test_exact_posterior_scores_at_floor(tmp_path, monkeypatch, name):
    register_temporarily(monkeypatch, "oracle", oracle_posterior)
    rows = avo_bench.run([name], ["oracle", "prior"], preset="tiny", out=tmp_path, report=False)
    assert rows.status.isin(["ok", "n/a"]).all()  # n/a: a score undefined for this n_obs
    oracle = rows[rows.method == "oracle"].set_index(["space", "metric"])
    prior = rows[rows.method == "prior"].set_index(["space", "metric"])
    n = PRESETS["tiny"].n_param
    value, floor = oracle.loc[("posterior", "wasserstein1"), ["value", "floor"]]
    assert value < 4 * floor + 1e-3, (value, floor)
    # the floor is one draw of |mean difference| (a chi variable: small values are common in
    # low dimension), so the bound also allows 4 expected Monte Carlo errors of two means
    value, floor = oracle.loc[("posterior", "mean_error"), ["value", "floor"]]
    assert value < 4 * max(floor, math.sqrt(2 / n)), (value, floor)
    assert oracle.loc[("posterior", "c2st"), "value"] < 0.65
    # the prior is told apart from the exact posterior (W1 is not: in 10-D at 300 draws a
    # posterior half as wide as the prior is within W1's sampling noise)
    assert prior.loc[("posterior", "c2st"), "value"] > 0.75
    # both are |mean of exact draws - theta*|: equal up to the Monte Carlo error of two means
    dist = oracle.loc[("truth", "distance_to_truth")]
    task = avo_bench.task(name, preset="tiny", **json.loads(rows.simulator_options.iloc[0]))
    spread = float(task.simulator.identified(task.reference).std(dim=0).norm())
    assert abs(dist.value - dist.floor) < 4 * spread * math.sqrt(2 / PRESETS["tiny"].n_param)


@pytest.mark.parametrize("name", [n for n in sorted(SIMULATORS) if SIMULATORS[n].kind == "point"])
def test_point_mass_at_truth_matches_observed_in_data_space(tmp_path, monkeypatch, name):
    register_temporarily(monkeypatch, "truth", point_mass)
    rows = avo_bench.run([name], ["truth"], preset="tiny", out=tmp_path, report=False)
    data = rows[rows.space == "data"].set_index("metric")
    assert data.status.isin(["ok", "n/a"]).all()
    for metric in ("wasserstein1", "jensen_shannon"):
        if data.loc[metric, "status"] == "n/a":  # a single observation
            continue
        value, floor = data.loc[metric, ["value", "floor"]]
        assert value < 4 * floor + 1e-6, (metric, value, floor)
    truth = rows[rows.metric == "distance_to_truth"].value.item()
    assert truth == pytest.approx(0.0, abs=1e-6)


def test_failing_and_inapplicable_methods_become_rows(tmp_path, monkeypatch):
    def broken(simulator, x_obs, **kwargs):
        raise RuntimeError("boom at iteration 3")

    def greedy(simulator, x_obs, *, budget, **kwargs):
        simulator.simulate(simulator.prior.sample((budget + 1,)))

    def refuses(simulator, x_obs, **kwargs):
        raise NotApplicable("needs a differentiable simulator")

    register_temporarily(monkeypatch, "broken", broken)
    register_temporarily(monkeypatch, "greedy", greedy)
    register_temporarily(monkeypatch, "refuses", refuses)
    register_temporarily(monkeypatch, "declines", point_mass, lambda s: "population task")
    methods = ["broken", "greedy", "refuses", "declines", "prior"]
    rows = avo_bench.run(["rosenbrock"], methods, preset="tiny", out=tmp_path, report=False)
    status = rows.groupby("method").status.unique().map(set).to_dict()
    assert status == {"broken": {"error"}, "greedy": {"error"}, "refuses": {"n/a"},
                      "declines": {"n/a"}, "prior": {"ok", "n/a"}}  # fmt: skip
    message = rows.groupby("method").message.first()
    assert "boom at iteration 3" in message["broken"]
    assert "BudgetExceeded" in message["greedy"]
    assert message["refuses"] == "needs a differentiable simulator"
    assert message["declines"] == "population task"
    assert rows[rows.status != "ok"].value.isna().all()


def test_same_seed_same_values_different_seed_different(tmp_path):
    kwargs = dict(simulators=["gaussian", "rosenbrock"], methods=["prior"], preset="tiny")
    a = avo_bench.run(**kwargs, seeds=[3], out=tmp_path / "a", report=False)
    b = avo_bench.run(**kwargs, seeds=[3], out=tmp_path / "b", report=False)
    c = avo_bench.run(**kwargs, seeds=[4], out=tmp_path / "c", report=False)
    assert np.array_equal(a.value.values, b.value.values, equal_nan=True)  # bitwise
    assert np.array_equal(a.floor.values, b.floor.values, equal_nan=True)
    assert pd.testing.assert_frame_equal(stable(a), stable(b)) is None
    assert not np.array_equal(a.value.values, c.value.values)


def test_global_rng_untouched(tmp_path):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    avo_bench.run(["gaussian"], ["prior"], preset="tiny", out=tmp_path, report=False)
    assert torch.equal(torch.rand(3), expected)


def test_second_run_does_no_work(tmp_path, monkeypatch):
    kwargs = dict(simulators=["gaussian"], methods=["prior"], preset="tiny", seeds=2)
    first = avo_bench.run(**kwargs, out=tmp_path, report=False)
    before = (tmp_path / "results.csv").read_bytes()

    def forbidden(*args, **kwargs):
        raise AssertionError("a finished cell was run again")

    monkeypatch.setattr(cell_module, "run_cell", forbidden)
    again = avo_bench.run(**kwargs, out=tmp_path, report=False)
    assert (tmp_path / "results.csv").read_bytes() == before
    pd.testing.assert_frame_equal(first, again)


def test_different_config_in_same_directory_is_refused(tmp_path):
    avo_bench.run(["gaussian"], ["prior"], preset="tiny", out=tmp_path, report=False)
    before = (tmp_path / "results.csv").read_bytes()
    with pytest.raises(ResultsError, match=r"different configuration.*methods"):
        avo_bench.run(["gaussian"], ["prior"], preset="tiny", out=tmp_path,
                      method_options={"prior": {"num_samples": 10}})  # fmt: skip
    with pytest.raises(ResultsError, match=r"different configuration.*simulators"):
        avo_bench.run(["gaussian"], ["prior"], preset="tiny", out=tmp_path,
                      simulator_options={"gaussian": {"dim": 3}})  # fmt: skip
    assert (tmp_path / "results.csv").read_bytes() == before


def test_added_seeds_and_budgets_run_only_their_cells(tmp_path, monkeypatch):
    kwargs = dict(simulators=["gaussian"], methods=["prior"], preset="tiny", report=False)
    first = avo_bench.run(**kwargs, seeds=1, budgets=[50], out=tmp_path)
    ran = []
    original = cell_module.run_cell

    def counting(cell, *args, **kw):
        ran.append((cell.seed, cell.budget))
        return original(cell, *args, **kw)

    monkeypatch.setattr(cell_module, "run_cell", counting)
    both = avo_bench.run(**kwargs, seeds=2, budgets=[50, 60], out=tmp_path, cell_timeout=0)
    assert sorted(ran) == [(0, 60), (1, 50), (1, 60)]
    old = both[(both.seed == 0) & (both.budget == 50)].reset_index(drop=True)
    pd.testing.assert_frame_equal(old, first.reset_index(drop=True))
    manifest = read_manifest(tmp_path)
    assert manifest["identity"]["seeds"] == [0, 1]
    assert manifest["identity"]["budgets"] == [50, 60]
    # a run that drops a seed or budget of the directory is still refused
    with pytest.raises(ResultsError, match=r"different configuration.*budgets"):
        avo_bench.run(**kwargs, seeds=2, budgets=[60], out=tmp_path)
    with pytest.raises(ResultsError, match=r"different configuration.*seeds"):
        avo_bench.run(**kwargs, seeds=[1], budgets=[50, 60], out=tmp_path)


def test_a_config_key_added_later_with_its_default_resumes_the_run(tmp_path):
    # A directory made before smc_abc had `variant` (its manifest lacks the key) is the same
    # run with the default (the former behaviour); a config that sets it otherwise is not.
    kwargs = dict(simulators=["gaussian"], methods=["smc_abc"], preset="tiny", report=False)
    first = avo_bench.run(**kwargs, out=tmp_path)
    path = tmp_path / "manifest.json"
    manifest = json.loads(path.read_text())
    del manifest["identity"]["methods"]["smc_abc"]["variant"]
    path.write_text(json.dumps(manifest))
    pd.testing.assert_frame_equal(avo_bench.run(**kwargs, out=tmp_path), first)
    with pytest.raises(ResultsError, match=r"differs in: methods"):
        avo_bench.run(**kwargs, out=tmp_path, method_options={"smc_abc": {"variant": "sbi"}})


def test_a_run_option_chooses_the_c2st_variant():
    plan = make_plan(["gaussian"], ["prior"], preset="sbibm", c2st="fast")
    assert "c2st" not in plan.identity["scoring"]
    assert make_plan(["gaussian"], ["prior"], preset="tiny", c2st="sbibm").identity[
        "scoring"]["c2st"] == "sbibm"  # fmt: skip
    with pytest.raises(ValueError, match="unknown c2st variant 'exact'; choose from: fast, sbibm"):
        make_plan(["gaussian"], ["prior"], preset="tiny", c2st="exact")


def test_method_major_order_runs_the_same_cells_and_resumes_either_way(tmp_path):
    kwargs = dict(simulators=["gaussian", "poisson"], methods=["prior", "rejection_abc"],
                  seeds=2, preset="tiny")  # fmt: skip
    plain, by_method = make_plan(**kwargs), make_plan(**kwargs, order="methods")
    assert by_method.identity == plain.identity
    assert [c.method for c in by_method.cells] == ["prior"] * 4 + ["rejection_abc"] * 4
    assert [c.simulator for c in by_method.cells[:4]] == ["gaussian"] * 2 + ["poisson"] * 2
    key = lambda c: (c.simulator, c.method, c.seed, c.budget, c.cell_seed)  # noqa: E731
    assert sorted(map(key, by_method.cells)) == sorted(map(key, plain.cells))
    assert sorted(c.index for c in by_method.cells) == [c.index for c in plain.cells]
    first = avo_bench.run(**kwargs, order="methods", out=tmp_path / "m", report=False)
    again = avo_bench.run(**kwargs, out=tmp_path / "m", report=False)  # resumes: nothing to run
    other = avo_bench.run(**kwargs, out=tmp_path / "s", report=False)
    pd.testing.assert_series_equal(again.wall_time_s, first.wall_time_s)  # kept, not re-run
    volatile = ["wall_time_s", "git_commit"]
    for rows in (again, other):  # rows are written in the grid's order either way
        pd.testing.assert_frame_equal(rows.drop(columns=volatile), first.drop(columns=volatile))
    with pytest.raises(
        ValueError, match="unknown order 'random'; choose from: simulators, methods"
    ):
        make_plan(**kwargs, order="random")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(simulators=["nope"]), "unknown simulator 'nope'; choose from: .*gaussian"),
        (dict(methods=["nope"]), "unknown method 'nope'; choose from: .*prior"),
        (dict(budgets=[0]), "budget must be an integer >= 1, got 0"),
        (dict(budgets=[1.5]), "budget must be an integer >= 1, got 1.5"),
        (dict(seeds=0), "seeds"),
        (dict(seeds=[-1]), "seeds"),
        (dict(preset="huge"), "unknown preset 'huge'; choose from: tiny, quick, paper"),
        (dict(method_options={"prior": {"nope": 1}}), "no config key 'nope'; valid keys: num_"),
        (dict(method_options={"prior": {"num_samples": 0}}), "num_samples must be"),
        (dict(simulator_options={"gaussian": {"nope": 1}}), "no option 'nope'"),
        (dict(simulator_options={"nope": {}}), "unknown simulator 'nope'"),
        (dict(device="tpu"), "device must be"),
        (dict(jobs=0), "jobs must be an integer >= 1"),
        (dict(executor="mpi"), "unknown executor 'mpi'; choose from: inprocess"),
    ],
)
def test_bad_input_is_refused_before_anything_runs(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        avo_bench.run(**{"methods": ["prior"], "preset": "tiny", **kwargs}, out=tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_corrupted_results_file_is_kept(tmp_path):
    avo_bench.run(["gaussian"], ["prior"], preset="tiny", out=tmp_path, report=False)
    path = tmp_path / "results.csv"
    for garbage in (b"\x00\xff not a csv at all", b"simulator,value\ngaussian,abc\n"):
        path.write_bytes(garbage)
        with pytest.raises(ResultsError, match=r"results file .*(corrupted|cannot read)"):
            avo_bench.run(["gaussian"], ["prior"], preset="tiny", out=tmp_path, report=False)
        assert path.read_bytes() == garbage


def test_unwritable_output_directory(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(ValueError, match="cannot write to output directory"):
        avo_bench.run(["gaussian"], ["prior"], preset="tiny", out=blocker / "run")


def test_plan_seeds_depend_only_on_cell():
    plan = make_plan(methods=["prior"], seeds=[0, 1], budgets=[10, 20], preset="tiny")
    other = make_plan(methods=["prior"], seeds=[1], budgets=[20], preset="tiny")
    seeds = {c.key: c.cell_seed for c in plan.cells}
    assert all(seeds[c.key] == c.cell_seed for c in other.cells)
    assert len(set(seeds.values())) == len(seeds)
    sims = sorted(SIMULATORS)
    assert [c.key[:4] for c in plan.cells] == list(
        itertools.product(sims, ["prior"], [0, 1], [10, 20])
    )


def test_resume_after_sigkill_gives_the_same_table(tmp_path):
    grid = dict(simulators=["gaussian", "rosenbrock"], methods=["prior"], seeds=3,
                budgets=[100, 200], preset="tiny", report=False)  # fmt: skip
    out = tmp_path / "killed"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    command = [sys.executable, "-m", "avo_bench", "run", "--simulators", *grid["simulators"],
               "--methods", "prior", "--preset", "tiny", "--seeds", "3", "--budgets", "100,200",
               "--out", str(out), "--no-report", "-q", "--threads", "1"]  # fmt: skip
    process = subprocess.Popen(command, env=env, cwd=ROOT)
    deadline = time.monotonic() + 120
    while not (out / "results.csv").exists() and time.monotonic() < deadline:
        assert process.poll() is None, "the run ended before it could be killed"
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    partial = load_results(out)  # never torn
    assert 0 < len(partial[CELL].drop_duplicates()) < 12
    subprocess.run(command, env=env, cwd=ROOT, check=True)  # resumes
    resumed = load_results(out)
    straight = avo_bench.run(**grid, out=tmp_path / "straight")
    assert len(resumed[CELL].drop_duplicates()) == 12
    assert not list(out.glob("**/.*.tmp"))
    pd.testing.assert_frame_equal(stable(resumed), stable(straight))


@pytest.mark.parametrize("executor", ["processes", pytest.param("dask", marks=pytest.mark.slow)])
def test_executors_give_the_same_table(tmp_path, executor):
    if executor == "dask":
        pytest.importorskip("distributed")
    kwargs = dict(simulators=["gaussian", "rosenbrock"], methods=["prior"], seeds=2,
                  preset="tiny", report=False)  # fmt: skip
    inline = avo_bench.run(**kwargs, out=tmp_path / "inline")
    parallel = avo_bench.run(**kwargs, out=tmp_path / executor, jobs=2, executor=executor)
    pd.testing.assert_frame_equal(stable(inline), stable(parallel))
    assert math.isfinite(parallel.wall_time_s.sum())


def chatty(simulator, x_obs, *, budget, config, generator, device):
    """Reports per-iteration progress like a long fit does."""
    from avo_bench.progress import report_progress

    for step in range(1, 4):
        report_progress(step, 3, loss=1.0 / step)
    return Result(simulator.prior.sample((10,), generator=generator), 0)


def test_progress_bars_only_on_a_terminal(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(METHODS, "chatty", Method("chatty", chatty, PriorConfig))
    kwargs = dict(
        simulators=["gaussian"], methods=["chatty", "prior"], preset="tiny", report=False
    )
    avo_bench.run(**kwargs, out=tmp_path / "a", quiet=False)
    err = capsys.readouterr().err  # not a TTY: no bars, one plain line per step
    assert "\r" not in err and err.splitlines() == [
        f"2 cells (0 already in {tmp_path / 'a'}), 1 worker(s) (inprocess)"
    ]
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    avo_bench.run(**kwargs, out=tmp_path / "b", quiet=False)
    err = capsys.readouterr().err
    assert "2/2" in err and "loss=0.3333" in err and "gaussian/prior" in err
    avo_bench.run(**kwargs, out=tmp_path / "c", quiet=True)
    assert capsys.readouterr().err == ""


@pytest.mark.slow
def test_default_grid_every_registered_method(tmp_path, cheap_method_options):
    # every method on a point task with one observation, an iid count task and a population
    # task, with conftest's CHEAP settings (every simulator x method at its defaults is the
    # reference grid's job)
    sims = ["poisson", "rosenbrock", "two_moons"]
    rows = avo_bench.run(sims, preset="tiny", method_options=cheap_method_options, out=tmp_path,
                         report=False)  # fmt: skip
    budget = PRESETS["tiny"].budgets[0]
    expected = set(itertools.product(sims, sorted(METHODS), [0], [budget]))
    assert set(map(tuple, rows[CELL[:4]].drop_duplicates().values.tolist())) == expected
    assert list(rows.columns) == COLUMNS
    cells = rows.drop_duplicates(CELL)
    assert (cells.status != "error").all(), cells[cells.status == "error"].message.tolist()
    assert (cells.num_simulations <= cells.budget).all()
    ok = rows[rows.status == "ok"]
    assert np.isfinite(ok.value).all()


@pytest.mark.slow
def test_dask_scheduler_address(tmp_path):
    distributed = pytest.importorskip("distributed")
    kwargs = dict(simulators=["poisson"], methods=["prior"], seeds=2, preset="tiny", report=False)
    inline = avo_bench.run(**kwargs, out=tmp_path / "inline")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:  # fmt: skip
        remote = avo_bench.run(
            **kwargs, out=tmp_path / "remote", scheduler=cluster.scheduler_address
        )
    pd.testing.assert_frame_equal(stable(inline), stable(remote))


def test_one_writer_per_directory(tmp_path):
    fcntl = pytest.importorskip("fcntl")
    tmp_path.mkdir(exist_ok=True)
    with open(tmp_path / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(ResultsError, match="another run is writing to"):
            avo_bench.run(["gaussian"], ["prior"], preset="tiny", out=tmp_path, report=False)
    avo_bench.run(["gaussian"], ["prior"], preset="tiny", out=tmp_path, report=False)


def test_presets_tune_methods_through_their_config(monkeypatch):
    from dataclasses import dataclass
    from typing import ClassVar

    @dataclass(frozen=True)
    class Tunable:
        gamma: float = 0.0
        steps: int = 10
        presets: ClassVar[dict] = {"paper": {"gamma": 5.0, "steps": 1000}}

    monkeypatch.setitem(METHODS, "tunable", Method("tunable", point_mass, Tunable))
    quick = make_plan(["gaussian"], ["tunable"], preset="quick")
    paper = make_plan(["gaussian"], ["tunable"], preset="paper")
    mine = make_plan(["gaussian"], ["tunable"], preset="paper",
                     method_options={"tunable": {"steps": 7}})  # fmt: skip
    assert quick.cells[0].method_config == {"gamma": 0.0, "steps": 10}
    assert paper.cells[0].method_config == {"gamma": 5.0, "steps": 1000}
    assert mine.cells[0].method_config == {"gamma": 5.0, "steps": 7}  # the user wins
    assert [c.budget for c in paper.cells] == [1000, 10000, 100000]
    assert paper.cells[0].simulator_options["n_obs"] == get_simulator("gaussian").n_obs
    assert quick.cells[0].simulator_options["n_obs"] == min(1000, get_simulator("gaussian").n_obs)


def test_plain_bar_without_tqdm(monkeypatch, capsys):
    from avo_bench.display import Bars

    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # as if tqdm were not installed
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    bars = Bars(total=3, done=1)
    bars.handler(2, 4, {"loss": 0.5})
    bars.advance("gaussian/prior")
    bars.close()
    err = capsys.readouterr().err
    assert "gaussian/prior" in err and "2/3" in err and "#" in err


def test_run_extends_with_new_methods_and_simulators_only(tmp_path):
    kwargs = dict(seeds=2, budgets=[40], preset="tiny", out=tmp_path)
    first = avo_bench.run(["gaussian"], ["prior"], **kwargs)
    # new method and simulator: only their cells run; the finished rows are kept unchanged
    both = avo_bench.run(["gaussian", "poisson"], ["prior", "rejection_abc"], **kwargs)
    done = both[(both.simulator == "gaussian") & (both.method == "prior")].reset_index(drop=True)
    pd.testing.assert_frame_equal(stable(done), stable(first))
    fresh = avo_bench.run(["gaussian", "poisson"], ["prior", "rejection_abc"], seeds=2,
                          budgets=[40], preset="tiny", out=tmp_path / "fresh")  # fmt: skip
    assert stable(both).value.equals(stable(fresh).value)  # as if run in one go
    identity = json.loads((tmp_path / "manifest.json").read_text())["identity"]
    assert set(identity["methods"]) == {"prior", "rejection_abc"}
    assert set(identity["simulators"]) == {"gaussian", "poisson"}
    # dropping an entry, changing one's config, or dropping a seed is still refused (adding
    # seeds or budgets extends the run: test_added_seeds_and_budgets_run_only_their_cells)
    with pytest.raises(ResultsError, match="differs in: methods"):
        avo_bench.run(["gaussian", "poisson"], ["prior"], **kwargs)
    with pytest.raises(ResultsError, match="differs in: methods"):
        avo_bench.run(["gaussian", "poisson"], ["prior", "rejection_abc"],
                      method_options={"prior": {"num_samples": 7}}, **kwargs)  # fmt: skip
    with pytest.raises(ResultsError, match="differs in: seeds"):
        avo_bench.run(["gaussian", "poisson"], ["prior", "rejection_abc"],
                      **{**kwargs, "seeds": [1]})  # fmt: skip
