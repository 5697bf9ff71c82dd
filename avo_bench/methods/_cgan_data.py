"""Training pairs, conditioning features and the prior-support bijection of the cGAN method.

Population tasks condition on one observation: the training pairs are
:math:`(\\theta_j, y_j = M(\\theta_j))` with :math:`\\theta_j` from the prior. Point tasks
condition on a fixed-size summary of an iid *set*: every training pair simulates a set of
``m`` observations at one :math:`\\theta_j` (``m`` rows of the budget) and keeps
``simulator.summarize(set)``; the observed condition is the summary of all ``n_obs`` observations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = [
    "Pairs",
    "Standardizer",
    "SupportMap",
    "check_observed",
    "choose_set_size",
    "observed_features",
    "outside_fraction",
    "simulate_pairs",
    "summary_width_ratio",
]


@dataclass(frozen=True)
class Pairs:
    """Training pairs ``theta (n, d)`` and conditioning features ``y (n, k)``; set size ``m``."""

    theta: Tensor
    y: Tensor
    set_size: int


class Standardizer:
    """Affine map ``(v - mean) / std`` fitted on a training set ``(n, k)``.

    Constant features (zero spread) keep a unit scale so that they never divide by zero.
    """

    def __init__(self, data: Tensor):
        self.mean = data.mean(dim=0)
        std = data.std(dim=0) if data.shape[0] > 1 else torch.ones_like(self.mean)
        self.std = torch.where(std > 0, std, torch.ones_like(std))

    def __call__(self, values: Tensor) -> Tensor:
        return (values - self.mean) / self.std


class SupportMap:
    """A bijection from :math:`\\mathbb{R}^d` onto the prior support, coordinate by coordinate.

    A bounded coordinate ``[low, high]`` uses ``center + half_width * tanh(u)``, a half-bounded
    one ``low + softplus(u)`` (or ``high - softplus(u)``), an unbounded one the affine map
    ``center + scale * u`` (prior mean and standard deviation). Generated parameters are thus
    inside the support by construction, without clamping.

    Arguments:
        prior: The simulator's prior, with ``low``, ``high``, ``mean()`` and ``stddev()``.
        device: Where the maps are evaluated.
    """

    def __init__(self, prior, device: torch.device | str):
        low, high = prior.low.to(device), prior.high.to(device)
        self.low, self.high = low, high
        self.bounded = torch.isfinite(low) & torch.isfinite(high)
        self.lower_only = torch.isfinite(low) & ~torch.isfinite(high)
        self.upper_only = ~torch.isfinite(low) & torch.isfinite(high)
        finite = self.bounded
        self.center = torch.where(finite, (low + high) / 2, prior.mean().to(device))
        self.scale = torch.where(finite, (high - low) / 2, prior.stddev().to(device))
        self.low_or_zero = torch.where(torch.isfinite(low), low, torch.zeros_like(low))
        self.high_or_zero = torch.where(torch.isfinite(high), high, torch.zeros_like(high))

    def __call__(self, u: Tensor) -> Tensor:
        """Maps unconstrained ``u (n, d)`` into the support, in ``u``'s dtype."""
        center, scale = self.center.to(u.dtype), self.scale.to(u.dtype)
        bounded = center + scale * torch.tanh(u)
        affine = center + scale * u
        softplus = torch.nn.functional.softplus(u)
        theta = torch.where(self.bounded, bounded, affine)
        theta = torch.where(self.lower_only, self.low_or_zero.to(u.dtype) + softplus, theta)
        return torch.where(self.upper_only, self.high_or_zero.to(u.dtype) - softplus, theta)


