r"""Two-dimensional Ising model on a periodic :math:`L \times L` lattice (a *point* task).

.. math:: p(s \mid T, h) \propto \exp\Big(\frac{1}{T}\Big[\sum_{\langle ij \rangle} s_i s_j
          + h \sum_i s_i\Big]\Big), \qquad s_i = \pm 1,\ J = 1,\ k_B = 1 .

Parameters: the temperature :math:`T` (``field=False``, :math:`\theta = (T,)`) or
:math:`\theta = (T, h)` with an external field (``field=True``). Each row of ``theta`` is an
independent Markov chain at its own parameters: checkerboard Metropolis sweeps from the
all-up state plus a heat-bath global spin flip (see :mod:`simulators._ising_kernels`). The
ordered start is at equilibrium at low :math:`T` and relaxes in a few sweeps above
:math:`T_c`, and the global flip moves chains between the two ordered phases, so random
(hot) starts stuck in stripe states are avoided. ``sweeps`` must exceed the relaxation time,
which grows like :math:`L^{z}`, :math:`z \approx 2.17`, at :math:`T_c = 2 / \ln(1 + \sqrt 2)
\approx 2.269` (critical slowing down): ``scripts/ising_autocorrelation.py`` measures it. The
default ``size=16, sweeps=250`` is 25 integrated autocorrelation times of :math:`|m|` at
:math:`T_c` (10 sweeps; 40 at :math:`L = 32`, where ``sweeps`` must grow to ~1000) and
simulates 1000 chains in ~0.07 s on one CPU core (multi-spin-coded numba kernel, ~1e9 spin
updates/s; 0.15 s with a field; 3-5 s with the torch kernel on CPU); larger lattices give sharper
statistics but cost :math:`L^{2+z}` per chain.

Observation: by default the summary ``x = (e, |m|)``, the coupling energy per spin
:math:`e = -\frac{1}{N}\sum_{\langle ij\rangle} s_i s_j` and the absolute magnetization per
spin; with a field the signed :math:`m` instead of :math:`|m|` (its sign carries the sign of
:math:`h`). ``output="lattice"`` returns the spins themselves, shape ``(L, L)``.

Exact references: Onsager's energy and Yang's magnetization (infinite lattice), Kaufman's
partition function of the finite :math:`L \times L` torus (hence its exact energy and, as the
energy is sufficient for :math:`T` at :math:`h = 0`, the exact posterior
:meth:`Ising.posterior`), and enumeration of lattices up to :math:`4 \times 4`.

Prior: uniform, :math:`T \in [1.5, 3.5]` (ordered to disordered phase around :math:`T_c`)
and :math:`h \in [-0.5, 0.5]`. :math:`\theta^* = (3.0,)` or :math:`(3.0, 0.1)`: in the
disordered phase, away from :math:`T_c`, where the correlation length (about 2 sites) is far
below :math:`L`, so the observed data carry no finite-size or equilibration artefacts.

References:
    Onsager, "Crystal statistics. I. A two-dimensional model with an order-disorder
    transition", Phys. Rev. 65, 117 (1944).

    Yang, "The spontaneous magnetization of a two-dimensional Ising model", Phys. Rev. 85,
    808 (1952).

    Kaufman, "Crystal statistics. II. Partition function evaluated by spinor analysis",
    Phys. Rev. 76, 1232 (1949); Beale, "Exact distribution of energies in the
    two-dimensional Ising model", Phys. Rev. Lett. 76, 78 (1996).

    Metropolis et al., "Equation of state calculations by fast computing machines",
    J. Chem. Phys. 21, 1087 (1953).
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Sequence
from typing import ClassVar

import torch
from scipy.special import ellipk
from torch import Tensor

from . import register
from ._base import (
    BoxUniform,
    Simulator,
    _as_vector,
    _target,
    check_positive_float,
    check_positive_int,
)
from ._ising_kernels import HAS_NUMBA, numba_sweeps, torch_sweeps

__all__ = [
    "CRITICAL_TEMPERATURE",
    "GridPosterior",
    "Ising",
    "exact_moments",
    "kaufman_energy",
    "kaufman_log_partition",
    "lattice_statistics",
    "onsager_energy",
    "onsager_magnetization",
]

CRITICAL_TEMPERATURE = 2.0 / math.log(1.0 + math.sqrt(2.0))
OUTPUTS = ("summary", "lattice")
BACKENDS = ("auto", "numba", "torch", "triton")
HAS_TRITON = importlib.util.find_spec("triton") is not None  # imported on first use only


def onsager_energy(temperature: float) -> float:
    r"""Exact energy per spin of the infinite lattice at :math:`h = 0` (Onsager 1944).

    .. math:: u = -\coth 2\beta \Big[1 + \frac{2}{\pi}(2 \tanh^2 2\beta - 1)\, K(k)\Big],
              \quad k = \frac{2 \sinh 2\beta}{\cosh^2 2\beta},

    with :math:`K` the complete elliptic integral of the first kind (``ellipk`` takes
    :math:`k^2`).
    """
    check_positive_float("ising", "temperature", temperature)
    beta = 1.0 / temperature
    k2 = min((2.0 * math.sinh(2 * beta) / math.cosh(2 * beta) ** 2) ** 2, 1.0)
    slope = 2.0 * math.tanh(2 * beta) ** 2 - 1.0  # zero at T_c, where K(k) diverges
    bracket = 1.0 + 2.0 / math.pi * slope * float(ellipk(k2)) if k2 < 1.0 else 1.0
    return -bracket / math.tanh(2 * beta)


def onsager_magnetization(temperature: float) -> float:
    r"""Exact spontaneous magnetization :math:`(1 - \sinh^{-4} 2\beta)^{1/8}` (Yang 1952), 0 above :math:`T_c`."""
    check_positive_float("ising", "temperature", temperature)
    if temperature >= CRITICAL_TEMPERATURE:
        return 0.0
    return (1.0 - math.sinh(2.0 / temperature) ** -4) ** 0.125


def _log_2cosh(a: Tensor) -> Tensor:
    return a.abs() + torch.log1p(torch.exp(-2 * a.abs()))


def _log_2sinh_abs(a: Tensor) -> Tensor:
    return a.abs() + torch.log1p(-torch.exp(-2 * a.abs()))


def kaufman_log_partition(size: int, temperature: float | Tensor) -> Tensor:
    r"""Exact :math:`\ln Z` of the periodic :math:`L \times L` lattice at :math:`h = 0` (Kaufman 1949).

    .. math:: Z = \tfrac12 (2 \sinh 2K)^{L^2/2} \sum_{i=1}^4 Z_i, \quad
              Z_{1,2} = \prod_{r=0}^{L-1} 2 \{\cosh, \sinh\}(L \gamma_{2r+1} / 2),

    :math:`Z_{3,4}` the same with :math:`\gamma_{2r}`, :math:`\cosh \gamma_k = \cosh 2K \coth 2K
    - \cos(\pi k / L)` and :math:`\gamma_0 = 2K + \ln \tanh K` (Beale, PRL 76, 78 (1996)).
    ``temperature`` of any shape; returns float64 of that shape.
    """
    coupling = 1.0 / torch.as_tensor(temperature, dtype=torch.float64)[..., None]
    k = torch.arange(2 * size, dtype=torch.float64)
    c = torch.cosh(2 * coupling) / torch.tanh(2 * coupling) - torch.cos(math.pi * k / size)
    gamma = torch.cat(
        [2 * coupling + torch.log(torch.tanh(coupling)), torch.acosh(c[..., 1:])], -1
    )
    odd, even = size * gamma[..., 1::2] / 2, size * gamma[..., 0::2] / 2
    terms = torch.stack(
        [_log_2cosh(odd), _log_2sinh_abs(odd), _log_2cosh(even), _log_2sinh_abs(even)], -1
    ).sum(-2)
    signs = torch.ones_like(terms)
    signs[..., 3] = torch.sign(even).prod(-1)  # gamma_0 < 0 below T_c
    top = terms.max(-1, keepdim=True).values
    total = torch.log((signs * torch.exp(terms - top)).sum(-1)) + top[..., 0]
    return math.log(0.5) + size**2 / 2 * torch.log(2 * torch.sinh(2 * coupling[..., 0])) + total


def kaufman_energy(size: int, temperature: float) -> float:
    r"""Exact mean coupling energy per spin of the :math:`L \times L` torus, :math:`-\partial_\beta \ln Z / N`."""
    beta, step = 1.0 / temperature, 1e-5
    upper, lower = kaufman_log_partition(
        size, torch.tensor([1 / (beta + step), 1 / (beta - step)], dtype=torch.float64)
    )
    return float(-(upper - lower) / (2 * step) / size**2)


def lattice_statistics(spins: Tensor) -> Tensor:
    """Coupling energy and magnetization per spin of lattices ``(..., L, L)`` -> ``(..., 2)``."""
    bonds = spins * (spins.roll(1, -1) + spins.roll(1, -2))
    return torch.stack([-bonds.mean(dim=(-2, -1)), spins.mean(dim=(-2, -1))], dim=-1)


def exact_moments(size: int, temperature: float, field: float = 0.0) -> dict[str, float]:
    """Exact ``<e>``, ``<|m|>`` and ``<m>`` of a small periodic lattice by enumeration.

    Arguments:
        size: Lattice side, at most 4 (all :math:`2^{L^2}` states are enumerated at once).
        temperature: :math:`T > 0`.
        field: :math:`h`.
    """
    check_positive_int("ising", "size", size, minimum=2)
    if size > 4:
        raise ValueError(f"ising: exact enumeration needs size <= 4, got {size}")
    n = size * size
    states = torch.arange(2**n)[:, None] >> torch.arange(n) & 1
    spins = (2.0 * states - 1.0).double().view(-1, size, size)
    e, m = lattice_statistics(spins).unbind(-1)
    log_w = -n * (e - field * m) / temperature
    w = torch.softmax(log_w, dim=0)
    return {
        "energy": float(w @ e),
        "abs_magnetization": float(w @ m.abs()),
        "magnetization": float(w @ m),
    }


class GridPosterior:
    """A density of one parameter, constant on each cell of a fine grid, with exact sampling.

    Arguments:
        edges: Cell edges, shape ``(k + 1,)``, increasing.
        log_weights: Unnormalized log mass of each cell, shape ``(k,)``.
    """

    def __init__(self, edges: Tensor, log_weights: Tensor):
        self.edges = edges.double()
        self.mass = torch.softmax(log_weights.double(), dim=0)
        self.low, self.high = self.edges[:1], self.edges[-1:]

    def sample(
        self,
        shape: Sequence[int] = (),
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> Tensor:
        """Samples of shape ``(*shape, 1)``: a cell by inverse CDF, then uniform in the cell."""
        device = _target(generator, device)
        u = torch.rand(*shape, 2, generator=generator, device=device, dtype=torch.float64)
        cdf = self.mass.cumsum(0).to(u.device)
        cell = torch.searchsorted(cdf, u[..., :1] * cdf[-1]).clamp(max=self.mass.numel() - 1)
        left, width = self.edges.to(u.device)[cell], self.edges.diff().to(u.device)[cell]
        return (left + width * u[..., 1:]).to(dtype)

    def log_prob(self, theta: Tensor) -> Tensor:
        """Log density at ``theta`` ``(..., 1)``; ``-inf`` outside the grid."""
        t = theta[..., 0].double().cpu()
        cell = (torch.searchsorted(self.edges, t, right=True) - 1).clamp(0, self.mass.numel() - 1)
        density = (self.mass / self.edges.diff())[cell]
        inside = (t >= self.edges[0]) & (t <= self.edges[-1])
        return torch.where(inside, density.log(), -math.inf).to(theta.device, theta.dtype)

    def mean(self) -> Tensor:
        return (self.mass * (self.edges[1:] + self.edges[:-1]) / 2).sum()[None]

    def stddev(self) -> Tensor:
        mid = (self.edges[1:] + self.edges[:-1]) / 2
        return (self.mass * (mid - self.mean()) ** 2).sum().sqrt()[None]


@register("ising")
class Ising(Simulator):
    r"""2-D Ising model, :math:`\theta = (T,)` or :math:`(T, h)`; one equilibrated lattice per row.

    Arguments:
        size: Lattice side :math:`L` (even, >= 2); :math:`N = L^2` spins.
        field: Whether the field :math:`h` is a parameter (else :math:`h = 0`).
        output: ``"summary"`` for :math:`x = (e, |m|)` (``(e, m)`` with a field), or
            ``"lattice"`` for the spins :math:`\pm 1`, shape ``(L, L)``.
        sweeps: Metropolis sweeps from the ordered start; must exceed the relaxation time
            near :math:`T_c` (50 sweeps at :math:`L = 16`, 250 at :math:`L = 32`).
        backend: ``"numba"`` (CPU kernel), ``"torch"`` (any device), ``"triton"`` (CUDA
            multi-spin-coded kernel, :mod:`simulators._ising_triton`; CPU tensors only under
            ``TRITON_INTERPRET=1``), or ``"auto"``: numba for CPU tensors when installed,
            triton for CUDA tensors when installed, torch otherwise. Each draws its own stream.
        n_obs: Default number of observed lattices.
        theta_star: True parameters of the observed data (default 3.0, and 0.1 for h).
    """

    kind = "point"
    description = "2-D Ising model on a periodic lattice: temperature (and field) from spins"
    differentiable = False
    option_values: ClassVar[dict[str, tuple]] = {
        "size": (4, 32),
        "field": (False, True),
        "output": ("summary", "lattice"),
        "sweeps": (50,),
        "backend": ("torch", "numba") if HAS_NUMBA else ("torch",),
        "n_obs": (1, 50),
        "theta_star": (1.8,),
    }

    def __init__(
        self,
        *,
        size: int = 16,
        field: bool = False,
        output: str = "summary",
        sweeps: int = 250,
        backend: str = "auto",
        n_obs: int = 1000,
        theta_star: float | Sequence[float] | None = None,
    ):
        check_positive_int("ising", "size", size, minimum=2)
        if size % 2:
            raise ValueError(f"ising: size must be even (checkerboard updates), got {size}")
        check_positive_int("ising", "sweeps", sweeps)
        check_positive_int("ising", "n_obs", n_obs)
        if not isinstance(field, bool):
            raise ValueError(f"ising: field must be True or False, got {field!r}")
        if output not in OUTPUTS:
            raise ValueError(f"ising: output must be one of {OUTPUTS}, got {output!r}")
        if backend not in BACKENDS:
            raise ValueError(f"ising: backend must be one of {BACKENDS}, got {backend!r}")
        if backend == "numba" and not HAS_NUMBA:
            raise ValueError("ising: backend 'numba' needs the numba package (pip install numba)")
        if backend == "triton" and not HAS_TRITON:
            raise ValueError(
                "ising: backend 'triton' needs the triton package (pip install 'avo-bench[triton]')"
            )
        self.size, self.field, self.output = size, field, output
        self.sweeps, self.backend, self.n_obs = sweeps, backend, n_obs
        self.parameter_names = ("T", "h") if field else ("T",)
        self.x_shape = (size, size) if output == "lattice" else (2,)
        self.prior = BoxUniform([1.5, -0.5][: self.theta_dim], [3.5, 0.5][: self.theta_dim])
        self.true_parameters = self._theta_star(theta_star)

    def _theta_star(self, theta_star: float | Sequence[float] | None) -> Tensor:
        default = [3.0, 0.1][: self.theta_dim]
        try:
            star = _as_vector(default if theta_star is None else theta_star, self.theta_dim)
        except ValueError as error:
            raise ValueError(f"ising: theta_star: {error}") from None
        if not torch.isfinite(self.prior.log_prob(star[None])).all():
            raise ValueError(
                f"ising: theta_star must lie in the prior box {self.prior}, got {star.tolist()}"
            )
        return star.float()

    def _simulate(self, theta: Tensor, generator: torch.Generator | None) -> Tensor:
        beta = 1.0 / theta[:, 0]
        h = theta[:, 1] if self.field else torch.zeros_like(beta)
        spins = self._kernel(theta)(beta, h, self.size, self.sweeps, generator)
        if self.output == "lattice":
            return spins
        stats = lattice_statistics(spins)
        if not self.field:
            stats = torch.stack([stats[:, 0], stats[:, 1].abs()], dim=-1)
        return stats

    def _kernel(self, theta: Tensor):
        device, backend = theta.device, self.backend
        if backend == "auto":
            backend = "numba" if HAS_NUMBA and device.type == "cpu" else "torch"
            backend = "triton" if HAS_TRITON and device.type == "cuda" else backend
        if backend == "numba" and device.type != "cpu":
            raise ValueError(f"ising: backend 'numba' runs on the CPU, theta is on {device}")
        if backend == "triton":
            from ._ising_triton import check_device, triton_sweeps

            check_device(device)
            return triton_sweeps
        return numba_sweeps if backend == "numba" else torch_sweeps

    def summarize(self, x: Tensor) -> Tensor:
        r"""Mean and standard deviation over the set of :math:`e` and :math:`|m|` (or :math:`m`).

        ``(..., m, *x_shape) -> (..., 4)``, ordered ``(mean e, mean |m|, std e, std |m|)``.
        Without a field the mean energy alone is sufficient for :math:`T` (an exponential
        family in :math:`\sum_i E_i`); with one, the means of :math:`e` and :math:`m` are
        jointly sufficient for :math:`(T, h)`. The other entries help learned summaries.
        """
        if self.output == "lattice":
            x = lattice_statistics(x)
            if not self.field:
                x = torch.stack([x[..., 0], x[..., 1].abs()], dim=-1)
        return torch.cat([x.mean(dim=-2), x.std(dim=-2)], dim=-1)

    def provides(self, hook: str) -> bool:
        """As :meth:`Simulator.provides`; the exact posterior exists without a field only."""
        if hook == "posterior" and self.field:
            return False
        return super().provides(hook)

    def features(self, x: Tensor) -> Tensor:
        """``(n, *x_shape) -> (n, 2)``: energy per spin and :math:`|m|` (:math:`m` with a
        field), computed from lattices for ``output="lattice"``."""
        if self.output != "lattice":
            return x.reshape(x.shape[0], -1)
        stats = lattice_statistics(x)
        return stats if self.field else torch.stack([stats[:, 0], stats[:, 1].abs()], dim=-1)

    def posterior(self, x_obs: Tensor, cells: int = 4000) -> GridPosterior:
        r"""The exact posterior of :math:`T` given iid observations at :math:`h = 0`.

        The energy is sufficient, so with :math:`E_i = N e_i` and Kaufman's :math:`\ln Z`,
        :math:`\ln p(T \mid x) = \text{const} - \beta \sum_i E_i - n \ln Z(\beta)` on the
        prior box, tabulated on ``cells`` cells (exact up to the equilibration of the chains
        that produced ``x_obs``).

        Arguments:
            x_obs: Observations ``(n, *x_shape)`` of this simulator (``field=False``).
            cells: Number of grid cells.
        """
        if self.field:
            raise ValueError("ising: the exact posterior is implemented for field=False only")
        x = torch.as_tensor(x_obs).double().cpu()
        if x.ndim != 1 + len(self.x_shape) or tuple(x.shape[1:]) != self.x_shape or not len(x):
            raise ValueError(
                f"ising: x_obs must have shape (n, {self.x_shape}), got {tuple(x.shape)}"
            )
        energy = lattice_statistics(x)[:, 0] if self.output == "lattice" else x[:, 0]
        check_positive_int("ising", "cells", cells)
        low, high = float(self.prior.low[0]), float(self.prior.high[0])
        edges = torch.linspace(low, high, cells + 1, dtype=torch.float64)
        t = (edges[1:] + edges[:-1]) / 2
        n, spins = energy.numel(), self.size**2
        log_like = -spins * energy.sum() / t - n * kaufman_log_partition(self.size, t)
        return GridPosterior(edges, log_like)
