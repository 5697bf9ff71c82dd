r"""sbibm's ``gaussian_linear_uniform``: a 10-d Gaussian location model with a uniform prior.

.. math:: \theta \sim \mathcal{U}([-1, 1]^{10}), \qquad
          x \mid \theta \sim \mathcal{N}(\theta, 0.1 I_{10})

(sbibm's ``simulator_scale = 0.1`` is the variance: its precision matrix is ``inverse(0.1 I)``).
The posterior is :math:`\mathcal{N}(x, 0.1 I)` truncated to the box, a product of ten
truncated normals, sampled exactly by inversion of their CDFs; sbibm sampled it by rejection
(the independent route the tests compare with). Standard observations: seeds
``1_000_000 + k - 1`` (identical to sbibm's stored ones).

References:
    Lueckmann et al., "Benchmarking Simulation-Based Inference", AISTATS 2021,
    https://arxiv.org/abs/2101.04653 (appendix T.2, Gaussian Linear Uniform)

    sbibm (commit f0bc440), ``sbibm/tasks/gaussian_linear_uniform/task.py``
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from . import register
from ._base import BoxUniform, Simulator
from ._distributions import TruncatedDiagNormal
from ._sbibm import StandardObservations

__all__ = ["GaussianLinearUniform"]

DIM, BOUND, VARIANCE = 10, 1.0, 0.1


@register("gaussian_linear_uniform")
class GaussianLinearUniform(StandardObservations, Simulator):
    r"""sbibm's Gaussian Linear Uniform task: :math:`x \sim \mathcal{N}(\theta, 0.1 I_{10})`,
    :math:`\theta` uniform on :math:`[-1, 1]^{10}`, exact posterior."""

    kind = "point"
    description = "sbibm gaussian_linear_uniform: x ~ N(theta, 0.1 I), prior U([-1, 1]^10)"
    differentiable = True
    parameter_names = tuple(f"theta{i + 1}" for i in range(DIM))
    x_shape = (DIM,)

    def __init__(self):
        self.prior = BoxUniform([-BOUND] * DIM, [BOUND] * DIM)

    def _simulate(self, theta: Tensor, generator: torch.Generator | None) -> Tensor:
        noise = torch.randn(
            theta.shape, generator=generator, device=theta.device, dtype=theta.dtype
        )
        return theta + math.sqrt(VARIANCE) * noise

    def posterior(self, x_obs: Tensor) -> TruncatedDiagNormal:
        """The exact posterior, :math:`\\mathcal{N}(x, 0.1 I)` truncated to :math:`[-1, 1]^{10}`."""
        x = self.check_x_obs(x_obs)[0]
        return TruncatedDiagNormal(x, math.sqrt(VARIANCE), self.prior.low, self.prior.high)
