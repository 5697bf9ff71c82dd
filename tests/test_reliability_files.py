"""Reliability of the run directory: damaged files, resume, writability, killed report writing,
and replacing a method's rows after its config changed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import avo_bench
from avo_bench import cell as cell_module
from avo_bench.cli import main
from avo_bench.plan import make_plan
from avo_bench.report import write_report
from avo_bench.results import ResultsError, ResultsWarning, load_results, read_artifacts
from avo_bench.runner import _drop_methods

ROOT = Path(avo_bench.__file__).parent.parent
CELL = ["simulator", "method", "seed", "budget"]
# in this process (cell_timeout=0), so that a test can count the cells that run
PLAN = dict(simulators=["gaussian", "rosenbrock"], methods=["prior"], preset="tiny",
            budgets=[100])  # fmt: skip
GRID = dict(**PLAN, report=False, cell_timeout=0)


def stable(rows: pd.DataFrame) -> pd.DataFrame:
    return rows.drop(columns=["wall_time_s", "git_commit"]).reset_index(drop=True)


def counting(monkeypatch) -> list:
    ran, run = [], cell_module.run_cell

    def count(cell, progress=None):
        ran.append(cell.key[:4])  # (simulator, method, seed, budget)
        return run(cell, progress)

    monkeypatch.setattr(cell_module, "run_cell", count)
    return ran


@pytest.fixture(scope="module")
def straight(tmp_path_factory) -> Path:
    """A finished run of GRID (read-only for the tests: they copy it)."""
    out = tmp_path_factory.mktemp("straight")
    avo_bench.run(**GRID, out=out)
    return out


def copy(run: Path, to: Path) -> Path:
    shutil.copytree(run, to)
    return to


# --- 4. an unreadable artifact costs its plot, never the report --------------------------------


def test_report_skips_unreadable_artifacts_naming_them(straight, tmp_path):
    run = copy(straight, tmp_path / "run")
    gaussian, rosenbrock = (cell.key for cell in make_plan(**PLAN).cells)
    npz = {
        key[0]: next((run / "cells").glob(f"{key[0]}__prior__*.npz"))
        for key in (gaussian, rosenbrock)
    }
    history = npz["gaussian"].with_name(npz["gaussian"].stem + ".history.csv")
    np.savez(npz["gaussian"], theta=np.array([{}], dtype=object))  # pickled objects
    with np.load(npz["rosenbrock"]) as data:
        arrays = dict(data)
    np.savez(npz["rosenbrock"], **{**arrays, "x_sim": np.full_like(arrays["x_sim"], np.nan)})
    history.write_text("a,b\n1,2\n1,2,3,4\n")  # "Error tokenizing data"
    with pytest.warns(ResultsWarning) as record:
        arrays_g, history_g = read_artifacts(run, gaussian)
        arrays_r, _ = read_artifacts(run, rosenbrock)
    messages = " ".join(str(w.message) for w in record)
    for path in (npz["gaussian"], npz["rosenbrock"], history):
        assert str(path) in messages, path
    assert "Object arrays cannot be loaded" in messages and "'x_sim' contains NaN" in messages
    assert arrays_g == {} and history_g.empty
    assert "x_sim" not in arrays_r and "theta" in arrays_r  # the rest of the plot stays
    npz["rosenbrock"].write_bytes(npz["rosenbrock"].read_bytes()[:100])  # a torn zip
    with pytest.warns(ResultsWarning, match=npz["rosenbrock"].name):
        assert read_artifacts(run, rosenbrock)[0] == {}
    with pytest.warns(ResultsWarning):
        assert write_report(run, cell_plots=True).exists()


# --- 5. completeness of a cell from its expected rows ------------------------------------------


@pytest.mark.parametrize("cut", ["lines", "last_field", "inside_value"])
def test_a_truncated_results_file_reruns_the_cut_cell(straight, tmp_path, monkeypatch, cut):
    run = copy(straight, tmp_path / "run")
    path = run / "results.csv"
    data = path.read_bytes()
    lines = data.splitlines(keepends=True)
    if cut == "lines":  # at a line boundary: the last cell misses rows
        path.write_bytes(b"".join(lines[:-2]))
        match = "missing or extra score rows"
    elif cut == "last_field":  # inside the last row's last field (git_commit)
        path.write_bytes(data[:-5])
        match = "ends inside a row"
    else:  # inside the last row's value
        last = lines[-1]
        path.write_bytes(b"".join(lines[:-1]) + last[: last.index(b".") + 3])
        match = "ends inside a row"
    ran = counting(monkeypatch)
    with pytest.warns(ResultsWarning, match=match):
        resumed = avo_bench.run(**GRID, out=run)
    assert ran == [("rosenbrock", "prior", 0, 100)]  # only the cut cell, once
    pd.testing.assert_frame_equal(stable(resumed), stable(load_results(straight)))


def test_duplicated_rows_make_a_cell_incomplete(straight, tmp_path, monkeypatch):
    run = copy(straight, tmp_path / "run")
    lines = (run / "results.csv").read_bytes().splitlines(keepends=True)
    (run / "results.csv").write_bytes(b"".join([*lines, lines[1]]))  # a gaussian row twice
    ran = counting(monkeypatch)
    with pytest.warns(ResultsWarning, match="1 cells .* missing or extra score rows"):
        resumed = avo_bench.run(**GRID, out=run)
    assert ran == [("gaussian", "prior", 0, 100)]
    pd.testing.assert_frame_equal(stable(resumed), stable(load_results(straight)))


# --- 6. the Parquet copy is repaired on resume -------------------------------------------------


@pytest.mark.parametrize("damage", ["stale", "missing", "garbage"])
def test_the_parquet_file_is_repaired_on_resume(straight, tmp_path, monkeypatch, damage):
    pytest.importorskip("pyarrow")
    run = copy(straight, tmp_path / "run")
    parquet = run / "results.parquet"
    if damage == "stale":  # killed between the CSV and the Parquet replacement
        rows = load_results(run)
        rows[rows.simulator == "gaussian"].to_parquet(parquet, index=False)
        old = (run / "results.csv").stat().st_mtime - 60
        os.utime(parquet, (old, old))
    elif damage == "missing":
        parquet.unlink()
    else:
        parquet.write_bytes(b"not parquet")
    ran = counting(monkeypatch)
    avo_bench.run(**GRID, out=run)
    assert ran == []
    pd.testing.assert_frame_equal(pd.read_parquet(parquet), load_results(run))


# --- 10. writability checked before any work; a read-only results file is never replaced ------


def test_read_only_or_misplaced_files_are_refused_before_any_work(straight, tmp_path, monkeypatch):
    ran = counting(monkeypatch)
    run = copy(straight, tmp_path / "readonly")
    (run / "results.csv").chmod(0o444)
    before = (run / "results.csv").read_bytes()
    extended = {**GRID, "methods": ["prior", "rejection_abc"]}  # cells to run, if it could
    with pytest.raises(ResultsError, match=r"results.csv is read-only and the run would write"):
        avo_bench.run(**extended, out=run)
    assert (run / "results.csv").read_bytes() == before
    run = copy(straight, tmp_path / "folder")
    (run / "results.parquet").unlink(missing_ok=True)
    (run / "results.parquet").mkdir()
    with pytest.raises(ResultsError, match=r"results.parquet must be a file"):
        avo_bench.run(**extended, out=run)
    assert ran == []
    status = main(["run", "--simulators", "gaussian", "rosenbrock", "--methods", "prior",
                   "--preset", "tiny", "--budgets", "100", "--no-report", "-q",
                   "--out", str(run)])  # fmt: skip
    assert status == 2


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_cells_folder_is_refused_before_any_work(straight, tmp_path, monkeypatch):
    ran = counting(monkeypatch)
    run = copy(straight, tmp_path / "run")
    (run / "cells").chmod(0o555)
    with pytest.raises(ResultsError, match="cells is read-only"):
        avo_bench.run(**{**GRID, "methods": ["prior", "rejection_abc"]}, out=run)
    assert ran == []


# --- kill during report writing: nothing lost, nothing torn, the next run finishes it ---------


def test_sigkill_while_writing_the_report(tmp_path):
    out = tmp_path / "run"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    command = [sys.executable, "-m", "avo_bench", "run", "--simulators", "gaussian",
               "rosenbrock", "--methods", "prior", "--preset", "tiny", "--budgets", "100",
               "--out", str(out), "-q"]  # fmt: skip
    log = tmp_path / "stderr"
    with open(log, "w") as stderr:
        process = subprocess.Popen(command, env=env, cwd=ROOT, stderr=stderr)
    deadline = time.monotonic() + 300
    while not (out / "plots").exists():  # the report has started writing its plots
        assert process.poll() is None, f"the run ended before its report: {log.read_text()}"
        assert time.monotonic() < deadline
        time.sleep(0.002)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished = (out / "results.csv").read_bytes()
    assert len(load_results(out).drop_duplicates(CELL)) == 2  # every cell saved
    report = out / "report.md"
    assert not report.exists() or report.read_text().startswith("# avo_bench report")  # whole
    subprocess.run(command, env=env, cwd=ROOT, check=True, stderr=subprocess.DEVNULL)
    assert (out / "results.csv").read_bytes() == finished  # no cell ran again
    assert "# avo_bench report" in (out / "report.md").read_text()
    assert not list(out.rglob(".*.tmp"))


# --- replacing a method's rows after its config changed (issue 16 item 5) ---------------------

ABC = dict(simulators=["gaussian"], methods=["prior", "rejection_abc"], seeds=2, preset="tiny",
           budgets=[100], report=False, cell_timeout=0)  # fmt: skip
NEW = {"rejection_abc": {"num_samples": 300}}


def test_replace_methods_reruns_only_their_cells_with_the_new_config(tmp_path, monkeypatch):
    out = tmp_path / "run"
    first = avo_bench.run(**ABC, out=out)
    with pytest.raises(ResultsError, match=r"differs in: methods.*--replace-methods"):
        avo_bench.run(**ABC, out=out, method_options=NEW)
    ran = counting(monkeypatch)
    replaced = avo_bench.run(**ABC, out=out, method_options=NEW,
                             replace_methods=["rejection_abc"])  # fmt: skip
    assert sorted(ran) == [("gaussian", "rejection_abc", s, 100) for s in (0, 1)]
    fresh = avo_bench.run(**ABC, out=tmp_path / "fresh", method_options=NEW)
    pd.testing.assert_frame_equal(stable(replaced), stable(fresh))  # as if run so from the start
    prior = replaced[replaced.method == "prior"].reset_index(drop=True)
    pd.testing.assert_frame_equal(prior, first[first.method == "prior"].reset_index(drop=True))
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["identity"]["methods"]["rejection_abc"]["num_samples"] == 300
    last = manifest["invocations"][-1]
    assert last["replaced_methods"]["rejection_abc"]["num_samples"] != 300  # the old config
    with np.load(
        next((out / "cells").glob("gaussian__rejection_abc__seed0__budget100*.npz"))
    ) as data:
        assert len(data["theta"]) == 300  # the new artifacts
    ran.clear()
    again = avo_bench.run(**ABC, out=out, method_options=NEW)  # now the run's config
    assert ran == [] and again.equals(replaced)


def test_an_interrupted_replacement_leaves_a_consistent_directory(tmp_path, monkeypatch):
    out = tmp_path / "run"
    first = avo_bench.run(**ABC, out=out)
    _drop_methods(out, ("rejection_abc",))  # killed right after the old rows went
    assert set(load_results(out).method) == {"prior"}
    assert not list((out / "cells").glob("*rejection_abc*"))
    ran = counting(monkeypatch)
    resumed = avo_bench.run(**ABC, out=out)  # the old config: its cells simply run again
    assert len(ran) == 2
    pd.testing.assert_frame_equal(stable(resumed), stable(first))


def test_replace_methods_from_the_command_line(tmp_path, capsys):
    out = str(tmp_path / "run")
    base = ["run", "--simulators", "gaussian", "--methods", "prior", "rejection_abc", "--preset",
            "tiny", "--budgets", "100", "--no-report", "-q", "--out", out]  # fmt: skip
    assert main(base) == 0
    changed = [*base, "--set", "rejection_abc.num_samples=300"]
    assert main(changed) == 2
    assert "--replace-methods" in capsys.readouterr().err
    assert main([*changed, "--replace-methods", "rejection_abc"]) == 0
    rows = load_results(out)
    abc = rows[rows.method == "rejection_abc"]
    assert all(json.loads(c)["num_samples"] == 300 for c in abc.config)
    assert main([*changed, "--replace-methods", "avo"]) == 2
    assert "replace_methods: 'avo' not among this run's methods" in capsys.readouterr().err


def test_a_directory_kept_as_compressed_rows_loads_resumes_and_stays_current(tmp_path):
    # The committed reference runs keep results.csv.gz (git ignores their results.csv): a clone
    # reads it, a resumed run extends it, and the gzip never goes stale
    import gzip

    kwargs = dict(simulators=["gaussian"], methods=["prior"], preset="tiny", report=False)
    first = avo_bench.run(**kwargs, seeds=1, out=tmp_path)
    csv, packed = tmp_path / "results.csv", tmp_path / "results.csv.gz"
    packed.write_bytes(gzip.compress(csv.read_bytes()))
    csv.unlink()
    pd.testing.assert_frame_equal(load_results(tmp_path), first)
    both = avo_bench.run(**kwargs, seeds=2, out=tmp_path)  # only seed 1 runs
    assert set(both.seed) == {0, 1}
    pd.testing.assert_frame_equal(both[both.seed == 0].reset_index(drop=True), first)
    assert gzip.decompress(packed.read_bytes()) == csv.read_bytes()
    csv.unlink()
    pd.testing.assert_frame_equal(load_results(tmp_path), both)
    packed.write_bytes(b"not gzip")
    with pytest.raises(ResultsError, match="unreadable or corrupted"):
        load_results(tmp_path)
