"""Input validation shared by the metrics: every metric takes two sample sets of shape (n, d)."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

__all__ = ["as_pair", "as_samples", "canonical_order"]


def as_samples(x: Tensor | np.ndarray, name: str, *, min_n: int = 1) -> Tensor:
    """Returns ``x`` as a float64 tensor of shape ``(n, d)`` on its own device.

    A 1-D input of shape ``(n,)`` is read as ``n`` samples of dimension 1. The input is never
    modified (the conversion copies whenever the dtype changes; callers never write in place).

    Raises:
        ValueError: If ``x`` is not array-like, not of shape ``(n,)`` or ``(n, d)``, has fewer
            than ``min_n`` samples or ``d = 0``, or contains NaN or inf.
    """
    if not isinstance(x, Tensor):
        try:
            x = torch.as_tensor(np.asarray(x))
        except (TypeError, ValueError, RuntimeError):
            raise ValueError(
                f"{name} must be a torch tensor or numpy array of shape (n, d), "
                f"got {type(x).__name__}"
            ) from None
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise ValueError(f"{name} must have shape (n,) or (n, d), got {tuple(x.shape)}")
    if x.shape[0] < min_n:
        raise ValueError(f"{name} needs at least {min_n} samples, got {x.shape[0]}")
    if x.shape[1] == 0:
        raise ValueError(f"{name} must have dimension d >= 1, got shape {tuple(x.shape)}")
    if x.is_complex():
        raise ValueError(f"{name} must be real, got dtype {x.dtype}")
    x = x.to(torch.float64)
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or inf")
    return x


def as_pair(
    a: Tensor | np.ndarray, b: Tensor | np.ndarray, *, min_n: int = 1
) -> tuple[Tensor, Tensor]:
    """Validates two sample sets of equal dimension; ``b`` moves to ``a``'s device.

    Raises:
        ValueError: As :func:`as_samples`, or if the dimensions of ``a`` and ``b`` differ.
    """
    a, b = as_samples(a, "a", min_n=min_n), as_samples(b, "b", min_n=min_n)
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"a and b must have the same dimension d, got a: {tuple(a.shape)}, b: {tuple(b.shape)}"
        )
    return a, b.to(a.device)


def canonical_order(z: Tensor) -> Tensor:
    """Rows of ``z`` sorted lexicographically, so that seeded draws do not depend on row order."""
    order = np.lexsort(z.cpu().numpy().T[::-1])
    return z[torch.as_tensor(order, device=z.device)]
