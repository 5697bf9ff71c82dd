"""Reliability of execution: a per-cell time limit, dying workers, SystemExit and
KeyboardInterrupt inside a method, Ctrl-C, and the same rows from every executor.

Hostile methods sleep or die; they never measure time, and the limits are far above what the
other cells of the same run need (they reuse the task this process already built).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

import avo_bench
from avo_bench.methods import METHODS, Method
from avo_bench.methods.prior import PriorConfig
from avo_bench.report import write_report
from avo_bench.results import load_results
from avo_bench.runner import CellErrors

ROOT = Path(avo_bench.__file__).parent.parent
GRID = dict(simulators=["gaussian"], preset="tiny", budgets=[100], report=False)
LIMIT = 20  # seconds: the hostile cell's limit; an honest cell here takes about one


def stable(rows: pd.DataFrame) -> pd.DataFrame:
    return rows.drop(columns=["wall_time_s", "git_commit"]).reset_index(drop=True)


def register(monkeypatch, name: str, fit) -> None:
    monkeypatch.setitem(METHODS, name, Method(name, fit, PriorConfig))


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped by init, does not)."""
    try:
        with open(f"/proc/{pid}/stat") as file:
            return file.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture
def prior_rows(tmp_path):
    """The honest cell, run in this process (its task is then cached for the forked child)."""
    return avo_bench.run(methods=["prior"], out=tmp_path / "prior", cell_timeout=0, **GRID)


def test_a_stalled_cell_times_out_and_the_grid_goes_on(tmp_path, monkeypatch, prior_rows):
    pids = tmp_path / "pids"

    def sleeper(simulator, x_obs, **kwargs):
        child = subprocess.Popen(["sleep", "1000"])  # the method's own process: killed too
        pids.write_text(f"{os.getpid()} {child.pid}")
        time.sleep(10**6)

    register(monkeypatch, "sleeper", sleeper)
    out = tmp_path / "run"
    with pytest.warns(CellErrors, match=f"timeout: stopped after .* time limit is {LIMIT} s"):
        rows = avo_bench.run(methods=["sleeper", "prior"], out=out, cell_timeout=LIMIT, **GRID)
    slept = rows[rows.method == "sleeper"]
    assert (slept.status == "timeout").all() and slept.value.isna().all()
    assert slept.message.str.contains(f"the cell's time limit is {LIMIT} s").all()
    assert (slept.wall_time_s >= LIMIT).all()
    pd.testing.assert_frame_equal(stable(rows[rows.method == "prior"]), stable(prior_rows))
    assert not any(alive(int(pid)) for pid in pids.read_text().split())  # nothing leaked
    assert write_report(out).exists()
    manifest = (out / "manifest.json").read_text()
    assert f'"cell_timeout": {float(LIMIT)}' in manifest


def test_a_dying_worker_becomes_an_error_row(tmp_path, monkeypatch, prior_rows):
    def crasher(simulator, x_obs, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)  # as a segfault or the out-of-memory killer would

    register(monkeypatch, "crasher", crasher)
    with pytest.warns(CellErrors, match="died"):
        rows = avo_bench.run(methods=["crasher", "prior"], out=tmp_path / "run", **GRID)
    crashed = rows[rows.method == "crasher"]
    assert (crashed.status == "error").all()
    assert crashed.message.str.contains(r"worker process running this cell died \(killed by "
                                        r"SIGKILL\)").all()  # fmt: skip
    pd.testing.assert_frame_equal(stable(rows[rows.method == "prior"]), stable(prior_rows))


def exiter(simulator, x_obs, **kwargs):
    sys.exit(3)


def interrupter(simulator, x_obs, **kwargs):
    raise KeyboardInterrupt


