"""Progress reporting from inside long fits, without coupling methods to a display.

Methods call :func:`report_progress` every few iterations; it does nothing unless a caller (the
runner) has installed a handler with :func:`progress_handler`. The handler lives in a context
variable, so concurrent runs in threads or processes do not interfere.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["progress_handler", "report_progress"]

Handler = Callable[[int, int, dict[str, float]], None]

_handler: ContextVar[Handler | None] = ContextVar("avo_bench_progress", default=None)


def report_progress(step: int, total: int, **values: float) -> None:
    """Reports that ``step`` of ``total`` iterations are done, with current ``values``."""
    handler = _handler.get()
    if handler is not None:
        handler(step, total, values)


@contextmanager
def progress_handler(handler: Handler | None) -> Iterator[None]:
    """Installs ``handler(step, total, values)`` for the duration of the ``with`` block."""
    token = _handler.set(handler)
    try:
        yield
    finally:
        _handler.reset(token)
