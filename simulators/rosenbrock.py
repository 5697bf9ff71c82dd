r"""Stochastic inverse problem on the Rosenbrock function (a *population* task).

The mechanistic model is the Rosenbrock function of two parameters,

.. math:: y = M(\theta) = 100\,(\theta_2 - \theta_1^2)^2 + (1 - \theta_1)^2 ,

and the observed outputs :math:`y \sim P_Y` follow a Gaussian with mean 350 truncated to a
window. The task is to find a *distribution* :math:`P_\theta` whose push-forward through
:math:`M` matches :math:`P_Y`; the answer is not unique (a curved valley of parameters maps to each
:math:`y`), so tasks are scored in data space only and ``true_parameters`` is ``None``.

Source: Parikh, Kozloski, Gurev, "Integration of AI and mechanistic modeling in generative
adversarial networks for stochastic inverse problems", 2020, https://arxiv.org/abs/2009.08267
(figures 5-6 of the cGAN seed notes). The seed gives only "a truncated Gaussian with mean 350";
our choices, documented here and in the options: prior uniform on the box
:math:`[-2, 2] \times [-1, 3]` (the customary Rosenbrock domain; :math:`M` ranges over
``[0, 2509]`` there), :math:`P_Y = \mathcal{N}(350, 50^2)` truncated to ``[250, 450]``
(:math:`\pm 2\sigma`).
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import Tensor

from . import register
from ._base import BoxUniform, Simulator, check_positive_float, check_positive_int

__all__ = ["Rosenbrock", "rosenbrock"]


def rosenbrock(theta: Tensor) -> Tensor:
    """The Rosenbrock function of ``theta`` of shape ``(n, 2)``; returns shape ``(n, 1)``."""
    t1, t2 = theta[:, :1], theta[:, 1:2]
    return 100.0 * (t2 - t1**2) ** 2 + (1.0 - t1) ** 2


@register("rosenbrock")
class Rosenbrock(Simulator):
    r"""Rosenbrock stochastic inverse problem: find :math:`P_\theta` with :math:`M_\# P_\theta = P_Y`.

    Arguments:
        y_mean: Mean of the (untruncated) observed Gaussian.
        y_std: Its standard deviation.
        y_low: Lower truncation point of :math:`P_Y`.
        y_high: Upper truncation point of :math:`P_Y`.
        noise_std: Optional Gaussian noise added to :math:`M(\theta)` (0: deterministic model).
        n_obs: Default number of observed outputs.
    """

    kind = "population"
    description = "Rosenbrock y = 100(t2 - t1^2)^2 + (1 - t1)^2; find P_theta matching y ~ TN(350)"
    differentiable = True
    parameter_names = ("theta1", "theta2")
    x_shape = (1,)
    option_values: ClassVar[dict[str, tuple]] = {
        "n_obs": (1, 100),
        "noise_std": (5.0,),
        "y_mean": (100.0,),
        "y_low": (0.0,),
    }

    def __init__(
        self,
        *,
        y_mean: float = 350.0,
        y_std: float = 50.0,
        y_low: float = 250.0,
        y_high: float = 450.0,
        noise_std: float = 0.0,
        n_obs: int = 2000,
    ):
        check_positive_float("rosenbrock", "y_std", y_std)
        check_positive_float("rosenbrock", "noise_std", noise_std, allow_zero=True)
        check_positive_int("rosenbrock", "n_obs", n_obs)
        for field, value in (("y_mean", y_mean), ("y_low", y_low), ("y_high", y_high)):
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
            ):
                raise ValueError(f"rosenbrock: {field} must be a finite number, got {value!r}")
        if not 0 <= y_low < y_high:
            raise ValueError(f"rosenbrock: need 0 <= y_low < y_high, got {y_low!r}, {y_high!r}")
        self.y_mean, self.y_std = float(y_mean), float(y_std)
        self.y_low, self.y_high = float(y_low), float(y_high)
        self.noise_std, self.n_obs = float(noise_std), n_obs
        self.prior = BoxUniform([-2.0, -1.0], [2.0, 3.0])
        self.true_parameters = None

    def _simulate(self, theta: Tensor, generator: torch.Generator | None) -> Tensor:
        y = rosenbrock(theta)
        if self.noise_std > 0:
            noise = torch.randn(y.shape, generator=generator, device=y.device, dtype=y.dtype)
            y = y + self.noise_std * noise
        return y

    def _standardized_bounds(self) -> tuple[float, float]:
        return (self.y_low - self.y_mean) / self.y_std, (self.y_high - self.y_mean) / self.y_std

    def observe(self, n: int | None = None, generator: torch.Generator | None = None) -> Tensor:
        """Draws ``n`` outputs from the truncated Gaussian :math:`P_Y` (exact inverse CDF)."""
        n = self.check_count(n)
        device = generator.device if generator is not None else torch.device("cpu")
        a, b = (
            torch.special.ndtr(torch.tensor(v, dtype=torch.float64))
            for v in self._standardized_bounds()
        )
        u = torch.rand(n, 1, generator=generator, device=device, dtype=torch.float64)
        z = torch.special.ndtri(a + (b - a) * u)
        y = (self.y_mean + self.y_std * z).clamp(self.y_low, self.y_high)
        return y.float()

    def observed_density(self, y: Tensor) -> Tensor:
        """The closed-form density of :math:`P_Y` at ``y`` (any shape)."""
        y = torch.as_tensor(y, dtype=torch.float64)
        a, b = self._standardized_bounds()
        mass = 0.5 * (math.erf(b / math.sqrt(2)) - math.erf(a / math.sqrt(2)))
        z = (y - self.y_mean) / self.y_std
        pdf = torch.exp(-0.5 * z**2) / (self.y_std * math.sqrt(2 * math.pi) * mass)
        inside = (y >= self.y_low) & (y <= self.y_high)
        return torch.where(inside, pdf, torch.zeros_like(pdf))