def check_observed(simulator, x_obs: object) -> Tensor:
    """Validates the observed data ``(n_obs, *x_shape)``; ``ValueError`` naming what is wrong."""
    name, shape = simulator.name, tuple(simulator.x_shape)
    if not isinstance(x_obs, Tensor) or not x_obs.is_floating_point():
        kind = x_obs.dtype if isinstance(x_obs, Tensor) else type(x_obs).__name__
        raise ValueError(f"cgan: x_obs for {name} must be a floating-point tensor, got {kind}")
    if x_obs.ndim != 1 + len(shape) or tuple(x_obs.shape[1:]) != shape or x_obs.shape[0] < 1:
        raise ValueError(
            f"cgan: x_obs for {name} must have shape (n_obs >= 1, {', '.join(map(str, shape))}), "
            f"got {tuple(x_obs.shape)}"
        )
    if not torch.isfinite(x_obs).all():
        row = int((~torch.isfinite(x_obs)).flatten(1).any(dim=1).nonzero()[0])
        raise ValueError(f"cgan: x_obs for {name} must be finite; row {row} is not")
    return x_obs


def choose_set_size(n_obs: int, budget: int, min_pairs: int, set_size: int) -> int:
    """Set size ``m`` of a point task's training pairs.

    ``set_size > 0`` is used as given (``2 <= set_size <= n_obs``). Otherwise ``m = budget // min_pairs``
    clipped to ``[2, n_obs]``: the largest sets that still leave ``min_pairs`` training pairs,
    so that ``m`` reaches ``n_obs`` (summaries as informative as the observed one) once the
    budget allows. A single observation (``n_obs = 1``) is conditioned on directly (``m = 1``).
    """
    if n_obs == 1:
        if set_size > 1:
            raise ValueError(f"cgan: set_size must be 0 or 1 for n_obs = 1, got {set_size}")
        return 1
    if set_size > 0:
        if not 2 <= set_size <= n_obs:
            raise ValueError(f"cgan: set_size must be in [2, n_obs = {n_obs}], got {set_size}")
        return set_size
    return max(2, min(n_obs, budget // min_pairs))


def _features(simulator, x: Tensor, m: int) -> Tensor:
    # x: (n, m, *x_shape) -> (n, k)
    return x.flatten(start_dim=1) if m == 1 else simulator.summarize(x)


def simulate_pairs(simulator, *, m: int, generator: torch.Generator, device) -> Pairs:
    """Spends the remaining budget on training pairs ``(theta_j, features_j)``.

    Arguments:
        simulator: The budget-counting simulator.
        m: Set size (1 for population tasks: ``features_j`` is the flattened observation).
        generator: The only source of randomness.
        device: Where the pairs are simulated.

    Returns:
        ``budget // m`` pairs, ``float32``.
    """
    n = simulator.remaining // m
    theta = simulator.prior.sample((n,), generator=generator, device=device)
    x = simulator.simulate(theta.repeat_interleave(m, dim=0), generator)
    x = x.reshape(n, m, *simulator.x_shape)
    if simulator.kind == "population":
        return Pairs(theta, x.flatten(start_dim=1), m)
    return Pairs(theta, _features(simulator, x, m), m)


def observed_features(simulator, x_obs: Tensor, m: int) -> Tensor:
    """Conditions for sampling: one row per observation (population) or one summary (point)."""
    if simulator.kind == "population":
        return x_obs.flatten(start_dim=1)
    return _features(simulator, x_obs[None], m)


def outside_fraction(features: Tensor, training: Tensor) -> float:
    """Fraction of the rows of ``features (n, k)`` with a feature outside the training range.

    The seed's failure mode: a cGAN asked about targets outside the region it was trained on
    extrapolates with no guarantee.
    """
    low, high = training.min(dim=0).values, training.max(dim=0).values
    outside = ((features < low) | (features > high)).any(dim=1)
    return float(outside.float().mean())


def summary_width_ratio(n_obs: int, m: int) -> float:
    """``sqrt(n_obs / m)``: how much wider a set-mean summary's noise is in training than observed.

    For summaries that are set means, the cGAN learns :math:`p(\\theta \\mid s_m)`, whose width
    exceeds that of :math:`p(\\theta \\mid s_{n_{obs}})` by up to this factor (exactly so for a
    Gaussian location model with a flat prior).
    """
    return math.sqrt(n_obs / m)