@pytest.mark.parametrize("timeout", [0, None], ids=["in-process", "child"])
def test_system_exit_inside_a_method_is_the_cells_failure(tmp_path, monkeypatch, timeout):
    register(monkeypatch, "exiter", exiter)
    with pytest.warns(CellErrors):
        rows = avo_bench.run(methods=["exiter", "prior"], out=tmp_path, cell_timeout=timeout,
                             **GRID)  # fmt: skip
    assert rows[rows.method == "exiter"].message.str.startswith("SystemExit: 3").all()
    assert (rows[rows.method == "prior"].status != "error").any()


def test_keyboard_interrupt_in_a_child_is_the_cells_failure(tmp_path, monkeypatch):
    # A child runs in its own session: the terminal's Ctrl-C never reaches it, so a
    # KeyboardInterrupt there was raised by the method.
    register(monkeypatch, "interrupter", interrupter)
    with pytest.warns(CellErrors):
        rows = avo_bench.run(methods=["interrupter", "prior"], out=tmp_path, **GRID)
    message = rows[rows.method == "interrupter"].message
    assert message.str.startswith("KeyboardInterrupt raised inside the cell").all()


def test_keyboard_interrupt_in_this_process_stops_the_run_and_it_resumes(tmp_path, monkeypatch,
                                                                        prior_rows):  # fmt: skip
    # In this process a KeyboardInterrupt is the user's Ctrl-C: the run stops, saved cells stay.
    register(monkeypatch, "interrupter", interrupter)
    kwargs = dict(methods=["prior", "interrupter"], out=tmp_path / "run", **GRID)
    with pytest.raises(KeyboardInterrupt):
        avo_bench.run(**kwargs, cell_timeout=0)
    saved = load_results(tmp_path / "run")
    pd.testing.assert_frame_equal(stable(saved), stable(prior_rows))
    register(monkeypatch, "interrupter", exiter)  # the method, fixed, on the next run
    with pytest.warns(CellErrors):
        resumed = avo_bench.run(**kwargs)
    assert set(resumed.method) == {"prior", "interrupter"}


SCRIPT = """
import os, subprocess, sys, time
import avo_bench
from avo_bench.methods import Result, register
from avo_bench.methods.prior import PriorConfig

@register("sleeper", config=PriorConfig)
def sleeper(simulator, x_obs, **kwargs):
    child = subprocess.Popen(["sleep", "1000"])
    with open(os.environ["PID_FILE"] + ".tmp", "w") as file:
        file.write(f"{os.getpid()} {child.pid}")
    os.replace(os.environ["PID_FILE"] + ".tmp", os.environ["PID_FILE"])
    time.sleep(10**6)

@register("crasher", config=PriorConfig)
def crasher(simulator, x_obs, **kwargs):
    os._exit(7)

if __name__ == "__main__":
    import signal, torch
    # Python started from a terminal: a background job without job control (CI, `cmd &`)
    # starts with SIGINT ignored, and then Ctrl-C never reaches the run
    signal.signal(signal.SIGINT, signal.default_int_handler)
    torch.set_num_threads(1)
    methods, jobs, timeout = sys.argv[1].split(","), int(sys.argv[2]), float(sys.argv[3])
    avo_bench.run(["gaussian"], methods, preset="tiny", budgets=[100], out=sys.argv[4],
                  jobs=jobs, cell_timeout=timeout, report=False)
"""


