"""The run plan: validation of every name and option, and the grid of cells (presets:
:mod:`avo_bench.presets`).

A run is the grid simulators × methods × seeds × budgets (× ``n_obs``, the number of
observations, for tasks with an iid observed set: :mod:`avo_bench.axes`). :func:`make_plan`
validates every name and option *before* anything runs and expands the grid into picklable :class:`Cell`
specifications; the registries are read, never a list of names.

A method may tune itself for a preset by defining a class attribute on its config dataclass,
``presets: ClassVar[dict[str, dict]] = {"paper": {"gamma": 5.0}}``; user overrides win.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import torch

from simulators import SIMULATORS, get_simulator, simulator_options

from .axes import n_obs_options, n_obs_values
from .formats import jsonable
from .presets import PRESETS, Preset
from .seeding import derive_seed

__all__ = ["PRESETS", "Cell", "Plan", "Preset", "make_plan", "method_config"]


@dataclass(frozen=True)
class Cell:
    """One cell of the grid, everything a worker needs (picklable).

    Attributes:
        index: Position in the grid (rows are written in this order).
        simulator, method, seed, budget: The cell's coordinates.
        simulator_options: Full options of the simulator (with the cell's ``n_obs``).
        method_config: Full method config as keyword arguments.
        device: Torch device name.
        scoring: Scoring sizes (``n_param``, ``n_edges``, and ``c2st`` if not ``"fast"``).
        n_obs: The cell's number of observations (a coordinate of the ``n_obs`` axis).
    """

    index: int
    simulator: str
    method: str
    seed: int
    budget: int
    simulator_options: dict
    method_config: dict
    device: str
    scoring: dict
    n_obs: int = 1

    @property
    def key(self) -> tuple[str, str, int, int, int]:
        """The cell's coordinates, in the order of :data:`avo_bench.results.CELL_KEY`."""
        return (self.simulator, self.method, self.seed, self.budget, self.n_obs)

    @property
    def cell_seed(self) -> int:
        """The seed of the cell's method and scores; the same at every ``n_obs`` (common
        random numbers along the axis, and the seeds of runs from before it)."""
        return derive_seed("cell", self.simulator, self.method, self.seed, self.budget)


@dataclass(frozen=True)
class Plan:
    """A validated run: the grid and the identity that a results directory must match."""

    cells: tuple[Cell, ...]
    identity: dict = field(default_factory=dict)


MAX_SEED = 2**63 - 1  # seeds and budgets are stored as int64 in the results table


def _names(kind: str, given: Sequence[str] | None, registry: Mapping) -> tuple[str, ...]:
    if given is None:
        return tuple(sorted(registry))
    if isinstance(given, str):
        given = [given]
    if not _listlike(given):
        raise ValueError(f"{kind}s must be a list of names, got {given!r}")
    names = tuple(dict.fromkeys(given))
    if not names:
        raise ValueError(f"no {kind}s selected; choose from: {', '.join(sorted(registry))}")
    for name in names:
        if name not in registry:
            raise ValueError(
                f"unknown {kind} {name!r}; choose from: {', '.join(sorted(registry))}"
            )
    return names


def _check_overrides(kind: str, overrides: Mapping, registry: Mapping) -> None:
    if not isinstance(overrides, Mapping):
        raise ValueError(f"{kind}_options must be a table {{{kind}: {{key: value}}}}, got "
                         f"{overrides!r}")  # fmt: skip
    for name, values in overrides.items():
        if name not in registry:
            raise ValueError(
                f"options for unknown {kind} {name!r}; choose from: {', '.join(sorted(registry))}"
            )
        if not isinstance(values, Mapping):
            raise ValueError(f"options of {kind} {name!r} must be a table of key = value")


def _listlike(value: object) -> bool:
    """A list, tuple, range, set or array of values (not a string, mapping or scalar)."""
    return isinstance(value, Iterable) and not isinstance(value, str | bytes | Mapping)


def _integer(value: object) -> int | None:
    """``value`` as an ``int`` if it is an integer (numpy's too, not ``bool``), else ``None``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        return None
    return int(value)


def _seeds(seeds: int | Sequence[int]) -> tuple[int, ...]:
    count = _integer(seeds)
    if count is not None:
        if count < 1:
            raise ValueError(f"seeds: a count must be >= 1, got {seeds}")
        if count > 10**6:
            raise ValueError(f"seeds: a count must be <= {10**6}, got {seeds}")
        return tuple(range(count))
    message = (f"seeds must be a count >= 1 or a list of integers in 0..2**63-1, got {seeds!r} "
               "(e.g. seeds=3 for 0, 1, 2 or seeds=[5])")  # fmt: skip
    if not _listlike(seeds):
        raise ValueError(message)
    values = tuple(dict.fromkeys(_integer(s) for s in seeds))
    if not values or any(s is None or not 0 <= s <= MAX_SEED for s in values):
        raise ValueError(message)
    return values


def _budgets(budgets: Sequence[int]) -> tuple[int, ...]:
    if not _listlike(budgets):
        raise ValueError(
            f"budgets must be a list of integers >= 1, got {budgets!r} (one budget: [{budgets!r}])"
        )
    values = []
    for budget in budgets:
        if isinstance(budget, float) and budget.is_integer() and math.isfinite(budget):
            budget = int(budget)
        value = _integer(budget)
        if value is None or not 1 <= value <= MAX_SEED:
            raise ValueError(f"budget must be an integer >= 1, got {budget!r}")
        values.append(value)
    if not values:
        raise ValueError("budgets: give at least one budget (an integer >= 1)")
    return tuple(dict.fromkeys(values))


def _check_observations(names: Sequence[str], seeds: Sequence[int]) -> None:
    """Tasks with standard observations: run seed ``k`` is observation ``k + 1``."""
    for name in names:
        count = SIMULATORS[name].num_observations
        if count and max(seeds) >= count:
            raise ValueError(
                f"seed {max(seeds)}: simulator {name!r} has {count} standard observations, so "
                f"its seeds are 0..{count - 1} (seed k is observation k + 1)"
            )


def _unused(kind: str, given: Mapping, names: Sequence[str], check) -> None:
    """Options for entries not in the run: validated (a typo is an error), then ignored with a
    warning (one config file may serve several runs)."""
    unused = sorted(set(given) - set(names))
    for name in unused:
        check(name, given[name])
    if unused:
        warnings.warn(f"options for {kind}s not in this run are ignored: {', '.join(unused)}",
                      UserWarning, stacklevel=3)  # fmt: skip


def _device(device: str) -> str:
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be 'cpu' or 'cuda[:N]', got {device!r}") from None
    if parsed.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda[:N]', got {device!r}")
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available")
    return str(parsed)


def _simulator_options(name: str, given: Mapping, preset: Preset) -> dict:
    options = dict(given)
    defaults = simulator_options(name)
    cap = preset.max_n_obs
    default_n = defaults.get("n_obs")
    if cap is not None and "n_obs" not in options and isinstance(default_n, int):
        options["n_obs"] = min(default_n, cap)
    simulator = get_simulator(name, **options)
    simulator.check_n_obs()
    return jsonable(simulator.options())


def method_config(name: str, given: Mapping, preset_name: str | None) -> dict:
    """The full config of method ``name`` as keyword arguments: the preset's tuning (a
    ``presets`` class attribute of its config), then ``given``; validated."""
    from avo_bench.methods import get_method

    method = get_method(name)
    tuned = dict(getattr(method.config, "presets", {}).get(preset_name, {}))
    config = method.make_config(**{**tuned, **dict(given)})
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}


def make_plan(
    simulators: Sequence[str] | None = None,
    methods: Sequence[str] | None = None,
    *,
    seeds: int | Sequence[int] | None = None,
    budgets: Sequence[int] | None = None,
    preset: str = "quick",
    device: str = "cpu",
    simulator_options: Mapping[str, Mapping] | None = None,
    method_options: Mapping[str, Mapping] | None = None,
    n_obs: Sequence[int] | None = None,
    c2st: str | None = None,
    order: str = "simulators",
) -> Plan:
    """Validates a run and expands it into cells (simulator-major, then ``n_obs``).

    ``order="methods"`` runs the cells method-major instead (every cell of the first method,
    then of the next, simulator-major within each): the order changes which cells finish first
    (e.g. the cheap methods of an extended grid before an expensive one), never a cell's seed,
    data, result or ``index`` (rows are written simulator-major either way), so a run
    directory may be resumed in either order.

    ``n_obs`` (default: the preset's ladder, if any) runs every task with an iid observed set
    at each of these numbers of observations (:func:`avo_bench.axes.n_obs_options`).
    ``c2st`` (default: the preset's) is the parameter-space C2ST variant, ``"fast"`` or
    ``"sbibm"`` (:func:`avo_bench.metrics.c2st`): e.g. the ``sbibm`` preset with the fast
    variant standing in where sbibm's classifier costs too much.

    Raises:
        ValueError: For an unknown simulator, method, preset, option or config key, a bad
            seed, budget, ``n_obs`` or device; the message names the value and the valid
            choices.
    """
    from avo_bench.methods import METHODS

    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose from: {', '.join(PRESETS)}")
    chosen = PRESETS[preset]
    sim_names = _names("simulator", chosen.simulators if simulators is None else simulators,
                       SIMULATORS)  # fmt: skip
    method_names = _names("method", _preset_methods(chosen, METHODS) if methods is None
                          else methods, METHODS)  # fmt: skip
    sim_given, method_given = simulator_options or {}, method_options or {}
    _check_overrides("simulator", sim_given, SIMULATORS)
    _check_overrides("method", method_given, METHODS)
    sim_opts = {n: _simulator_options(n, sim_given.get(n, {}), chosen) for n in sim_names}
    configs = {n: method_config(n, method_given.get(n, {}), preset) for n in method_names}
    _unused("simulator", sim_given, sim_names, lambda n, v: _simulator_options(n, v, chosen))
    _unused("method", method_given, method_names, lambda n, v: method_config(n, v, preset))
    seed_list = _seeds(chosen.seeds if seeds is None else seeds)
    _check_observations(sim_names, seed_list)
    budget_list = _budgets(chosen.budgets if budgets is None else budgets)
    device = _device(device)
    scoring = {"n_param": chosen.n_param, "n_edges": chosen.n_edges}
    variant = _c2st_variant(chosen.c2st if c2st is None else c2st)
    if variant != "fast":  # (absent: the default, as in run directories from before)
        scoring["c2st"] = variant
    ladder = n_obs_values(n_obs) if n_obs is not None else chosen.n_obs
    axis = {s: _axis(s, sim_opts[s], ladder, strict=n_obs is not None) for s in sim_names}
    grid = [
        (s, opts, n, m, seed, b) for s in sim_names for opts, n in axis[s]
        for m in method_names for seed in seed_list for b in budget_list
    ]  # fmt: skip
    cells = tuple(
        Cell(i, s, m, seed, b, opts, configs[m], device, scoring, n)
        for i, (s, opts, n, m, seed, b) in enumerate(grid)
    )
    if _order(order) == "methods":  # runs in this order; rows keep the simulator-major index
        cells = tuple(sorted(cells, key=lambda cell: method_names.index(cell.method)))
    identity = jsonable(
        {
            "simulators": sim_opts,
            "methods": configs,
            "seeds": seed_list,
            "budgets": budget_list,
            "preset": preset,
            "device": device,
            "scoring": scoring,
            **({"n_obs": list(ladder)} if ladder is not None else {}),
        }
    )
    return Plan(cells, identity)


#: Cell orders of a run (:func:`make_plan`'s ``order``).
ORDERS = ("simulators", "methods")


def _order(order: object) -> str:
    if order not in ORDERS:
        raise ValueError(f"unknown order {order!r}; choose from: {', '.join(ORDERS)}")
    return order


def _c2st_variant(variant: object) -> str:
    from avo_bench.metrics import C2ST_VARIANTS

    if variant not in C2ST_VARIANTS:
        raise ValueError(f"unknown c2st variant {variant!r}; choose from: "
                         f"{', '.join(C2ST_VARIANTS)}")  # fmt: skip
    return variant


def _preset_methods(preset: Preset, registry: Mapping) -> tuple[str, ...] | None:
    """The preset's methods that are registered (a method of an optional extra that is not
    installed is left out), or ``None`` for every registered one."""
    if preset.methods is None:
        return None
    return tuple(name for name in preset.methods if name in registry)


def _axis(name: str, options: dict, ladder, strict: bool) -> list[tuple[dict, int]]:
    """``(options, n_obs)`` of each cell of simulator ``name`` along the ``n_obs`` axis."""
    cells = []
    for opts in n_obs_options(name, options, ladder, strict):
        simulator = get_simulator(name, **opts)
        simulator.check_n_obs()
        cells.append((jsonable(simulator.options()), simulator.n_obs))
    return cells
