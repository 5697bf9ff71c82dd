"""Scoring of one cell against its task: the table of every score the grid records.

:data:`SCORES` is the one table of scores. Each :class:`ScoreSpec` names its *space* and its
*metric* (a :data:`avo_bench.metrics.METRICS` function, which gives the direction and ideal
value), what it *needs* from the task (θ*, a reference posterior, ...), how its value is
computed from the returned samples and how its *floor* is computed: the same score for a
perfect answer at the same sample sizes (two independent draws of the reference: the exact
posterior where the task has one, else the true parameters). A floor is one random draw of a
perfect answer's score, not a lower bound: a perfect method scores below it about half of the
time. Scoring, the
rows, the report and the public :func:`avo_bench.score` all read this table; no score is named
anywhere else.

*Data space* (every task): the returned θ rows inside the prior support are pushed through the
simulator (these simulations are not counted against the budget), one simulation per row, and
the simulated features are compared with the observed ones on the same number of samples
(``n_obs``). This is the AVO/GAN objective :math:`\\rho(p_r(x), \\int p(x|\\theta) q(\\theta)
d\\theta)`, so every method is scored on one footing.

*Parameter space*: point tasks by the distance of the returned mean to θ*, measured on what the
data identify (``simulator.identified``: θ itself, or e.g. Weinberg's asymmetry c); tasks with an
exact posterior by W1, C2ST and the error of the mean against exact posterior draws.

References:
    Louppe, Hermans, Cranmer, "Adversarial Variational Optimization of Non-Differentiable
    Simulators", AISTATS 2019 (https://arxiv.org/abs/1707.07113).
    Lueckmann et al., "Benchmarking Simulation-Based Inference", AISTATS 2021
    (https://arxiv.org/abs/2101.04653).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import torch
from torch import Tensor

from simulators import Simulator

from . import calibration as cal
from . import metrics as m
from .seeding import derive_seed
from .tasks import Task

__all__ = [
    "NEEDS",
    "SCORES",
    "NotScored",
    "Score",
    "ScoreSpec",
    "Scored",
    "evaluate",
    "score",
    "score_plan",
]

NotScored = cal.NotScored


@dataclass(frozen=True)
class Need:
    """A requirement of a score: whether a task meets it, and the guess from the simulator
    alone (for the rows of a cell whose task could not be built)."""

    task: Callable[[Task], bool]
    simulator: Callable[[Simulator], bool]


NEEDS: dict[str, Need] = {
    "theta_star": Need(lambda t: t.theta_star is not None, lambda s: s.kind == "point"),
    "posterior": Need(lambda t: t.reference is not None, lambda s: s.provides("posterior")),
}


class Scored:
    """The returned samples of one cell, with what several scores share (computed once)."""

    def __init__(self, task: Task, theta: Tensor, seed: int, result=None):
        self.task, self.seed = task, seed
        self.theta = theta.detach().cpu().double()
        self.result = result  # the method's Result (its density or amortized sampler), if any
        self.artifacts: dict = {}  # arrays scores keep for the report's plots (e.g. levels)

    def generator(self, label: str) -> torch.Generator:
        """A generator for the cell's scores, seeded by ``label`` and the cell's seed."""
        return torch.Generator().manual_seed(derive_seed(label, self.seed))

    def task_seed(self, label: str) -> int:
        """A seed for floors: from the task only, so that every cell of it shares them."""
        return derive_seed(label, self.task.simulator.name, self.task.seed)

    def task_generator(self, label: str) -> torch.Generator:
        return torch.Generator().manual_seed(self.task_seed(label))

    @cached_property
    def inside(self) -> Tensor:
        return _inside(self.task.simulator, self.theta)

    @cached_property
    def predictive(self) -> Tensor:
        """Features ``(n_obs, k)`` of one simulation per returned θ inside the prior (rows
        resampled when fewer than ``n_obs``)."""
        theta = self.theta[self.inside].float()
        if not len(theta):
            raise ValueError(f"all {len(self.theta)} returned theta lie outside the prior support")
        n, g = self.task.n_obs, self.generator("score")
        rows = (torch.randperm(len(theta), generator=g)[:n] if len(theta) >= n
                else torch.randint(len(theta), (n,), generator=g))  # fmt: skip
        return self.task.features(self.task.simulator.simulate(theta[rows], generator=g))

    @cached_property
    def predictive_sample(self) -> Tensor:
        """Features of one simulation per row of :attr:`sample` inside the prior (sbibm's
        posterior predictive of a single observation)."""
        inside = self.sample[_inside(self.task.simulator, self.sample)].float()
        if not len(inside):
            raise ValueError(
                f"all {len(self.sample)} returned theta lie outside the prior support"
            )
        simulate = self.task.simulator.simulate
        return self.task.features(simulate(inside, generator=self.generator("predictive")))

    @cached_property
    def sample(self) -> Tensor:
        """At most ``n_param`` returned θ rows (a seeded subsample) for parameter space."""
        keep = min(len(self.theta), self.task.sizes.n_param)
        return self.theta[
            torch.randperm(len(self.theta), generator=self.generator("sample"))[:keep]
        ]

    @property
    def reference(self) -> Tensor:
        """``n_param`` exact posterior draws."""
        if self.task.reference is None:
            raise ValueError(f"{self.task.simulator.name}: no exact posterior")
        return self.task.reference[: self.task.sizes.n_param]

    def exact(self, size: int) -> Tensor:
        """``size`` exact posterior draws independent of the reference (for floors)."""
        n = self.task.sizes.n_param
        return self.task.reference[n : n + size] if size else self.reference[:0]

    @cached_property
    def observed(self) -> Tensor:
        return self.task.features(self.task.x_obs)

    @cached_property
    def again(self) -> Tensor:
        if self.task.again is None:
            raise ValueError("no independent observed set for the floor")
        return self.task.features(self.task.again)

    def star(self) -> Tensor:
        sim = self.task.simulator
        return sim.identified(self.task.theta_star[None])[0]


def _inside(simulator: Simulator, theta: Tensor) -> Tensor:
    low, high = simulator.prior.low.to(theta), simulator.prior.high.to(theta)
    return ((theta >= low) & (theta <= high)).all(dim=1)


def _exact_predictive(s: Scored) -> Tensor:
    """Features of one simulation per exact posterior draw (the median distance's floor); for a
    task without an exact posterior, simulations at θ* (a perfect point answer)."""
    if s.task.reference is None:
        if s.task.theta_star is None:
            raise ValueError("no exact posterior and no theta*: no perfect answer to simulate")
        draws = s.task.theta_star.float().expand(len(s.sample), -1)
    else:
        draws = s.exact(len(s.sample)).float()
    simulate = s.task.simulator.simulate
    return s.task.features(simulate(draws, generator=s.task_generator("predictive-floor")))


def _one_point(task: Task) -> str | None:
    if task.n_obs == 1:
        return ("n_obs = 1: a distance between distributions of a single observed point is "
                "not defined; see data median_distance")  # fmt: skip
    return None


def _iid_set(task: Task) -> str | None:
    if task.n_obs > 1:
        return f"n_obs = {task.n_obs}: an iid set is scored by W1 and JS of the predictive"
    return None


def _w1(a: Tensor, b: Tensor, g: torch.Generator) -> tuple[float, str]:
    return m.wasserstein1(a, b, generator=g), m.wasserstein1_path(len(a), len(b), a.shape[1])


@dataclass(frozen=True)
class ScoreSpec:
    """One score of the table.

    Attributes:
        space: ``data``, ``theta``, ``truth``, ``posterior`` or ``calibration``.
        metric: A key of :data:`avo_bench.metrics.METRICS` (function, direction, ideal).
        value: ``value(scored) -> float`` or ``(float, variant)`` (the W1 path, the C2ST
            variant: recorded in the row's ``variant``).
        floor: ``floor(scored) -> float``: the score of a perfect method at the same sample
            sizes, or ``None`` (no floor).
        needs: Keys of :data:`NEEDS` the task must meet, else the score is not recorded.
        headline: ``0``, or the preference order of the score in the report's headline, within
            data space and within parameter space (the report shows, per task, the first
            data-space and the first parameter-space score that has values).
        description: What the score compares.
        sense: ``(direction, ideal)`` for a score whose metric is not a two-sample
            :data:`~avo_bench.metrics.METRICS` function (else taken from there).
        undefined: ``undefined(task) -> str | None``: why the score means nothing for this task
            (the row is then ``n/a`` with that reason), else ``None``.
        sizes: ``sizes(scored) -> (sample_size, reference_size)``: the rows compared (recorded
            in the row; for data-space scores the first is the number of predictive
            simulations, which are evaluation and never count against the budget).
    """

    space: str
    metric: str
    value: Callable[[Scored], float | tuple[float, str]]
    floor: Callable[[Scored], float | tuple[float, str]] | None
    needs: tuple[str, ...] = ()
    headline: int = 0
    description: str = ""
    sense: tuple[str, float] | None = None
    undefined: Callable[[Task], str | None] | None = None
    sizes: Callable[[Scored], tuple[int, int]] | None = None

    def __post_init__(self):
        if self.sense is None and self.metric not in m.METRICS:
            raise ValueError(f"score {self.key}: unknown metric; metrics: {sorted(m.METRICS)}")
        unknown = sorted(set(self.needs) - set(NEEDS))
        if unknown:
            raise ValueError(f"score {self.key}: unknown needs {unknown}; needs: {list(NEEDS)}")

    @property
    def key(self) -> tuple[str, str]:
        return (self.space, self.metric)

    @property
    def direction(self) -> str:
        return self.sense[0] if self.sense else m.METRICS[self.metric].direction

    @property
    def ideal(self) -> float:
        return float(self.sense[1] if self.sense else m.METRICS[self.metric].ideal)


def _c2st(a: Tensor, b: Tensor, seed: int, variant: str) -> tuple[float, str]:
    # sbibm's order: the reference z-scores both
    return m.c2st(b, a, seed=seed % 2**31, variant=variant), variant


SCORES: tuple[ScoreSpec, ...] = (
    ScoreSpec(
        "data", "wasserstein1",
        lambda s: _w1(s.predictive, s.observed, s.generator("data-w1")),
        lambda s: _w1(_perfect_set(s), s.observed, s.task_generator("data-w1-floor")),
        headline=1, undefined=_one_point,
        description="W1 between the predictive and the observed set (n_obs samples each)",
    ),
    ScoreSpec(
        "data", "jensen_shannon",
        lambda s: m.jensen_shannon(s.predictive, s.observed, edges=s.task.edges),
        lambda s: m.jensen_shannon(_perfect_set(s), s.observed, edges=s.task.edges),
        undefined=_one_point,
        description="JS divergence (bits) of the predictive and the observed set on fixed bins",
    ),
    ScoreSpec(
        "data", "median_distance",
        lambda s: m.median_distance(s.predictive_sample, s.observed[0]),
        lambda s: m.median_distance(_exact_predictive(s), s.observed[0]),
        headline=2, undefined=_iid_set,
        sizes=lambda s: (len(s.sample), 1),
        description="median L2 distance of posterior-predictive simulations (one per returned "
        "theta, at most n_param) to the single observation (sbibm's MEDDIST); floor: the same "
        "for exact posterior draws (for simulations at theta* without an exact posterior)",
    ),
    ScoreSpec(
        "theta", "outside_prior",
        lambda s: m.outside_prior(s.theta, _box(s.task.simulator)),
        lambda s: 0.0,
        description="fraction of the returned theta outside the prior support",
        sense=("lower", 0.0),
    ),
    ScoreSpec(
        "truth", "distance_to_truth",
        lambda s: m.distance_to_truth(s.task.simulator.identified(s.theta), s.star()),
        lambda s: m.distance_to_truth(s.task.simulator.identified(s.reference), s.star()),
        needs=("theta_star",), headline=2,
        description="distance of the returned mean of identified(theta) to that of theta*; "
        "floor: the exact posterior's",
    ),
    ScoreSpec(
        "posterior", "wasserstein1",
        lambda s: _w1(s.sample, s.reference, s.generator("posterior-w1")),
        lambda s: _w1(s.exact(len(s.sample)), s.reference, s.task_generator("post-w1-floor")),
        needs=("posterior",),
        description="W1 between the returned theta and exact posterior draws",
    ),
    ScoreSpec(
        "posterior", "c2st",
        lambda s: _c2st(s.sample, s.reference, derive_seed("c2st", s.seed), s.task.sizes.c2st),
        lambda s: _c2st(s.exact(len(s.sample)), s.reference, s.task_seed("c2st-floor"),
                        s.task.sizes.c2st),
        needs=("posterior",), headline=1,
        description="classifier two-sample test of the returned theta against the exact posterior",
    ),
    ScoreSpec(
        "posterior", "mean_error",
        lambda s: m.mean_error(s.sample, s.reference),
        lambda s: m.mean_error(s.exact(len(s.sample)), s.reference),
        needs=("posterior",),
        description="error of the returned mean in exact-posterior standard deviations",
    ),
    ScoreSpec(
        "posterior", "max_abs_z",
        lambda s: m.max_abs_z(s.sample, s.reference),
        lambda s: m.max_abs_z(s.exact(len(s.sample)), s.reference),
        needs=("posterior",), sense=("lower", 0.0),
        description="largest |error of the returned mean| over parameters, in exact-posterior "
        "standard deviations (a z-score: still informative where C2ST saturates at 1)",
    ),
    ScoreSpec(
        "posterior", "log_sd_ratio",
        lambda s: m.log_sd_ratio(s.sample, s.reference),
        lambda s: m.log_sd_ratio(s.exact(len(s.sample)), s.reference),
        needs=("posterior",), sense=("nearest", 0.0),
        description="log(returned / exact posterior standard deviation) of the parameter where "
        "it is farthest from 0: < 0 too narrow (overconfident), > 0 too wide",
    ),
    ScoreSpec(
        "calibration", "truth_level", cal.truth_level, None, needs=("theta_star",),
        sense=("uniform", 0.5),
        description="credibility level of identified(theta*) in the returned distribution: the "
        "fraction of returned samples nearer their mean (Mahalanobis) than theta*; uniform over "
        "cells when calibrated (the report counts how often theta* is in the central regions)",
    ),
    ScoreSpec(
        "calibration", "posterior_coverage", cal.posterior_coverage,
        lambda s: cal.posterior_coverage(s, s.reference), needs=("posterior",),
        sense=("nearest", 0.0),
        description="signed area between the coverage curve of held-out exact posterior draws "
        "in the returned distribution's central regions and the diagonal (1/2 - mean level): "
        "< 0 overconfident, > 0 conservative",
    ),
    ScoreSpec(
        "calibration", "nltp", cal.nltp, cal.exact_nltp, needs=("theta_star",),
        sense=("lower", math.nan), sizes=lambda s: (1, 1),
        description="-log q(theta* | x_obs) under the method's normalized density (sbibm's NLTP; "
        "n/a for methods that return samples only); floor: the exact posterior's",
    ),
    ScoreSpec(
        "calibration", "expected_coverage", lambda s: cal.coverage_area(cal.amortized(s).levels),
        lambda s: cal.coverage_area(cal.uniform_ranks(s)[:, 0]), needs=("theta_star",),
        sense=("nearest", 0.0),
        sizes=lambda s: (cal.AMORTIZED_TESTS, cal.AMORTIZED_SAMPLES),
        description=f"amortized methods: signed area between the expected coverage curve over "
        f"{cal.AMORTIZED_TESTS} test simulations (prior draws, each an observed set of n_obs "
        "simulations, not counted in the budget) and the diagonal: < 0 overconfident",
    ),
    ScoreSpec(
        "calibration", "sbc_ks", lambda s: cal.sbc_ks(cal.amortized(s).ranks),
        lambda s: cal.sbc_ks(cal.uniform_ranks(s)), needs=("theta_star",),
        sense=("lower", 0.0),
        sizes=lambda s: (cal.AMORTIZED_TESTS, cal.AMORTIZED_SAMPLES),
        description="amortized methods: largest Kolmogorov-Smirnov distance from uniform of the "
        "SBC ranks over the same test simulations; floor: that of uniform ranks",
    ),
)  # fmt: skip


def _perfect_set(s: Scored) -> Tensor:
    """The data-space floors' set of ``n_obs`` features: the exact posterior's predictive (one
    simulation per exact posterior draw) where the task has an exact posterior, else a fresh
    observed set at θ*. A predictive is fitted to the observed set, so it is closer to it than
    a fresh set at θ* (by the noise of the observed set's mean): the exact posterior's
    predictive is the fair "perfect answer" of posterior methods."""
    task = s.task
    if task.reference is None:
        return s.again
    g = s.task_generator("perfect-set")
    draws = task.simulator.posterior(task.x_obs).sample((task.n_obs,), generator=g)
    draws = torch.as_tensor(draws).float().reshape(task.n_obs, task.simulator.theta_dim)
    return task.features(task.simulator.simulate(draws, generator=g))


def _box(simulator: Simulator) -> Tensor:
    return torch.stack([simulator.prior.low, simulator.prior.high])


@dataclass(frozen=True)
class Score:
    """One scored metric of a cell: ``status`` ``ok``, ``error`` (the computation failed,
    ``message`` says why) or ``n/a`` (undefined for this task, ``message`` says why)."""

    space: str
    metric: str
    value: float
    floor: float = math.nan
    variant: str = ""
    message: str = ""
    status: str = "ok"
    sample_size: int = 0
    reference_size: int = 0


def score_plan(task: Task | None = None, simulator: Simulator | None = None) -> list[ScoreSpec]:
    """The scores recorded for ``task`` (or, without one, those expected for ``simulator``)."""
    if task is not None:
        return [s for s in SCORES if all(NEEDS[n].task(task) for n in s.needs)]
    return [s for s in SCORES if all(NEEDS[n].simulator(simulator) for n in s.needs)]


def _guarded(compute: Callable[[], float | tuple[float, str]]) -> tuple[float, str, str, str]:
    """``(value, variant, "", "ok")``, or NaN, the reason the score is undefined (e.g. the C2ST
    of a point mass) and ``error`` (``n/a`` for :class:`NotScored`): one score failing does not
    void the cell's other scores."""
    try:
        out = compute()
    except NotScored as reason:
        return math.nan, "", str(reason), "n/a"
    except (ValueError, RuntimeError, ArithmeticError) as error:
        return math.nan, "", f"{type(error).__name__}: {error}", "error"
    value, path = out if isinstance(out, tuple) else (out, "")
    return float(value), path, "", "ok"


def _sizes(spec: ScoreSpec, scored: Scored) -> tuple[int, int]:
    if spec.sizes is not None:
        return spec.sizes(scored)
    n, task = len(scored.theta), scored.task
    return {
        "data": (task.n_obs, task.n_obs),
        "posterior": (min(n, task.sizes.n_param), task.sizes.n_param),
        "truth": (n, 1),
    }.get(spec.space, (n, 0))


def _floor(spec: ScoreSpec, scored: Scored, size: int) -> float:
    if spec.floor is None:
        return math.nan
    key = (*spec.key, size)
    cache = scored.task.cache
    if key not in cache:
        cache[key] = _guarded(lambda: spec.floor(scored))[0]
    return cache[key]


def score(task: Task, theta: Tensor, *, seed: int, result=None) -> list[Score]:
    """Scores returned samples ``theta`` of shape ``(n, d_theta)`` against ``task``.

    Arguments:
        task: The task (observed data, θ*, references).
        theta: Samples of the method's distribution over parameters.
        seed: All scoring randomness derives from it (the grid passes the cell seed).
        result: The method's :class:`~avo_bench.methods.Result`, for the scores that use its
            density (``nltp``) or amortized sampler; without it those are ``n/a``.

    Returns:
        One :class:`Score` per entry of :func:`score_plan`, in table order.
    """
    return evaluate(Scored(task, theta, seed, result))


def evaluate(scored: Scored) -> list[Score]:
    """:func:`score` on prepared samples (the cell reuses their predictive for its plots)."""
    scores = []
    for spec in score_plan(scored.task):
        size, reference = _sizes(spec, scored)
        reason = spec.undefined(scored.task) if spec.undefined else None
        if reason:
            scores.append(Score(*spec.key, math.nan, math.nan, "", reason, "n/a", size, reference))
            continue
        value, variant, message, status = _guarded(lambda spec=spec: spec.value(scored))
        floor = _floor(spec, scored, size)
        scores.append(Score(*spec.key, value, floor, variant, message, status, size, reference))
    return scores
