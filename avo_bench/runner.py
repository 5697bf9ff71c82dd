"""The benchmark grid: validate, resume, execute, write rows as cells finish, report.

:func:`run` is the Python API behind ``python -m avo_bench run``. It reads the registries (no
simulator or method is named here), so a new module joins the default grid by registering.

Resuming: the run directory's ``manifest.json`` records the run's identity; re-running the same
configuration skips cells whose rows are in ``results.csv``, adding simulators or methods runs
only their cells, and any other change of configuration is refused. Rows are rewritten
atomically after every cell, so killing the process loses at most the cells in flight.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import platform
import subprocess
import sys
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pandas as pd

from .display import Bars
from .executors import check_executor, make_executor
from .plan import Plan, make_plan
from .results import (
    RESULTS,
    ResultsError,
    atomic_write,
    check_manifest,
    load_results,
    write_artifacts,
    write_results,
)

__all__ = ["CellErrors", "failure_summary", "run"]


class CellErrors(UserWarning):
    """Some cells of a run ended in ``error`` (the warning's text lists them)."""


def failure_summary(rows: pd.DataFrame) -> str:
    """``""`` if every cell is ``ok`` or ``n/a``; else the count of failed cells and one line
    per distinct error message, with the first cell that raised it and how many did."""
    failed = rows[~rows.status.isin(["ok", "n/a"])]
    if failed.empty:
        return ""
    keys = ["simulator", "method", "seed", "budget"]
    cells = failed.drop_duplicates(keys)
    total = rows.drop_duplicates(keys)
    lines = [f"{len(cells)} of {len(total)} cells failed:"]
    for message, group in cells.groupby("message", sort=False):
        first = group.iloc[0]
        where = f"{first.simulator}/{first.method} seed={first.seed} budget={first.budget}"
        more = f" (and {len(group) - 1} more cells)" if len(group) > 1 else ""
        lines.append(f"  {where}{more}: {str(message)[:300]}")
    return "\n".join(lines)


def _git_commit() -> str:
    root = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=10, check=True)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip()


