r"""sbibm's ``gaussian_mixture``: a 2-d location model whose noise is a mixture of two scales.

.. math:: \theta \sim \mathcal{U}([-10, 10]^2), \qquad
          x \mid \theta \sim \tfrac12 \mathcal{N}(\theta, I_2) + \tfrac12 \mathcal{N}(\theta, 0.01 I_2).

The posterior is the same mixture centred on :math:`x`, each component truncated to the box
and weighted by half its mass inside it:
:math:`p(\theta \mid x) = \sum_k w_k \, \mathcal{N}_{[-10, 10]^2}(\theta; x, \sigma_k^2 I)` with
:math:`w_k \propto \tfrac12 Z_k` (:math:`Z_k` the untruncated component's mass in the box), which
is exactly what sbibm's rejection sampler draws from. We sample it exactly (component, then
inversion of the truncated CDFs) and give its log density. Standard observations: seeds
``1_000_000 + k - 1``; their :math:`\theta^*` are sbibm's, their data are not (today's
``torch.multinomial`` consumes the random stream differently from the torch sbibm ran).

References:
    Lueckmann et al., "Benchmarking Simulation-Based Inference", AISTATS 2021,
    https://arxiv.org/abs/2101.04653 (appendix T.7, Gaussian Mixture)

    Sisson, Fan, Tanaka, "Sequential Monte Carlo without likelihoods", PNAS 104(6), 2007 (the
    original mixture example).

    sbibm (commit f0bc440), ``sbibm/tasks/gaussian_mixture/task.py``
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from . import register
from ._base import BoxUniform, Simulator, _target
from ._distributions import TruncatedDiagNormal
from ._sbibm import StandardObservations

__all__ = ["GaussianMixture", "GaussianMixturePosterior"]

BOUND = 10.0
SCALES = (1.0, 0.1)  # standard deviations of the two equally weighted components


class GaussianMixturePosterior:
    """Exact posterior: two truncated normals centred on ``x`` with weights ``w_k``.

    Arguments:
        x: The observation ``(2,)``.
        low: Lower corner of the prior box ``(2,)``.
        high: Upper corner of the prior box ``(2,)``.
    """

    def __init__(self, x: Tensor, low: Tensor, high: Tensor):
        self.components = [TruncatedDiagNormal(x, s, low, high) for s in SCALES]
        log_mass = torch.stack([c.log_mass() for c in self.components])
        self.log_weights = torch.log_softmax(log_mass, dim=0)  # equal priors 1/2 cancel

    @property
    def dim(self) -> int:
        return 2

    def sample(
        self,
        shape: Sequence[int] = (),
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> Tensor:
        """Exact samples of shape ``(*shape, 2)``."""
        device = _target(generator, device)
        u = torch.rand(*shape, 1, generator=generator, device=device, dtype=torch.float64)
        draws = [c.sample(shape, generator, device, torch.float64) for c in self.components]
        first = u < torch.exp(self.log_weights[0])
        return torch.where(first, draws[0], draws[1]).to(dtype)

    def log_prob(self, theta: Tensor) -> Tensor:
        """Log density of ``theta`` ``(..., 2)``; ``-inf`` outside the box."""
        terms = [
            w + c.log_prob(theta) for w, c in zip(self.log_weights, self.components, strict=True)
        ]
        return torch.logsumexp(torch.stack(terms), dim=0)


@register("gaussian_mixture")
class GaussianMixture(StandardObservations, Simulator):
    r"""sbibm's Gaussian Mixture task: :math:`x \sim \frac12\mathcal{N}(\theta, I) +
    \frac12\mathcal{N}(\theta, 0.01 I)`, :math:`\theta` uniform on :math:`[-10, 10]^2`."""

    kind = "point"
    description = "sbibm gaussian_mixture: x ~ N(theta, I)/2 + N(theta, 0.01 I)/2, 2-d"
    differentiable = True
    parameter_names = ("theta1", "theta2")
    x_shape = (2,)

    def __init__(self):
        self.prior = BoxUniform([-BOUND] * 2, [BOUND] * 2)

    def _simulate(self, theta: Tensor, generator: torch.Generator | None) -> Tensor:
        # The component, then the normal draw, consumed as sbibm's pyro Categorical/Normal do.
        weights = torch.full((theta.shape[0], 2), 0.5, device=theta.device, dtype=theta.dtype)
        component = torch.multinomial(weights, 1, replacement=True, generator=generator)
        scale = torch.tensor(SCALES, device=theta.device, dtype=theta.dtype)[component]
        noise = torch.randn(
            theta.shape, generator=generator, device=theta.device, dtype=theta.dtype
        )
        return theta + scale * noise  # torch.normal(theta, scale), with pathwise gradients

    def posterior(self, x_obs: Tensor) -> GaussianMixturePosterior:
        """The exact posterior for ``x_obs (1, 2)``."""
        x = self.check_x_obs(x_obs)[0]
        return GaussianMixturePosterior(x, self.prior.low, self.prior.high)