def script(tmp_path: Path, *args: object) -> tuple[list[str], dict]:
    path = tmp_path / "hostile.py"
    path.write_text(textwrap.dedent(SCRIPT))
    env = {**os.environ, "PID_FILE": str(tmp_path / "pid"),
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}  # fmt: skip
    return [sys.executable, str(path), *map(str, args)], env


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill-9"])
def test_a_stopped_run_leaves_no_process_behind(tmp_path, how):
    command, env = script(tmp_path, "sleeper", 1, 600, tmp_path / "run")
    log = tmp_path / "stderr.txt"
    with open(log, "w") as stderr:
        process = subprocess.Popen(command, env=env, cwd=tmp_path, stderr=stderr)
    deadline = time.monotonic() + 300
    while not (tmp_path / "pid").exists():
        assert process.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.01)
    pids = [int(pid) for pid in (tmp_path / "pid").read_text().split()]  # child, grandchild
    process.send_signal(how)
    # KeyboardInterrupt, or killed; the limit bounds a hang (e.g. SIGINT ignored, see SCRIPT)
    try:
        code = process.wait(timeout=300)
    except subprocess.TimeoutExpired:
        process.kill()
        raise AssertionError(f"the run did not stop:\n{log.read_text()}") from None
    assert code != 0, log.read_text()
    deadline = time.monotonic() + 30  # a child notices a killed runner within a second
    while any(map(alive, pids)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(map(alive, pids))


@pytest.mark.slow
@pytest.mark.parametrize("jobs", [1, 2], ids=["forked", "processes"])
def test_hostile_cells_of_a_script_with_every_local_executor(tmp_path, jobs):
    # Methods registered by a script reach forked children and spawned workers alike.
    out = tmp_path / "run"
    command, env = script(tmp_path, "crasher,sleeper,prior", jobs, 60, out)
    subprocess.run(command, env=env, cwd=tmp_path, check=True, stderr=subprocess.DEVNULL)
    rows = load_results(out).drop_duplicates(["method"]).set_index("method")
    crashed = rows.loc["crasher"]
    assert crashed.status == "error" and "exit code 7" in crashed.message
    assert rows.loc["sleeper", "status"] == "timeout"
    assert rows.loc["prior", "status"] in ("ok", "error")  # ran: not killed with its neighbours
    assert not any(alive(int(pid)) for pid in (tmp_path / "pid").read_text().split())


@pytest.mark.slow
def test_dask_with_a_time_limit_gives_the_in_process_rows(tmp_path):
    pytest.importorskip("distributed")
    kwargs = dict(simulators=["gaussian", "rosenbrock"], methods=["prior", "rejection_abc"],
                  seeds=2, preset="tiny", budgets=[100], report=False)  # fmt: skip
    inline = avo_bench.run(**kwargs, out=tmp_path / "inline", cell_timeout=0)
    dask = avo_bench.run(**kwargs, out=tmp_path / "dask", jobs=2, executor="dask",
                         cell_timeout=300)  # fmt: skip
    pd.testing.assert_frame_equal(stable(inline), stable(dask))


def test_a_forked_child_gives_the_in_process_rows(tmp_path):
    kwargs = dict(simulators=["gaussian", "rosenbrock"], methods=["prior", "rejection_abc"],
                  seeds=2, preset="tiny", budgets=[100], report=False)  # fmt: skip
    inline = avo_bench.run(**kwargs, out=tmp_path / "inline", cell_timeout=0)
    forked = avo_bench.run(**kwargs, out=tmp_path / "forked")  # the preset's limit
    pd.testing.assert_frame_equal(stable(inline), stable(forked))
    # (processes with the preset's limit: tests/test_runner.py::test_executors_give_the_same_table)


def test_worker_processes_pin_their_blas_and_openmp_pools():
    # The parent's environment asks for one BLAS thread (conftest); a worker pinned to 2 must
    # report 2 in every pool threadpoolctl sees, also in those of a library it loads after
    # being pinned (sklearn's OpenMP), and in torch.
    import multiprocessing

    from avo_bench.executors import _init_worker

    with multiprocessing.get_context("spawn").Pool(1, _init_worker, (2,)) as pool:
        pools, torch_threads = pool.apply(_thread_counts)
    assert pools and {n for _, n in pools} == {2}, pools
    assert torch_threads == 2


def _thread_counts():
    import sklearn.ensemble  # noqa: F401  (loaded after the worker was pinned)
    import torch
    from threadpoolctl import threadpool_info

    pools = [(pool["internal_api"], pool["num_threads"]) for pool in threadpool_info()]
    return pools, torch.get_num_threads()
