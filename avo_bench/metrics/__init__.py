"""Metrics that score a cell: pure functions of two sample sets, returning floats.

Every metric takes ``(a, b, *, ...)`` where ``a`` and ``b`` are torch tensors (any device) or
numpy arrays of shape ``(n, d)`` (or ``(n,)`` for d = 1), computes on ``a``'s device, never
modifies its inputs and never touches global random state: where a metric draws random
numbers, they come from a generator or seed argument with a fixed default. Bad input (empty,
NaN/inf, mismatched dimensions) raises a ``ValueError`` that names it.

:data:`METRICS` is the registry the runner reads: each :class:`Metric` says whether lower or
higher is better and the ideal value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .classifier import C2ST_VARIANTS, c2st
from .histograms import histogram_edges, jensen_shannon
from .mmd import median_heuristic, mmd2
from .parameters import (
    distance_to_truth,
    log_sd_ratio,
    max_abs_z,
    mean_error,
    median_distance,
    outside_prior,
)
from .wasserstein import W1Estimate, wasserstein1, wasserstein1_estimate, wasserstein1_path

__all__ = [
    "C2ST_VARIANTS",
    "METRICS",
    "Metric",
    "W1Estimate",
    "c2st",
    "distance_to_truth",
    "histogram_edges",
    "jensen_shannon",
    "log_sd_ratio",
    "max_abs_z",
    "mean_error",
    "median_distance",
    "median_heuristic",
    "mmd2",
    "outside_prior",
    "wasserstein1",
    "wasserstein1_estimate",
    "wasserstein1_path",
]


@dataclass(frozen=True)
class Metric:
    """A registered metric.

    Attributes:
        name: Key in :data:`METRICS` and the ``metric`` column of result rows.
        fn: ``fn(a, b, **options) -> float``.
        direction: ``"lower"`` or ``"higher"``: which values are better.
        ideal: The value of a perfect method (for two samples of one distribution, up to the
            finite-sample floor).
        description: What ``a`` and ``b`` are and what the value means.
    """

    name: str
    fn: Callable[..., float]
    direction: str
    ideal: float
    description: str

    def __post_init__(self):
        if self.direction not in ("lower", "higher"):
            raise ValueError(
                f"Metric {self.name!r}: direction must be 'lower' or 'higher', "
                f"got {self.direction!r}"
            )


METRICS: dict[str, Metric] = {
    metric.name: metric
    for metric in (
        Metric(
            "wasserstein1",
            wasserstein1,
            "lower",
            0.0,
            "Wasserstein-1 between two sample sets (path: wasserstein1_path)",
        ),
        Metric(
            "jensen_shannon",
            jensen_shannon,
            "lower",
            0.0,
            "Jensen-Shannon divergence in bits on fixed bins (needs edges=histogram_edges(ref));"
            " report the floor jensen_shannon(ref1, ref2) alongside",
        ),
        Metric(
            "c2st",
            c2st,
            "lower",
            0.5,
            "classifier two-sample test accuracy, 0.5 = indistinguishable (below 0.5 is noise);"
            " a's statistics z-score both sets, so sbibm passes the reference as a;"
            " variant='fast'|'sbibm'",
        ),
        Metric(
            "mmd2", mmd2, "lower", 0.0, "unbiased MMD² with a Gaussian kernel (median heuristic)"
        ),
        Metric(
            "mean_error",
            mean_error,
            "lower",
            0.0,
            "error of the mean of a (theta samples) in standard deviations of b (reference samples)",
        ),
        Metric(
            "median_distance",
            median_distance,
            "lower",
            0.0,
            "median L2 distance of a (predictive simulations) to b = one observation (sbibm's "
            "MEDDIST)",
        ),
        Metric(
            "distance_to_truth",
            distance_to_truth,
            "lower",
            0.0,
            "Euclidean distance of the mean of a (theta samples) to b = theta*",
        ),
    )
}
