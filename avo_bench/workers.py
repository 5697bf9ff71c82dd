"""Cells in child processes: a wall-time limit per cell, and a grid that outlives its workers.

:class:`Pool` runs cells in ``jobs`` child processes, one cell at a time each, over a pipe, and
turns every way a child can fail into the cell's rows while the grid goes on:

- a cell past its time limit: the child's process group is killed (the processes the method
  started too), the cell's rows get status ``timeout`` with the limit in the message, and a
  fresh child takes the next cell;
- a child that dies (a crash in native code, ``os._exit``, the out-of-memory killer): the
  cell's rows get status ``error`` with the exit code or signal, and a fresh child goes on;
- ``KeyboardInterrupt`` raised inside a cell in a child is that cell's failure (``error``):
  a child runs in its own session, so the terminal's Ctrl-C reaches only the runner, which
  kills its children and stops (re-running resumes);
- a runner that dies, even by ``SIGKILL``: its children notice within a second and exit.

Children start by ``fork`` for in-process runs (they see everything this process registered,
e.g. a method or simulator registered by a script or a test), by ``spawn`` for the process
executor, and as a fresh interpreter (``exec``, through :mod:`subprocess`) inside Dask workers,
which may not start multiprocessing children. A forked child runs torch with 1 thread: GNU
OpenMP cannot use, after a fork, a thread pool its parent used (measured: the child hangs).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.spawn
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from multiprocessing.connection import Connection, wait

from .plan import Cell

__all__ = ["Pool", "pin_threads", "run_in_child"]

PROGRESS_EVERY = 0.2  # seconds between progress messages from a child


class Worker:
    """One child process that runs the cells it is sent, one at a time.

    Arguments:
        start: ``fork``, ``spawn`` or ``exec``.
        threads: Torch threads in the child (``None``: leave its default).
        progress: Whether the child forwards the method's progress messages.
    """

    def __init__(self, start: str, threads: int | None, progress: bool):
        args = (threads, os.getpid(), progress)
        if start == "exec":
            mine, theirs = socket.socketpair()
            code = f"from avo_bench.workers import _exec; _exec({theirs.fileno()}, *{args!r})"
            paths = [p or os.getcwd() for p in sys.path]  # what this process imports
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
            self.process = subprocess.Popen([sys.executable, "-c", code], env=env,
                                            pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL,
                                            start_new_session=True)  # fmt: skip
            theirs.close()
            self.conn = Connection(mine.detach())
            # what spawn gives its children: sys.path, working directory and the main script,
            # whose top level is re-imported (so a script's @register reaches this child too)
            data = multiprocessing.spawn.get_preparation_data("avo-bench-cell")
            data.pop("authkey", None)  # not needed, and pickled only by multiprocessing itself
            self.conn.send(data)
        else:
            context = multiprocessing.get_context(start)
            self.conn, theirs = context.Pipe()
            self.process = context.Process(target=_serve, args=(theirs, *args), daemon=True)
            self.process.start()
            theirs.close()
        self.cell: Cell | None = None
        self.started = 0.0
        self.ready = False  # the child has started (imported avo_bench) and serves cells

    def submit(self, cell: Cell) -> bool:
        """Sends ``cell`` to the child; ``False`` if the child is gone."""
        self.cell, self.started = cell, time.monotonic()
        try:
            self.conn.send(cell)
        except OSError:  # e.g. it died while idle
            return False
        return True

    def exit_code(self, timeout: float = 5.0) -> int | None:
        """Waits up to ``timeout`` seconds for the child to end; its exit code (or ``None``)."""
        if isinstance(self.process, subprocess.Popen):
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout)
            return self.process.returncode
        self.process.join(timeout)
        return self.process.exitcode

    def kill(self) -> None:
        """Kills the child and every process it started (its own process group), and reaps it."""
        if hasattr(os, "killpg"):  # its own session, so its process group (POSIX)
            with contextlib.suppress(OSError):
                os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            self.process.kill()
        self.exit_code()
        self.conn.close()

    def stop(self) -> None:
        """Asks an idle child to exit; kills it if it does not within a few seconds."""
        with contextlib.suppress(OSError, ValueError):
            self.conn.send(None)
        if self.exit_code(5.0) is None:
            self.kill()
        self.conn.close()


class Pool:
    """``jobs`` child processes running cells, each within ``timeout`` seconds (or no limit).

    Arguments:
        jobs: Number of children.
        start: How children start: ``fork``, ``spawn`` or ``exec`` (see the module docstring).
        threads: Torch threads per child (``None``: the child's default).
        timeout: Wall-time limit of one cell in seconds (task, fit and scoring), or ``None``.
    """

    def __init__(self, jobs: int, start: str, threads: int | None, timeout: float | None):
        self.jobs, self.start, self.threads, self.timeout = jobs, start, threads, timeout
        self.idle: list[Worker] = []

    def map(self, cells: Iterable[Cell], progress: Callable | None = None) -> Iterator:
        """Runs ``cells``, yielding their outcomes as they finish; ``progress(step, total,
        values)`` receives the running method's progress (with one child)."""
        pending, busy = deque(cells), {}
        try:
            while pending or busy:
                while pending and len(busy) < self.jobs:
                    worker = self.idle.pop() if self.idle else self._new(progress is not None)
                    cell = pending.popleft()
                    if worker.submit(cell):
                        busy[worker.conn] = worker
                    elif worker.ready:  # died while idle: the cell never started, retry it
                        worker.kill()
                        pending.appendleft(cell)
                    else:
                        yield _died(worker)
                yield from self._events(busy, progress)
        finally:  # interrupted (Ctrl-C) or abandoned: no child keeps running a cell
            for worker in busy.values():
                worker.kill()

    def _new(self, progress: bool) -> Worker:
        return Worker(self.start, self.threads, progress)

    def _events(self, busy: dict, progress: Callable | None) -> Iterator:
        if self.timeout is None:
            left = None
        else:
            first = min(worker.started for worker in busy.values())
            left = max(0.0, first + self.timeout - time.monotonic())
        for conn in wait(list(busy), timeout=left):
            worker = busy[conn]
            try:
                kind, payload = conn.recv()
            except (EOFError, OSError):  # the child died
                del busy[conn]
                yield _died(worker)
                continue
            if kind == "ready":  # the cell's clock starts now, not while the child imported
                worker.ready, worker.started = True, time.monotonic()
                continue
            if kind == "progress":
                if progress is not None:
                    progress(*payload)
                continue
            if kind == "failed":  # the child could not write the cell's rows; it serves on
                del busy[conn]
                outcome = _failed_in_child(worker, payload)
                self.idle.append(worker)
                yield outcome
                continue
            del busy[conn]
            worker.cell = None
            self.idle.append(worker)
            yield payload
        now = time.monotonic()
        for conn, worker in list(busy.items()):
            if self.timeout is not None and now - worker.started >= self.timeout:
                del busy[conn]
                worker.kill()
                yield _timed_out(worker.cell, self.timeout, now - worker.started)

    def close(self) -> None:
        """Stops the idle children (busy ones were killed when :meth:`map` ended)."""
        while self.idle:
            self.idle.pop().stop()


def _timed_out(cell: Cell, limit: float, elapsed: float):
    from .cell import failed

    message = (f"stopped after {elapsed:.0f} s: the cell's time limit is {limit:g} s "
               "(cell_timeout, --cell-timeout); its worker process was killed")  # fmt: skip
    return failed(cell, "timeout", message, wall_time_s=elapsed)


def _failed_in_child(worker: Worker, message: str):
    from .cell import failed

    cell, worker.cell = worker.cell, None
    if "unknown simulator" in message or "unknown method" in message:
        message += ("; worker processes know only what is registered on import of `simulators`, "
                    "`avo_bench.methods` or the main script's top level, not under `if __name__ "
                    "== '__main__':`, in a notebook or in a test: register it there, or run with "
                    "jobs=1")  # fmt: skip
    return failed(cell, "error", message, wall_time_s=time.monotonic() - worker.started)


def _died(worker: Worker):
    from .cell import failed

    code = worker.exit_code()
    worker.kill()  # what it started, too (and it, if it closed its pipe but lives on)
    how = f"exit code {code}"
    if code is not None and code < 0:
        with contextlib.suppress(ValueError):
            how = f"killed by {signal.Signals(-code).name}"
    if worker.ready:
        message = (f"the worker process running this cell died ({how}): a crash in native "
                   "code, os._exit or the out-of-memory killer; the grid went on")  # fmt: skip
    else:
        message = (f"the worker process failed to start ({how}; its error is printed above), "
                   "e.g. a script calling avo_bench.run without `if __name__ == '__main__':`")  # fmt: skip
    return failed(worker.cell, "error", message, wall_time_s=time.monotonic() - worker.started)


def _watch(parent: int) -> None:
    """Exits this child when the runner that started it is gone (even killed by SIGKILL)."""

    def check() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        if hasattr(os, "killpg") and os.getpgid(0) == os.getpid():  # its own group: the
            os.killpg(0, signal.SIGKILL)  # processes the method started go with it
        os._exit(1)

    threading.Thread(target=check, daemon=True, name="avo-bench-parent-watch").start()


def _forwarder(conn: Connection) -> Callable:
    last = [0.0]

    def forward(step: int, total: int, values: dict) -> None:
        now = time.monotonic()
        if step >= total or now - last[0] >= PROGRESS_EVERY:
            last[0] = now
            conn.send(("progress", (step, total, dict(values))))

    return forward


def pin_threads(threads: int) -> None:
    """Sets this worker process's torch threads and its BLAS/OpenMP pools (numpy's OpenBLAS,
    sklearn's OpenMP, through ``threadpoolctl``, a scikit-learn dependency) to ``threads``.

    For processes the suite owns: its workers and the test processes (a user's process running
    cells in-process keeps its settings). Torch alone is not
    enough: numpy's OpenBLAS starts one thread per core, and with every core busy its threads
    spin against each other. Measured 2026-12-02 on the 2 cores here, both busy: one sklearn
    ``MLPClassifier`` fit (sbibm's C2ST classifier, d = 10, 30 epochs) took 0.60 s wall with 1
    BLAS thread and 3.29 s with 2.
    """
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = str(threads)  # the pools of libraries this process loads later
    import numpy  # noqa: F401  (loads its BLAS, so that the limit below reaches it)
    import torch

    torch.set_num_threads(threads)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - scikit-learn depends on it
        return
    threadpool_limits(threads)


def _serve(conn: Connection, threads: int | None, parent: int, progress: bool) -> None:
    """A child's loop: receive a cell, run it, send its outcome; ``None`` or EOF ends it."""
    with contextlib.suppress(OSError):
        os.setsid()  # its own session: no terminal Ctrl-C; killpg reaches what a method starts
    _watch(parent)

    from .cell import failed
    from .executors import run_cell

    if threads is not None:
        pin_threads(threads)
    conn.send(("ready", None))
    while True:
        try:
            cell = conn.recv()
        except (EOFError, OSError):
            return
        if cell is None:
            return
        try:
            outcome = run_cell(cell, _forwarder(conn) if progress else None)
        except BaseException as error:  # KeyboardInterrupt here is the method's (own session)
            message = f"{type(error).__name__} raised inside the cell: {error}"
            try:
                outcome = failed(cell, "error", message)
            except Exception:  # e.g. a simulator this child does not know: the runner writes
                conn.send(("failed", message))  # the rows (it knows which scores the cell has)
                continue
        try:
            conn.send(("done", outcome))
        except Exception as error:  # e.g. a history the pickler refuses
            conn.send(("done", failed(cell, "error", f"cannot send the cell's outcome: {error}")))


def _exec(fd: int, threads: int | None, parent: int, progress: bool) -> None:
    """Entry point of an ``exec`` child (a fresh interpreter started by :class:`Worker`)."""
    conn = Connection(fd)
    multiprocessing.spawn.prepare(conn.recv())
    _serve(conn, threads, parent, progress)


_LOCAL = threading.local()


def run_in_child(cell: Cell, timeout: float, threads: int | None):
    """A Dask task: ``cell`` in a child of this worker (kept for the next task) within
    ``timeout`` seconds; its outcome, ``timeout`` or ``error`` rows as in :class:`Pool`."""
    pool = getattr(_LOCAL, "pool", None)
    if pool is None or pool.threads != threads:
        if pool is not None:
            pool.close()
        pool = _LOCAL.pool = Pool(1, "exec", threads, timeout)
    pool.timeout = timeout
    (outcome,) = pool.map([cell])
    return outcome
