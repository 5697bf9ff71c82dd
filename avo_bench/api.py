"""The public way to fit one method and score its samples, exactly as a grid cell does.

::

    import avo_bench

    task = avo_bench.task("gaussian", seed=0)             # observed data, theta*, references
    result = avo_bench.fit("rejection_abc", task.simulator, task.x_obs, budget=10_000, seed=0)
    scores = avo_bench.score(task, result.theta)           # the grid's tidy score rows

:func:`fit` is the only way the runner, the scripts, the benchmarks, the examples and the tests
run a method: the registry wraps the simulator in the budget-counting view, hands the method a
copy of ``x_obs`` and fills ``Result.num_simulations`` from the count.
"""

from __future__ import annotations

import copy
from typing import Any

import pandas as pd
import torch
from torch import Tensor

from simulators import Simulator, get_simulator

from .methods import Method, Result, get_method
from .plan import PRESETS
from .scoring import SCORES
from .scoring import score as _score
from .seeding import derive_seed, seeded_globals
from .tasks import Sizes, Task, build_task, make_task

__all__ = ["fit", "score", "task"]

SCORE_COLUMNS = ["space", "metric", "value", "floor", "direction", "ideal", "variant",
                 "sample_size", "reference_size", "status", "message"]  # fmt: skip


def _simulator(simulator: str | Simulator, options: dict | None = None) -> Simulator:
    if isinstance(simulator, Simulator):
        if options:
            raise ValueError("simulator options apply to a simulator name, not an instance")
        return simulator
    if isinstance(simulator, str):
        return get_simulator(simulator, **(options or {}))
    raise ValueError(f"simulator must be a name or a Simulator, got {type(simulator).__name__}")


def _method(method: str | Method) -> Method:
    if isinstance(method, Method):
        return method
    if isinstance(method, str):
        return get_method(method)
    raise ValueError(f"method must be a name or a Method, got {type(method).__name__}")


def _sizes(preset: str) -> Sizes:
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose from: {', '.join(PRESETS)}")
    chosen = PRESETS[preset]
    return Sizes(chosen.n_param, chosen.n_edges, chosen.c2st)


def fit(
    method: str | Method,
    simulator: str | Simulator,
    x_obs: Tensor,
    *,
    budget: int,
    seed: int = 0,
    generator: torch.Generator | None = None,
    device: str | torch.device = "cpu",
    preset: str | None = None,
    **config: Any,
) -> Result:
    """Fits ``method`` to ``x_obs`` on ``simulator`` under a simulation budget.

    Arguments:
        method: A registered method's name, or a :class:`~avo_bench.methods.Method`.
        simulator: A registered simulator's name (default options) or an instance.
        x_obs: Observed data ``(n_obs, *x_shape)``.
        budget: Simulation budget; every simulation the method runs counts.
        seed: Seeds the method's generator (ignored when ``generator`` is given).
        generator: The method's only source of randomness, on ``device``.
        device: Torch device of the fit.
        preset: Apply the method's tuning for this preset (its config's ``presets``) first.
        **config: Config keys of the method (e.g. ``gamma=5.0`` for ``avo``).

    Returns:
        The :class:`~avo_bench.methods.Result`, with ``num_simulations`` (the counted
        simulations) and ``wall_time_s`` set by the registry.

    Raises:
        ValueError: For an unknown name, config key or value, a bad budget or ``x_obs``.
        NotApplicable: If the method does not apply to the simulator (with the reason).
    """
    chosen, sim = _method(method), _simulator(simulator)
    if preset is not None:
        _sizes(preset)  # validates the name
    if not chosen.available():
        raise ValueError(f"method {chosen.name!r} needs {chosen.requires}: {chosen.install_hint}")
    tuned = getattr(chosen.config, "presets", {}).get(preset, {}) if preset else {}
    # a copy: a method that mutates a list in its config cannot change the caller's (the grid's)
    made = chosen.make_config(**copy.deepcopy({**tuned, **config}))
    device = torch.device(device)
    if generator is None:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
        generator = torch.Generator(device).manual_seed(seed)
    if not isinstance(x_obs, Tensor):
        raise ValueError(f"x_obs must be a torch.Tensor, got {type(x_obs).__name__}")
    with seeded_globals(derive_seed("fit-globals", generator.initial_seed())):
        return chosen.run(sim, x_obs, budget=budget, config=made, generator=generator,
                          device=device)  # fmt: skip