def _versions() -> dict:
    import torch

    from avo_bench import __version__

    return {"version": __version__, "git_commit": _git_commit(), "torch": torch.__version__}


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as file:
            for line in file:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(device: str = "cpu") -> dict:
    """What ran a run: CPU, cores, memory, load, OS, Python and package versions, GPU.

    Recorded in the manifest and printed in the report, so that wall times can be read in
    context (the load average at the start says whether the cores were shared).
    """
    from importlib import metadata

    import torch

    info = {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }
    with contextlib.suppress(ValueError, OSError, AttributeError):
        info["memory_gib"] = round(
            os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1
        )
    with contextlib.suppress(OSError, AttributeError):
        info["load_average"] = [round(x, 2) for x in os.getloadavg()]
    packages = {}
    for name in ("torch", "numpy", "scipy", "pandas", "pot", "scikit-learn", "numba", "sbi"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            packages[name] = metadata.version(name)
    info["packages"] = packages
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def _invocation(command: str | None, jobs: int, executor: str, threads: int | None) -> dict:
    if command is None:
        command = f"avo_bench.run(...) from {Path(sys.argv[0]).name or 'python'}"
    return {
        "command": command,
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "executor": executor,
        "jobs": jobs,
        "threads": threads or 1,
    }


def _prepare(run_dir: Path) -> None:
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(run_dir / ".write-test", lambda f: f.write(b"ok"))
        (run_dir / ".write-test").unlink()
    except OSError as error:
        raise ResultsError(f"cannot write to output directory {run_dir}: {error}") from None


@contextlib.contextmanager
def _locked(run_dir: Path) -> Iterator[None]:
    """One writer per run directory (the OS releases the lock if the process is killed)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover (no advisory locks on this platform)
        yield
        return
    with open(run_dir / ".lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise ResultsError(f"another run is writing to {run_dir}") from None
        for stale in [*run_dir.glob(".*.tmp"), *run_dir.glob("cells/.*.tmp")]:  # killed writers
            stale.unlink()
        yield


def _finished(run_dir: Path, retry_errors: bool) -> dict[tuple, pd.DataFrame]:
    if not (run_dir / RESULTS).exists():
        return {}
    rows = load_results(run_dir)
    if retry_errors:
        failed = rows.groupby(["simulator", "method", "seed", "budget"])["status"].transform(
            lambda s: (s == "error").any()
        )
        rows = rows[~failed]
    groups = rows.groupby(["simulator", "method", "seed", "budget"], sort=False)
    return {tuple(key): group.reset_index(drop=True) for key, group in groups}


def _table(plan: Plan, done: dict[tuple, pd.DataFrame]) -> pd.DataFrame:
    frames = [done[cell.key] for cell in plan.cells if cell.key in done]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _execute(plan: Plan, run_dir: Path, done: dict, executor, versions: dict, quiet: bool):
    pending = [cell for cell in plan.cells if cell.key not in done]
    if not pending:
        return
    bars = Bars(len(plan.cells), len(plan.cells) - len(pending), enabled=not quiet)
    inline = executor.name == "inprocess"
    try:
        bars.start(_label(pending[0]))
        for outcome in executor.map(pending, bars.handler if inline else None):
            if outcome.arrays:
                write_artifacts(run_dir, outcome.cell.key, outcome.arrays, outcome.history)
            rows = pd.DataFrame(outcome.rows).assign(
                version=versions["version"], git_commit=versions["git_commit"]
            )
            done[outcome.cell.key] = rows
            write_results(run_dir, _table(plan, done))
            bars.end_fit()
            bars.advance(_label(outcome.cell))
    finally:
        bars.close()


KEY_CELL = ["simulator", "method", "seed", "budget"]


def plan_keys(plan: Plan) -> list[tuple]:
    return [cell.key for cell in plan.cells]


def _label(cell) -> str:
    return f"{cell.simulator}/{cell.method} seed={cell.seed} budget={cell.budget}"


def run(
    simulators: Sequence[str] | None = None,
    methods: Sequence[str] | None = None,
    *,
    seeds: int | Sequence[int] = 1,
    budgets: Sequence[int] | None = None,
    preset: str = "quick",
    device: str = "cpu",
    simulator_options: Mapping[str, Mapping] | None = None,
    method_options: Mapping[str, Mapping] | None = None,
    out: str | Path | None = None,
    jobs: int = 1,
    executor: str | None = None,
    scheduler: str | None = None,
    threads: int | None = None,
    retry_errors: bool = False,
    report: bool = True,
    quiet: bool = True,
    command: str | None = None,
) -> pd.DataFrame:
    """Runs the benchmark grid simulators × methods × seeds × budgets and returns its rows.

    Arguments:
        simulators: Simulator names (default: every registered one).
        methods: Method names (default: every registered one; cells where a method does not
            apply become ``n/a`` rows).
        seeds: Number of seeds (``0..n-1``) or a list of seeds.
        budgets: Simulation budgets (default: the preset's).
        preset: ``tiny``, ``quick`` or ``paper`` (see :data:`avo_bench.plan.PRESETS`).
        device: ``cpu`` or ``cuda[:N]``.
        simulator_options: ``{simulator: {option: value}}``.
        method_options: ``{method: {config key: value}}`` (e.g. ``{"avo": {"gamma": 5}}``).
        out: Run directory (default ``results/<preset>``); re-running resumes it.
        jobs: Parallel workers.
        executor: ``inprocess``, ``processes`` or ``dask`` (default from ``jobs``/``scheduler``).
        scheduler: Address of a Dask scheduler, e.g. ``tcp://host:8786``.
        threads: Torch threads per worker process (default 1).
        retry_errors: Re-run cells that ended in ``error``.
        report: Write the markdown report and plots at the end.
        quiet: No progress bars.
        command: The command line to record in the manifest and report (the CLI passes its
            own; default: "avo_bench.run(...)").

    Returns:
        The tidy results, one row per (simulator, method, seed, budget, space, metric).

    Warns:
        CellErrors: If cells of this run ended in ``error``: their count and one line per
            distinct error (the cells stay in the results as ``error`` rows).

    Raises:
        ValueError: For invalid names, options or sizes (before anything runs), an unwritable
            output directory, or a results directory of another configuration.
    """
    plan = make_plan(
        simulators, methods, seeds=seeds, budgets=budgets, preset=preset, device=device,
        simulator_options=simulator_options, method_options=method_options,
    )  # fmt: skip
    executor = check_executor(executor, jobs, threads, scheduler)
    run_dir = Path(out) if out is not None else Path("results") / preset
    _prepare(run_dir)
    versions = _versions()
    with _locked(run_dir):
        done = _finished(run_dir, retry_errors)
        about = {"versions": versions, "machine": machine(device)}
        if any(cell.key not in done for cell in plan.cells):
            invocation = _invocation(command, jobs, executor, threads)
            check_manifest(run_dir, plan.identity, about, invocation)
            pool = make_executor(executor, jobs=jobs, threads=threads, scheduler=scheduler)
            try:
                _execute(plan, run_dir, done, pool, versions, quiet)
            finally:
                pool.close()
        else:
            check_manifest(run_dir, plan.identity, about)
        if report:
            from .report import write_report

            write_report(run_dir)
    rows = load_results(run_dir)
    summary = failure_summary(rows[rows.set_index(KEY_CELL).index.isin(plan_keys(plan))])
    if summary:
        warnings.warn(f"{summary}\nRe-run failed cells with retry_errors=True "
                      "(--retry-errors).", CellErrors, stacklevel=2)  # fmt: skip
    return rows
