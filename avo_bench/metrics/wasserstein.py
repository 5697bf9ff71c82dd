r"""Wasserstein-1 distance between two empirical distributions.

.. math:: W_1(P, Q) = \min_{\pi \in \Pi(P, Q)} \mathbb{E}_{(x, y) \sim \pi} \|x - y\|_2

computed between the empirical measures of two sample sets (uniform weights, unequal sizes
allowed). The path taken is a pure function of the sizes (:func:`wasserstein1_path`):

- ``"closed_form_1d"`` (d = 1): :math:`W_1 = \int |F_a(t) - F_b(t)|\, dt` from the sorted
  samples, exact, :math:`O(n \log n)`, on the inputs' device (Villani, *Optimal Transport: Old
  and New*, 2009, remark 2.19; the same formula as ``scipy.stats.wasserstein_distance``).
- ``"exact_emd"`` (d > 1 and both sizes :math:`\le` ``exact_max``): the exact linear program,
  solved by POT's network simplex (``ot.emd2``) with a Euclidean ground cost (``ot.dist``'s
  default is the *squared* Euclidean cost, which would give :math:`W_2^2`); an iteration limit
  that is never reached, and an error rather than a silently sub-optimal value if it were.
- ``"quantized_<m>"`` (d > 1, a size above ``exact_max``): both sets are quantized onto the same
  ``m`` centers (a few Lloyd / k-means iterations from a seeded draw of the pooled points) and
  the exact EMD is solved between the two weighted quantized measures. The triangle inequality
  gives a certified bound, returned with the value by :func:`wasserstein1_estimate`:

  .. math:: |W_1(a, b) - W_1(Q_a, Q_b)| \le \frac{1}{n_a}\sum_i \|a_i - c(a_i)\|
            + \frac{1}{n_b}\sum_j \|b_j - c(b_j)\|,

  where :math:`c(x)` is the center of :math:`x`. The bound is loose: measured against exact EMD
  on 2-D Gaussian clouds of 3,000-5,000 points with ``m = 1000`` the error is -0.002 to -0.012
  (the quantized value is slightly low, since mismatches inside a cell cancel) while the bound is
  about 0.1. Sliced Wasserstein was not used: it is a different quantity (for a mean shift in
  2-D it is :math:`2/\pi` times :math:`W_1`), not an approximation of it.

References:
    Peyré & Cuturi, "Computational Optimal Transport", 2019, https://arxiv.org/abs/1803.00567
    Flamary et al., "POT: Python Optimal Transport", JMLR 2021, https://jmlr.org/papers/v22/20-451.html
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import ot
import torch
from torch import Tensor

from ._checks import as_pair, canonical_order

__all__ = ["W1Estimate", "wasserstein1", "wasserstein1_estimate", "wasserstein1_path"]

EXACT_MAX = 2000
N_CENTERS = 1000
LLOYD_ITERATIONS = 5
_CHUNK = 4096


@dataclass(frozen=True)
class W1Estimate:
    """A Wasserstein-1 value with the path that computed it.

    Attributes:
        value: The estimate of :math:`W_1`.
        path: ``"closed_form_1d"``, ``"exact_emd"`` or ``"quantized_<m>"``.
        error_bound: Certified bound on ``|value - exact W1 of the two samples|`` (0 if exact).
    """

    value: float
    path: str
    error_bound: float


def wasserstein1_path(
    n_a: int, n_b: int, d: int, *, exact_max: int = EXACT_MAX, n_centers: int = N_CENTERS
) -> str:
    """Names the path :func:`wasserstein1` takes for sizes ``n_a``, ``n_b`` in dimension ``d``.

    Arguments:
        n_a: Number of samples in the first set.
        n_b: Number of samples in the second set.
        d: Dimension of the samples.
        exact_max: Largest size (of each set) solved by exact EMD when ``d > 1``.
        n_centers: Number of quantization centers beyond ``exact_max``.

    Returns:
        ``"closed_form_1d"``, ``"exact_emd"`` or ``"quantized_<m>"``.
    """
    for name, value in (("n_a", n_a), ("n_b", n_b), ("d", d), ("exact_max", exact_max)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"wasserstein1: {name} must be an integer >= 1, got {value!r}")
    if not isinstance(n_centers, int) or n_centers < 2:
        raise ValueError(f"wasserstein1: n_centers must be an integer >= 2, got {n_centers!r}")
    if d == 1:
        return "closed_form_1d"
    if max(n_a, n_b) <= exact_max:
        return "exact_emd"
    return f"quantized_{min(n_centers, n_a + n_b)}"


def wasserstein1(
    a: Tensor | np.ndarray,
    b: Tensor | np.ndarray,
    *,
    exact_max: int = EXACT_MAX,
    n_centers: int = N_CENTERS,
    generator: torch.Generator | None = None,
) -> float:
    """Wasserstein-1 distance between the empirical distributions of ``a`` and ``b``.

    Arguments:
        a: Samples, shape ``(n_a, d)`` or ``(n_a,)``; tensor (any device) or array.
        b: Samples, shape ``(n_b, d)`` or ``(n_b,)``.
        exact_max: Largest size of each set solved by exact EMD when ``d > 1``.
        n_centers: Number of shared quantization centers on the ``quantized`` path.
        generator: Draws the initial centers on the ``quantized`` path (a CPU generator);
            ``None`` means a fixed seed, 0, so the value is reproducible.

    Returns:
        The estimate of :math:`W_1`; :func:`wasserstein1_path` names the path taken.
    """
    return wasserstein1_estimate(
        a, b, exact_max=exact_max, n_centers=n_centers, generator=generator
    ).value


def wasserstein1_estimate(
    a: Tensor | np.ndarray,
    b: Tensor | np.ndarray,
    *,
    exact_max: int = EXACT_MAX,
    n_centers: int = N_CENTERS,
    generator: torch.Generator | None = None,
) -> W1Estimate:
    """As :func:`wasserstein1`, returning the value with its path and error bound."""
    a, b = as_pair(a, b)
    path = wasserstein1_path(len(a), len(b), a.shape[1], exact_max=exact_max, n_centers=n_centers)
    if path == "closed_form_1d":
        return W1Estimate(_w1_1d(a[:, 0], b[:, 0]), path, 0.0)
    if path == "exact_emd":
        return W1Estimate(_emd(_uniform(len(a)), _uniform(len(b)), torch.cdist(a, b)), path, 0.0)
    if generator is None:
        generator = torch.Generator().manual_seed(0)
    value, bound = _quantized_w1(a, b, int(path.split("_")[1]), generator)
    return W1Estimate(value, path, bound)


def _w1_1d(u: Tensor, v: Tensor) -> float:
    """:math:`\\int |F_u - F_v|` between the empirical CDFs of two 1-D samples."""
    u, v = u.sort().values, v.sort().values
    points = torch.cat([u, v]).sort().values
    cdf_u = torch.searchsorted(u, points[:-1], right=True).to(u.dtype) / len(u)
    cdf_v = torch.searchsorted(v, points[:-1], right=True).to(v.dtype) / len(v)
    return float(((cdf_u - cdf_v).abs() * points.diff()).sum())


def _uniform(n: int) -> Tensor:
    return torch.full((n,), 1.0 / n, dtype=torch.float64)


def _emd(w_a: Tensor, w_b: Tensor, cost: Tensor) -> float:
    """Exact optimal transport cost with POT's network simplex, checked for optimality."""
    value, log = ot.emd2(
        w_a.cpu().numpy(),
        w_b.cpu().numpy(),
        cost.cpu().numpy(),
        numItermax=10**12,
        log=True,
    )
    if log["warning"] is not None:
        raise RuntimeError(f"wasserstein1: POT's exact solver did not converge: {log['warning']}")
    return float(value)


