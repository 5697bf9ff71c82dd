r"""Checkerboard Metropolis kernels for the 2-D Ising model (private to :mod:`simulators.ising`).

Two interchangeable kernels run ``sweeps`` Metropolis sweeps of a batch of independent
:math:`L \times L` periodic lattices, each chain at its own :math:`\beta = 1/T` and field
:math:`h` (``J = 1``, :math:`E = -\sum_{\langle ij \rangle} s_i s_j - h \sum_i s_i`):

- :func:`torch_sweeps`: pure torch on any device; randomness from the ``torch.Generator``.
- :func:`numba_sweeps`: a compiled CPU kernel (numba) with the chain index innermost
  (lattice stored ``(L, L, n)`` as ``int8``) so that each site update is one SIMD loop over the
  chains. Its uniforms come from the counter-based SplitMix64 hash of (per-chain key, site,
  sweep); the keys are drawn from the ``torch.Generator``, so a seed fixes the output.

A sweep updates the two sublattices in turn (every site of one colour has its four neighbours
in the other colour, so the update of a colour is exact parallel Metropolis). Between sweeps
a global spin flip is proposed with the heat-bath probability
:math:`1 / (1 + e^{2 \beta h M})`; it leaves the Boltzmann distribution invariant and moves a
chain between the two ordered phases, which single-spin Metropolis does not do at low
temperature. Without a field it is drawn once, at the end, with probability 1/2.

References:
    Metropolis, Rosenbluth, Rosenbluth, Teller, Teller, "Equation of state calculations by
    fast computing machines", J. Chem. Phys. 21, 1087 (1953).

    Steele, Lea, Flood, "Fast splittable pseudorandom number generators" (SplitMix64),
    OOPSLA 2014, https://doi.org/10.1145/2660193.2660195
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

try:
    import numba
except ImportError:  # the torch kernel serves every device without it
    numba = None

__all__ = ["HAS_NUMBA", "numba_sweeps", "torch_sweeps"]

HAS_NUMBA = numba is not None


# torch kernel ------------------------------------------------------------------------------


def _colours(size: int, device: torch.device) -> tuple[Tensor, Tensor]:
    index = torch.arange(size, device=device)
    odd = (index[:, None] + index[None, :]) % 2 == 1
    return ~odd, odd


def _neighbour_sum(spins: Tensor) -> Tensor:
    return (
        spins.roll(1, 1) + spins.roll(-1, 1) + spins.roll(1, 2) + spins.roll(-1, 2)
    )  # periodic boundaries


def _global_flip(spins: Tensor, beta: Tensor, h: Tensor, generator) -> Tensor:
    magnetization = spins.sum(dim=(1, 2))
    p_flip = torch.sigmoid(-2 * beta * h * magnetization)
    u = torch.rand(p_flip.shape, generator=generator, device=spins.device, dtype=spins.dtype)
    sign = torch.where(u < p_flip, -1.0, 1.0).to(spins.dtype)
    return spins * sign[:, None, None]


def torch_sweeps(
    beta: Tensor,
    h: Tensor,
    size: int,
    sweeps: int,
    generator: torch.Generator | None,
    initial: Tensor | None = None,
) -> Tensor:
    """Runs ``sweeps`` checkerboard Metropolis sweeps from the all-up state, in torch.

    Arguments:
        beta: Inverse temperatures, shape ``(n,)``; dtype and device of the computation.
        h: Fields, shape ``(n,)``.
        size: Lattice side :math:`L` (even).
        sweeps: Number of sweeps.
        generator: The only source of randomness.
        initial: Start from these spins ``(n, L, L)`` instead of all up (to continue a chain).

    Returns:
        Spins :math:`\\pm 1`, shape ``(n, L, L)``, ``beta``'s dtype and device.
    """
    n, device, dtype = beta.shape[0], beta.device, beta.dtype
    if initial is None:
        spins = torch.ones(n, size, size, device=device, dtype=dtype)
    else:
        spins = initial.to(device, dtype).clone()
    colours = _colours(size, device)
    b, f = beta[:, None, None], h[:, None, None]
    field = bool((h != 0).any())
    for _ in range(sweeps):
        u = torch.rand(spins.shape, generator=generator, device=device, dtype=dtype)
        for colour in colours:
            ratio = torch.exp(-2 * b * spins * (_neighbour_sum(spins) + f))
            spins = torch.where(colour & (u < ratio), -spins, spins)
        if field:
            spins = _global_flip(spins, beta, h, generator)
    if not field:
        spins = _global_flip(spins, beta, h, generator)
    return spins


# numba kernel ------------------------------------------------------------------------------

# SplitMix64 constants (Steele et al. 2014); unsigned so numba keeps uint64 arithmetic.
_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_S11, _S27, _S30, _S31 = np.uint64(11), np.uint64(27), np.uint64(30), np.uint64(31)
_UNIT = 1.0 / 9007199254740992.0  # 2**-53: 53 random bits -> a float64 in [0, 1)


def _jit(**kw):
    if numba is None:
        return lambda fn: fn
    return numba.njit(cache=True, boundscheck=False, **kw)


@_jit(inline="always")
def _uniform(key, counter):
    z = key + counter
    z = (z ^ (z >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    z = z ^ (z >> _S31)
    return np.float64(np.int64(z >> _S11)) * _UNIT


@_jit(inline="always")
def _update_site(cur, left, right, up, down, w2, w4, keys, counter):
    # No field: accept always when s * (neighbour sum) <= 0, else with exp(-2 beta k).
    for c in range(cur.shape[0]):
        r = _uniform(keys[c], counter)
        s = cur[c]
        k = s * (left[c] + right[c] + up[c] + down[c])
        a = w4[c] if k == 4 else w2[c]
        a = 1.0 if k <= 0 else a
        cur[c] = s - 2 * s * (r < a)


@_jit(inline="always")
def _update_site_field(cur, left, right, up, down, w, keys, counter):
    # Acceptance exp(-2 beta (k + s h)) = exp(-2 beta k) * f_s, by selects (no gather).
    w2, w4, iw2, iw4, fp, fm = w[0], w[1], w[2], w[3], w[4], w[5]
    for c in range(cur.shape[0]):
        r = _uniform(keys[c], counter)
        s = cur[c]
        k = s * (left[c] + right[c] + up[c] + down[c])
        a = w4[c] if k == 4 else w2[c]
        b = iw4[c] if k == -4 else iw2[c]
        a = b if k < 0 else a
        a = 1.0 if k == 0 else a
        f = fp[c] if s > 0 else fm[c]
        cur[c] = s - 2 * s * (r < a * f)


@_jit()
def _sweep(spins, w, keys, sweep, field):
    size = spins.shape[0]
    for colour in range(2):
        for y in range(size):
            up, row, down = spins[(y - 1) % size], spins[y], spins[(y + 1) % size]
            for x in range(colour ^ (y & 1), size, 2):
                counter = np.uint64((sweep * size + y) * size + x) * _GAMMA
                left, right = row[(x - 1) % size], row[(x + 1) % size]
                if field:
                    _update_site_field(row[x], left, right, up[x], down[x], w, keys, counter)
                else:
                    _update_site(row[x], left, right, up[x], down[x], w[0], w[1], keys, counter)


@_jit()
def _flip_orientation(spins, w, orient, keys, counter, field):
    # Heat-bath global flip, tracked as an orientation: stored spins stay, the field and the
    # final sign flip (w[4] and w[5], the field factors of s = +1 and -1, swap).
    n = spins.shape[2]
    total = np.zeros(n, dtype=np.int64)
    if field:
        for y in range(spins.shape[0]):
            for x in range(spins.shape[1]):
                site = spins[y, x]
                for c in range(n):
                    total[c] += site[c]
    for c in range(n):
        p_flip = 1.0 / (1.0 + np.exp(2.0 * w[6, c] * w[7, c] * orient[c] * total[c]))
        if _uniform(keys[c], counter) < p_flip:
            orient[c] = -orient[c]
            w[4, c], w[5, c] = w[5, c], w[4, c]


@_jit()
def _run(spins, w, keys, orient, sweeps, field):
    size = spins.shape[0]
    for sweep in range(sweeps):
        _sweep(spins, w, keys, sweep, field)
        if field:
            counter = np.uint64(sweeps * size * size + sweep) * _GAMMA
            _flip_orientation(spins, w, orient, keys, counter, True)
    if not field:
        counter = np.uint64(sweeps * size * size + sweeps) * _GAMMA
        _flip_orientation(spins, w, orient, keys, counter, False)


def _weights(beta: np.ndarray, h: np.ndarray) -> np.ndarray:
    rows = [
        np.exp(-4 * beta),
        np.exp(-8 * beta),
        np.exp(4 * beta),
        np.exp(8 * beta),
        np.exp(-2 * beta * h),
        np.exp(2 * beta * h),
        beta,
        h,
    ]
    return np.ascontiguousarray(np.stack(rows), dtype=np.float64)


def numba_sweeps(
    beta: Tensor,
    h: Tensor,
    size: int,
    sweeps: int,
    generator: torch.Generator | None,
    initial: Tensor | None = None,
) -> Tensor:
    """The same Markov chain as :func:`torch_sweeps`, compiled for the CPU with numba.

    Arguments:
        beta: Inverse temperatures, shape ``(n,)``, on the CPU.
        h: Fields, shape ``(n,)``.
        size: Lattice side :math:`L` (even).
        sweeps: Number of sweeps.
        generator: Draws the per-chain 64-bit keys of the counter-based uniforms.
        initial: Start from these spins ``(n, L, L)`` instead of all up (to continue a chain).

    Returns:
        Spins :math:`\\pm 1`, shape ``(n, L, L)``, ``beta``'s dtype.
    """
    if numba is None:
        raise RuntimeError("the numba kernel needs the numba package (pip install numba)")
    n = beta.shape[0]
    keys = torch.randint(-(2**63), 2**63 - 1, (n,), generator=generator, dtype=torch.int64)
    keys = keys.numpy().view(np.uint64)
    b, f = beta.detach().double().numpy(), h.detach().double().numpy()
    spins = np.ones((size, size, n), dtype=np.int8)
    if initial is not None:
        spins[...] = initial.detach().cpu().permute(1, 2, 0).numpy()
    orient = np.ones(n, dtype=np.int8)
    _run(spins, _weights(b, f), keys, orient, sweeps, bool((f != 0).any()))
    lattice = torch.from_numpy(spins * orient).permute(2, 0, 1)
    return lattice.to(beta.dtype).contiguous()
