"""Errors of a parameter sample against a reference sample or the true parameters.

Where a task knows the truth, a method's returned distribution over θ is also scored in
parameter space: against the analytic posterior or true population (a reference *sample*), or
against the true point θ* of a point task.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ._checks import as_pair, as_samples

__all__ = [
    "distance_to_truth",
    "log_sd_ratio",
    "max_abs_z",
    "mean_error",
    "median_distance",
    "outside_prior",
]


def mean_error(theta: Tensor | np.ndarray, reference: Tensor | np.ndarray) -> float:
    r"""Error of the mean of ``theta`` in units of the reference's standard deviation.

    .. math:: \sqrt{\frac1d \sum_{k=1}^d \left(\frac{\bar\theta_k - \bar r_k}{s_k}\right)^2}

    with :math:`s_k` the (unbiased) standard deviation of the reference in dimension k: the
    root mean square over dimensions, so the value reads "in reference standard deviations"
    whatever d. Not symmetric: the reference sets the scale.

    Arguments:
        theta: Samples of the returned distribution, shape ``(n, d)`` or ``(n,)``.
        reference: Samples of the true posterior / population, shape ``(m, d)``, ``m >= 2``,
            with a positive spread in every dimension.

    Returns:
        The standardized error of the mean, ``>= 0`` (0 is ideal).
    """
    theta, reference = as_pair(theta, reference)
    if len(reference) < 2:
        raise ValueError(f"mean_error: reference needs at least 2 samples, got {len(reference)}")
    scale = reference.std(dim=0)
    if (scale == 0).any():
        dims = torch.nonzero(scale == 0).flatten().tolist()
        raise ValueError(f"mean_error: reference has zero spread in dimensions {dims}")
    z = (theta.mean(dim=0) - reference.mean(dim=0)) / scale
    return float(z.square().mean().sqrt())


def _moments(theta, reference, name: str) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Means and (unbiased) standard deviations of both samples, checked."""
    theta, reference = as_pair(theta, reference)
    for label, sample in (("theta", theta), ("reference", reference)):
        if len(sample) < 2:
            raise ValueError(f"{name}: {label} needs at least 2 samples, got {len(sample)}")
    scale = reference.std(dim=0)
    if (scale == 0).any():
        dims = torch.nonzero(scale == 0).flatten().tolist()
        raise ValueError(f"{name}: reference has zero spread in dimensions {dims}")
    return theta.mean(dim=0), theta.std(dim=0), reference.mean(dim=0), scale


def max_abs_z(theta: Tensor | np.ndarray, reference: Tensor | np.ndarray) -> float:
    r"""The largest error of the mean over parameters, in reference standard deviations.

    .. math:: \max_k \frac{|\bar\theta_k - \bar r_k|}{s_k}

    A z-score per parameter: unlike a classifier test it keeps growing with the error when the
    two samples barely overlap (1 reads "one exact-posterior sd off"). Not symmetric: the
    reference sets the scale.

    Arguments:
        theta: Samples of the returned distribution, shape ``(n, d)`` or ``(n,)``, ``n >= 2``.
        reference: Samples of the exact posterior, shape ``(m, d)``, ``m >= 2``, with a positive
            spread in every dimension.

    Returns:
        The largest absolute z-score, ``>= 0`` (0 is ideal).
    """
    mean, _, ref_mean, scale = _moments(theta, reference, "max_abs_z")
    return float(((mean - ref_mean) / scale).abs().max())


