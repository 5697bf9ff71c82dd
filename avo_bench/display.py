"""Progress bars for the grid and for long fits (tqdm if installed, else a minimal bar).

Bars go to stderr and are disabled under ``quiet`` or when stderr is not a terminal, so logs
and pipes stay clean.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["Bars"]


class _Plain:
    """A minimal one-line bar on stderr (used when tqdm is not installed)."""

    def __init__(self, total: int, desc: str, initial: int = 0, position: int = 0, **_: Any):
        self.total, self.n, self.desc, self.note = total, initial, desc, ""
        self.position = position

    def update(self, n: int = 1) -> None:
        self.n += n
        self._draw()

    def set_description_str(self, text: str) -> None:
        self.desc = text
        self._draw()

    def set_postfix_str(self, text: str) -> None:
        self.note = text
        self._draw()

    def reset(self, total: int) -> None:
        self.total, self.n = total, 0

    def _draw(self) -> None:
        if self.position:  # the inner bar only annotates the outer line
            return
        done = int(20 * self.n / max(self.total, 1))
        line = f"\r{self.desc} [{'#' * done}{' ' * (20 - done)}] {self.n}/{self.total} {self.note}"
        sys.stderr.write(line[:120].ljust(120))
        sys.stderr.flush()

    def close(self) -> None:
        if not self.position:
            sys.stderr.write("\n")


def _bar(**kwargs: Any):
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _Plain(**kwargs)
    return tqdm(file=sys.stderr, dynamic_ncols=True, leave=kwargs.pop("position", 0) == 0,
                **kwargs)  # fmt: skip


class Bars:
    """A grid bar and (in-process) a per-fit bar fed by :func:`avo_bench.progress`.

    Arguments:
        total: Number of cells in the grid.
        done: Cells already finished (resumed).
        enabled: ``False`` for no output at all.
    """

    def __init__(self, total: int, done: int = 0, enabled: bool = True):
        self.enabled = enabled and sys.stderr.isatty()
        self.grid = _bar(total=total, initial=done, desc="grid") if self.enabled else None
        self.fit = None

    def start(self, label: str) -> None:
        if self.grid is not None:
            self.grid.set_description_str(label)

    def advance(self, label: str) -> None:
        if self.grid is not None:
            self.grid.set_description_str(label)
            self.grid.update(1)

    def handler(self, step: int, total: int, values: dict[str, float]) -> None:
        """Per-method progress: ``step`` of ``total`` iterations and current losses."""
        if not self.enabled:
            return
        if self.fit is None:
            self.fit = _bar(total=total, desc="fit", position=1)
        if self.fit.total != total:
            self.fit.reset(total=total)
        self.fit.update(step - self.fit.n)
        self.fit.set_postfix_str(", ".join(f"{k}={v:.4g}" for k, v in values.items()))

    def end_fit(self) -> None:
        if self.fit is not None:
            self.fit.close()
            self.fit = None

    def close(self) -> None:
        self.end_fit()
        if self.grid is not None:
            self.grid.close()
