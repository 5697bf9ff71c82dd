r"""sbibm's ``slcp_distractors``: ``slcp``'s 8 values hidden among 92 uninformative ones.

:math:`x \in \mathbb{R}^{100}` is ``slcp``'s 8 values followed by 92 *distractors*, drawn
independently of :math:`\theta` from a uniform mixture of 20 multivariate Student-t
distributions (2 degrees of freedom), then shuffled by a fixed permutation. The mixture's
centres :math:`15 z` and scale factors :math:`3(\mathrm{tril}(Z) + \mathrm{diag}(e^{w}))` and the
permutation are drawn from ``np.random.RandomState(42)`` exactly as sbibm's
``_generate_noise_dist_parameters`` does; they match sbibm's stored ``gmm.torch`` to within
4 ulp (centres and scales; the difference is floating-point rounding) and its
``permutation_idx.torch`` exactly (checked at commit f0bc440).

Standard observation :math:`k` has ``slcp``'s :math:`\theta^*_k` and 8 values, with distractors
drawn once from a generator seeded with 42 (observations 1..10 in turn, as sbibm's
``torch.manual_seed(42)``). The distractors are independent of :math:`\theta`, so the posterior
is ``slcp``'s given the 8 informative values, and the references are ``slcp``'s (as in sbibm).

References:
    Lueckmann et al., "Benchmarking Simulation-Based Inference", AISTATS 2021,
    https://arxiv.org/abs/2101.04653 (appendix T.4, SLCP with Distractors)

    Greenberg, Nonnenmacher, Macke, "Automatic Posterior Transformation for Likelihood-Free
    Inference", ICML 2019, https://arxiv.org/abs/1905.07488 (the task's origin)

    sbibm (commit f0bc440), ``sbibm/tasks/slcp/task.py`` (``distractors=True``)
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from torch import Tensor

from . import register
from ._sbibm import MCMCPosterior
from ._stored import StoredPosterior
from .slcp import SLCP

__all__ = ["SLCPDistractors", "distractor_mixture", "draw_distractors"]

NOISE_DIM, COMPONENTS, DF, SEED = 92, 20, 2, 42


@functools.cache
def distractor_mixture() -> tuple[Tensor, Tensor, Tensor]:
    """sbibm's mixture centres ``(20, 92)``, scale factors ``(20, 92, 92)`` (float64) and the
    permutation ``(100,)`` of ``[slcp values, distractors]``."""
    rng = np.random.RandomState(SEED)
    loc = np.array([15 * rng.normal(size=NOISE_DIM) for _ in range(COMPONENTS)])
    tril = [
        np.tril(rng.normal(size=(NOISE_DIM, NOISE_DIM)))
        + np.diag(np.exp(rng.normal(size=NOISE_DIM)))
        for _ in range(COMPONENTS)
    ]
    permutation = rng.permutation(NOISE_DIM + 8)
    return (
        torch.from_numpy(loc),
        torch.from_numpy(3 * np.array(tril)),
        torch.from_numpy(permutation),
    )


def draw_distractors(n: int, generator: torch.Generator | None, device, dtype) -> Tensor:
    """``n`` draws ``(n, 92)`` of the distractor mixture (a t draw: centre + L z / sqrt(W/2))."""
    loc, tril, _ = distractor_mixture()
    like = {"generator": generator, "device": device, "dtype": torch.float64}
    component = torch.randint(COMPONENTS, (n,), generator=generator, device=device)
    z = torch.randn(n, NOISE_DIM, **like)
    # A chi-square with 2 degrees of freedom is an exponential with mean 2 (floored: a uniform
    # draw of exactly 0, probability 2^-53, must not give an infinite distractor).
    chi2 = (-2 * torch.log1p(-torch.rand(n, **like))).clamp_min(1e-30)
    spread = torch.empty(n, NOISE_DIM, dtype=torch.float64, device=device)
    for k in range(COMPONENTS):  # one matrix product per component, not per draw
        rows = component == k
        spread[rows] = z[rows] @ tril[k].to(device).T
    return (loc.to(device)[component] + spread * torch.sqrt(DF / chi2)[:, None]).to(dtype)


@register("slcp_distractors")
class SLCPDistractors(SLCP):
    """sbibm's SLCP with Distractors task: ``slcp`` plus 92 distractors, shuffled."""

    description = "sbibm slcp_distractors: slcp's 8 values among 92 t-mixture distractors"
    x_shape = (100,)

    def _simulate(self, theta: Tensor, generator: torch.Generator | None) -> Tensor:
        informative = super()._simulate(theta, generator)
        noise = draw_distractors(theta.shape[0], generator, theta.device, theta.dtype)
        permutation = distractor_mixture()[2].to(theta.device)
        return torch.cat([informative, noise], dim=1)[:, permutation]

    def informative(self, x: Tensor) -> Tensor:
        """``slcp``'s 8 values of ``x (..., 100)``, ``(..., 8)``."""
        permutation = distractor_mixture()[2].to(x.device)
        return x[..., torch.argsort(permutation)[:8]]

    def reference_target(self, x: Tensor):
        """``slcp``'s posterior of the informative values of ``x (B, 100)``."""
        return super().reference_target(self.informative(x))

    def posterior(self, x_obs: Tensor) -> StoredPosterior | MCMCPosterior:
        """``slcp``'s posterior given the informative values (stored for its standard ones)."""
        return SLCP().posterior(self.informative(self.check_x_obs(x_obs)))
