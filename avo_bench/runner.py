"""The benchmark grid: validate, resume, execute, write rows as cells finish, report.

:func:`run` is the Python API behind ``python -m avo_bench run``. It reads the registries (no
simulator or method is named here), so a new module joins the default grid by registering.

Resuming: the run directory's ``manifest.json`` records the run's identity; re-running the same
configuration skips the cells whose rows in ``results.csv`` are complete (every score of the
cell's simulator, once: a cell with missing rows, e.g. from a truncated file, runs again);
adding simulators or methods runs only their cells; ``replace_methods`` re-runs every cell of
the named methods (their config may have changed); any other change of configuration is
refused. Rows are rewritten atomically after every cell, so killing the process loses at most
the cells in flight, and ``results.parquet`` is brought up to date with ``results.csv``.

Every cell runs within a wall-time limit (``cell_timeout``, the preset's by default): a cell past
it is killed and recorded with status ``timeout`` (see :mod:`avo_bench.executors`).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pandas as pd

from simulators import get_simulator

from .display import Bars
from .executors import check_cell_timeout, check_executor, make_executor
from .manifest import check_compatible, check_manifest, replaced_configs
from .plan import PRESETS, Plan, make_plan
from .provenance import invocation, machine, versions
from .results import (
    CELL_KEY,
    RESULTS,
    ResultsError,
    ResultsWarning,
    atomic_write,
    check_writable,
    drop_artifacts,
    has_results,
    load_results,
    sync_parquet,
    write_artifacts,
    write_results,
)

__all__ = ["KEY_CELL", "CellErrors", "failure_summary", "machine", "run"]

KEY_CELL = CELL_KEY  # simulator, method, seed, budget, n_obs
FAILED = ("error", "timeout")  # statuses that --retry-errors runs again


class CellErrors(UserWarning):
    """Some cells of a run ended in ``error`` or ``timeout`` (the warning's text lists them)."""


def failure_summary(rows: pd.DataFrame) -> str:
    """``""`` if every cell is ``ok`` or ``n/a``; else the count of failed cells and one line
    per distinct error message, with the first cell that raised it and how many did."""
    failed = rows[~rows.status.isin(["ok", "n/a"])]
    if failed.empty:
        return ""
    cells = failed.drop_duplicates(KEY_CELL)
    total = rows.drop_duplicates(KEY_CELL)
    lines = [f"{len(cells)} of {len(total)} cells failed:"]
    for message, group in cells.groupby("message", sort=False):
        first = group.iloc[0]
        where = _label(first)
        more = f" (and {len(group) - 1} more cells)" if len(group) > 1 else ""
        lines.append(f"  {where}{more}: {first.status}: {str(message)[:300]}")
    return "\n".join(lines)


def _run_dir(out: str | os.PathLike | None, preset: str) -> Path:
    if out is None:
        return Path("results") / preset
    if not isinstance(out, str | os.PathLike) or not str(out).strip():
        raise ValueError(f"out must be a directory path, got {out!r}")
    return Path(out)


def _prepare(run_dir: Path) -> None:
    """Creates the run directory and checks, before any work, that everything the run writes
    is writable."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(run_dir / ".write-test", lambda f: f.write(b"ok"))
        (run_dir / ".write-test").unlink()
    except OSError as error:
        raise ResultsError(f"cannot write to output directory {run_dir}: {error}") from None
    check_writable(run_dir)


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
        for stale in run_dir.rglob(".*.tmp"):  # left by killed writers (results, cells, plots)
            stale.unlink()
        yield


def _expected(plan: Plan) -> dict[tuple, list]:
    """The sorted (space, metric) rows of each complete cell of the plan, by cell key."""
    from .scoring import score_plan

    scores, expected = {}, {}
    for cell in plan.cells:
        task = (cell.simulator, json.dumps(cell.simulator_options, sort_keys=True))
        if task not in scores:
            simulator = get_simulator(cell.simulator, **cell.simulator_options)
            scores[task] = sorted(s.key for s in score_plan(simulator=simulator))
        expected[cell.key] = scores[task]
    return expected


def _finished(run_dir: Path, plan: Plan, retry_errors: bool) -> dict[tuple, pd.DataFrame]:
    """The complete cells of the results file (rows of incomplete ones are run again)."""
    if not has_results(run_dir):
        return {}
    rows = load_results(run_dir)
    expected, done, incomplete = _expected(plan), {}, 0
    for key, group in rows.groupby(KEY_CELL, sort=False):
        want = expected.get(tuple(key))
        if want is not None and sorted(zip(group.space, group.metric, strict=True)) != want:
            incomplete += 1
            continue
        if retry_errors and group.status.isin(FAILED).any():
            continue
        done[tuple(key)] = group.reset_index(drop=True)
    if incomplete:
        warnings.warn(f"{incomplete} cells in {run_dir / RESULTS} have missing or extra score "
                      "rows (a truncated file, or a score table that changed since they ran): "
                      "they run again", ResultsWarning, stacklevel=3)  # fmt: skip
    return done


def _table(plan: Plan, done: dict[tuple, pd.DataFrame]) -> pd.DataFrame:
    cells = sorted(plan.cells, key=lambda cell: cell.index)  # the grid's order, however run
    frames = [done[cell.key] for cell in cells if cell.key in done]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _execute(plan: Plan, run_dir: Path, done: dict, executor, versions: dict, quiet: bool):
    pending = [cell for cell in plan.cells if cell.key not in done]
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


def _label(cell) -> str:
    """``simulator/method seed=S budget=B`` (and `` n_obs=N`` when the simulator has one)."""
    label = f"{cell.simulator}/{cell.method} seed={cell.seed} budget={cell.budget}"
    return label + (f" n_obs={cell.n_obs}" if cell.n_obs != 1 else "")


def _replaced(plan: Plan, replace_methods: Sequence[str]) -> tuple[str, ...]:
    names = (replace_methods,) if isinstance(replace_methods, str) else tuple(replace_methods)
    methods = list(plan.identity["methods"])
    unknown = [name for name in names if name not in methods]
    if unknown:
        raise ValueError(f"replace_methods: {', '.join(map(repr, unknown))} not among this run's "
                         f"methods; choose from: {', '.join(methods)}")  # fmt: skip
    return tuple(dict.fromkeys(names))


def _drop_methods(run_dir: Path, methods: tuple[str, ...]) -> None:
    """Removes the rows and artifacts of ``methods`` (rows first: a kill in between leaves
    artifacts without rows, which the next run overwrites)."""
    if not methods or not has_results(run_dir):
        return
    rows = load_results(run_dir)
    dropped = rows.method.isin(methods)
    if dropped.any():
        write_results(run_dir, rows[~dropped])
        keys = rows.loc[dropped, KEY_CELL].drop_duplicates().itertuples(index=False)
        drop_artifacts(run_dir, [tuple(key) for key in keys])


def _check_flags(**flags: object) -> None:
    for name, value in flags.items():
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be True or False, got {value!r}")


def run(
    simulators: Sequence[str] | None = None,
    methods: Sequence[str] | None = None,
    *,
    seeds: int | Sequence[int] | None = None,
    budgets: Sequence[int] | None = None,
    preset: str = "quick",
    device: str = "cpu",
    simulator_options: Mapping[str, Mapping] | None = None,
    method_options: Mapping[str, Mapping] | None = None,
    n_obs: Sequence[int] | None = None,
    c2st: str | None = None,
    order: str = "simulators",
    out: str | Path | None = None,
    jobs: int = 1,
    executor: str | None = None,
    scheduler: str | None = None,
    threads: int | None = None,
    cell_timeout: float | None = None,
    retry_errors: bool = False,
    replace_methods: Sequence[str] = (),
    report: bool = True,
    quiet: bool = True,
    command: str | None = None,
) -> pd.DataFrame:
    """Runs the benchmark grid simulators × methods × seeds × budgets and returns its rows.

    Arguments:
        simulators: Simulator names (default: the preset's, else every registered one).
        methods: Method names (default: the preset's, else every registered one; cells where
            a method does not apply become ``n/a`` rows).
        seeds: Number of seeds (``0..n-1``) or a list of seeds (default: the preset's).
        budgets: A list of simulation budgets (default: the preset's).
        preset: ``tiny``, ``quick``, ``paper`` or ``iid`` (see :data:`avo_bench.plan.PRESETS`).
        device: ``cpu`` or ``cuda[:N]``.
        simulator_options: ``{simulator: {option: value}}``; entries for simulators not in
            the run are validated, then ignored with a warning.
        method_options: ``{method: {config key: value}}`` (e.g. ``{"avo": {"gamma": 5}}``);
            entries for methods not in the run are validated, then ignored with a warning.
        n_obs: Numbers of observations: every task with an iid observed set runs at each
            (default: the preset's ladder, if any; see :mod:`avo_bench.axes`).
        c2st: Parameter-space C2ST variant, ``"fast"`` or ``"sbibm"`` (default: the
            preset's; :func:`avo_bench.metrics.c2st`).
        order: ``"simulators"`` (simulator-major, the default) or ``"methods"`` (method-major):
            which cells run first; results do not depend on it (see
            :func:`~avo_bench.plan.make_plan`).
        out: Run directory (default ``results/<preset>``); re-running resumes it.
        jobs: Parallel workers.
        executor: ``inprocess``, ``processes`` or ``dask`` (default from ``jobs``/``scheduler``).
        scheduler: Address of a Dask scheduler, e.g. ``tcp://host:8786``.
        threads: Torch threads per worker process (default 1).
        cell_timeout: Wall-time limit of one cell in seconds (default: the preset's, see
            :class:`avo_bench.plan.Preset`); ``0`` for none, in which case in-process cells
            run in this process (with a limit, in a child process killed at the limit).
        retry_errors: Re-run cells that ended in ``error`` or ``timeout``.
        replace_methods: Methods whose rows and artifacts in ``out`` are deleted and whose
            cells run again, with their config as given now (it may differ from the one the
            directory was run with); the manifest records the previous configs. To resume an
            interrupted replacement, run again without it.
        report: Write the markdown report and plots at the end.
        quiet: No progress bars.
        command: The command line to record in the manifest and report (the CLI passes its
            own; default: "avo_bench.run(...)").

    Returns:
        The tidy results, one row per (simulator, method, seed, budget, n_obs, space,
        metric).

    Warns:
        CellErrors: If cells of this run ended in ``error`` or ``timeout``: their count and
            one line per distinct error (the cells stay in the results with that status).

    Raises:
        ValueError: For invalid names, options, sizes or argument types (before anything
            runs), an unwritable output directory or file, or a results directory of another
            configuration.
        KeyboardInterrupt: On Ctrl-C; the finished cells are saved, re-running resumes.
    """
    plan = make_plan(
        simulators, methods, seeds=seeds, budgets=budgets, preset=preset, device=device,
        simulator_options=simulator_options, method_options=method_options, n_obs=n_obs,
        c2st=c2st, order=order,
    )  # fmt: skip
    executor = check_executor(executor, jobs, threads, scheduler)
    limit = check_cell_timeout(cell_timeout, PRESETS[preset].cell_timeout)
    _check_flags(retry_errors=retry_errors, report=report, quiet=quiet)
    replace = _replaced(plan, replace_methods)
    run_dir = _run_dir(out, preset)
    _prepare(run_dir)
    about = {"versions": versions(), "machine": machine(device)}
    with _locked(run_dir):
        check_compatible(run_dir, plan.identity, replace)  # before anything is deleted
        previous = replaced_configs(run_dir, replace)
        _drop_methods(run_dir, replace)
        done = _finished(run_dir, plan, retry_errors)
        resumed = sum(cell.key in done for cell in plan.cells)
        _say(quiet, f"{len(plan.cells)} cells ({resumed} already in {run_dir}), {jobs} "
                    f"worker(s) ({executor})")  # fmt: skip
        if any(cell.key not in done for cell in plan.cells):
            settings = {"executor": executor, "jobs": jobs, "threads": threads or 1,
                        "cell_timeout": limit}  # fmt: skip
            if replace:
                settings["replaced_methods"] = previous
            check_manifest(run_dir, plan.identity, about, invocation(command, **settings),
                           replace)  # fmt: skip
            pool = make_executor(executor, jobs=jobs, threads=threads, scheduler=scheduler,
                                 timeout=limit)  # fmt: skip
            try:
                _execute(plan, run_dir, done, pool, about["versions"], quiet)
            finally:
                pool.close()
        else:
            check_manifest(run_dir, plan.identity, about)
        sync_parquet(run_dir)
        if report:
            from .report import write_report

            _say(quiet, f"writing the report: {run_dir / 'report.md'} and plots")
            write_report(run_dir)
    rows = load_results(run_dir)
    summary = failure_summary(rows[rows.set_index(KEY_CELL).index.isin(plan_keys(plan))])
    if summary:
        warnings.warn(f"{summary}\nRe-run failed cells with retry_errors=True "
                      "(--retry-errors).", CellErrors, stacklevel=2)  # fmt: skip
    return rows


def _say(quiet: bool, text: str) -> None:
    """One progress line on stderr (unless ``quiet``)."""
    if not quiet:
        print(text, file=sys.stderr, flush=True)


def plan_keys(plan: Plan) -> list[tuple]:
    return [cell.key for cell in plan.cells]
