"""Presets: the named grids (budgets, scoring sizes, default tasks, methods and seeds).

:data:`PRESETS` is read by :func:`avo_bench.plan.make_plan`, the CLI's ``--preset`` help and
:func:`avo_bench.task`; a method tunes itself for a preset through a ``presets`` class attribute
of its config dataclass (see :mod:`avo_bench.plan`).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PRESETS", "QUICK_METHODS", "QUICK_SIMULATORS", "SBIBM_TASKS", "Preset"]


@dataclass(frozen=True)
class Preset:
    """Budgets and scoring sizes of a named grid.

    Attributes:
        budgets: Simulation budgets of every cell.
        max_n_obs: Cap on a simulator's default ``n_obs`` (``None``: keep the default); an
            explicit ``n_obs`` option is never changed.
        n_param: Largest number of returned ``theta`` rows scored in parameter space.
        n_edges: Size of the fixed-seed observed draw that defines the JS histogram bins.
        description: One line for ``--help``.
        n_obs: The ``n_obs`` ladder of every task with an iid observed set when the run gives
            none (``None``: each task's own ``n_obs``); values above a task's largest set are
            dropped, and a task with a single observation runs it once.
        simulators, methods: The run's simulators and methods when it names none (``None``:
            every registered one).
        seeds: The run's number of seeds when it gives none.
        c2st: The parameter-space C2ST variant (:func:`avo_bench.metrics.c2st`).
        cell_timeout: Default wall-time limit of one cell in seconds (task, fit and scoring);
            a cell past it is stopped and recorded with status ``timeout``. Far above what any
            registered method needs at the preset's budgets (the reference ``paper`` grid's
            slowest fit took 72 s on 2 shared cores), it only stops a stalled cell.
    """

    budgets: tuple[int, ...]
    max_n_obs: int | None
    n_param: int
    n_edges: int
    description: str
    cell_timeout: float = 3600.0
    n_obs: tuple[int, ...] | None = None
    simulators: tuple[str, ...] | None = None
    methods: tuple[str, ...] | None = None
    seeds: int = 1
    c2st: str = "fast"


#: The default run's grid (``quick``): a Gaussian with an exact posterior, a crescent (sbibm's
#: two_moons), the physics point task of the AVO paper and a discrete iid task, with the methods
#: that finish in seconds at 10^3 simulations (the others: ``--methods``, or ``--preset paper``).
QUICK_SIMULATORS = ("gaussian", "two_moons", "weinberg", "poisson")
QUICK_METHODS = ("prior", "rejection_abc", "smc_abc", "npe", "avo")
#: sbibm's ten tasks (Lueckmann et al. 2021), in its order.
SBIBM_TASKS = ("gaussian_linear", "gaussian_linear_uniform", "slcp", "slcp_distractors",
               "bernoulli_glm", "bernoulli_glm_raw", "gaussian_mixture", "two_moons", "sir",
               "lotka_volterra")  # fmt: skip

PRESETS: dict[str, Preset] = {
    "tiny": Preset(
        (300,),
        200,
        300,
        2000,
        "smoke test: budget 300, n_obs <= 200 (seconds)",
        cell_timeout=600.0,
    ),
    "quick": Preset(
        (1_000,),
        1000,
        1000,
        10_000,
        "the default run: 4 tasks x 5 methods x 5 seeds at budget 10^3 (a few minutes)",
        cell_timeout=1800.0,
        simulators=QUICK_SIMULATORS,
        methods=QUICK_METHODS,
        seeds=5,
    ),
    "paper": Preset(
        (1_000, 10_000, 100_000),
        None,
        10_000,
        20_000,
        "budgets 10^3/10^4/10^5 (sbibm, AVO)",
        cell_timeout=7200.0,
    ),
    "iid": Preset(
        (10_000,),
        None,
        10_000,
        20_000,
        "budget 10^4 at n_obs 1/10/100/1000 (iid tasks: the n_obs axis)",
        cell_timeout=7200.0,
        n_obs=(1, 10, 100, 1000),
    ),
    "reference": Preset(
        (1_000,),
        1000,
        1000,
        10_000,
        "the committed reference grid: every registered simulator x method, 3 seeds, budget "
        "10^3, quick's sizes",
        cell_timeout=1800.0,
        seeds=3,
    ),
    "sbibm": Preset(
        (1_000, 10_000, 100_000),
        None,
        10_000,
        20_000,
        "sbibm's protocol: its ten tasks, observations 1-10, budgets 10^3/10^4/10^5, 10,000 "
        "samples, sbibm's C2ST",
        cell_timeout=7200.0,
        simulators=SBIBM_TASKS,
        seeds=10,
        c2st="sbibm",
    ),
}
