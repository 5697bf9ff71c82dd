r"""Checkerboard Metropolis kernels for the 2-D Ising model (private to :mod:`simulators.ising`).

Two interchangeable kernels run ``sweeps`` Metropolis sweeps of a batch of independent
:math:`L \times L` periodic lattices, each chain at its own :math:`\beta = 1/T` and field
:math:`h` (``J = 1``, :math:`E = -\sum_{\langle ij \rangle} s_i s_j - h \sum_i s_i`):

- :func:`torch_sweeps`: pure torch on any device; randomness from the ``torch.Generator``.
- :func:`numba_sweeps`: compiled CPU kernels (numba) with multi-spin coding: bit c of a
  ``uint64`` word is the spin of chain 64 w + c at one site, and a word's 64 updates are a
  dozen bit operations. The acceptance bits are Bernoulli(p_c) bits, made by comparing random
  words with the binary digits of each chain's p_c (a xoshiro256++ stream seeded from the
  ``torch.Generator``, so a seed fixes the output). Batches of fewer than ~64 chains leave
  lanes idle and run far below peak speed.

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
_ZERO, _ONE, _S11 = np.uint64(0), np.uint64(1), np.uint64(11)
_UNIT = 1.0 / 9007199254740992.0  # 2**-53: 53 random bits -> a uniform in [0, 1)
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


@_jit(inline="always")
def _bernoulli6(planes, w, masks, need, s0, s1, s2, s3):
    # As _bernoulli, with the probability of bit c chosen among six by ``masks``.
    m0, m1, m2, m3, m4, m5 = masks
    result, undecided, j = _ZERO, need, 0
    while undecided != _ZERO and j < _DIGITS:
        for _ in range(2):
            r, s0, s1, s2, s3 = _xoshiro(s0, s1, s2, s3)
            p = (planes[0, j, w] & m0) | (planes[1, j, w] & m1) | (planes[2, j, w] & m2)
            p |= (planes[3, j, w] & m3) | (planes[4, j, w] & m4) | (planes[5, j, w] & m5)
            result |= undecided & p & ~r
            undecided &= ~(r ^ p)
            j += 1
    return result, s0, s1, s2, s3


@_jit()
def _msc_field_run(spins, planes, certain, beta_h, state, sweeps):
    # With a field: d = number of disagreeing neighbours (a bit-sliced sum of four bits) and
    # the spin s choose the probability min(1, exp(-2 beta (4 - 2d + s h))): 1 when d >= 3
    # (|h| < 2) or d = 2 and s h <= 0 (``certain``), else ``planes[2 d + (s down)]``.
    size, words = spins.shape[0], spins.shape[2]
    for _ in range(sweeps):
        s0, s1, s2, s3 = state[0], state[1], state[2], state[3]
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
                        bit0, carry0 = sum12 ^ sum34, sum12 & sum34
                        bit1 = carry12 ^ carry34 ^ carry0
                        bit2 = (carry12 & carry34) | (carry0 & (carry12 ^ carry34))
                        zero, one = ~(bit0 | bit1 | bit2), bit0 & ~(bit1 | bit2)
                        two = bit1 & ~(bit0 | bit2)
                        sure = (bit0 & bit1) | bit2
                        sure |= two & ((s & certain[0, w]) | (~s & certain[1, w]))
                        masks = (zero & s, zero & ~s, one & s, one & ~s, two & s, two & ~s)
                        need = (zero | one | two) & ~sure
                        b, s0, s1, s2, s3 = _bernoulli6(planes, w, masks, need, s0, s1, s2, s3)
                        cur[w] = s ^ sure ^ b
        state[0], state[1], state[2], state[3] = s0, s1, s2, s3
        _msc_global_flip(spins, beta_h, state)


@_jit()
def _msc_global_flip(spins, beta_h, state):
    # Heat-bath flip of each chain with probability 1 / (1 + exp(2 beta h M)); the up-spin
    # count of the 64 chains of a word from bit-sliced counters (plane i: binary digit i).
    size, words = spins.shape[0], spins.shape[2]
    counter = np.zeros(int(np.log2(size * size)) + 1, dtype=np.uint64)
    s0, s1, s2, s3 = state[0], state[1], state[2], state[3]
    for w in range(words):
        counter[:] = _ZERO
        for y in range(size):
            for x in range(size):
                carry, i = spins[y, x, w], 0
                while carry != _ZERO:
                    counter[i], carry = counter[i] ^ carry, counter[i] & carry
                    i += 1
        flip = _ZERO
        for c in range(64):
            count = 0
            for i in range(counter.shape[0]):
                count += int((counter[i] >> np.uint64(c)) & _ONE) << i
            r, s0, s1, s2, s3 = _xoshiro(s0, s1, s2, s3)
            uniform = np.float64(r >> _S11) * _UNIT
            if uniform * (1.0 + np.exp(2.0 * beta_h[w * 64 + c] * (2 * count - size * size))) < 1:
                flip |= _ONE << np.uint64(c)
        for y in range(size):
            for x in range(size):
                spins[y, x, w] ^= flip
    state[0], state[1], state[2], state[3] = s0, s1, s2, s3


def _bit_planes(p: np.ndarray, words: int) -> np.ndarray:
    """Binary digits of ``p`` (n,) in [0, 1) as ``(_DIGITS, words)`` words, chain c at bit c % 64."""
    fixed = np.zeros(words * 64, dtype=np.uint64)
    fixed[: p.shape[0]] = np.floor(p * 2.0**_DIGITS).astype(np.uint64)
    shifts = np.arange(_DIGITS - 1, -1, -1, dtype=np.uint64)[:, None]
    digits = ((fixed[None, :] >> shifts) & _ONE).reshape(_DIGITS, words, 64)
    return np.bitwise_or.reduce(digits << np.arange(64, dtype=np.uint64), axis=2)


def _msc_chains(beta, h, size, sweeps, state, start) -> np.ndarray:
    n, words = beta.shape[0], -(-beta.shape[0] // 64)
    up = np.ones((size, size, words * 64), dtype=np.uint8)
    if start is not None:
        up[..., :n] = start > 0
    spins = np.packbits(up, axis=-1, bitorder="little").view(np.uint64)
    if (h == 0).all():
        p = np.exp(-4.0 * beta)
        _msc_run(
            spins, np.stack([_bit_planes(p, words), _bit_planes(p * p, words)]), state, sweeps
        )
    else:
        s = np.array([1.0, -1.0])[:, None]
        q = [np.exp(-2 * beta * (4 - 2 * d + s * h)) for d in (0, 1, 2)]
        q = np.concatenate(q)  # (6, n): d = 0, 1, 2 times s = up, down
        planes = np.stack([_bit_planes(np.where(qi < 1, qi, 0.0), words) for qi in q])
        certain = np.stack([_bit_planes(np.where(qi >= 1, 0.5, 0.0), words)[0] for qi in q[4:]])
        beta_h = np.zeros(words * 64)
        beta_h[:n] = beta * h
        _msc_field_run(spins, planes, certain, beta_h, state, sweeps)
    bits = np.unpackbits(spins.view(np.uint8), axis=-1, bitorder="little")[..., :n]
    return 2 * bits.astype(np.int8) - 1


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

    Multi-spin coding: 64 chains per ``uint64`` word, each word's update a few bit
    operations, uniforms from one xoshiro256++ stream seeded from ``generator``. The field
    must satisfy :math:`|h| < 2` (then every move with three or four disagreeing neighbours
    is accepted).

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
    if (np.abs(f) >= 2).any():
        raise ValueError(f"ising: the numba kernel needs |h| < 2, got {np.abs(f).max()}")
    start = None if initial is None else initial.detach().cpu().permute(1, 2, 0).numpy()
    state = _random_words(4, generator)
    state[0] |= _ONE  # xoshiro's state must not be all zero
    spins = _msc_chains(b, f, size, sweeps, state, start)
    if (f == 0).all():
        signs = torch.randint(0, 2, (b.shape[0],), generator=generator).numpy()
        spins = spins * (2 * signs - 1).astype(np.int8)  # the global flip, probability 1/2
    lattice = torch.from_numpy(spins).permute(2, 0, 1)
    return lattice.to(beta.dtype).contiguous()
