"""The task of a cell: simulator, observed data, θ*, reference posterior draws, bins and floors.

A :class:`Task` is built once per (simulator, options, seed) and shared by every method of that
seed (methods receive copies, see :meth:`avo_bench.methods.Method.run`). It holds everything
scoring needs, so that a cell walks straight: task, fit, score, rows.

**Observed data.** For a task with standard observations (``simulator.num_observations > 0``,
e.g. sbibm's ten), the run seed ``k`` selects observation ``k + 1`` and its own θ*. Otherwise
θ* is ``simulator.true_parameters`` and the observed set is drawn in blocks of
:data:`BLOCK` rows, block ``i`` from a generator seeded by (simulator, options other than
``n_obs``, seed, ``i``): sets of different ``n_obs`` *nest* (the first 10 of 100 are the
10-set), so an axis over ``n_obs`` shows the method, not a new data set.

**References.** A second, independent observed set of the same size (the data-space floors:
what a perfect method scores), and where ``simulator.provides("posterior")``, ``2 n_param``
exact posterior draws: the first ``n_param`` are the reference, the rest give the
parameter-space floors.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass, field

import torch
from torch import Tensor

from simulators import Simulator, get_simulator

from .seeding import derive_seed, seeded_globals

__all__ = ["BLOCK", "Sizes", "Task", "build_task", "make_task"]

BLOCK = 256  # rows per independently seeded block of observed data (nesting in n_obs)


@dataclass(frozen=True)
class Sizes:
    """Scoring sample sizes (from the run's preset).

    Attributes:
        n_param: Largest number of returned θ rows scored in parameter space, and the number
            of exact posterior draws they are compared with.
        n_edges: Size of the fixed-seed observed draw that defines the JS histogram bins.
        c2st: The C2ST variant of the parameter-space scores (``"fast"`` or ``"sbibm"``,
            see :func:`avo_bench.metrics.c2st`).
    """

    n_param: int = 1000
    n_edges: int = 10_000
    c2st: str = "fast"


@dataclass(frozen=True, eq=False)
class Task:
    """Everything scoring needs about one (simulator, options, seed).

    Attributes:
        simulator: The simulator (the runner's; methods see a counting view of it).
        seed: The run seed (for standard-observation tasks, observation ``seed + 1``).
        x_obs: Observed data ``(n_obs, *x_shape)``, CPU, float32.
        theta_star: θ* ``(d_theta,)`` float64, or ``None`` (population tasks, or unknown).
        again: An independent observed set like ``x_obs`` (data-space floors), or ``None``.
        reference: Exact posterior draws ``(2 n_param, d_theta)`` float64, or ``None``.
        edges: JS histogram edges of the data-space features.
        sizes: The scoring sizes.
        cache: Floors computed so far, keyed by (space, metric, size).
    """

    simulator: Simulator
    seed: int
    x_obs: Tensor
    theta_star: Tensor | None
    again: Tensor | None
    reference: Tensor | None
    edges: object
    sizes: Sizes
    cache: dict = field(default_factory=dict)

    @property
    def n_obs(self) -> int:
        return int(self.x_obs.shape[0])

    def features(self, x: Tensor) -> Tensor:
        """Per-sample data-space features ``(n, k)`` in float64 (the simulator's hook)."""
        flat = self.simulator.features(x)
        return flat.reshape(flat.shape[0], -1).double()


def _identity(name: str, options: dict) -> str:
    # The observed data do not depend on n_obs except through how many rows are kept.
    return json.dumps({k: v for k, v in options.items() if k != "n_obs"}, sort_keys=True)


def draw_observed(simulator: Simulator, n: int, stream: str, seed: int) -> Tensor:
    """``n`` observed rows in seeded blocks of :data:`BLOCK` (nested in ``n``), float32."""
    identity = _identity(simulator.name, simulator.options())
    blocks = []
    for i in range(math.ceil(n / BLOCK)):
        g = torch.Generator().manual_seed(derive_seed(stream, simulator.name, identity, seed, i))
        blocks.append(simulator.observe(BLOCK, generator=g).float())
    return torch.cat(blocks)[:n]


def _edges(simulator: Simulator, star: Tensor | None, sizes: Sizes) -> object:
    """JS bin edges from a fixed-seed draw of ``max(n_edges, n_obs)`` rows at θ* (from
    ``observe`` when θ* is unknown, e.g. population tasks), the same for every method."""
    from .metrics import histogram_edges

    n = max(sizes.n_edges, simulator.n_obs)
    identity = _identity(simulator.name, simulator.options())
    g = torch.Generator().manual_seed(derive_seed("edges", simulator.name, identity))
    if star is None:
        reference = simulator.observe(n, generator=g)
    else:
        rows = star.float().expand(n, simulator.theta_dim).contiguous()
        reference = simulator.simulate(rows, generator=g)
    flat = simulator.features(reference)
    return histogram_edges(flat.reshape(flat.shape[0], -1).double())


def _reference(simulator: Simulator, x_obs: Tensor, n_param: int, seed: int) -> Tensor | None:
    if not simulator.provides("posterior"):
        return None
    identity = _identity(simulator.name, simulator.options())
    g = torch.Generator().manual_seed(derive_seed("posterior", simulator.name, identity, seed))
    draws = simulator.posterior(x_obs).sample((2 * n_param,), generator=g)
    draws = torch.as_tensor(draws).double().reshape(2 * n_param, simulator.theta_dim)
    if not torch.isfinite(draws).all():
        raise ValueError(f"{simulator.name}: the reference posterior returned NaN or inf")
    return draws


def make_task(
    simulator: Simulator,
    x_obs: Tensor,
    *,
    theta_star: Tensor | None = None,
    seed: int = 0,
    sizes: Sizes = Sizes(),
    again: Tensor | None = None,
) -> Task:
    """A task from explicit pieces: any observed set, with or without θ*.

    Arguments:
        simulator: The simulator.
        x_obs: Observed data ``(n_obs, *x_shape)``.
        theta_star: θ* if known: enables the distance to θ* and, when ``again`` is not given,
            the data-space floors (a second set simulated at θ*).
        seed: Seeds the reference draws and the second set.
        sizes: Scoring sample sizes.
        again: An independent observed set for the data-space floors (optional).
    """
    x_obs = torch.as_tensor(x_obs).detach().cpu().float()
    star = None if theta_star is None else torch.as_tensor(theta_star).detach().cpu().double()
    if star is not None:
        star = star.reshape(simulator.theta_dim)
        if again is None:
            g = torch.Generator().manual_seed(derive_seed("again", simulator.name, seed))
            rows = star.float().expand(len(x_obs), simulator.theta_dim).contiguous()
            again = simulator.simulate(rows, generator=g).float()
    with seeded_globals(derive_seed("task-globals", simulator.name, seed)):
        reference = _reference(simulator, x_obs, sizes.n_param, seed)
        edges = _edges(simulator, star, sizes)
    return Task(simulator, seed, x_obs, star, again, reference, edges, sizes)


@functools.lru_cache(maxsize=16)
def _cached(name: str, options_json: str, seed: int, sizes: Sizes) -> Task:
    simulator = get_simulator(name, **json.loads(options_json))
    if simulator.num_observations:
        theta_star, x_obs = simulator.observation(seed + 1)
        return make_task(simulator, x_obs, theta_star=theta_star, seed=seed, sizes=sizes)
    x_obs = draw_observed(simulator, simulator.n_obs, "observe", seed)
    again = draw_observed(simulator, simulator.n_obs, "again", seed)
    star = simulator.true_parameters
    return make_task(simulator, x_obs, theta_star=star, seed=seed, sizes=sizes, again=again)


def build_task(name: str, options: dict, seed: int, sizes: Sizes = Sizes()) -> Task:
    """The grid's task of simulator ``name`` with ``options`` for run seed ``seed`` (cached).

    Raises:
        ValueError: For an unknown simulator, option or observation number.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    return _cached(name, json.dumps(options, sort_keys=True), seed, sizes)
