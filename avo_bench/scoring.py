"""Scoring of one cell: data space always, parameter space where the task knows the truth.

*Data space* (every task): the returned ``theta`` rows are pushed through the simulator (these
simulations are not counted against the budget), one simulation per row, and the simulated
``x`` is compared with ``x_obs`` on the same number of samples (``n_obs``) with Wasserstein-1
and Jensen-Shannon. This is the AVO/GAN objective :math:`\\rho(p_r(x), \\int p(x|\\theta)
q(\\theta) d\\theta)`, so every method is scored on one footing. Rows outside the prior support
are dropped before simulating; their fraction is reported as the ``outside_prior`` metric.

*Parameter space*: point tasks are scored by ``distance_to_truth``, measured on the simulator's
``identified(theta)`` (``theta`` itself, or what the data identify: for ``weinberg`` the
asymmetry ``c``, since (E_beam, G_f) are not identified); simulators with an exact
``posterior(x_obs)`` by W1, C2ST and the error of the mean against reference posterior draws.

Each metric carries its *floor*: the same metric between two independent draws of the
reference (the observed distribution, or the exact posterior) of the same sizes, i.e. the
finite-sample value of a perfect method. Floors and the JS bin edges are computed once per
(task, seed); the edges from a fixed-seed draw, so that runs of a task are comparable.

References:
    Louppe, Hermans, Cranmer, "Adversarial Variational Optimization of Non-Differentiable
    Simulators", AISTATS 2019 (https://arxiv.org/abs/1707.07113).
    Lueckmann et al., "Benchmarking Simulation-Based Inference", AISTATS 2021
    (https://arxiv.org/abs/2101.04653).
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from simulators import Simulator, get_simulator

from .config import derive_seed, seeded_globals

__all__ = ["Score", "Task", "features", "metric_plan", "score", "task"]

DATA = ("wasserstein1", "jensen_shannon")
POSTERIOR = ("wasserstein1", "c2st", "mean_error")
OUTSIDE = ("theta", "outside_prior")


@dataclass(frozen=True)
class Score:
    """One scored metric of a cell."""

    space: str
    metric: str
    value: float
    floor: float = math.nan
    w1_path: str = ""
    message: str = ""


@dataclass(frozen=True, eq=False)
class Task:
    """What scoring needs about one (simulator, seed): data, references, bins and floors.

    Attributes:
        simulator: The simulator.
        x_obs: Observed data ``(n_obs, *x_shape)`` on CPU (float32).
        edges: JS histogram edges of the data-space features.
        posterior: Exact posterior draws ``(2 n_param, d_theta)`` or ``None``.
        floors: ``(space, metric) -> floor`` for data space (param. space: by sample size).
    """

    simulator: Simulator
    x_obs: Tensor
    edges: object
    posterior: Tensor | None
    floors: dict


def _metrics():
    from avo_bench import metrics

    return metrics


def features(simulator: Simulator, x: Tensor) -> Tensor:
    """Per-sample data-space features ``(n, k)``: the simulator's ``features(x)`` if it defines
    one (e.g. Ising energy and magnetization), else ``x`` flattened."""
    hook = getattr(simulator, "features", None)
    flat = hook(x) if callable(hook) else x.reshape(x.shape[0], -1)
    return flat.reshape(flat.shape[0], -1).double()


def metric_plan(simulator: Simulator) -> list[tuple[str, str]]:
    """The ``(space, metric)`` pairs scored for ``simulator`` (known before any fit)."""
    plan = [("data", name) for name in DATA] + [OUTSIDE]
    if simulator.true_parameters is not None:
        plan.append(("truth", "distance_to_truth"))
    if callable(getattr(simulator, "posterior", None)):
        plan += [("posterior", name) for name in POSTERIOR]
    return plan


def _guarded(compute: Callable[[], float]) -> tuple[float, str]:
    """The metric's value and ``""``, or NaN and the reason it is undefined (e.g. C2ST of a
    point mass): one metric failing does not void the cell's other metrics."""
    try:
        return float(compute()), ""
    except (ValueError, RuntimeError, ArithmeticError) as error:
        return math.nan, f"{type(error).__name__}: {error}"


def _data_metrics(a: Tensor, b: Tensor, edges, seed: int) -> dict[str, tuple[float, str]]:
    m = _metrics()
    g = torch.Generator().manual_seed(seed)
    return {
        "wasserstein1": _guarded(lambda: m.wasserstein1(a, b, generator=g)),
        "jensen_shannon": _guarded(lambda: m.jensen_shannon(a, b, edges=edges)),
    }


def _posterior_metrics(theta: Tensor, reference: Tensor, seed: int) -> dict:
    m = _metrics()
    g = torch.Generator().manual_seed(seed)
    return {
        "wasserstein1": _guarded(lambda: m.wasserstein1(theta, reference, generator=g)),
        "c2st": _guarded(lambda: m.c2st(reference, theta, seed=seed % 2**31)),  # sbibm order
        "mean_error": _guarded(lambda: m.mean_error(theta, reference)),
    }


