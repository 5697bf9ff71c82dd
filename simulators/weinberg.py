r"""Forward-backward asymmetry in :math:`e^+e^- \to \mu^+\mu^-`: the AVO paper's physics toy.

The observable is :math:`x = \cos A`, the cosine of the muon scattering angle, with the
leading-order differential cross-section

.. math:: f(x \mid \theta) \propto 1 + x^2 + c(\theta)\, x, \qquad x \in [-1, 1],
.. math:: c(\theta) = 2 \tanh\!\Big(10\, \frac{2 E_{beam} - M_Z}{M_Z}\Big)\, \frac{G_f}{G_f^{nom}},
          \quad M_Z = 90,\ G_f^{nom} = 1,

for :math:`\theta = (E_{beam}, G_f)`, prior uniform on :math:`[40, 50] \times [0.5, 1.5]`,
:math:`\theta^* = (42, 0.9)` (:math:`c \approx -1.049`) and 50,000 observed events, as in
section 4.2 of the AVO paper and its code (``code/weinberg.py`` of glouppe/paper-avo).

For :math:`|c| \le 2` the density is :math:`\frac38 (1 + x^2 + c x)`, with :math:`E[x] = c/4` and
:math:`E[x^2] = 2/5`. The prior box reaches :math:`|c| \approx 2.41`, where the polynomial is
negative near :math:`x = -\mathrm{sign}(c)`; there the density is *clipped at zero and
renormalized* (what rejection sampling from the unnormalized cross-section produces, and so what
the paper's sampler does). The normalizer is :math:`F(h) - F(l)` with the antiderivative
:math:`F(x) = x + x^3/3 + c x^2/2` and :math:`[l, h]` the part of :math:`[-1, 1]` where the
polynomial is positive (bounded by its root :math:`-\mathrm{sign}(c)\, 2/(|c| + \sqrt{c^2-4})`).

The likelihood depends on :math:`\theta` only through :math:`c(\theta)`: the posterior is a ridge
along the curves of constant :math:`c`, and no method can recover :math:`\theta^*` itself, only
its :math:`c`.

Sampling is exact and vectorized. With :math:`c' = \mathrm{clip}(c, -2, 2)`, :math:`|x|` is drawn
from :math:`\propto 1 + y^2` on :math:`[0, 1]` by inverting its CDF, the cubic
:math:`y^3 + 3y = 4u` whose real root is :math:`y = A - 1/A`,
:math:`A = (2u + \sqrt{4u^2 + 1})^{1/3}` (Cardano; evaluated as :math:`4u / (y^2 + 3)` to keep
full relative precision near 0), and its sign
is :math:`+` with probability :math:`(1 + y^2 + c'y) / (2(1 + y^2))`; this is exactly
:math:`\frac38(1 + x^2 + c'x)`. Rows with :math:`|c| > 2` accept that proposal with probability
:math:`\max(0, 1 + x^2 + cx) / (M (1 + x^2 + c'x))`, :math:`M = 1 + (|c| - 2)/4` (a bound since
:math:`|x|/(1 + |x|)^2 \le 1/4`), and redraw otherwise: rejection only where it is needed.

Optional detector effects (off by default), applied in this order: Gaussian smearing of the
measured :math:`\cos A` with standard deviation ``resolution``, then an acceptance cut keeping
events whose *measured* :math:`|\cos A| \le` ``acceptance``; rejected events are redrawn, so every
row still gets one accepted event. Both make the simulator more realistic and no more
differentiable. With smearing the measured value may lie outside ``[-1, 1]`` unless a cut is set.

References:
    Louppe, Hermans, Cranmer, "Adversarial Variational Optimization of Non-Differentiable
    Simulators", AISTATS 2019, https://arxiv.org/abs/1707.07113

    Peskin, Schroeder, *An Introduction to Quantum Field Theory*, 1995, section 5.1
    (:math:`e^+e^- \to \mu^+\mu^-` angular distribution).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import Tensor

from . import register
from ._base import BoxUniform, Simulator, _as_vector, check_positive_float, check_positive_int

__all__ = ["Weinberg", "asymmetry", "cross_section_cdf", "cross_section_density"]

Z_MASS = 90.0
GF_NOMINAL = 1.0
MAX_RESOLUTION = 1.0
MIN_ACCEPTANCE = 0.1  # keeps >= 7% of events, so that redrawing stays cheap


def asymmetry(theta: Tensor) -> Tensor:
    r"""The asymmetry coefficient :math:`c(\theta)`, ``(..., 2) -> (...)``.

    Arguments:
        theta: Parameters :math:`(E_{beam}, G_f)`, shape ``(..., 2)``.

    Returns:
        :math:`c = 2 \tanh(10 (2 E_{beam} - M_Z) / M_Z)\, G_f / G_f^{nom}`, shape ``(...)``.
    """
    e_beam, g_f = theta[..., 0], theta[..., 1]
    return 2.0 * torch.tanh(10.0 * (2.0 * e_beam - Z_MASS) / Z_MASS) * g_f / GF_NOMINAL


def _antiderivative(x: Tensor, c: Tensor) -> Tensor:
    return x + x**3 / 3 + c * x**2 / 2


def _support(c: Tensor) -> tuple[Tensor, Tensor]:
    """The interval of ``[-1, 1]`` where ``1 + x^2 + c x >= 0`` (all of it for ``|c| <= 2``)."""
    root = 2.0 / (c.abs() + torch.sqrt((c**2 - 4.0).clamp(min=0.0)))  # |inner root|, stable
    low = torch.where(c > 0, torch.maximum(-root, -torch.ones_like(c)), -torch.ones_like(c))
    high = torch.where(c < 0, torch.minimum(root, torch.ones_like(c)), torch.ones_like(c))
    return low, high


def cross_section_cdf(x: Tensor, c: Tensor) -> Tensor:
    """CDF of the (clipped, normalized) cross-section in ``x = cos A``; ``x`` and ``c`` broadcast."""
    low, high = _support(c)
    start = _antiderivative(low, c)
    total = _antiderivative(high, c) - start
    return (_antiderivative(torch.minimum(torch.maximum(x, low), high), c) - start) / total


def cross_section_density(x: Tensor, c: Tensor) -> Tensor:
    """Normalized density :math:`\\max(0, 1 + x^2 + cx) / Z(c)` on ``[-1, 1]``; zero outside."""
    low, high = _support(c)
    total = _antiderivative(high, c) - _antiderivative(low, c)
    value = (1 + x**2 + c * x).clamp(min=0.0) / total
    return torch.where(x.abs() <= 1, value, torch.zeros_like(value))


def _abs_cos(u: Tensor) -> Tensor:
    """Inverse CDF of ``|x|`` under ``(1 + y^2) 3/4`` on ``[0, 1]``: the root of ``y^3 + 3y = 4u``."""
    a = (2.0 * u + torch.sqrt(4.0 * u * u + 1.0)).pow(1.0 / 3.0)
    y = a - 1.0 / a  # Cardano's formula: the product of its two cube roots is -1
    return 4.0 * u / (y * y + 3.0)  # the same root, without the cancellation of a - 1/a near 0


def _propose(c: Tensor, generator: torch.Generator | None) -> Tensor:
    """Exact draws from ``3/8 (1 + x^2 + c' x)``, ``c' = clip(c, -2, 2)``, no rejection."""
    u, v = torch.rand(2, *c.shape, generator=generator, device=c.device, dtype=c.dtype)
    y = _abs_cos(u)
    plus = (1.0 + y * y + c.clamp(-2.0, 2.0) * y) / (2.0 * (1.0 + y * y))
    return torch.where(v < plus, y, -y)


def _accept_clipped(x: Tensor, c: Tensor, generator: torch.Generator | None) -> Tensor:
    """Rejection step turning proposals at ``clip(c, -2, 2)`` into draws of the clipped density.

    Only rows with ``|c| > 2`` draw a uniform; the others always accept (their bound is 1).
    """
    keep = torch.ones_like(x, dtype=torch.bool)
    wide = (c.abs() > 2.0).nonzero()[:, 0]
    if wide.numel() == 0:
        return keep
    x, c = x[wide], c[wide]
    w = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    bound = 1.0 + (c.abs() - 2.0) / 4.0
    proposal = 1.0 + x * x + c.clamp(-2.0, 2.0) * x
    keep[wide] = w * bound * proposal <= (1.0 + x * x + c * x).clamp(min=0.0)
    return keep


@register("weinberg")
class Weinberg(Simulator):
    r"""Angular distribution of :math:`e^+e^- \to \mu^+\mu^-`, :math:`x = \cos A`, exact sampler.

    Arguments:
        n_obs: Default number of observed events (50,000 in the AVO paper).
        theta_star: True :math:`(E_{beam}, G_f)` of the observed data.
        resolution: Standard deviation of the Gaussian smearing of the measured
            :math:`\cos A`, in ``[0, 1]`` (0: no smearing).
        acceptance: Keep only events with measured :math:`|\cos A| \le` ``acceptance``, in
            ``[0.1, 1]``, redrawing the others; ``None``: no cut.
    """

    kind = "point"
    description = "e+e- -> mu+mu- angular distribution x = cos A (AVO paper), closed-form density"
    differentiable = False
    parameter_names = ("E_beam", "G_f")
    x_shape = (1,)

    option_values: ClassVar[dict[str, tuple]] = {
        "n_obs": (1, 100),
        "theta_star": ((48.0, 1.4),),
        "resolution": (0.0, 0.1),
        "acceptance": (0.9,),
    }

    def __init__(
        self,
        *,
        n_obs: int = 50_000,
        theta_star: Sequence[float] = (42.0, 0.9),
        resolution: float = 0.0,
        acceptance: float | None = None,
    ):
        check_positive_int("weinberg", "n_obs", n_obs)
        check_positive_float("weinberg", "resolution", resolution, allow_zero=True)
        if resolution > MAX_RESOLUTION:
            raise ValueError(f"weinberg: resolution must be in [0, 1], got {resolution!r}")
        if acceptance is not None:
            check_positive_float("weinberg", "acceptance", acceptance)
            if not MIN_ACCEPTANCE <= acceptance <= 1.0:
                raise ValueError(
                    f"weinberg: acceptance must be None or in [{MIN_ACCEPTANCE}, 1], "
                    f"got {acceptance!r}"
                )
        self.n_obs, self.resolution, self.acceptance = n_obs, float(resolution), acceptance
        self.prior = BoxUniform([40.0, 0.5], [50.0, 1.5])
        self.true_parameters = self._check_star(theta_star)

    def _check_star(self, theta_star: Sequence[float]) -> Tensor:
        try:
            star = _as_vector(theta_star, 2)
        except (ValueError, TypeError) as error:
            raise ValueError(f"weinberg: theta_star: {error}") from None
        if not bool(torch.isfinite(self.prior.log_prob(star))):
            raise ValueError(
                f"weinberg: theta_star must lie in the prior box [40, 50] x [0.5, 1.5], "
                f"got {star.tolist()}"
            )
        return star.float()

    def _simulate(self, theta: Tensor, generator: torch.Generator | None) -> Tensor:
        c = asymmetry(theta)
        x, keep = self._draw(c, generator)
        pending = (~keep).nonzero()[:, 0]
        while pending.numel() > 0:  # redraw the rejected rows, all of them at once per round
            draw, keep = self._draw(c[pending], generator)
            x[pending[keep]] = draw[keep]
            pending = pending[~keep]
        return x[:, None]

    def _draw(self, c: Tensor, generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
        """One proposal per row and whether it is accepted (clipping, then detector cuts)."""
        x = _propose(c, generator)
        keep = _accept_clipped(x, c, generator)
        if self.resolution > 0:
            noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
            x = x + self.resolution * noise
        if self.acceptance is not None:
            keep = keep & (x.abs() <= self.acceptance)
        return x, keep

    def identified(self, theta: Tensor) -> Tensor:
        """The asymmetry ``c(theta)``, shape ``(n, 1)``: the data identify nothing else."""
        return asymmetry(theta)[..., None]

    def summarize(self, x: Tensor) -> Tensor:
        r"""Set means of :math:`x` and :math:`x^2`, ``(..., m, 1) -> (..., 2)``.

        Without detector effects :math:`E[x] = c/4` identifies :math:`c(\theta)`, all the data can
        tell about :math:`\theta`; :math:`E[x^2]` (2/5 for :math:`|c| \le 2`) reveals clipping
        and smearing.
        """
        return torch.cat([x.mean(dim=-2), (x**2).mean(dim=-2)], dim=-1)

    def _check_closed_form(self) -> None:
        if self.resolution > 0:
            raise ValueError(
                f"weinberg: no closed form with smearing (resolution={self.resolution}); "
                "use resolution=0"
            )

    def density(self, x: Tensor, theta: Tensor) -> Tensor:
        """Normalized density of the observed :math:`\\cos A` (acceptance cut included).

        Arguments:
            x: Observations, shape ``(..., 1)``.
            theta: Parameters, shape ``(..., 2)``, broadcastable with ``x``'s leading shape.

        Returns:
            Densities of shape ``(...)``. Raises ``ValueError`` when smearing is on.
        """
        self._check_closed_form()
        c, x = asymmetry(theta), x[..., 0]
        value = cross_section_density(x, c)
        if self.acceptance is None:
            return value
        a = torch.full_like(c, self.acceptance)
        mass = cross_section_cdf(a, c) - cross_section_cdf(-a, c)
        return torch.where(x.abs() <= self.acceptance, value / mass, torch.zeros_like(value))

    def cdf(self, x: Tensor, theta: Tensor) -> Tensor:
        """CDF of the observed :math:`\\cos A`; shapes as in :meth:`density`."""
        self._check_closed_form()
        c, x = asymmetry(theta), x[..., 0]
        if self.acceptance is None:
            return cross_section_cdf(x, c)
        a = torch.full_like(c, self.acceptance)
        low, high = cross_section_cdf(-a, c), cross_section_cdf(a, c)
        return (
            (cross_section_cdf(torch.minimum(torch.maximum(x, -a), a), c) - low) / (high - low)
        ).clamp(0.0, 1.0)
