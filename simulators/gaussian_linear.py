r"""sbibm's ``gaussian_linear``: a 10-d Gaussian location model with a Gaussian prior.

.. math:: \theta \sim \mathcal{N}(0, 0.1 I_{10}), \qquad x \mid \theta \sim \mathcal{N}(\theta, 0.1 I_{10}).

This is ``get_simulator("gaussian", dim=10, prior_var=0.1, noise_var=0.1, n_obs=1)`` (sbibm's
``prior_scale`` and ``simulator_scale`` are the *variances*: its precision matrices are
``inverse(0.1 I)``), now with sbibm's ten standard observations (seeds ``1_000_000 + k - 1``;
identical to sbibm's stored ones).
The reference posterior is the closed form :math:`\mathcal{N}(x/2, 0.05 I_{10})`, sampled
exactly for every observation (nothing is stored but the observations).

References:
    Lueckmann et al., "Benchmarking Simulation-Based Inference", AISTATS 2021,
    https://arxiv.org/abs/2101.04653 (appendix T.1, Gaussian Linear)

    sbibm (commit f0bc440), ``sbibm/tasks/gaussian_linear/task.py``
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import Tensor

from . import register
from ._base import DiagNormal
from ._sbibm import StandardObservations
from .gaussian import Gaussian

__all__ = ["GaussianLinear"]

DIM, VARIANCE = 10, 0.1


@register("gaussian_linear")
class GaussianLinear(StandardObservations, Gaussian):
    r"""sbibm's Gaussian Linear task: :math:`x \sim \mathcal{N}(\theta, 0.1 I_{10})`, exact posterior."""

    kind = "point"
    description = "sbibm gaussian_linear: x ~ N(theta, 0.1 I), prior N(0, 0.1 I), 10-d"
    differentiable = True
    option_values: ClassVar[dict[str, tuple]] = {}  # sbibm's task has no options

    def __init__(self):
        # The fields Gaussian.__init__ sets for these options (tested equal); theta* is the
        # standard observation 1's, so Gaussian's default theta_star is not used.
        self.dim, self.n_obs, self.noise_var = DIM, 1, VARIANCE
        self.parameter_names = tuple(f"theta{i + 1}" for i in range(DIM))
        self.x_shape = (DIM,)
        self.prior = DiagNormal(
            torch.zeros(DIM, dtype=torch.float64),
            torch.full((DIM,), math.sqrt(VARIANCE), dtype=torch.float64),
        )

    def posterior(self, x_obs: Tensor) -> DiagNormal:
        """The exact posterior :math:`\\mathcal{N}(x/2, 0.05 I)` for ``x_obs (1, 10)``."""
        return super().posterior(self.check_x_obs(x_obs))
