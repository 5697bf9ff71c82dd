"""The run plan: presets, validation of every name and option, and the grid of cells.

A run is the grid simulators × methods × seeds × budgets. :func:`make_plan` validates every
name and option *before* anything runs and expands the grid into picklable :class:`Cell`
specifications; the registries are read, never a list of names.

A method may tune itself for a preset by defining a class attribute on its config dataclass,
``presets: ClassVar[dict[str, dict]] = {"paper": {"gamma": 5.0}}``; user overrides win.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch

from simulators import SIMULATORS, get_simulator, simulator_options

from .formats import jsonable
from .seeding import derive_seed

__all__ = ["PRESETS", "Cell", "Plan", "Preset", "make_plan", "method_config"]


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
    """

    budgets: tuple[int, ...]
    max_n_obs: int | None
    n_param: int
    n_edges: int
    description: str


PRESETS: dict[str, Preset] = {
    "tiny": Preset((300,), 200, 300, 2000, "smoke test: budget 300, n_obs <= 200 (seconds)"),
    "quick": Preset((10_000,), 1000, 1000, 10_000, "budget 10^4, n_obs <= 1000 (minutes)"),
    "paper": Preset(
        (1_000, 10_000, 100_000), None, 10_000, 20_000, "budgets 10^3/10^4/10^5 (sbibm, AVO)"
    ),
}


@dataclass(frozen=True)
class Cell:
    """One cell of the grid, everything a worker needs (picklable).

    Attributes:
        index: Position in the grid (rows are written in this order).
        simulator, method, seed, budget: The cell's coordinates.
        simulator_options: Full options of the simulator.
        method_config: Full method config as keyword arguments.
        device: Torch device name.
        scoring: Scoring sizes (``n_param``, ``n_edges``).
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

    @property
    def key(self) -> tuple[str, str, int, int]:
        return (self.simulator, self.method, self.seed, self.budget)

    @property
    def cell_seed(self) -> int:
        return derive_seed("cell", *self.key)


@dataclass(frozen=True)
class Plan:
    """A validated run: the grid and the identity that a results directory must match."""

    cells: tuple[Cell, ...]
    identity: dict = field(default_factory=dict)


def _names(kind: str, given: Sequence[str] | None, registry: Mapping) -> tuple[str, ...]:
    if given is None:
        return tuple(sorted(registry))
    if isinstance(given, str):
        given = [given]
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
    for name, values in overrides.items():
        if name not in registry:
            raise ValueError(
                f"options for unknown {kind} {name!r}; choose from: {', '.join(sorted(registry))}"
            )
        if not isinstance(values, Mapping):
            raise ValueError(f"options of {kind} {name!r} must be a table of key = value")


def _seeds(seeds: int | Sequence[int]) -> tuple[int, ...]:
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        if seeds < 1:
            raise ValueError(f"seeds: a count must be >= 1, got {seeds}")
        return tuple(range(seeds))
    values = tuple(dict.fromkeys(seeds))
    if not values or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in values):
        raise ValueError(f"seeds must be a count >= 1 or a list of integers >= 0, got {seeds!r}")
    return values


def _budgets(budgets: Sequence[int]) -> tuple[int, ...]:
    values = tuple(dict.fromkeys(budgets))
    for budget in values:
        if isinstance(budget, float) and budget.is_integer() and math.isfinite(budget):
            budget = int(budget)
        if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
            raise ValueError(f"budget must be an integer >= 1, got {budget!r}")
    if not values:
        raise ValueError("budgets: give at least one budget (an integer >= 1)")
    return tuple(int(b) for b in values)


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
    return jsonable(get_simulator(name, **options).options())


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
    seeds: int | Sequence[int] = 1,
    budgets: Sequence[int] | None = None,
    preset: str = "quick",
    device: str = "cpu",
    simulator_options: Mapping[str, Mapping] | None = None,
    method_options: Mapping[str, Mapping] | None = None,
) -> Plan:
    """Validates a run and expands it into cells (simulator-major order).

    Raises:
        ValueError: For an unknown simulator, method, preset, option or config key, a bad
            seed, budget or device; the message names the value and the valid choices.
    """
    from avo_bench.methods import METHODS

    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose from: {', '.join(PRESETS)}")
    chosen = PRESETS[preset]
    sim_names = _names("simulator", simulators, SIMULATORS)
    method_names = _names("method", methods, METHODS)
    sim_given, method_given = dict(simulator_options or {}), dict(method_options or {})
    _check_overrides("simulator", sim_given, SIMULATORS)
    _check_overrides("method", method_given, METHODS)
    sim_opts = {n: _simulator_options(n, sim_given.get(n, {}), chosen) for n in sim_names}
    configs = {n: method_config(n, method_given.get(n, {}), preset) for n in method_names}
    seed_list = _seeds(seeds)
    budget_list = _budgets(chosen.budgets if budgets is None else budgets)
    device = _device(device)
    scoring = {"n_param": chosen.n_param, "n_edges": chosen.n_edges}
    grid = [
        (s, m, seed, b) for s in sim_names for m in method_names for seed in seed_list
        for b in budget_list
    ]  # fmt: skip
    cells = tuple(
        Cell(i, s, m, seed, b, sim_opts[s], configs[m], device, scoring)
        for i, (s, m, seed, b) in enumerate(grid)
    )
    identity = jsonable(
        {
            "simulators": sim_opts,
            "methods": configs,
            "seeds": seed_list,
            "budgets": budget_list,
            "preset": preset,
            "device": device,
            "scoring": scoring,
        }
    )
    return Plan(cells, identity)