def log_sd_ratio(theta: Tensor | np.ndarray, reference: Tensor | np.ndarray) -> float:
    r"""The log ratio of returned to reference standard deviation farthest from 0.

    .. math:: \ell_{k^*}, \quad \ell_k = \log \frac{\operatorname{sd}(\theta_k)}{s_k},
              \quad k^* = \arg\max_k |\ell_k|

    Signed: ``< 0`` the returned distribution is too narrow (overconfident) in that parameter,
    ``> 0`` too wide (``log 2 = 0.69``: twice as wide). A posterior for :math:`m` of
    :math:`n` iid observations is too wide by about :math:`\frac12 \log(n/m)`.

    Arguments:
        theta: Samples of the returned distribution, shape ``(n, d)`` or ``(n,)``, ``n >= 2``.
        reference: Samples of the exact posterior, shape ``(m, d)``, ``m >= 2``, with a positive
            spread in every dimension.

    Returns:
        The signed log ratio (0 is ideal).

    Raises:
        ValueError: If either sample has zero spread in a dimension (e.g. a point mass).
    """
    _, sd, _, scale = _moments(theta, reference, "log_sd_ratio")
    if (sd == 0).any():
        dims = torch.nonzero(sd == 0).flatten().tolist()
        raise ValueError(f"log_sd_ratio: theta has zero spread in dimensions {dims}")
    logs = torch.log(sd / scale)
    return float(logs[logs.abs().argmax()])


def distance_to_truth(theta: Tensor | np.ndarray, theta_star: Tensor | np.ndarray) -> float:
    r"""Euclidean distance :math:`\|\bar\theta - \theta^*\|_2` of the sample mean to the truth.

    Arguments:
        theta: Samples of the returned distribution, shape ``(n, d)`` or ``(n,)``.
        theta_star: The true parameters, shape ``(d,)`` or ``(1, d)`` (for d = 1 also a
            scalar).

    Returns:
        The distance, ``>= 0`` (0 is ideal).
    """
    theta = as_samples(theta, "theta")
    star = as_samples(torch.as_tensor(theta_star).reshape(1, -1), "theta_star")
    if star.shape[1] != theta.shape[1]:
        raise ValueError(
            f"distance_to_truth: theta_star must have {theta.shape[1]} values (the dimension "
            f"of theta), got {star.shape[1]}"
        )
    return float((theta.mean(dim=0) - star[0].to(theta.device)).norm())


def outside_prior(theta: Tensor | np.ndarray, box: Tensor | np.ndarray) -> float:
    """Fraction of the rows of ``theta`` outside the prior support ``box``.

    Arguments:
        theta: Samples, shape ``(n, d)`` or ``(n,)``.
        box: Lower and upper corners of the support, shape ``(2, d)`` (``-inf``/``inf`` for
            unbounded coordinates).

    Returns:
        The fraction in ``[0, 1]`` (0 is ideal).
    """
    theta = as_samples(theta, "theta")
    box = torch.as_tensor(box).to(theta.device, theta.dtype).reshape(2, -1)
    if box.shape[1] != theta.shape[1]:
        raise ValueError(
            f"outside_prior: box must have shape (2, {theta.shape[1]}), got {tuple(box.shape)}"
        )
    inside = ((theta >= box[0]) & (theta <= box[1])).all(dim=1)
    return 1.0 - float(inside.double().mean())


def median_distance(predictive: Tensor | np.ndarray, observation: Tensor | np.ndarray) -> float:
    r"""Median Euclidean distance from predictive samples to one observation (sbibm's MEDDIST).

    .. math:: \operatorname{median}_i \lVert x_i - x_o \rVert_2, \qquad x_i \sim
              p(x \mid \theta_i),\ \theta_i \sim q(\theta)

    on the raw data (no z-scoring), as ``sbibm.metrics.ppc.median_distance`` (Lueckmann et al.
    2021, https://arxiv.org/abs/2101.04653, MEDDIST): the posterior-predictive check of a task
    with a single observation.

    Arguments:
        predictive: Simulations at the returned parameters, shape ``(n, d)`` or ``(n,)``.
        observation: The observation, shape ``(d,)`` or ``(1, d)``.

    Returns:
        The median distance, ``>= 0`` (lower is better; a perfect method scores the floor).
    """
    predictive = as_samples(predictive, "predictive")
    obs = as_samples(torch.as_tensor(observation).reshape(1, -1), "observation")
    if obs.shape[1] != predictive.shape[1]:
        raise ValueError(
            f"median_distance: observation must have {predictive.shape[1]} values (the dimension "
            f"of predictive), got {obs.shape[1]}"
        )
    distances = (predictive - obs.to(predictive.device)).norm(dim=1)
    return float(np.median(distances.cpu().numpy()))
