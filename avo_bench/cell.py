"""One cell of the grid: observe, fit under a budget, score; never raises for a method's fault.

:func:`run_cell` is the unit of work every executor runs (in-process, process pool or Dask);
it takes a picklable :class:`~avo_bench.config.Cell` and returns an :class:`Outcome` with the
cell's tidy rows and the small arrays the report plots. A method that raises becomes an
``error`` row with the message, ``NotApplicable`` (or a declared reason, or a missing optional
package) an ``n/a`` row; the grid goes on.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from simulators import get_simulator

from .config import Cell, derive_seed, seeded_globals
from .methods import CountingSimulator, NotApplicable, Result, get_method
from .progress import progress_handler
from .scoring import Score, features, metric_plan, score, task

__all__ = ["Outcome", "run_cell"]

KEEP = 2000  # rows of each array stored for the report's plots


@dataclass
class Outcome:
    """What a cell produced: its rows and (for ``ok`` cells) arrays and history for plots."""

    cell: Cell
    rows: list[dict]
    arrays: dict = field(default_factory=dict)
    history: pd.DataFrame = field(default_factory=pd.DataFrame)


def _describe(space: str, metric: str) -> tuple[str, float]:
    if (space, metric) == ("theta", "outside_prior"):
        return "lower", 0.0
    from avo_bench.metrics import METRICS

    spec = METRICS.get(metric)
    return (spec.direction, float(spec.ideal)) if spec else ("", math.nan)


def _rows(cell: Cell, scores: list[Score], **common) -> list[dict]:
    base = {
        "simulator": cell.simulator,
        "method": cell.method,
        "seed": cell.seed,
        "budget": cell.budget,
        "device": cell.device,
        "cell_seed": cell.cell_seed,
        "config": json.dumps(cell.method_config, sort_keys=True, default=str),
        "simulator_options": json.dumps(cell.simulator_options, sort_keys=True),
        **common,
    }
    rows = []
    for s in scores:
        direction, ideal = _describe(s.space, s.metric)
        rows.append({**base, "space": s.space, "metric": s.metric, "value": s.value,
                     "floor": s.floor, "direction": direction, "ideal": ideal,
                     "w1_path": s.w1_path})  # fmt: skip
        if s.message:  # this metric is undefined for the returned samples; the others stand
            rows[-1].update(status="error", message=s.message)
    return rows


def _empty(cell: Cell, status: str, message: str, **cost) -> Outcome:
    simulator = get_simulator(cell.simulator, **cell.simulator_options)
    scores = [Score(space, metric, math.nan) for space, metric in metric_plan(simulator)]
    cost = {"wall_time_s": math.nan, "num_simulations": 0, **cost}
    return Outcome(cell, _rows(cell, scores, status=status, message=message, **cost))


def _fit(cell: Cell, simulator, x_obs: torch.Tensor, progress) -> tuple[Result, int, float]:
    method = get_method(cell.method)
    device = torch.device(cell.device)
    counting = CountingSimulator(simulator, cell.budget)
    generator = torch.Generator(device).manual_seed(cell.cell_seed)
    with seeded_globals(cell.cell_seed), progress_handler(progress):
        start = time.perf_counter()
        result = method.fit(counting, x_obs.to(device), budget=cell.budget,
                            config=method.make_config(**cell.method_config),
                            generator=generator, device=device)  # fmt: skip
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        wall = time.perf_counter() - start
    if not isinstance(result, Result):
        raise TypeError(f"fit returned {type(result).__name__}, expected Result")
    return result, counting.num_simulations, wall


def _arrays(t, result: Result, x_sim: torch.Tensor) -> dict:
    sim = t.simulator
    arrays = {
        "theta": result.theta[:KEEP].detach().cpu().double().numpy(),
        "x_sim": features(sim, x_sim[:KEEP]).numpy(),
        "x_obs": features(sim, t.x_obs[:KEEP]).numpy(),
        "parameter_names": np.array(sim.parameter_names),
    }
    if sim.true_parameters is not None:
        arrays["theta_star"] = sim.true_parameters.double().numpy()
    if t.posterior is not None:
        arrays["posterior"] = t.posterior[:KEEP].numpy()
    return arrays


def run_cell(cell: Cell, progress: Callable | None = None) -> Outcome:
    """Runs one cell: observed data, budgeted fit, scores (see :mod:`avo_bench.scoring`).

    Arguments:
        cell: The cell specification.
        progress: Optional ``handler(step, total, values)`` for the method's progress.

    Returns:
        The cell's :class:`Outcome`; status ``ok``, ``n/a`` or ``error``.
    """
    method = get_method(cell.method)
    if not method.available():
        return _empty(cell, "n/a", f"needs {method.requires}: {method.install_hint}".strip())
    try:
        t = task(cell.simulator, cell.simulator_options, cell.seed, cell.scoring)
        reason = method.applicable(t.simulator)
        if reason:
            return _empty(cell, "n/a", reason)
        result, used, wall = _fit(cell, t.simulator, t.x_obs, progress)
    except NotApplicable as error:
        return _empty(cell, "n/a", str(error))
    except Exception as error:  # the cell fails, not the grid
        return _empty(cell, "error", f"{type(error).__name__}: {error}")
    cost = {"wall_time_s": wall, "num_simulations": used}
    try:
        with seeded_globals(derive_seed("score-globals", cell.cell_seed)):
            n_param = cell.scoring["n_param"]
            scores, x_sim = score(t, result.theta, seed=cell.cell_seed, n_param=n_param)
    except Exception as error:
        return _empty(cell, "error", f"scoring failed: {type(error).__name__}: {error}", **cost)
    rows = _rows(cell, scores, status="ok", message="", **cost)
    return Outcome(cell, rows, _arrays(t, result, x_sim), result.history)
