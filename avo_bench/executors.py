"""Where cells run: in-process, a local process pool, or a Dask cluster.

Every executor maps :func:`avo_bench.cell.run_cell` over the pending cells and yields outcomes
as they finish (any order). Cells carry their own seeds, so the rows do not depend on the
executor or on scheduling order; the runner sorts them into grid order.

Worker processes set their number of torch threads once at start (``threads``, default 1 per
job), so that ``jobs`` workers do not oversubscribe the cores. Only workers do this: the
in-process executor leaves the caller's settings alone.

References:
    Dask distributed (https://distributed.dask.org): ``LocalCluster`` and ``Client``.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed

from .plan import Cell

__all__ = ["EXECUTORS", "check_executor", "make_executor"]


def run_cell(cell: Cell, progress: Callable | None = None):
    """:func:`avo_bench.cell.run_cell`, imported on first use (keeps ``--help`` light)."""
    from .cell import run_cell as run

    return run(cell, progress)


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


class InProcess:
    """Runs cells one after the other in this process (per-method progress is shown)."""

    name = "inprocess"

    def __init__(self, jobs: int = 1, threads: int | None = None, scheduler: str | None = None):
        self.jobs = 1

    def map(self, cells: Iterable[Cell], progress: Callable | None = None) -> Iterator:
        for cell in cells:
            yield run_cell(cell, progress)

    def close(self) -> None:
        pass


class ProcessPool:
    """A pool of ``jobs`` local worker processes (``spawn``, safe with torch threads)."""

    name = "processes"

    def __init__(self, jobs: int = 2, threads: int | None = None, scheduler: str | None = None):
        self.jobs = jobs
        self.pool = ProcessPoolExecutor(
            max_workers=jobs,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(threads or 1,),
        )

    def map(self, cells: Iterable[Cell], progress: Callable | None = None) -> Iterator:
        futures = [self.pool.submit(run_cell, cell) for cell in cells]
        try:
            for future in as_completed(futures):
                yield future.result()
        finally:
            for future in futures:
                future.cancel()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


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
    ``LocalCluster`` of ``jobs`` single-threaded worker processes."""

    name = "dask"

    def __init__(self, jobs: int = 2, threads: int | None = None, scheduler: str | None = None):
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
        self.jobs = jobs

    def map(self, cells: Iterable[Cell], progress: Callable | None = None) -> Iterator:
        from distributed import as_completed as dask_completed

        futures = self.client.map(run_cell, list(cells), pure=False)
        try:
            for future in dask_completed(futures):
                yield future.result()
        finally:
            self.client.cancel(futures)

    def _close_cluster(self) -> None:
        if self.cluster is not None:
            self.cluster.close()

    def close(self) -> None:
        self.client.close()
        self._close_cluster()


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


def make_executor(
    name: str | None = None, *, jobs: int = 1, threads: int | None = None,
    scheduler: str | None = None,
):  # fmt: skip
    """The executor ``name`` (default: ``dask`` with a scheduler, ``processes`` for
    ``jobs > 1``, else ``inprocess``); see :func:`check_executor`."""
    name = check_executor(name, jobs, threads, scheduler)
    return EXECUTORS[name](jobs=jobs, threads=threads, scheduler=scheduler)
