r"""sbibm's ``two_moons``: a crescent-shaped bimodal posterior in two dimensions.

.. math:: \theta \sim \mathcal{U}([-1, 1]^2), \quad a \sim \mathcal{U}(-\tfrac\pi2, \tfrac\pi2),
          \quad r \sim \mathcal{N}(0.1, 0.01^2), \quad
          x = \begin{pmatrix} r\cos a + 0.25 \\ r \sin a \end{pmatrix} +
              \begin{pmatrix} -|\theta_1 + \theta_2| / \sqrt2 \\
                              (-\theta_1 + \theta_2) / \sqrt2 \end{pmatrix}.

**Exact posterior.** The map :math:`f(\theta) = (-|z_1|, z_2)`, :math:`z = R_{-\pi/4}\theta`, is
two-to-one and area preserving, so :math:`p(\theta \mid x) \propto p_p(x - f(\theta))` on the
box (:math:`p_p` the density of the noise point :math:`p`). Drawing :math:`p` from the
simulator, setting :math:`|z_1| = p_1 - x_1`, :math:`z_2 = x_2 - p_2`, a random sign for
:math:`z_1`, rotating back and rejecting draws outside the box samples it exactly. That is
sbibm's reference sampler, with one fix: sbibm does not reject :math:`p_1 < x_1` (which no
:math:`\theta` can produce, as :math:`|z_1| \geq 0`) but flips its sign, which adds wrong draws
when :math:`x_1 > 0.25` (:math:`p_1 \geq 0.25`; none of sbibm's ten observations, whose
:math:`x_1 \leq 0.2`, is affected: our draws and sbibm's stored ones give C2ST 0.494-0.503).
:func:`log_likelihood` is the exact density
:math:`p_p(u, v) = \mathcal{N}(\rho; 0.1, 0.01^2) / (\pi \rho)` (polar coordinates
:math:`\rho = |(u - 0.25, v)|`, the Jacobian :math:`1/\rho` that sbibm's ``_likelihood``
omits), used by the independent grid check in the tests.

Standard observations: sbibm's seeds for this task (below); identical to sbibm's stored ones.

References:
    Lueckmann et al., "Benchmarking Simulation-Based Inference", AISTATS 2021,
    https://arxiv.org/abs/2101.04653 (appendix T.8, Two Moons)

    Greenberg, Nonnenmacher, Macke, "Automatic Posterior Transformation for Likelihood-Free
    Inference", ICML 2019, https://arxiv.org/abs/1905.07488 (the task's origin)

    sbibm (commit f0bc440), ``sbibm/tasks/two_moons/task.py``
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from . import register
from ._base import BoxUniform, Simulator, _target
from ._sbibm import StandardObservations

__all__ = ["TwoMoons", "TwoMoonsPosterior", "log_likelihood"]

R_LOC, R_SCALE, OFFSET = 0.1, 0.01, 0.25
SQRT_HALF = math.sqrt(0.5)
MAX_PROPOSALS = 10**8  # total proposals before an observation is refused as impossible


def _noise_point(n: int, generator, device, dtype) -> Tensor:
    """Draws of the simulator's noise point ``p`` (before the shift by ``f(theta)``), ``(n, 2)``.

    Consumes the stream as sbibm's pyro ``Uniform`` then ``Normal`` draws do.
    """
    like = {"device": device, "dtype": dtype}
    low, high = torch.tensor(-math.pi / 2, **like), torch.tensor(math.pi / 2, **like)
    a = low + torch.rand(n, 1, generator=generator, **like) * (high - low)
    r = R_LOC + R_SCALE * torch.randn(n, 1, generator=generator, **like)
    return torch.cat([torch.cos(a) * r + OFFSET, torch.sin(a) * r], dim=1)


def _rotated(theta: Tensor) -> tuple[Tensor, Tensor]:
    r""":math:`z = R_{-\pi/4}\theta`, computed as sbibm does."""
    angle = torch.tensor(-math.pi / 4, device=theta.device, dtype=theta.dtype)
    c, s = torch.cos(angle), torch.sin(angle)
    return c * theta[..., 0] - s * theta[..., 1], s * theta[..., 0] + c * theta[..., 1]


def log_likelihood(theta: Tensor, x: Tensor) -> Tensor:
    """Exact :math:`\\log p(x \\mid \\theta)` for ``theta (..., 2)`` and ``x (2,)``."""
    z1, z2 = _rotated(theta)
    u, v = x[0] + z1.abs() - OFFSET, x[1] - z2
    rho = torch.sqrt(u**2 + v**2)
    # r < 0 (probability ~1e-23) maps to the half-plane u < 0.
    r = torch.where(u >= 0, rho, -rho)
    log_normal = -0.5 * ((r - R_LOC) / R_SCALE) ** 2 - math.log(R_SCALE * math.sqrt(2 * math.pi))
    return log_normal - torch.log(math.pi * rho)


class TwoMoonsPosterior:
    """Exact posterior of ``two_moons`` by the rejection scheme of the module docstring.

    Arguments:
        x: The observation ``(2,)``.
    """

    def __init__(self, x: Tensor):
        self.x = x.double()

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
        n, found, proposed, kept = math.prod(shape), 0, 0, []
        while found < n:
            if proposed >= MAX_PROPOSALS:
                raise ValueError(
                    f"two_moons: x_obs {self.x.tolist()} leaves (almost) no posterior mass in "
                    f"the prior box ({found} of {proposed} proposals accepted)"
                )
            rate = max(found, 1) / max(proposed, 1)  # acceptance so far (1 at the start)
            m = min(max(int(1.2 * (n - found) / rate), 4096), 1_000_000)
            kept.append(self._proposals(m, generator, device))
            found, proposed = found + len(kept[-1]), proposed + m
        return torch.cat(kept)[:n].reshape(*shape, 2).to(dtype)

    def _proposals(self, m: int, generator, device) -> Tensor:
        x = self.x.to(device)
        p = _noise_point(m, generator, device, torch.float64)
        sign = torch.where(torch.rand(m, generator=generator, device=device) < 0.5, -1.0, 1.0)
        z1 = sign.double() * (p[:, 0] - x[0])
        z2 = x[1] - p[:, 1]
        theta = torch.stack([(z1 - z2) * SQRT_HALF, (z1 + z2) * SQRT_HALF], dim=-1)
        valid = (p[:, 0] >= x[0]) & (theta.abs() <= 1).all(dim=-1)
        return theta[valid]


@register("two_moons")
class TwoMoons(StandardObservations, Simulator):
    r"""sbibm's Two Moons task: a crescent-shaped, bimodal posterior in :math:`[-1, 1]^2`."""

    kind = "point"
    description = "sbibm two_moons: crescent-shaped bimodal posterior, 2-d"
    differentiable = True
    parameter_names = ("theta1", "theta2")
    x_shape = (2,)
    observation_seeds = (
        1000011, 1000001, 1000002, 1000003, 1000013, 1000005, 1000006, 1000007, 1000008, 1000009
    )  # fmt: skip

    def __init__(self):
        self.prior = BoxUniform([-1.0, -1.0], [1.0, 1.0])

    def _simulate(self, theta: Tensor, generator: torch.Generator | None) -> Tensor:
        p = _noise_point(theta.shape[0], generator, theta.device, theta.dtype)
        z1, z2 = _rotated(theta)
        return p + torch.stack([-z1.abs(), z2], dim=-1)

    def posterior(self, x_obs: Tensor) -> TwoMoonsPosterior:
        """The exact posterior for ``x_obs (1, 2)``."""
        return TwoMoonsPosterior(self.check_x_obs(x_obs)[0])
