r"""Conditioning per-observation estimators on a whole iid observed set (the "sum" route).

For iid observations :math:`x_{1..n}`,
:math:`\log p(\theta \mid x_{1..n}) = \sum_i \log p(x_i \mid \theta) + \log p(\theta) + C`, so an
estimator trained on *single* simulations :math:`(\theta_j, x_j)` conditions on every
observation through a sum of per-observation terms (the potential sampled by MCMC):

- NLE, :math:`q(x \mid \theta) \approx p(x \mid \theta)`:
  :math:`\sum_i \log q(x_i \mid \theta) + \log p(\theta)` (Papamakarios et al. 2019);
- NRE, :math:`\log r(x, \theta) \approx \log p(x \mid \theta) - \log p(x)` up to a function of
  :math:`x` (NRE-B): :math:`\sum_i \log r(x_i, \theta) + \log p(\theta)` (Hermans et al. 2020);
- factorized NPE, :math:`q(\theta \mid x) \approx p(x \mid \theta) p(\theta) / p(x)`:
  :math:`\sum_i \log q(\theta \mid x_i) - (n - 1) \log p(\theta)` (the factorization of
  Geffner et al. 2023, with densities instead of scores).

This is ``sbi``'s own treatment of a batch of iid ``x`` (``LikelihoodBasedPotential`` and
``RatioBasedPotential`` with ``x_is_iid``), made fast for large sets by :func:`compress`:

- **Exact compression.** Repeated observations are evaluated once: the set becomes its
  distinct rows with their counts :math:`w_u` and the sum :math:`\sum_u w_u \log q(x_u \mid
  \theta)` (20,000 Poisson counts at :math:`\lambda = 7` have about 25 distinct values).
- **Binning (1-D data only, an approximation).** When a 1-D set has more distinct values than
  ``max_points``, it is split into ``max_points`` equal-count groups of consecutive sorted
  values, each evaluated once at its *mean* with weight its size. Using the group mean makes the
  first-order error :math:`\ell'(\bar x_g) \sum_{i \in g}(x_i - \bar x_g)` vanish; what is left,
  :math:`\frac12 \sum_g \ell''(\bar x_g) \sum_{i \in g} (x_i - \bar x_g)^2`, is second order in
  the group widths (measured on Weinberg's exact likelihood in ``tests/test_iid_methods.py``).
  Multi-dimensional sets are never binned: their cost grows with the number of distinct rows.
- **Batching.** One potential evaluation covers every chain and every (compressed) observation,
  in chunks of at most :data:`~avo_bench.methods._sbi.MAX_ROWS` (point, chain) pairs.

References:
    Papamakarios, Sterratt, Murray, "Sequential Neural Likelihood", AISTATS 2019,
    https://arxiv.org/abs/1805.07226

    Hermans, Begy, Louppe, "Likelihood-free MCMC with Amortized Approximate Ratio Estimators",
    ICML 2020, https://arxiv.org/abs/1903.04057

    Geffner, Papamakarios, Mnih, "Compositional Score Modeling for Simulation-Based
    Inference", ICML 2023, https://arxiv.org/abs/2209.14249

    Boelts et al., "Flexible and efficient simulation-based inference for models of
    decision-making", eLife 2022, https://doi.org/10.7554/eLife.77220 (MNLE)
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from ._sbi import MAX_ROWS

__all__ = ["KINDS", "IIDPotential", "Observed", "compress", "terms"]  # noqa: F822 (__getattr__)

#: What a per-observation estimator models: the likelihood, a likelihood ratio or a posterior.
KINDS = ("likelihood", "ratio", "posterior")


@dataclass(frozen=True)
class Observed:
    """An observed iid set as weighted points.

    Attributes:
        points: Distinct observations (or group means), shape ``(k, dim_x)``, float32.
        weights: How many observations each point stands for, shape ``(k,)``, summing to
            ``count``.
        count: Number of observations :math:`n`.
        binned: Whether the points are group means (an approximation) rather than exact.
    """

    points: Tensor
    weights: Tensor
    count: int
    binned: bool


def compress(x_obs: Tensor, max_points: int) -> Observed:
    """The observed set ``(n, *x_shape)`` as distinct rows with counts, or (1-D data with
    more than ``max_points`` distinct values) as ``max_points`` equal-count group means."""
    x = x_obs.detach().flatten(start_dim=1).float()
    points, counts = torch.unique(x, dim=0, return_counts=True)
    if len(points) <= max_points or x.shape[1] > 1:
        return Observed(points, counts.float(), len(x), binned=False)
    ordered = x[:, 0].sort().values.double()
    group = torch.arange(len(x), device=x.device) * max_points // len(x)
    sums = torch.zeros(max_points, dtype=torch.float64, device=x.device)
    sizes = torch.bincount(group, minlength=max_points).double()
    means = sums.index_add_(0, group, ordered) / sizes
    return Observed(means.float()[:, None], sizes.float(), len(x), binned=True)


def terms(kind: str, estimator: torch.nn.Module) -> Callable[[Tensor, Tensor], Tensor]:
    """``f(points (k, dim_x), theta (c, d)) -> (k, c)``: the per-observation log terms.

    Arguments:
        kind: ``"likelihood"`` (``log q(x | theta)``, an ``sbi`` density or mass estimator),
            ``"ratio"`` (``log r(x, theta)``, an ``sbi`` ratio classifier) or ``"posterior"``
            (``log q(theta | x)``, an ``sbi`` posterior density estimator).
        estimator: The trained ``sbi`` network.
    """
    if kind == "likelihood":
        return lambda x, theta: estimator.log_prob(
            x[:, None].expand(len(x), len(theta), *x.shape[1:]), condition=theta
        )
    if kind == "ratio":
        return lambda x, theta: estimator(
            theta.repeat(len(x), 1), x.repeat_interleave(len(theta), dim=0)
        ).reshape(len(x), len(theta))
    if kind == "posterior":  # input (sample = chains, batch = points), condition (points,)
        return lambda x, theta: (
            estimator.log_prob(theta[:, None].expand(-1, len(x), -1), condition=x).T
        )
    raise ValueError(f"unknown estimator kind {kind!r}; kinds: {KINDS}")


def __getattr__(name: str):
    # sbi is an optional extra: IIDPotential subclasses its BasePotential, so the class is
    # built on first use and importing this module (hence every method) does not need sbi.
    if name == "IIDPotential":
        return _iid_potential()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@functools.cache
def _iid_potential() -> type:
    from sbi.inference.potentials.base_potential import BasePotential

    class IIDPotential(BasePotential):
        r"""``sbi`` potential of an iid set: :math:`\sum_u w_u f(x_u, \theta) + a \log p(\theta)`.

        Arguments:
            f: Per-observation log terms, ``f(points, theta) -> (k, c)`` (see :func:`terms`).
            observed: The compressed observed set.
            prior: The prior (``torch.distributions``; ``log_prob`` of a batch of ``theta``).
            prior_weight: :math:`a`: 1 for likelihoods and ratios, :math:`1 - n` for posteriors.
            device: Device of the evaluation.
        """

        def __init__(
            self, f, observed: Observed, prior, prior_weight: float, device: torch.device
        ):
            super().__init__(prior, observed.points, device)
            self.f, self.prior_weight = f, float(prior_weight)
            self.weights = observed.weights.to(self.device)

        def __call__(self, theta: Tensor, track_gradients: bool = False) -> Tensor:
            """The potential at ``theta`` of shape ``(c, d)``: shape ``(c,)``; ``-inf`` outside
            the prior support."""
            theta = theta.to(self.device)
            chunk = max(1, MAX_ROWS // len(theta))
            with torch.set_grad_enabled(track_gradients):
                total = torch.zeros(len(theta), device=self.device)
                for x, w in zip(self.x_o.split(chunk), self.weights.split(chunk), strict=True):
                    total = total + w @ self.f(x, theta)
                log_prior = self.prior.log_prob(theta)
            value = total + self.prior_weight * log_prior
            return torch.where(torch.isfinite(log_prior), value, torch.full_like(value, -math.inf))

    IIDPotential.__qualname__ = "IIDPotential"  # pickles by name, through __getattr__
    return IIDPotential
