r"""Convergence diagnostics of the reference MCMC: rank-normalized split-R-hat and bulk ESS.

References:
    Vehtari, Gelman, Simpson, Carpenter, Bürkner, "Rank-normalization, folding, and
    localization: an improved R-hat for assessing the convergence of MCMC", Bayesian Analysis
    16(2), 2021, https://arxiv.org/abs/1903.08008

    Geyer, "Practical Markov chain Monte Carlo", Statistical Science 7(4), 1992 (initial
    monotone sequence estimator of the autocorrelation time).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import special
from torch import Tensor

__all__ = ["diagnostics"]


def diagnostics(draws: Tensor) -> tuple[Tensor, Tensor]:
    """Rank-normalized split-R-hat and bulk ESS of ``draws (B, chains, S, k)``.

    Returns:
        ``(B, k)`` R-hat and ``(B, k)`` ESS (Vehtari et al. 2021).
    """
    x = draws.detach().double().cpu().numpy()
    batch, _, length, k = x.shape
    rhat, ess = np.empty((batch, k)), np.empty((batch, k))
    for b in range(batch):
        for j in range(k):
            z = _rank_normal(x[b, :, :, j])
            half = length // 2
            split = np.concatenate([z[:, :half], z[:, length - half :]])
            rhat[b, j] = _rhat(split)
            ess[b, j] = _ess(split)
    return torch.from_numpy(rhat), torch.from_numpy(ess)


def _rank_normal(x: np.ndarray) -> np.ndarray:
    ranks = np.argsort(np.argsort(x, axis=None, kind="stable"), kind="stable") + 1
    return special.ndtri((ranks - 0.375) / (x.size + 0.25)).reshape(x.shape)


def _rhat(x: np.ndarray) -> float:
    n = x.shape[1]
    within = x.var(axis=1, ddof=1).mean()
    between = n * x.mean(axis=1).var(ddof=1)
    return float(np.sqrt(((n - 1) / n * within + between / n) / within))


def _ess(x: np.ndarray) -> float:
    """Bulk ESS with Geyer's initial monotone sequence (Stan's estimator)."""
    m, n = x.shape
    centred = x - x.mean(axis=1, keepdims=True)
    spectrum = np.fft.rfft(centred, n=2 * n, axis=1)
    acov = np.fft.irfft(spectrum * np.conj(spectrum), axis=1)[:, :n] / n
    chain_var = acov[:, 0] * n / (n - 1)
    var_plus = chain_var.mean() * (n - 1) / n + x.mean(axis=1).var(ddof=1)
    rho = 1 - (chain_var.mean() - acov.mean(axis=0)) / var_plus
    rho[0] = 1.0
    pairs = rho[: 2 * (n // 2)].reshape(-1, 2).sum(axis=1)
    positive = np.argmax(pairs <= 0) if (pairs <= 0).any() else len(pairs)
    pairs = np.minimum.accumulate(pairs[:positive])
    tau = max(-1 + 2 * pairs.sum(), 1 / np.log10(m * n))
    return float(m * n / tau)