def _quantized_w1(a: Tensor, b: Tensor, m: int, generator: torch.Generator) -> tuple[float, float]:
    """Exact EMD between ``a`` and ``b`` quantized on ``m`` shared centers, with its bound."""
    pooled = canonical_order(torch.cat([a, b]))
    centers = _lloyd(pooled, m, generator)
    label_a, dist_a = _nearest(a, centers)
    label_b, dist_b = _nearest(b, centers)
    w_a = torch.bincount(label_a, minlength=m).double() / len(a)
    w_b = torch.bincount(label_b, minlength=m).double() / len(b)
    keep_a, keep_b = w_a > 0, w_b > 0
    cost = torch.cdist(centers[keep_a], centers[keep_b])
    value = _emd(w_a[keep_a], w_b[keep_b], cost)
    return value, float(dist_a.mean() + dist_b.mean())


def _lloyd(z: Tensor, m: int, generator: torch.Generator) -> Tensor:
    """``m`` centers: a seeded draw of rows of ``z`` refined by Lloyd (k-means) iterations."""
    start = torch.randperm(len(z), generator=generator, device=generator.device)[:m]
    centers = z[start.to(z.device)]
    for _ in range(LLOYD_ITERATIONS):
        labels, _ = _nearest(z, centers)
        sums = torch.zeros_like(centers).index_add_(0, labels, z)
        counts = torch.bincount(labels, minlength=m).to(z.dtype)
        filled = counts > 0
        centers = torch.where(filled[:, None], sums / counts.clamp(min=1)[:, None], centers)
    return centers


def _nearest(z: Tensor, centers: Tensor) -> tuple[Tensor, Tensor]:
    """Index of and distance to the nearest center of every row of ``z`` (chunked)."""
    labels, dists = [], []
    for chunk in z.split(_CHUNK):
        dist, label = torch.cdist(chunk, centers).min(dim=1)
        labels.append(label)
        dists.append(dist)
    return torch.cat(labels), torch.cat(dists)
