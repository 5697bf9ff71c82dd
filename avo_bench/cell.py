"""One cell of the grid: task, budgeted fit, scores, rows; never raises for a method's fault.

:func:`run_cell` is the unit of work every executor runs (in-process, process pool or Dask). It
walks straight down: build the cell's :class:`~avo_bench.tasks.Task` once (simulator, observed
data, θ*, reference posterior, score plan), :func:`avo_bench.fit` the method on it, score the
samples with :func:`avo_bench.scoring.score`, and turn the scores into tidy rows. A method that
raises becomes an ``error`` row with the message; ``NotApplicable`` (or a declared reason, or a
missing optional package) an ``n/a`` row; the grid goes on.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from simulators import get_simulator

from .api import fit
from .methods import NotApplicable, Result, get_method
from .plan import Cell
from .progress import progress_handler
from .scoring import SCORES, Score, Scored, evaluate, score_plan
from .seeding import derive_seed, seeded_globals
from .tasks import Sizes, Task, build_task

__all__ = ["FAILURES", "Outcome", "failed", "run_cell"]

KEEP = 2000  # rows of each array stored for the report's plots
#: What a cell's fit or scoring may raise and the grid survives: any exception, and SystemExit
#: (``sys.exit`` in a method ends the cell, not the run). KeyboardInterrupt is not one: in this
#: process it is the user's Ctrl-C and stops the run (see :mod:`avo_bench.workers` for cells
#: in worker processes).
FAILURES = (Exception, SystemExit)
SPECS = {spec.key: spec for spec in SCORES}


@dataclass
class Outcome:
    """What a cell produced: its rows and (for ``ok`` cells) arrays and history for plots."""

    cell: Cell
    rows: list[dict]
    arrays: dict = field(default_factory=dict)
    history: pd.DataFrame = field(default_factory=pd.DataFrame)


def _rows(cell: Cell, scores: list[Score], **common) -> list[dict]:
    base = {
        "simulator": cell.simulator,
        "method": cell.method,
        "seed": cell.seed,
        "budget": cell.budget,
        "n_obs": cell.n_obs,
        "device": cell.device,
        "cell_seed": cell.cell_seed,
        "config": json.dumps(cell.method_config, sort_keys=True, default=str),
        "simulator_options": json.dumps(cell.simulator_options, sort_keys=True),
        **common,
    }
    rows = []
    for s in scores:
        spec = SPECS[(s.space, s.metric)]
        rows.append({**base, "space": s.space, "metric": s.metric, "value": s.value,
                     "floor": s.floor, "direction": spec.direction, "ideal": spec.ideal,
                     "variant": s.variant, "sample_size": s.sample_size,
                     "reference_size": s.reference_size})  # fmt: skip
        if s.status != "ok":  # this score is undefined or failed here; the others stand
            rows[-1].update(status=s.status, message=s.message)
    return rows


def _empty(cell: Cell, task: Task | None, status: str, message: str, **cost) -> Outcome:
    if task is not None:
        plan = score_plan(task)
    else:  # the task itself failed: the scores its simulator would have
        plan = score_plan(simulator=get_simulator(cell.simulator, **cell.simulator_options))
    scores = [Score(*spec.key, math.nan) for spec in plan]
    cost = {"wall_time_s": math.nan, "num_simulations": 0, **cost}
    return Outcome(cell, _rows(cell, scores, status=status, message=message, **cost))


def failed(cell: Cell, status: str, message: str, **cost) -> Outcome:
    """The rows of a cell that produced none itself (``timeout``, or ``error`` when its worker
    process died): every score of the cell's simulator, NaN, with ``status`` and ``message``."""
    return _empty(cell, None, status, message, **cost)


def _arrays(scored: Scored, result: Result) -> dict:
    task = scored.task
    arrays = {
        "theta": result.theta[:KEEP].detach().cpu().double().numpy(),
        "x_obs": scored.observed[:KEEP].numpy(),
        "parameter_names": np.array(task.simulator.parameter_names),
    }
    try:
        arrays["x_sim"] = scored.predictive[:KEEP].numpy()
    except ValueError:  # nothing inside the prior to simulate (scored as an error already)
        pass
    if task.theta_star is not None:
        arrays["theta_star"] = task.theta_star.numpy()
    if task.reference is not None:
        arrays["posterior"] = task.reference[:KEEP].numpy()
    arrays.update(scored.artifacts)  # what scores keep for the plots (calibration levels)
    return arrays


def run_cell(cell: Cell, progress: Callable | None = None) -> Outcome:
    """Runs one cell: task, budgeted fit, scores (see :mod:`avo_bench.scoring`).

    Arguments:
        cell: The cell specification.
        progress: Optional ``handler(step, total, values)`` for the method's progress.

    Returns:
        The cell's :class:`Outcome`; status ``ok``, ``n/a`` or ``error``.
    """
    task = None
    try:
        sizes = Sizes(**cell.scoring)
        task = build_task(cell.simulator, cell.simulator_options, cell.seed, sizes)
        method = get_method(cell.method)
        if not method.available():
            hint = f"needs {method.requires}: {method.install_hint}".strip()
            return _empty(cell, task, "n/a", hint)
        generator = torch.Generator(cell.device).manual_seed(cell.cell_seed)
        with progress_handler(progress):
            result = fit(method, task.simulator, task.x_obs, budget=cell.budget,
                         generator=generator, device=cell.device, **cell.method_config)  # fmt: skip
    except NotApplicable as error:
        return _empty(cell, task, "n/a", str(error))
    except FAILURES as error:  # the cell fails, not the grid
        return _empty(cell, task, "error", f"{type(error).__name__}: {error}")
    cost = {"wall_time_s": result.wall_time_s, "num_simulations": result.num_simulations}
    try:
        with seeded_globals(derive_seed("score-globals", cell.cell_seed)):
            scored = Scored(task, result.theta, cell.cell_seed, result)
            scores = evaluate(scored)
            arrays = _arrays(scored, result)
    except FAILURES as error:
        message = f"scoring failed: {type(error).__name__}: {error}"
        return _empty(cell, task, "error", message, **cost)
    rows = _rows(cell, scores, status="ok", message="", **cost)
    return Outcome(cell, rows, arrays, result.history)