@functools.lru_cache(maxsize=16)
def _task(name: str, options_json: str, seed: int, n_param: int, n_edges: int) -> Task:
    simulator = get_simulator(name, **json.loads(options_json))
    observe = torch.Generator().manual_seed(derive_seed("observe", name, options_json, seed))
    x_obs = simulator.observe(generator=observe).float()
    again = simulator.observe(generator=observe).float()
    fixed = torch.Generator().manual_seed(derive_seed("edges", name, options_json))
    reference = simulator.observe(max(n_edges, simulator.n_obs), generator=fixed)
    edges = _metrics().histogram_edges(features(simulator, reference))
    floor_seed = derive_seed("floor", name, options_json, seed)
    a, b = features(simulator, x_obs), features(simulator, again)
    data = _data_metrics(a, b, edges, floor_seed)
    floors = {("data", k): v for k, (v, _) in data.items()} | {OUTSIDE: 0.0}
    posterior = None
    if callable(getattr(simulator, "posterior", None)):
        draws = torch.Generator().manual_seed(derive_seed("posterior", name, options_json, seed))
        exact = simulator.posterior(x_obs)
        posterior = exact.sample((2 * n_param,), generator=draws).double()
    if simulator.true_parameters is not None and posterior is not None:
        star = simulator.identified(simulator.true_parameters.double()[None])[0]
        floors[("truth", "distance_to_truth")] = float(
            _metrics().distance_to_truth(simulator.identified(posterior[:n_param]), star)
        )
    return Task(simulator, x_obs, edges, posterior, floors)


def task(name: str, options: dict, seed: int, scoring: dict) -> Task:
    """The (cached) :class:`Task` of simulator ``name`` with ``options`` for run seed ``seed``.

    The observed data depends only on (simulator, options, seed), so every method of a seed
    sees the same ``x_obs``.
    """
    options_json = json.dumps(options, sort_keys=True)
    with seeded_globals(derive_seed("task-globals", name, options_json, seed)):
        return _task(name, options_json, seed, scoring["n_param"], scoring["n_edges"])


@functools.lru_cache(maxsize=64)
def _posterior_floor(t: Task, m: int, n: int, seed: int) -> tuple[tuple[str, float], ...]:
    # m exact draws independent of the n reference draws: what a perfect method scores
    values = _posterior_metrics(t.posterior[n : n + m], t.posterior[:n], seed)
    return tuple((k, v) for k, (v, _) in values.items())


def _inside(simulator: Simulator, theta: Tensor) -> Tensor:
    low, high = simulator.prior.low.to(theta), simulator.prior.high.to(theta)
    return ((theta >= low) & (theta <= high)).all(dim=1)


def _predictive(t: Task, theta: Tensor, g: torch.Generator) -> Tensor:
    n = t.x_obs.shape[0]
    if theta.shape[0] >= n:
        rows = torch.randperm(theta.shape[0], generator=g)[:n]
    else:  # fewer rows than observations: resample q's empirical distribution
        rows = torch.randint(theta.shape[0], (n,), generator=g)
    return t.simulator.simulate(theta[rows], generator=g)


def score(t: Task, theta: Tensor, *, seed: int, n_param: int) -> tuple[list[Score], Tensor]:
    """Scores returned samples ``theta`` of shape ``(n, d_theta)`` against task ``t``.

    Arguments:
        t: The task (observed data, references, floors).
        theta: Samples of the method's distribution over parameters.
        seed: Cell seed; all scoring randomness derives from it.
        n_param: Largest number of ``theta`` rows used in parameter space.

    Returns:
        The scores in :func:`metric_plan` order, and the simulated predictive ``(n_obs, ...)``.
    """
    m = _metrics()
    theta = theta.detach().cpu().float()
    inside = _inside(t.simulator, theta)
    if not inside.any():
        raise ValueError(f"all {theta.shape[0]} returned theta lie outside the prior support")
    g = torch.Generator().manual_seed(derive_seed("score", seed))
    x_sim = _predictive(t, theta[inside], g)
    a, b = features(t.simulator, x_sim), features(t.simulator, t.x_obs)
    data = _data_metrics(a, b, t.edges, derive_seed("data-metrics", seed))
    path = m.wasserstein1_path(a.shape[0], b.shape[0], a.shape[1])
    scores = [Score("data", k, v, t.floors[("data", k)], path if k == "wasserstein1" else "", e)
              for k, (v, e) in data.items()]  # fmt: skip
    scores.append(Score(*OUTSIDE, 1.0 - float(inside.double().mean()), 0.0))
    if t.simulator.true_parameters is not None:
        sim = t.simulator
        star = sim.identified(sim.true_parameters.double()[None])[0]
        value, error = _guarded(lambda: m.distance_to_truth(sim.identified(theta.double()), star))
        floor = t.floors.get(("truth", "distance_to_truth"), math.nan)
        scores.append(Score("truth", "distance_to_truth", value, floor, message=error))
    if t.posterior is not None:
        keep = min(theta.shape[0], n_param)
        rows = torch.randperm(theta.shape[0], generator=g)[:keep]
        sample, reference = theta[rows].double(), t.posterior[:n_param]
        values = _posterior_metrics(sample, reference, derive_seed("posterior-metrics", seed))
        floors = dict(_posterior_floor(t, keep, n_param, derive_seed("posterior-floor", keep)))
        w1 = m.wasserstein1_path(keep, reference.shape[0], theta.shape[1])
        scores += [Score("posterior", k, v, floors[k], w1 if k == "wasserstein1" else "", e)
                   for k, (v, e) in values.items()]  # fmt: skip
    return scores, x_sim