def task(
    simulator: str | Simulator, *, seed: int = 0, preset: str = "quick", **options: Any
) -> Task:
    """The grid's task for ``simulator`` and run seed ``seed``: the same observed data, θ*,
    reference posterior draws, bins and floors a grid cell of that seed uses.

    Arguments:
        simulator: A registered simulator's name, or an instance (its options are used).
        seed: The run seed (standard-observation tasks: observation ``seed + 1``).
        preset: Scoring sizes of this preset (``n_param`` reference draws, bins).
        **options: Simulator options (with a name).
    """
    sim = _simulator(simulator, options)
    sim.check_n_obs()
    return build_task(sim.name, sim.options(), seed, _sizes(preset))


def score(
    task_or_simulator: Task | str | Simulator,
    theta: Tensor,
    *,
    x_obs: Tensor | None = None,
    theta_star: Tensor | None = None,
    seed: int = 0,
    preset: str = "quick",
    result: Result | None = None,
) -> pd.DataFrame:
    """Scores samples ``theta`` ``(n, d_theta)`` exactly as a grid cell does.

    Give either a :class:`Task` (from :func:`task`; the grid cell's scores when ``seed`` is
    the cell's ``cell_seed``), or a simulator and ``x_obs`` (any observed set; ``theta_star``
    if known enables the distance to θ* and the data-space floors). Pass the method's
    :class:`~avo_bench.methods.Result` as ``result`` for the scores that need its density
    (``nltp``) or amortized sampler (expected coverage, SBC); without it they are ``n/a``.

    Returns:
        One row per score of :data:`avo_bench.scoring.SCORES` that applies: ``space``,
        ``metric``, ``value``, ``floor``, ``direction``, ``ideal``, ``variant`` (the W1 path or
        C2ST variant), ``sample_size`` and ``reference_size`` (the rows compared), ``status``
        (``ok``, ``n/a`` where the score means nothing for this task, ``error`` where it
        failed) and ``message`` (why).
    """
    if isinstance(task_or_simulator, Task):
        if x_obs is not None or theta_star is not None:
            raise ValueError("give x_obs and theta_star with a simulator, not with a Task")
        t = task_or_simulator
    else:
        if x_obs is None:
            raise ValueError("score(simulator, theta) needs x_obs= (or pass a Task)")
        sim = _simulator(task_or_simulator)
        t = make_task(sim, x_obs, theta_star=theta_star, seed=seed, sizes=_sizes(preset))
    if not isinstance(theta, Tensor) or theta.ndim != 2 or theta.shape[1] != t.simulator.theta_dim:
        raise ValueError(
            f"theta must be a tensor of shape (n, {t.simulator.theta_dim}), got "
            f"{tuple(theta.shape) if isinstance(theta, Tensor) else type(theta).__name__}"
        )
    with seeded_globals(derive_seed("score-globals", seed)):
        scores = _score(t, theta, seed=seed, result=result)
    return score_rows(scores)


def score_rows(scores: list) -> pd.DataFrame:
    """Scores as tidy rows (direction and ideal from the score table)."""
    specs = {spec.key: spec for spec in SCORES}
    rows = []
    for s in scores:
        spec = specs[(s.space, s.metric)]
        rows.append({"space": s.space, "metric": s.metric, "value": s.value, "floor": s.floor,
                     "direction": spec.direction, "ideal": spec.ideal, "variant": s.variant,
                     "sample_size": s.sample_size, "reference_size": s.reference_size,
                     "status": s.status, "message": s.message})  # fmt: skip
    return pd.DataFrame(rows, columns=SCORE_COLUMNS)
