r"""Checkerboard Metropolis kernels for the 2-D Ising model (private to :mod:`simulators.ising`).

Two interchangeable kernels run ``sweeps`` Metropolis sweeps of a batch of independent
:math:`L \times L` periodic lattices, each chain at its own :math:`\beta = 1/T` and field
:math:`h` (``J = 1``, :math:`E = -\sum_{\langle ij \rangle} s_i s_j - h \sum_i s_i`):

- :func:`torch_sweeps`: pure torch on any device; randomness from the ``torch.Generator``.
- :func:`numba_sweeps`: compiled CPU kernels (numba). Without a field, multi-spin coding:
  bit c of a ``uint64`` word is the spin of chain 64 w + c at one site, a word's 64 updates
  are a dozen bit operations, and the acceptance bits are Bernoulli(p_c) bits built by
  comparing random words with the binary digits of each chain's p_c (xoshiro256++ stream).
  With a field, ``int8`` spins stored ``(L, L, n)`` so that each site update is one SIMD loop
  over the chains, with uniforms from the SplitMix64 hash of (per-chain key, site, sweep).
  All seeds are drawn from the ``torch.Generator``, so a seed fixes the output. Both
  vectorize over chains: batches of fewer than ~64 chains run far below peak speed.

A sweep updates the two sublattices in turn (every site of one colour has its four neighbours
in the other colour, so the update of a colour is exact parallel Metropolis). Between sweeps
a global spin flip is proposed with the heat-bath probability
:math:`1 / (1 + e^{2 \beta h M})`; it leaves the Boltzmann distribution invariant and moves a
chain between the two ordered phases, which single-spin Metropolis does not do at low
temperature. Without a field it is drawn once, at the end, with probability 1/2.

References:
    Metropolis, Rosenbluth, Rosenbluth, Teller, Teller, "Equation of state calculations by
    fast computing machines", J. Chem. Phys. 21, 1087 (1953).

    Jacobs, Rebbi, "Multi-spin coding: a very efficient technique for Monte Carlo
    simulations of spin systems", J. Comput. Phys. 41, 203 (1981).

    Blackman, Vigna, "Scrambled linear pseudorandom number generators" (xoshiro256++),
    ACM Trans. Math. Softw. 47 (2021), https://arxiv.org/abs/1805.01407

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


# numba kernels ----------------------------------------------------------------------------


def _jit(**kw):
    if numba is None:
        return lambda fn: fn
    return numba.njit(cache=True, boundscheck=False, **kw)


_DIGITS = 32  # binary digits of the acceptance probabilities: bias below 2**-32
_ZERO = np.uint64(0)
_R23, _R41, _R17, _R45, _R19 = (np.uint64(v) for v in (23, 41, 17, 45, 19))


@_jit(inline="always")
def _xoshiro(s0, s1, s2, s3):
    # xoshiro256++ (Blackman & Vigna): 64 random bits and the next state.
    t = s0 + s3
    out = ((t << _R23) | (t >> _R41)) + s0
    t = s1 << _R17
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    return out, s0, s1, s2, (s3 << _R45) | (s3 >> _R19)


@_jit(inline="always")
def _bernoulli(planes, w, one, none, s0, s1, s2, s3):
    # Bit c is 1 with probability p_c (if bit c of ``one``) or p_c^2 (if of ``none``): compare
    # a uniform's binary digits with those of the probability (``planes[i, j]`` holds digit j
    # of p (i = 0) and p^2 (i = 1) for the 64 chains of word w), most significant first, until
    # every needed bit is decided. Digits come two at a time to spare branch mispredictions.
    result, undecided, j = _ZERO, one | none, 0
    while undecided != _ZERO and j < _DIGITS:
        for _ in range(2):
            r, s0, s1, s2, s3 = _xoshiro(s0, s1, s2, s3)
            p = (planes[0, j, w] & one) | (planes[1, j, w] & none)
            result |= undecided & p & ~r
            undecided &= ~(r ^ p)
            j += 1
    return result, s0, s1, s2, s3


@_jit()
def _msc_run(spins, planes, state, sweeps):
    # Multi-spin coding: bit c of spins[y, x, w] is the spin of chain 64 w + c (1 = up). With
    # d neighbours disagreeing, k = s * (neighbour sum) = 4 - 2d: flip when d >= 2, with
    # probability p = exp(-4 beta) when d = 1 and p^2 when d = 0.
    size, words = spins.shape[0], spins.shape[2]
    s0, s1, s2, s3 = state[0], state[1], state[2], state[3]
    for _ in range(sweeps):
        for colour in range(2):
            for y in range(size):
                up, row, down = spins[(y - 1) % size], spins[y], spins[(y + 1) % size]
                for x in range(colour ^ (y & 1), size, 2):
                    cur, left, right = row[x], row[(x - 1) % size], row[(x + 1) % size]
                    u, d = up[x], down[x]
                    for w in range(words):
                        s = cur[w]
                        d1, d2, d3, d4 = s ^ left[w], s ^ right[w], s ^ u[w], s ^ d[w]
                        sum12, carry12, sum34, carry34 = d1 ^ d2, d1 & d2, d3 ^ d4, d3 & d4
                        two = carry12 | carry34 | (sum12 & sum34)
                        none = ~(sum12 | sum34 | carry12 | carry34)
                        one = ~(two | none)
                        b, s0, s1, s2, s3 = _bernoulli(planes, w, one, none, s0, s1, s2, s3)
                        cur[w] = s ^ two ^ b


def _bit_planes(p: np.ndarray, words: int) -> np.ndarray:
    """Binary digits of ``p`` (n,) in [0, 1) as ``(_DIGITS, words)`` words, chain c at bit c % 64."""
    fixed = np.zeros(words * 64, dtype=np.uint64)
    fixed[: p.shape[0]] = np.floor(p * 2.0**_DIGITS).astype(np.uint64)
    shifts = np.arange(_DIGITS - 1, -1, -1, dtype=np.uint64)[:, None]
    digits = ((fixed[None, :] >> shifts) & np.uint64(1)).reshape(_DIGITS, words, 64)
    return np.bitwise_or.reduce(digits << np.arange(64, dtype=np.uint64), axis=2)


def _msc_chains(beta, size, sweeps, state, start) -> np.ndarray:
    n = beta.shape[0]
    words = -(-n // 64)
    up = np.ones((size, size, words * 64), dtype=np.uint8)
    if start is not None:
        up[..., :n] = start > 0
    spins = np.packbits(up, axis=-1, bitorder="little").view(np.uint64)
    p = np.exp(-4.0 * beta)
    planes = np.stack([_bit_planes(p, words), _bit_planes(p * p, words)])
    _msc_run(spins, planes, state, sweeps)
    bits = np.unpackbits(spins.view(np.uint8), axis=-1, bitorder="little")[..., :n]
    return 2 * bits.astype(np.int8) - 1


@_jit(inline="always")
def _update_site(cur, left, right, up, down, w, state, counter):
    # Field: accept with exp(-2 beta (k + s h)) = exp(-2 beta k) * f_s, by selects (no gather)
    # so that the loop over chains vectorizes; uniforms from the SplitMix64 hash of
    # (per-chain key, counter) (Steele, Lea, Flood 2014).
    w2, w4, iw2, iw4, fp, fm = w[0], w[1], w[2], w[3], w[4], w[5]
    for c in range(cur.shape[0]):
        r = _uniform(state[c], counter)
        s = cur[c]
        k = s * (left[c] + right[c] + up[c] + down[c])
        a = w4[c] if k == 4 else w2[c]
        b = iw4[c] if k == -4 else iw2[c]
        a = b if k < 0 else a
        a = 1.0 if k == 0 else a
        f = fp[c] if s > 0 else fm[c]
        cur[c] = s - 2 * s * (r < a * f)


_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_MIX1, _MIX2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_S11, _S27, _S30, _S31 = (np.uint64(v) for v in (11, 27, 30, 31))


@_jit(inline="always")
def _uniform(key, counter):
    z = key + counter
    z = (z ^ (z >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    z = z ^ (z >> _S31)
    return np.float64(np.int64(z >> _S11)) * (1.0 / 9007199254740992.0)  # 53 bits


@_jit()
def _field_run(spins, w, keys, orient, sweeps):
    # Chains innermost: spins[y, x] is a vector over chains. After each sweep a heat-bath
    # global flip, tracked as an orientation: the stored spins stay, the field factors swap.
    size, n = spins.shape[0], spins.shape[2]
    for sweep in range(sweeps):
        for colour in range(2):
            for y in range(size):
                up, row, down = spins[(y - 1) % size], spins[y], spins[(y + 1) % size]
                for x in range(colour ^ (y & 1), size, 2):
                    counter = np.uint64((sweep * size + y) * size + x) * _GAMMA
                    left, right = row[(x - 1) % size], row[(x + 1) % size]
                    _update_site(row[x], left, right, up[x], down[x], w, keys, counter)
        total = np.zeros(n, dtype=np.int64)
        for y in range(size):
            for x in range(size):
                total += spins[y, x]
        counter = np.uint64(sweeps * size * size + sweep) * _GAMMA
        for c in range(n):
            p_flip = 1.0 / (1.0 + np.exp(2.0 * w[6, c] * w[7, c] * orient[c] * total[c]))
            if _uniform(keys[c], counter) < p_flip:
                orient[c] = -orient[c]
                w[4, c], w[5, c] = w[5, c], w[4, c]


def _field_chains(beta, h, size, sweeps, generator, start) -> np.ndarray:
    n = beta.shape[0]
    rows = [-4 * beta, -8 * beta, 4 * beta, 8 * beta, -2 * beta * h, 2 * beta * h]
    w = np.concatenate([np.exp(np.stack(rows)), np.stack([beta, h])]).astype(np.float64)
    spins = np.ones((size, size, n), dtype=np.int8) if start is None else start.copy()
    orient = np.ones(n, dtype=np.int8)
    _field_run(spins, w, _random_words(n, generator), orient, sweeps)
    return spins * orient


def _random_words(n: int, generator: torch.Generator | None) -> np.ndarray:
    words = torch.randint(-(2**63), 2**63 - 1, (n,), generator=generator, dtype=torch.int64)
    return words.numpy().view(np.uint64)


def numba_sweeps(
    beta: Tensor,
    h: Tensor,
    size: int,
    sweeps: int,
    generator: torch.Generator | None,
    initial: Tensor | None = None,
) -> Tensor:
    """The same Markov chain as :func:`torch_sweeps`, compiled for the CPU with numba.

    Without a field, multi-spin coding: 64 chains per ``uint64`` word, each word's update a
    few bit operations, uniforms from one xoshiro256++ stream. With a field, one ``int8`` per
    spin and SIMD over the chains. Seeds come from ``generator``.

    Arguments:
        beta: Inverse temperatures, shape ``(n,)``, on the CPU.
        h: Fields, shape ``(n,)``.
        size: Lattice side :math:`L` (even).
        sweeps: Number of sweeps.
        generator: Seeds the kernels' generators (and draws the global flips).
        initial: Start from these spins ``(n, L, L)`` instead of all up (to continue a chain).

    Returns:
        Spins :math:`\\pm 1`, shape ``(n, L, L)``, ``beta``'s dtype.
    """
    if numba is None:
        raise RuntimeError("the numba kernel needs the numba package (pip install numba)")
    b, f = beta.detach().double().cpu().numpy(), h.detach().double().cpu().numpy()
    start = None if initial is None else initial.detach().cpu().permute(1, 2, 0).numpy()
    start = None if start is None else start.astype(np.int8)
    if (f != 0).any():
        spins = _field_chains(b, f, size, sweeps, generator, start)
    else:
        state = _random_words(4, generator)
        state[0] |= np.uint64(1)  # xoshiro's state must not be all zero
        spins = _msc_chains(b, size, sweeps, state, start)
        signs = torch.randint(0, 2, (b.shape[0],), generator=generator).numpy()
        spins = spins * (2 * signs - 1).astype(np.int8)  # the global flip, probability 1/2
    lattice = torch.from_numpy(spins).permute(2, 0, 1)
    return lattice.to(beta.dtype).contiguous()
