r"""Jensen-Shannon divergence between two sample sets, on fixed histogram bins.

.. math:: \mathrm{JS}(p, q) = \tfrac12 \mathrm{KL}(p \,\|\, m) + \tfrac12 \mathrm{KL}(q \,\|\, m),
          \qquad m = \tfrac12 (p + q),

between the histograms :math:`p, q` of the two sets on the same bins, in **bits** (base 2), so
:math:`0 \le \mathrm{JS} \le 1`. This is the *divergence*; ``scipy.spatial.distance.jensenshannon``
returns its square root (the JS distance), and in nats by default.

Binning rule (:func:`histogram_edges`), fixed once per task and observable from a *reference*
sample (a large fixed-seed draw of the observed distribution), so that every run of a task is
scored on the same bins:

- continuous data: ``bins`` uniform bins per dimension between the ``tail`` and ``1 - tail``
  quantiles of the reference, widened by ``margin`` times that range on each side, plus an
  underflow and an overflow bin (edges at -inf and +inf), so no sample is ever dropped;
- discrete data (a reference of integers with at most ``max_levels`` distinct values per
  dimension): one bin per integer between the reference's min and max, plus under/overflow.

For d <= 2 the joint histogram is used; for d > 2 the value is the mean of the JS divergences
of the d one-dimensional marginals (joint bins would be empty at any affordable size).

Binned JS is a lower bound on the JS of the underlying densities (data-processing inequality)
and converges to it as bins shrink and n grows. At finite n it has a floor far from 0: two
independent samples of sizes n_a, n_b from the *same* distribution give about
:math:`(k - 1)(1/n_a + 1/n_b) / (8 \ln 2)` bits for k well-filled bins. Report it alongside:
the floor of a task is ``jensen_shannon(x_ref1, x_ref2, edges=edges)`` for two independent
draws of the observed distribution with the sizes of the compared sets.

References:
    Lin, "Divergence measures based on the Shannon entropy", IEEE Trans. Inf. Theory 37(1),
    1991, https://doi.org/10.1109/18.61115
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from ._checks import as_pair, as_samples

__all__ = ["histogram_edges", "jensen_shannon"]

Edges = tuple[Tensor, ...]


def histogram_edges(
    reference: Tensor | np.ndarray,
    *,
    bins: int | None = None,
    tail: float = 0.001,
    margin: float = 0.05,
    max_levels: int = 200,
) -> Edges:
    """Fixed bin edges for :func:`jensen_shannon`, one tensor per dimension, from a reference.

    Arguments:
        reference: A large sample of the task's observed distribution, shape ``(n, d)``.
        bins: Uniform bins per dimension for continuous data (the under/overflow bins come on
            top); default 30 for d = 1 and 10 for d >= 2, so that the floor at 1,000 samples
            per side stays near 0.01-0.03 bits.
        tail: Quantile level of the range's ends (robust to outliers), in ``[0, 0.5)``.
        margin: Widening of the range on each side, as a fraction of it, ``>= 0``.
        max_levels: A dimension whose reference values are integers with at most this many
            distinct values is binned one bin per integer.

    Returns:
        A tuple of d increasing float64 CPU tensors, each starting at -inf and ending at +inf.
    """
    x = as_samples(reference, "reference", min_n=2)
    if bins is None:
        bins = 30 if x.shape[1] == 1 else 10
    if not isinstance(bins, int) or bins < 1:
        raise ValueError(f"histogram_edges: bins must be an integer >= 1, got {bins!r}")
    if not 0 <= tail < 0.5:
        raise ValueError(f"histogram_edges: tail must be in [0, 0.5), got {tail!r}")
    if not (margin >= 0 and math.isfinite(margin)):
        raise ValueError(f"histogram_edges: margin must be finite and >= 0, got {margin!r}")
    return tuple(_edges_1d(column, bins, tail, margin, max_levels) for column in x.cpu().T)


def _edges_1d(x: Tensor, bins: int, tail: float, margin: float, max_levels: int) -> Tensor:
    levels = x.unique()
    if (levels == levels.round()).all() and len(levels) <= max_levels:
        inner = torch.arange(levels[0] - 0.5, levels[-1] + 1.0, 1.0, dtype=torch.float64)
    else:
        lo, hi = torch.quantile(x, torch.tensor([tail, 1 - tail], dtype=x.dtype)).tolist()
        span = hi - lo if hi > lo else max(abs(lo), 1.0)
        inner = torch.linspace(
            lo - margin * span, hi + margin * span, bins + 1, dtype=torch.float64
        )
    inf = torch.tensor([math.inf], dtype=torch.float64)
    return torch.cat([-inf, inner, inf])


def jensen_shannon(
    a: Tensor | np.ndarray, b: Tensor | np.ndarray, *, edges: Tensor | Sequence[Tensor]
) -> float:
    """Jensen-Shannon divergence, in bits, between the histograms of ``a`` and ``b``.

    Arguments:
        a: Samples, shape ``(n_a, d)`` or ``(n_a,)``.
        b: Samples, shape ``(n_b, d)`` or ``(n_b,)``.
        edges: Bin edges, one increasing 1-D tensor per dimension (:func:`histogram_edges`);
            a single tensor for d = 1. The first and last bins are open-ended, so values
            outside the edges fall in them.

    Returns:
        The divergence in ``[0, 1]``; for d > 2 the mean over the 1-D marginals.
    """
    a, b = as_pair(a, b)
    edges = _check_edges(edges, a.shape[1], a.device)
    if len(edges) <= 2:
        return _js(_counts(a, edges), _counts(b, edges))
    values = [_js(_counts(a[:, [j]], (e,)), _counts(b[:, [j]], (e,))) for j, e in enumerate(edges)]
    return float(np.mean(values))


def _check_edges(edges: Tensor | Sequence[Tensor], d: int, device: torch.device) -> Edges:
    if isinstance(edges, Tensor | np.ndarray) and np.ndim(edges) == 1:
        edges = (edges,)
    edges = tuple(torch.as_tensor(e, dtype=torch.float64, device=device) for e in edges)
    if len(edges) != d:
        raise ValueError(
            f"jensen_shannon: edges needs one tensor per dimension ({d}), got {len(edges)}"
        )
    for j, e in enumerate(edges):
        if e.ndim != 1 or len(e) < 2 or not (e.diff() > 0).all() or e.isnan().any():
            raise ValueError(f"jensen_shannon: edges[{j}] must be increasing, 1-D, length >= 2")
    return edges


def _counts(x: Tensor, edges: Edges) -> Tensor:
    """Counts in the joint bins; the outermost bins of each dimension are open-ended."""
    flat = torch.zeros(len(x), dtype=torch.long, device=x.device)
    for j, e in enumerate(edges):
        index = (torch.bucketize(x[:, j].contiguous(), e, right=True) - 1).clamp(0, len(e) - 2)
        flat = flat * (len(e) - 1) + index
    size = math.prod(len(e) - 1 for e in edges)
    return torch.bincount(flat, minlength=size).to(torch.float64)


def _js(count_a: Tensor, count_b: Tensor) -> float:
    p, q = count_a / count_a.sum(), count_b / count_b.sum()
    m = (p + q) / 2
    kl_pm = torch.where(p > 0, torch.xlogy(p, p / m), 0.0).sum()
    kl_qm = torch.where(q > 0, torch.xlogy(q, q / m), 0.0).sum()
    return max(float((kl_pm + kl_qm) / (2 * math.log(2))), 0.0)
