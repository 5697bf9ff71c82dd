"""Where cells run: in-process, a local process pool, or a Dask cluster.

Every executor maps :func:`avo_bench.cell.run_cell` over the pending cells and yields outcomes
as they finish (any order). Cells carry their own seeds, so the rows do not depend on the
executor or on scheduling order; the runner sorts them into grid order.

Worker processes set their number of torch and BLAS/OpenMP threads once at start (``threads``,
default 1 per job; :func:`avo_bench.workers.pin_threads`), so that ``jobs`` workers do not
oversubscribe the cores. Without a time limit the in-process executor runs cells in this
process and leaves the caller's settings alone; with one, its child process uses ``threads``
(default 1) too.

A time limit per cell (``timeout``) is enforced by killing the child process that runs the
cell: every executor runs cells in children when a limit is set (see :mod:`avo_bench.workers`),
and a child that dies becomes the cell's ``error`` rows, so no cell can stall or end the grid.

References:
    Dask distributed (https://distributed.dask.org): ``LocalCluster`` and ``Client``.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
from collections.abc import Callable, Iterable, Iterator

from .plan import Cell
from .workers import Pool, run_in_child

__all__ = ["EXECUTORS", "check_cell_timeout", "check_executor", "make_executor", "run_cell"]


def run_cell(cell: Cell, progress: Callable | None = None):
    """:func:`avo_bench.cell.run_cell` (imported on first use: keeps ``--help`` light), with
    torch's global settings restored afterwards, so that a method changing them (default dtype
    or device, grad mode, threads) cannot change the cells that run after it in this process."""
    from .cell import run_cell as run

    with _torch_globals_kept():
        return run(cell, progress)


@contextlib.contextmanager
def _torch_globals_kept() -> Iterator[None]:
    import torch

    dtype, grad, threads = (
        torch.get_default_dtype(),
        torch.is_grad_enabled(),
        torch.get_num_threads(),
    )
    device = torch.get_default_device() if hasattr(torch, "get_default_device") else None
    try:
        yield
    finally:
        torch.set_default_dtype(dtype)
        if device is not None and torch.get_default_device() != device:
            torch.set_default_device(None if device.type == "cpu" else device)
        torch.set_grad_enabled(grad)
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


def _init_worker(threads: int) -> None:
    from .workers import pin_threads

    pin_threads(threads)


class InProcess:
    """Runs cells one after the other (per-method progress is shown).

    Without a time limit, in this process. With one, in a child process forked from this one
    (so it sees every method and simulator this process registered) and killed at the limit;
    the child is reused from cell to cell and replaced after a timeout or a crash (see
    :mod:`avo_bench.workers`). It is spawned instead (a fresh interpreter that re-imports the
    main script's top level) where fork is missing or unsafe: on CUDA, or with ``threads > 1``.
    """

    name = "inprocess"

    def __init__(self, jobs: int = 1, threads: int | None = None, scheduler: str | None = None,
                 timeout: float | None = None):  # fmt: skip
        self.jobs, self.threads, self.timeout = 1, threads, timeout
        self.pool: Pool | None = None

    def map(self, cells: Iterable[Cell], progress: Callable | None = None) -> Iterator:
        cells = list(cells)
        if self.timeout is None:
            for cell in cells:
                yield run_cell(cell, progress)
            return
        if self.pool is None:
            forkable = (
                "fork" in multiprocessing.get_all_start_methods() and (self.threads or 1) == 1
            )
            cuda = any(cell.device.startswith("cuda") for cell in cells)
            start = "fork" if forkable and not cuda else "spawn"
            self.pool = Pool(1, start, self.threads or 1, self.timeout)
        yield from self.pool.map(cells, progress)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()


class ProcessPool:
    """``jobs`` local worker processes (``spawn``, safe with torch threads), each cell within the
    time limit; a worker that dies or times out is replaced (see :mod:`avo_bench.workers`)."""

    name = "processes"

    def __init__(self, jobs: int = 2, threads: int | None = None, scheduler: str | None = None,
                 timeout: float | None = None):  # fmt: skip
        self.jobs = jobs
        self.pool = Pool(jobs, "spawn", threads or 1, timeout)

    def map(self, cells: Iterable[Cell], progress: Callable | None = None) -> Iterator:
        return self.pool.map(cells)

    def close(self) -> None:
        self.pool.close()


def _threads_plugin(threads: int):
    """A Dask worker plugin setting torch threads on every worker, also ones that join later."""
    from distributed.diagnostics.plugin import WorkerPlugin

    class TorchThreads(WorkerPlugin):  # pickled by value (cloudpickle), no import on workers
        name = "avo-bench-torch-threads"

        def setup(self, worker) -> None:
            _init_worker(threads)

    return TorchThreads()


class Dask:
    """Dask distributed: a running scheduler (``scheduler='tcp://host:port'``) or a
    ``LocalCluster`` of ``jobs`` single-threaded worker processes.

    With a time limit, each task runs its cell in a child process of the Dask worker (a fresh
    interpreter, kept for the worker's next cells) and kills it at the limit. A task that fails
    anyway (its Dask worker died) becomes the cell's ``error`` rows; the grid goes on.
    """

    name = "dask"

    def __init__(self, jobs: int = 2, threads: int | None = None, scheduler: str | None = None,
                 timeout: float | None = None):  # fmt: skip
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise ValueError(
                "the dask executor needs dask.distributed: pip install 'avo-bench[dask]'"
            ) from None
        self.cluster = None
        if scheduler is None:
            self.cluster = LocalCluster(
                n_workers=jobs, threads_per_worker=1, processes=True, dashboard_address=None
            )
            scheduler = self.cluster
        try:
            self.client = Client(scheduler, timeout=30)
        except (OSError, TimeoutError) as error:
            self._close_cluster()
            raise ValueError(f"cannot connect to Dask scheduler {scheduler!r}: {error}") from None
        self.client.register_plugin(_threads_plugin(threads or 1))
        self.jobs, self.threads, self.timeout = jobs, threads or 1, timeout

    def map(self, cells: Iterable[Cell], progress: Callable | None = None) -> Iterator:
        from distributed import as_completed as dask_completed

        cells = list(cells)
        if self.timeout is None:
            futures = self.client.map(run_cell, cells, pure=False)
        else:
            futures = self.client.map(run_in_child, cells, pure=False, timeout=self.timeout,
                                      threads=self.threads)  # fmt: skip
        of = {future.key: cell for future, cell in zip(futures, cells, strict=True)}
        try:
            for future in dask_completed(futures):
                yield _result(future, of[future.key])
        finally:
            self.client.cancel(futures)

    def _close_cluster(self) -> None:
        if self.cluster is not None:
            self.cluster.close()

    def close(self) -> None:
        self.client.close()
        self._close_cluster()


def _result(future, cell: Cell):
    try:
        return future.result()
    except Exception as error:  # the task failed, not the cell's method: e.g. KilledWorker
        from .cell import failed

        return failed(cell, "error", f"the Dask task of this cell failed: "
                      f"{type(error).__name__}: {error}")  # fmt: skip


EXECUTORS = {cls.name: cls for cls in (InProcess, ProcessPool, Dask)}


def check_executor(name: str | None, jobs: int, threads: int | None, scheduler: str | None) -> str:
    """Validates executor settings (before anything runs) and returns the executor's name.

    Raises:
        ValueError: For an unknown executor name, ``jobs < 1``, ``threads < 1``, or a
            scheduler address without the dask executor.
    """
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be an integer >= 1, got {jobs!r}")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)
                                or threads < 1):  # fmt: skip
        raise ValueError(f"threads must be an integer >= 1, got {threads!r}")
    if name is None:
        name = "dask" if scheduler else "processes" if jobs > 1 else "inprocess"
    if name not in EXECUTORS:
        raise ValueError(f"unknown executor {name!r}; choose from: {', '.join(EXECUTORS)}")
    if scheduler and name != "dask":
        raise ValueError(f"a scheduler address needs the dask executor, not {name!r}")
    return name


def check_cell_timeout(value: float | None, default: float) -> float | None:
    """The wall-time limit of one cell in seconds, or ``None`` for no limit.

    Arguments:
        value: Seconds (> 0); ``0`` or ``math.inf`` for no limit (in-process cells then run
            in this process); ``None`` for ``default`` (the preset's).
        default: The preset's limit.

    Raises:
        ValueError: For a negative, NaN or non-numeric value.
    """
    if value is None:
        value = default
    ok = isinstance(value, int | float) and not isinstance(value, bool) and not math.isnan(value)
    if not ok or value < 0:
        raise ValueError(
            f"cell_timeout must be a number of seconds > 0 (0 for no limit), got {value!r}"
        )
    return None if value == 0 or math.isinf(value) else float(value)


def make_executor(
    name: str | None = None, *, jobs: int = 1, threads: int | None = None,
    scheduler: str | None = None, timeout: float | None = None,
):  # fmt: skip
    """The executor ``name`` (default: ``dask`` with a scheduler, ``processes`` for
    ``jobs > 1``, else ``inprocess``) running each cell within ``timeout`` seconds (``None``:
    no limit); see :func:`check_executor`."""
    name = check_executor(name, jobs, threads, scheduler)
    return EXECUTORS[name](jobs=jobs, threads=threads, scheduler=scheduler, timeout=timeout)
