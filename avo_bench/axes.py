"""The number of observations as an axis of the grid (``--n-obs``, ``n_obs=[...]``).

How methods degrade or improve as iid observations accumulate is a question of its own (sbibm
issue #6): the grid can run every task with an ``n_obs`` option at several sizes, one cell per
(simulator, n_obs, method, seed, budget). The observed sets of different sizes *nest* (the first
10 of the 100-set are the 10-set; see :mod:`avo_bench.tasks`), and a cell's seed does not depend
on ``n_obs`` (common random numbers: a method draws the same training simulations at every
``n_obs``), so a line along the axis shows the method, not new data or new luck.

Valid values: integers from 1 to the simulator's largest scorable set
(:attr:`simulators.Simulator.max_n_obs`). A task whose observed data are a single observation
(no ``n_obs`` option, e.g. sbibm's tasks with their standard observations) accepts only 1.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping, Sequence

from simulators import SIMULATORS, get_simulator, simulator_options

__all__ = ["axis_tasks", "n_obs_options", "n_obs_values"]


def n_obs_values(values: object) -> tuple[int, ...]:
    """The validated ladder: distinct integers ``>= 1`` in the given order.

    Raises:
        ValueError: For a value that is not a positive integer, or an empty or non-list value.
    """
    listlike = isinstance(values, Iterable) and not isinstance(values, str | bytes | Mapping)
    if not listlike:
        raise ValueError(f"n_obs must be a list of integers >= 1, got {values!r}")
    ladder = []
    for value in values:
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"n_obs values must be integers >= 1, got {value!r}")
        ladder.append(int(value))
    if not ladder:
        raise ValueError("n_obs: give at least one value (an integer >= 1)")
    return tuple(dict.fromkeys(ladder))


def axis_tasks() -> list[str]:
    """The registered simulators with an ``n_obs`` axis (an ``n_obs`` option, drawn data)."""
    return sorted(name for name in SIMULATORS if _has_axis(name))


def _has_axis(name: str) -> bool:
    return "n_obs" in simulator_options(name) and not SIMULATORS[name].num_observations


def n_obs_options(
    name: str, options: Mapping, ladder: Sequence[int] | None, strict: bool = True
) -> list[dict]:
    """The simulator options of each cell along the axis.

    Arguments:
        name: Simulator name.
        options: Its options without the axis (validated).
        ladder: Validated ``n_obs`` values, or ``None`` (no axis: ``[options]``).
        strict: Values given by the user (``True``): a task without the axis or a value above
            its maximum is an error. A preset's ladder (``False``): a task without the axis
            runs its one observed set, and values above its maximum are dropped.

    Raises:
        ValueError: Naming the task and its valid values.
    """
    if ladder is None:
        return [dict(options)]
    if not _has_axis(name):
        if strict and tuple(ladder) != (1,):
            raise ValueError(
                f"n_obs {list(ladder)}: simulator {name!r} has a single observation (n_obs "
                f"fixed at 1), its only valid value is 1; the n_obs axis applies to "
                f"{', '.join(axis_tasks())}"
            )
        return [dict(options)]
    top = get_simulator(name, **{**options, "n_obs": 1}).max_n_obs
    above = [n for n in ladder if n > top]
    if above and strict:
        raise ValueError(
            f"n_obs {above[0]} is above the largest observed set of simulator {name!r} with "
            f"these options; valid values: 1..{top}"
        )
    return [{**options, "n_obs": n} for n in ladder if n <= top]
