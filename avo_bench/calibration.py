r"""Calibration of returned distributions: credibility levels, SBC ranks, amortized checks.

Accuracy scores (C2ST, W1) cannot tell an overconfident posterior from a conservative one
(Hermans et al. 2022); calibration can. Every check here is sample based, so it applies to
every method, with or without a density:

- :func:`credibility_level` of a point :math:`\theta` in samples of :math:`q`: the fraction of
  the samples nearer to their mean than :math:`\theta` in the Mahalanobis distance of their
  covariance, i.e. the level of the smallest *central ellipsoidal* region of :math:`q` that
  contains :math:`\theta`. If :math:`\theta \sim q`, the level is uniform on :math:`[0, 1]`
  (up to the :math:`O(1/n)` effect of estimating the mean and covariance from the samples);
  the coverage of the central :math:`\alpha`-region is the fraction of levels
  :math:`\le \alpha` (:func:`avo_bench.stats.coverage_curve`). Unlike sbi's highest-density
  coverage, it needs no density; for a multimodal :math:`q` the ellipsoid is not the
  highest-density region, but the test stays valid (any fixed region family is).
- :func:`coverage_area`: the signed area between the coverage curve and the diagonal,
  :math:`\int_0^1 (C(\alpha) - \alpha)\, d\alpha = 1/2 - \overline{\mathrm{level}}`:
  negative for an overconfident (too narrow) distribution, positive for a conservative one.
- :func:`sbc_ranks` and :func:`sbc_ks`: simulation-based calibration (Talts et al. 2018): the
  normalized rank of each coordinate of :math:`\theta_i \sim p(\theta)` among posterior samples
  at :math:`x_i \sim p(x \mid \theta_i)` is uniform for every coordinate when the posterior is
  right on average; the score is the largest Kolmogorov-Smirnov distance from uniform over
  the coordinates (sbi's ``check_sbc`` tests the same ranks).
- :func:`amortized_check`: the test simulations of an amortized posterior (``Result.sample_at``):
  :math:`\theta_i` from the prior, one observed set of ``n_set`` simulations each, posterior
  samples at every set. These simulations are evaluation, not counted in the method's budget.

References:
    Hermans et al., "A Trust Crisis in Simulation-Based Inference? Your Posterior
    Approximations Can Be Unfaithful", TMLR 2022 (https://arxiv.org/abs/2110.06581).
    Talts et al., "Validating Bayesian Inference Algorithms with Simulation-Based
    Calibration", 2018 (https://arxiv.org/abs/1804.06788).
    Lemos et al., "Sampling-Based Accuracy Testing of Posterior Estimators for General
    Inference", ICML 2023 (https://arxiv.org/abs/2302.03026).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from scipy import stats
from torch import Tensor

__all__ = [
    "AMORTIZED_SAMPLES",
    "AMORTIZED_TESTS",
    "AmortizedCheck",
    "NotScored",
    "amortized_check",
    "coverage_area",
    "credibility_level",
    "sbc_ks",
    "sbc_ranks",
]

ROWS_PER_CALL = 2**15  # simulator rows per call of the amortized check (bounds memory)


def credibility_level(samples: Tensor, points: Tensor) -> Tensor:
    """Level of the smallest central ellipsoidal region of ``samples`` containing each point.

    Arguments:
        samples: ``(n, d)`` samples of one distribution, or ``(n, b, d)``: ``b`` distributions.
        points: ``(m, d)`` points to place in the single distribution, or ``(b, d)``: one
            point per distribution.

    Returns:
        Levels in ``[0, 1]``: shape ``(m,)``, or ``(b,)``. Ties count half; a point at the
        samples' mean has level 0, one beyond every sample level 1.
    """
    samples, points = samples.double(), points.double().to(samples.device)
    single = samples.ndim == 2
    if single:
        samples = samples[:, None, :]
    if samples.ndim != 3 or points.shape[-1] != samples.shape[-1]:
        raise ValueError(
            f"samples must be (n, d) or (n, b, d) and points (m, d) or (b, d) with the same d, "
            f"got {tuple(samples.shape)} and {tuple(points.shape)}"
        )
    n, _, d = samples.shape
    mean = samples.mean(dim=0)  # (b, d)
    centred = samples - mean
    cov = torch.einsum("nbi,nbj->bij", centred, centred) / max(n - 1, 1)
    scale = cov.diagonal(dim1=1, dim2=2).mean(dim=1).clamp_min(1e-300)
    cov = cov + 1e-9 * scale[:, None, None] * torch.eye(d, dtype=cov.dtype, device=cov.device)
    chol = torch.linalg.cholesky(cov)  # (b, d, d)
    own = _mahalanobis(chol, centred.transpose(0, 1))  # (b, n)
    if single:
        other = _mahalanobis(chol, (points - mean)[None])[0]  # (m,)
        return _fraction_below(own[0][None, :], other[:, None])
    other = _mahalanobis(chol, (points - mean)[:, None, :])[:, 0]  # (b,)
    return _fraction_below(own, other[:, None])


def _mahalanobis(chol: Tensor, centred: Tensor) -> Tensor:
    """Squared Mahalanobis norms ``(b, k)`` of ``centred`` ``(b, k, d)`` for ``chol`` ``(b, d, d)``."""
    solved = torch.linalg.solve_triangular(chol, centred.transpose(1, 2), upper=False)
    return solved.square().sum(dim=1)


def _fraction_below(reference: Tensor, values: Tensor) -> Tensor:
    below = (reference < values).double().mean(dim=-1)
    return below + 0.5 * (reference == values).double().mean(dim=-1)


def coverage_area(levels: Tensor | np.ndarray) -> float:
    """Signed area between the coverage curve of ``levels`` and the diagonal: ``1/2 - mean``.

    Negative: overconfident (the truth falls outside the central regions too often);
    positive: conservative; 0: calibrated on average.
    """
    levels = torch.as_tensor(levels, dtype=torch.float64)
    if not len(levels):
        raise ValueError("coverage_area needs at least one level")
    return float(0.5 - levels.mean())


def sbc_ranks(samples: Tensor, theta: Tensor) -> Tensor:
    """Normalized SBC ranks ``(b, d)``: the fraction of the ``(n, b, d)`` samples below each
    coordinate of ``theta`` ``(b, d)`` (ties count half)."""
    theta = theta.to(samples)[None]
    return (samples < theta).double().mean(dim=0) + 0.5 * (samples == theta).double().mean(0)


def sbc_ks(ranks: Tensor | np.ndarray) -> float:
    """Largest Kolmogorov-Smirnov distance of the ranks ``(b, d)`` from uniform over coordinates."""
    ranks = np.asarray(torch.as_tensor(ranks, dtype=torch.float64).cpu())
    if ranks.ndim != 2 or not len(ranks):
        raise ValueError(f"ranks must have shape (b >= 1, d), got {ranks.shape}")
    return float(stats.ks_1samp(ranks, stats.uniform.cdf, axis=0).statistic.max())


@dataclass(frozen=True)
class AmortizedCheck:
    """The test simulations of an amortized posterior and what they give.

    Attributes:
        levels: ``(b,)`` credibility level of each test θ in its posterior samples.
        ranks: ``(b, d)`` normalized SBC ranks.
        num_test_simulations: Simulations run for the test sets (not in the budget).
    """

    levels: Tensor
    ranks: Tensor
    num_test_simulations: int


def amortized_check(
    simulator,
    sample_at: Callable[[Tensor, int, torch.Generator], Tensor],
    *,
    n_set: int,
    num_tests: int,
    num_samples: int,
    generator: torch.Generator,
) -> AmortizedCheck:
    """Expected coverage and SBC of an amortized posterior over ``num_tests`` prior draws.

    Arguments:
        simulator: The (uncounted) simulator.
        sample_at: ``sample_at(x, n, generator)``: ``n`` posterior samples ``(n, b, d)`` at
            each of ``b`` observed sets ``x`` ``(b, n_set, *x_shape)``.
        n_set: Observations per test set (the observed set's size).
        num_tests: Test parameters drawn from the prior.
        num_samples: Posterior samples per test set.
        generator: Source of the test parameters and simulations.
    """
    theta = simulator.prior.sample((num_tests,), generator=generator).float()
    chunk = max(1, ROWS_PER_CALL // n_set)
    levels, ranks = [], []
    for part in theta.split(chunk):
        rows = part.repeat_interleave(n_set, dim=0)
        x = simulator.simulate(rows, generator=generator)
        x = x.reshape(len(part), n_set, *x.shape[1:])
        samples = sample_at(x, num_samples, generator).double().cpu()
        if samples.shape != (num_samples, len(part), theta.shape[1]):
            raise ValueError(
                f"sample_at returned shape {tuple(samples.shape)}, expected "
                f"{(num_samples, len(part), theta.shape[1])}"
            )
        levels.append(credibility_level(samples, part.double()))
        ranks.append(sbc_ranks(samples, part.double()))
    return AmortizedCheck(torch.cat(levels), torch.cat(ranks), num_tests * n_set)


# Score functions of the calibration entries of :data:`avo_bench.scoring.SCORES`; each takes
# the cell's :class:`~avo_bench.scoring.Scored` (returned samples, task, result).

AMORTIZED_TESTS = 200  # prior draws (test sets) of the amortized check
AMORTIZED_SAMPLES = 1000  # posterior samples per test set


class NotScored(ValueError):
    """A score means nothing for this cell's result (e.g. ``nltp`` of a method without a
    density): the row is ``n/a`` with the message."""


def truth_level(s) -> float:
    """Credibility level of identified(θ*) in the returned identified(θ)."""
    identified = s.task.simulator.identified
    return float(credibility_level(identified(s.theta), s.star()[None])[0])


def posterior_coverage(s, samples: Tensor | None = None) -> float:
    """Coverage area of the task's held-out exact posterior draws in ``samples`` (default: the
    returned θ); their levels are kept for the calibration plot."""
    draws = s.exact(s.task.sizes.n_param)
    levels = credibility_level(s.theta if samples is None else samples, draws)
    if samples is None:
        s.artifacts["posterior_levels"] = levels.float().numpy()
    return coverage_area(levels)


def nltp(s) -> float:
    """``-log q(θ* | x_obs)`` from ``Result.log_prob``."""
    log_prob = getattr(s.result, "log_prob", None)
    if log_prob is None:
        raise NotScored("the method returns samples only (no normalized density)")
    value = -float(torch.as_tensor(log_prob(s.task.theta_star[None].float())).reshape(-1)[0])
    if not math.isfinite(value):
        raise ValueError(f"log q(theta*) = {-value}: theta* outside the returned support")
    return value


def exact_nltp(s) -> float:
    """``-log p(θ* | x_obs)`` of the exact posterior (where it has a density)."""
    posterior = s.task.simulator.posterior(s.task.x_obs)
    if not hasattr(posterior, "log_prob"):
        raise NotScored("the exact posterior has no log_prob")
    star = s.task.theta_star[None]
    return -float(torch.as_tensor(posterior.log_prob(star)).reshape(-1)[0])


def amortized(s) -> AmortizedCheck:
    """The amortized check of the cell's result (run once per cell; its levels and ranks are
    kept in the cell's artifacts)."""
    if "amortized_levels" not in s.artifacts:
        sample_at = getattr(s.result, "sample_at", None)
        if sample_at is None:
            reason = getattr(s.result, "extras", {}).get("no_amortized_check")
            raise NotScored(reason or "not an amortized posterior (no sampler at other data)")
        check = amortized_check(
            s.task.simulator, sample_at, n_set=s.task.n_obs, num_tests=AMORTIZED_TESTS,
            num_samples=AMORTIZED_SAMPLES, generator=s.generator("amortized"),
        )  # fmt: skip
        s.artifacts["amortized_levels"] = check.levels.float().numpy()
        s.artifacts["amortized_ranks"] = check.ranks.float().numpy()
    levels, ranks = s.artifacts["amortized_levels"], s.artifacts["amortized_ranks"]
    return AmortizedCheck(torch.as_tensor(levels), torch.as_tensor(ranks),
                          AMORTIZED_TESTS * s.task.n_obs)  # fmt: skip


def uniform_ranks(s) -> Tensor:
    """Ranks of a perfectly calibrated posterior (uniform draws) for the SBC floor."""
    d = s.task.simulator.theta_dim
    return torch.rand(AMORTIZED_TESTS, d, generator=s.task_generator("sbc-floor"))
