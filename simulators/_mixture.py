r"""A Student-t mixture fitted to particles: the independence proposal of the reference MCMC.

A Gaussian mixture is fitted to each observation's final SMC particles by EM
(``sklearn.mixture.GaussianMixture``), and its components are widened into multivariate
:math:`t_\nu` components with the same centres and covariances scaled by ``inflate``, so that the
proposal's tails cover the posterior's. Independence Metropolis-Hastings with such a proposal
jumps between modes and across the whole posterior in one step, which random-walk moves alone
cannot do when local scales vary (``slcp``).

References:
    Tierney, "Markov chains for exploring posterior distributions", Annals of Statistics
    22(4), 1994 (independence Metropolis-Hastings).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

__all__ = ["TMixture"]


class TMixture:
    r"""``B`` mixtures of ``K`` multivariate :math:`t_\nu` components in ``d`` dimensions.

    Arguments:
        weights: Component weights ``(B, K)``.
        means: Centres ``(B, K, d)``.
        scale_tril: Cholesky factors of the scale matrices ``(B, K, d, d)``.
        df: Degrees of freedom :math:`\nu` (a positive integer).
    """

    def __init__(self, weights: Tensor, means: Tensor, scale_tril: Tensor, df: int = 5):
        self.log_weights = torch.log(weights)
        self.means, self.scale_tril, self.df = means, scale_tril, df
        d = means.shape[-1]
        log_det = torch.log(scale_tril.diagonal(dim1=-2, dim2=-1)).sum(dim=-1)
        self._norm = (
            math.lgamma((df + d) / 2)
            - math.lgamma(df / 2)
            - d / 2 * math.log(df * math.pi)
            - log_det
        )

    @classmethod
    def fit(cls, u: Tensor, components: int, seed: int, inflate: float = 1.5) -> TMixture:
        """Fits one mixture per observation to particles ``u (B, N, d)``."""
        from sklearn.mixture import GaussianMixture  # 2 s to import: only where a fit needs it

        weights, means, trils = [], [], []
        for particles in u.detach().cpu().double().numpy():
            k = min(components, len(np.unique(particles, axis=0)))
            gmm = GaussianMixture(k, covariance_type="full", reg_covar=1e-9, random_state=seed)
            gmm.fit(particles + _jitter(particles, seed))
            cov = gmm.covariances_ * inflate**2
            pad = components - k  # keep (B, K) rectangular: padded components get weight 0
            weights.append(np.concatenate([gmm.weights_, np.zeros(pad)]))
            means.append(np.concatenate([gmm.means_, np.repeat(gmm.means_[:1], pad, 0)]))
            trils.append(np.linalg.cholesky(np.concatenate([cov, np.repeat(cov[:1], pad, 0)])))
        as_tensor = lambda a: torch.as_tensor(np.stack(a), dtype=torch.float64)  # noqa: E731
        return cls(as_tensor(weights), as_tensor(means), as_tensor(trils))

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        """``n`` draws per observation, ``(B, n, d)``."""
        batch, _, d = self.means.shape
        index = torch.multinomial(
            torch.exp(self.log_weights), n, replacement=True, generator=generator
        )
        mean = self.means.gather(1, index[..., None].expand(-1, -1, d))
        tril = self.scale_tril.gather(1, index[..., None, None].expand(-1, -1, d, d))
        z = torch.randn(batch, n, d, 1, generator=generator, dtype=torch.float64)
        # chi-square with an integer number of degrees of freedom: a sum of squared normals
        chi2 = (torch.randn(batch, n, self.df, generator=generator, dtype=torch.float64) ** 2).sum(
            -1
        )
        return mean + (tril @ z)[..., 0] * torch.sqrt(self.df / chi2)[..., None]

    def log_prob(self, u: Tensor) -> Tensor:
        """Log density of ``u (B, n, d)``, shape ``(B, n)``."""
        diff = (u[:, None] - self.means[:, :, None]).transpose(-1, -2)  # (B, K, d, n)
        y = torch.linalg.solve_triangular(self.scale_tril, diff, upper=False)
        delta = (y**2).sum(dim=-2)  # (B, K, n)
        d = u.shape[-1]
        log_t = self._norm[..., None] - (self.df + d) / 2 * torch.log1p(delta / self.df)
        return torch.logsumexp(self.log_weights[..., None] + log_t, dim=1)


def _jitter(particles: np.ndarray, seed: int) -> np.ndarray:
    # Resampling leaves duplicate particles; a tiny jitter keeps EM's covariances regular.
    scale = 1e-6 * particles.std(axis=0, keepdims=True) + 1e-12
    return scale * np.random.default_rng(seed).standard_normal(particles.shape)
