r"""Multi-spin-coded checkerboard Metropolis for the 2-D Ising model in Triton (CUDA).

The same Markov chain as :func:`simulators._ising_kernels.torch_sweeps` (checkerboard
Metropolis sweeps from the all-up state, a heat-bath global spin flip after every sweep with a
field, a fair one at the end without), for a batch of independent :math:`L \times L` periodic
lattices, each chain at its own :math:`\beta` and :math:`h` (:math:`|h| < 2`).

Multi-spin coding (Jacobs & Rebbi 1981): bit ``c`` of the ``int32`` word ``spins[w, colour,
k]`` is the spin (1 = up) of chain ``32 w + c`` at site ``k`` of the colour's sublattice
(row ``y = k // (L/2)``, column ``x = 2 (k % (L/2)) + ((y + colour) & 1)``), so a word
operation updates 32 chains. A site's number ``d`` of disagreeing neighbours is a bit-sliced
sum of four XORs; with :math:`s h` the field term, the move is accepted with probability
:math:`q = \min(1, e^{-2\beta(4 - 2d + s h)})`: always for ``d >= 3`` (and ``d = 2``,
:math:`s h \le 0`), else with one of six per-chain probabilities (``d`` in 0, 1, 2 times the
spin), given to the kernel as the 32 binary digits of :math:`P = \lfloor q\, 2^{32} \rfloor`.
The acceptance bits compare a random word per digit with the word of the chains' digits, most
significant first, until every lane is decided: lane ``c`` accepts iff the 32-bit integer
:math:`U_c` whose digit ``j`` is bit ``c`` of random word ``j`` is below :math:`P_c`, which
takes about :math:`\log_2(\text{lanes}) + 2` random words instead of one per spin.

Random numbers: Philox4x32-10 (Salmon et al. 2011) keyed by a 64-bit seed drawn from the
``torch.Generator``, counter-based, so every random word is a fixed function of its position:
the Metropolis digits ``4g .. 4g+3`` of word ``w``, site ``k`` in half-sweep ``t`` (``t = 2
sweep + colour``) are the four outputs of counter ``(k, w, t, g)``; the heat-bath flip after
sweep ``s`` takes lane ``c``'s uniform from output ``c % 4`` of counter ``(c // 4, w, 2s + 1,
8)`` and the final fair flip uses output 0 of ``(0, w, 2 sweeps, 9)``. The result is thus
independent of the launch structure and of early exits, and :func:`philox4x32` reproduces the
stream in torch for exact tests. The flip probability :math:`1 / (1 + e^{4\beta h U})`, with
:math:`U` the up-spin excess over :math:`N/2`, is a product of per-chain float32 factors
:math:`e^{\pm 4 \beta h 2^i}` over the binary digits of :math:`|U|` (correctly rounded
multiplications, no transcendental in the kernel: the same bits on every device).

Launches: each program owns a block of words (32 chains per word) and a range of sites. With
enough chains to fill the GPU, one *persistent* launch runs all sweeps, each program sweeping
the whole lattices of its words with a block barrier between half-sweeps; with few chains the
sites are split over programs too and there is one launch per half-sweep (plus one per global
flip). Under ``TRITON_INTERPRET=1`` the kernels run on CPU tensors (slowly), for tests.

References:
    Jacobs, Rebbi, "Multi-spin coding: a very efficient technique for Monte Carlo
    simulations of spin systems", J. Comput. Phys. 41, 203 (1981).

    Salmon, Moraes, Dror, Shaw, "Parallel random numbers: as easy as 1, 2, 3", SC'11 (2011),
    https://doi.org/10.1145/2063384.2063405

    Romero, Bisson, Fatica, Bernaschi, "High performance implementations of the 2D Ising
    model on GPUs", Comput. Phys. Commun. 256, 107473 (2020).

    Tillet, Kung, Cox, "Triton: an intermediate language and compiler for tiled neural
    network computations", MAPL 2019, https://doi.org/10.1145/3315508.3329973
"""

import math

import torch
from torch import Tensor

try:
    import triton
    import triton.language as tl
    from triton.language.random import philox as _philox
except ImportError:  # an optional extra: pip install 'avo-bench[triton]'
    triton = tl = _philox = None

__all__ = [
    "HAS_TRITON",
    "acceptance_thresholds",
    "check_device",
    "flip_factors",
    "interpreting",
    "philox4x32",
    "triton_sweeps",
]

HAS_TRITON = triton is not None
LANES = 32  # chains per word
GROUPS = 8  # Philox calls per site and half-sweep at most: 4 x 8 = 32 binary digits
FLIP_TAG, COIN_TAG = 8, 9  # fourth counter word of the global flips (Metropolis: 0 .. 7)
CLASSES = ((0, 1), (0, -1), (1, 1), (1, -1), (2, 1), (2, -1))  # (d, s) with q < 1 possible
TILE_ELEMENTS: int | None = None  # words x sites per program; None: 256 (GPU), 2^16 (interpreter)
_MASK32 = 0xFFFFFFFF
_PHILOX_M = (0xD2511F53, 0xCD9E8D57)
_PHILOX_W = (0x9E3779B9, 0xBB67AE85)


constexpr = tl.constexpr if HAS_TRITON else int  # the annotation of compile-time arguments


def _jit(fn=None, *, fixed: tuple[str, ...] = ()):
    """``triton.jit`` (identity without triton); ``fixed``: integer arguments not specialized
    on their value (seeds and half-sweep indices would otherwise compile new variants)."""
    if fn is None:
        return lambda f: _jit(f, fixed=fixed)
    return fn if triton is None else triton.jit(fn, do_not_specialize=fixed)


# host side: probabilities, packing, the Philox reference ---------------------------------


def acceptance_thresholds(beta: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
    r"""Metropolis thresholds of the six classes :data:`CLASSES` ``(d, s)``, per chain.

    A move of spin :math:`s` with ``d`` of four neighbours disagreeing is accepted with
    probability :math:`q = \min(1, e^{-2\beta(4 - 2d + s h)})`; it is drawn as
    :math:`U < P = \lfloor q\, 2^{32} \rfloor` with :math:`U` uniform on 32 bits, or taken
    (``sure``) when :math:`q \ge 1`. Moves with ``d >= 3`` are sure when :math:`|h| < 2`.

    Arguments:
        beta: Inverse temperatures, shape ``(n,)``.
        h: Fields, shape ``(n,)``.

    Returns:
        ``P`` (int64, ``(n, 6)``, 0 where sure) and ``sure`` (bool, ``(n, 6)``).
    """
    b, f = beta.detach().double()[:, None], h.detach().double()[:, None]
    d = torch.tensor([c[0] for c in CLASSES], dtype=torch.float64, device=b.device)
    s = torch.tensor([c[1] for c in CLASSES], dtype=torch.float64, device=b.device)
    q = torch.exp(-2.0 * b * (4.0 - 2.0 * d + s * f))
    sure = q >= 1.0
    return torch.where(sure, 0.0, torch.floor(q * 2.0**32)).long(), sure


def flip_factors(beta: Tensor, h: Tensor, size: int) -> Tensor:
    r"""Factors :math:`e^{\pm 4 \beta h 2^i}` of the heat-bath flip, float32 ``(n, 2, bits)``.

    The flip of a chain with up-spin excess :math:`U` (up spins minus :math:`N/2`) has
    probability :math:`1 / (1 + x)`, :math:`x = e^{4 \beta h U}`: the product, in order of
    increasing ``i``, of entry ``[0, i]`` (:math:`U > 0`) or ``[1, i]`` (:math:`U < 0`) over
    the set bits ``i`` of :math:`|U|` (``bits`` binary digits cover :math:`|U| \le N/2`).
    """
    bits = (size * size // 2).bit_length()
    power = 2.0 ** torch.arange(bits, dtype=torch.float64, device=beta.device)
    rate = 4.0 * beta.detach().double() * h.detach().double()
    exponent = torch.stack([rate[:, None] * power, -rate[:, None] * power], dim=1)
    return torch.exp(exponent).float()


def _mulhilo(a: int, b: Tensor) -> tuple[Tensor, Tensor]:
    # 32 x 32 -> 64-bit product in int64 without overflow: b split into 16-bit halves.
    high, low = a * (b >> 16), a * (b & 0xFFFF)
    return (high + (low >> 16)) >> 16, ((high << 16) + low) & _MASK32


def philox4x32(key: int, counter: tuple[Tensor | int, ...], rounds: int = 10) -> Tensor:
    """Philox4x32 in torch (int64 holding uint32), as Triton's ``tl.randint4x``.

    Arguments:
        key: 64-bit key (Triton's seed): low word ``k0``, high word ``k1``.
        counter: Four counter words (tensors broadcasting together, or ints).
        rounds: Philox rounds (10 as Triton's default and Random123's ``philox4x32``).

    Returns:
        The four output words, int64 in ``[0, 2^32)``, stacked on a new last dimension.
    """
    c = torch.broadcast_tensors(*(torch.as_tensor(x, dtype=torch.int64) for x in counter))
    c0, c1, c2, c3 = (x & _MASK32 for x in c)
    k0, k1 = key & _MASK32, (key >> 32) & _MASK32
    for _ in range(rounds):
        hi0, lo0 = _mulhilo(_PHILOX_M[0], c0)
        hi1, lo1 = _mulhilo(_PHILOX_M[1], c2)
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
        k0, k1 = (k0 + _PHILOX_W[0]) & _MASK32, (k1 + _PHILOX_W[1]) & _MASK32
    return torch.stack([c0, c1, c2, c3], dim=-1)


def _to_words(bits: Tensor) -> Tensor:
    """0/1 values ``(32 w, ...)``, chain first -> int32 words ``(w, ...)``, chain c at bit c."""
    lanes = bits.view(-1, LANES, *bits.shape[1:]).int()
    words = torch.zeros_like(lanes[:, 0])
    for lane in range(LANES):  # one lane at a time: no int64 copy of a large batch
        words |= lanes[:, lane] << lane
    return words


def _from_words(words: Tensor) -> Tensor:
    """Inverse of :func:`_to_words`: int32 ``(w, ...)`` -> bool ``(32 w, ...)``."""
    bits = torch.empty(words.shape[0], LANES, *words.shape[1:], dtype=torch.bool)
    bits = bits.to(words.device)
    for lane in range(LANES):
        bits[:, lane] = (words >> lane & 1).bool()
    return bits.view(-1, *words.shape[1:])


def _sites(size: int, device: torch.device) -> Tensor:
    """Flat site ``y L + x`` of entry ``[colour, k]`` of the packed layout, ``(2, L^2 / 2)``."""
    half = size // 2
    k = torch.arange(size * half, device=device)
    y, j = k // half, k % half
    return torch.stack([y * size + 2 * j + ((y + c) & 1) for c in (0, 1)])


def _pack(up: Tensor | None, n: int, size: int, words: int, device) -> Tensor:
    """Spins (bool ``(n, L, L)``, True = up; None: all up) -> int32 ``(words, 2, L^2 / 2)``."""
    if up is None:
        return torch.full((words, 2, size * size // 2), -1, dtype=torch.int32, device=device)
    padded = torch.ones(words * LANES, size * size, dtype=torch.bool, device=device)
    padded[:n] = up.reshape(n, -1).to(device)
    return _to_words(padded[:, _sites(size, device)])


def _unpack(spins: Tensor, n: int, size: int) -> Tensor:
    """Inverse of :func:`_pack`: int32 ``(words, 2, L^2 / 2)`` -> bool ``(n, L, L)``."""
    flat = torch.empty(spins.shape[0] * LANES, size * size, dtype=torch.bool, device=spins.device)
    flat[:, _sites(size, spins.device)] = _from_words(spins)
    return flat[:n].view(n, size, size)


def _digit_planes(thresholds: Tensor, words: int, device) -> Tensor:
    """Thresholds int64 ``(n, 6)`` -> int32 ``(words, 6, 32)`` on ``device``: word ``[w, class,
    j]`` holds binary digit ``j`` (most significant first) of the 32 chains of word ``w``."""
    padded = torch.zeros(words * LANES, thresholds.shape[1], dtype=torch.long, device=device)
    padded[: thresholds.shape[0]] = thresholds.to(device)
    return torch.stack([_to_words(padded >> (31 - j) & 1) for j in range(32)], dim=-1)


# device kernels ------------------------------------------------------------------------------

if HAS_TRITON:  # Triton kernels read only constexpr globals
    _FLIP, _COIN, _GROUPS = (tl.constexpr(v) for v in (FLIP_TAG, COIN_TAG, GROUPS))


@_jit
def _compare(result, undecided, r, p):
    # One binary digit of U < P, 32 lanes: decided where the digits differ; accept if p = 1.
    r = r.to(tl.int32, bitcast=True)
    return result | (undecided & p & ~r), undecided & ~(r ^ p)


@_jit
def _digit(planes, w, j, m0, m1, m2, m3, m4, m5, FIELD: constexpr):
    # Word of digit j of each lane's threshold: the class masks pick one of six planes
    # (without a field only d = 0 and d = 1 are drawn: m0, m2 select every spin).
    base = planes + w[:, None] * 192 + j
    p = (tl.load(base) & m0) | (tl.load(base + 64) & m2)
    if FIELD:
        p |= (tl.load(base + 32) & m1) | (tl.load(base + 96) & m3)
        p |= (tl.load(base + 128) & m4) | (tl.load(base + 160) & m5)
    return p


@_jit
def _bernoulli(planes, seed, w, k, t, need, m0, m1, m2, m3, m4, m5, FIELD: constexpr):
    # Accepted lanes among ``need``: digits of U from Philox counter (k, w, t, g), four per
    # call, until every lane of the tile is decided (the result does not depend on when).
    c0 = k[None, :] + w[:, None] * 0
    c1 = w[:, None] + k[None, :] * 0
    zero = c0 * 0
    result, undecided = zero, need
    g = 0
    while (g < _GROUPS) & (tl.max(tl.where(undecided != 0, 1, 0)) > 0):
        r0, r1, r2, r3 = _philox(seed, c0, c1, zero + t, zero + g)
        for i in tl.static_range(4):
            p = _digit(planes, w, 4 * g + i, m0, m1, m2, m3, m4, m5, FIELD)
            r = r0 if i == 0 else (r1 if i == 1 else (r2 if i == 2 else r3))
            result, undecided = _compare(result, undecided, r, p)
        g += 1
    return result


@_jit
def _neighbours(spins, w, k, c, mask, L: constexpr):
    # The words of colour c at sites k and the XORs with their four neighbours (colour 1 - c).
    H: tl.constexpr = L // 2
    HALF: tl.constexpr = L * H
    y, j = k // H, k % H
    x = 2 * j + ((y + c) & 1)
    own = spins + (w[:, None].to(tl.int64) * 2 + c) * HALF
    other = spins + (w[:, None].to(tl.int64) * 2 + 1 - c) * HALF
    s = tl.load(own + k[None, :], mask=mask, other=0)
    left = tl.load(other + (y * H + ((x + L - 1) % L) // 2)[None, :], mask=mask, other=0)
    right = tl.load(other + (y * H + ((x + 1) % L) // 2)[None, :], mask=mask, other=0)
    up = tl.load(other + (((y + L - 1) % L) * H + j)[None, :], mask=mask, other=0)
    down = tl.load(other + (((y + 1) % L) * H + j)[None, :], mask=mask, other=0)
    return own, s, s ^ left, s ^ right, s ^ up, s ^ down


@_jit
def _update_tile(spins, planes, sure2, seed, w, k, t, L: constexpr, FIELD: constexpr):
    # Metropolis update of colour t % 2 at sites k of words w; d from a bit-sliced sum.
    mask = (k < L * L // 2)[None, :] & (w >= 0)[:, None]
    own, s, d1, d2, d3, d4 = _neighbours(spins, w, k, t % 2, mask, L)
    sum12, carry12, sum34, carry34 = d1 ^ d2, d1 & d2, d3 ^ d4, d3 & d4
    bit0, carry0 = sum12 ^ sum34, sum12 & sum34
    bit1 = carry12 ^ carry34 ^ carry0
    bit2 = (carry12 & carry34) | (carry0 & (carry12 ^ carry34))
    zero, one = ~(bit0 | bit1 | bit2), bit0 & ~(bit1 | bit2)
    two = bit1 & ~(bit0 | bit2)
    sure = (bit0 & bit1) | bit2  # d >= 3
    if FIELD:  # d = 2 is sure where s h <= 0
        up_sure, down_sure = tl.load(sure2 + w * 2)[:, None], tl.load(sure2 + w * 2 + 1)[:, None]
        sure |= two & ((s & up_sure) | (~s & down_sure))
        m0, m1, m2, m3, m4, m5 = zero & s, zero & ~s, one & s, one & ~s, two & s, two & ~s
    else:
        sure |= two
        m0, m1, m2, m3, m4, m5 = zero, zero, one, one, two, two
    need = tl.where(mask, ~sure, 0)
    accept = _bernoulli(planes, seed, w, k, t, need, m0, m1, m2, m3, m4, m5, FIELD)
    tl.store(own + k[None, :], s ^ (sure | accept), mask=mask)


@_jit
def _lane_words(seed, w, t, tag):
    # One random uint32 per lane and word: output c % 4 of Philox counter (c // 4, w, t, tag).
    lanes = tl.arange(0, 32)[None, :] + w[:, None] * 0
    zero = lanes * 0
    r0, r1, r2, r3 = _philox(seed, lanes // 4, w[:, None] + zero, zero + t, zero + tag)
    q = lanes % 4
    return tl.where(q == 0, r0, tl.where(q == 1, r1, tl.where(q == 2, r2, r3)))


@_jit
def _up_excess(spins, w, L: constexpr, BLOCK_S: constexpr):
    # Up spins minus N/2 of each lane of words w, shape (BLOCK_W, 32).
    HALF: tl.constexpr = L * L // 2
    lanes = tl.arange(0, 32)
    count = tl.zeros((w.shape[0], 32), dtype=tl.int32)
    for c in tl.static_range(2):
        for s0 in range(0, HALF, BLOCK_S):
            k = s0 + tl.arange(0, BLOCK_S)
            at = spins + (w[:, None].to(tl.int64) * 2 + c) * HALF + k[None, :]
            words = tl.load(at, mask=(k < HALF)[None, :] & (w >= 0)[:, None], other=0)
            count += tl.sum((words[:, :, None] >> lanes[None, None, :]) & 1, axis=1).to(tl.int32)
    return count - HALF


@_jit
def _heat_bath_word(spins, factors, seed, w, t, L: constexpr, BLOCK_S: constexpr,
                    NB: constexpr):  # fmt: skip
    # Lane c set with probability 1 / (1 + x), x = exp(4 beta h U) from the factor table.
    excess = _up_excess(spins, w, L, BLOCK_S)
    magnitude = tl.where(excess > 0, excess, -excess)
    lanes = tl.arange(0, 32)
    row = factors + ((w[:, None] * 32 + lanes[None, :]) * 2 + tl.where(excess > 0, 0, 1)) * NB
    x = tl.full((w.shape[0], 32), 1.0, tl.float32)
    for i in tl.static_range(NB):
        x = tl.where(((magnitude >> i) & 1) == 1, x * tl.load(row + i), x)
    u = (_lane_words(seed, w, t, _FLIP) >> 8).to(tl.float32) * (1.0 / 16777216.0)
    return tl.sum(tl.where(u * (1.0 + x) < 1.0, 1, 0) << lanes[None, :], axis=1)  # distinct bits


@_jit
def _global_flip(spins, factors, seed, w, t, L: constexpr, BLOCK_S: constexpr,
                 NB: constexpr, FIELD: constexpr):  # fmt: skip
    # With a field the heat-bath flip after half-sweep t; without, a fair one (t = 2 sweeps).
    HALF: tl.constexpr = L * L // 2
    if FIELD:
        flip = _heat_bath_word(spins, factors, seed, w, t, L, BLOCK_S, NB)
    else:
        zero = w * 0
        flip = _philox(seed, zero, w, zero + t, zero + _COIN)[0].to(tl.int32, bitcast=True)
    for c in tl.static_range(2):
        for s0 in range(0, HALF, BLOCK_S):
            k = s0 + tl.arange(0, BLOCK_S)
            mask = (k < HALF)[None, :] & (w >= 0)[:, None]
            at = spins + (w[:, None].to(tl.int64) * 2 + c) * HALF + k[None, :]
            tl.store(at, tl.load(at, mask=mask, other=0) ^ flip[:, None], mask=mask)


@_jit(fixed=("seed", "t0", "t1"))
def _sweeps_kernel(spins, planes, sure2, factors, seed, t0, t1, L: constexpr,
                   BLOCK_W: constexpr, BLOCK_S: constexpr, FIELD: constexpr,
                   FLIP: constexpr, NB: constexpr):  # fmt: skip
    # Half-sweeps t0 .. t1 - 1 of words BLOCK_W pid0 + (0 .. BLOCK_W - 1), site tiles pid1,
    # pid1 + grid1, ...; with FLIP the program owns whole lattices and draws the field flips.
    w = tl.program_id(0) * BLOCK_W + tl.arange(0, BLOCK_W)
    HALF: tl.constexpr = L * L // 2
    for t in range(t0, t1):
        for s0 in range(tl.program_id(1) * BLOCK_S, HALF, tl.num_programs(1) * BLOCK_S):
            _update_tile(spins, planes, sure2, seed, w, s0 + tl.arange(0, BLOCK_S), t, L, FIELD)
        tl.debug_barrier()  # the next half-sweep reads this one's spins
        if FLIP:
            if t % 2 == 1:
                _global_flip(spins, factors, seed, w, t, L, BLOCK_S, NB, True)
                tl.debug_barrier()


@_jit(fixed=("seed", "t"))
def _flip_kernel(spins, factors, seed, t, L: constexpr, BLOCK_W: constexpr,
                 BLOCK_S: constexpr, NB: constexpr, FIELD: constexpr):  # fmt: skip
    w = tl.program_id(0) * BLOCK_W + tl.arange(0, BLOCK_W)
    _global_flip(spins, factors, seed, w, t, L, BLOCK_S, NB, FIELD)


# launching -----------------------------------------------------------------------------------


def interpreting() -> bool:
    """Whether the kernels run in Triton's CPU interpreter (``TRITON_INTERPRET=1`` at import)."""
    return HAS_TRITON and type(_sweeps_kernel).__name__ == "InterpretedFunction"


def check_device(device: torch.device) -> None:
    """Raises ``ValueError`` unless the Triton kernels can run on ``device``."""
    if not HAS_TRITON:
        raise ValueError(
            "ising: backend 'triton' needs the triton package (pip install 'avo-bench[triton]')"
        )
    if interpreting() and device.type == "cpu":
        return
    if device.type != "cuda" or not torch.cuda.is_available():
        raise ValueError(
            "ising: backend 'triton' runs on CUDA tensors (or on CPU tensors under "
            f"TRITON_INTERPRET=1), theta is on {device}"
        )
    if torch.cuda.get_device_capability(device)[0] < 7:
        raise ValueError("ising: backend 'triton' needs a GPU of compute capability >= 7.0")


def _blocks(size: int, words: int) -> tuple[int, int]:
    """Tile (words, sites) of a program: :data:`TILE_ELEMENTS` words x sites at most."""
    limit = TILE_ELEMENTS or (1 << 16 if interpreting() else 256)
    block_s = min(triton.next_power_of_2(size * size // 2), limit)
    return min(triton.next_power_of_2(words), max(1, limit // block_s)), block_s


def _splits(programs: int, tiles: int, device: torch.device, launch: str) -> int:
    """Programs per lattice: 1 (persistent, one launch) or > 1 (one launch per half-sweep)."""
    if launch not in ("auto", "persistent", "split"):
        raise ValueError(f"ising: launch must be auto, persistent or split, got {launch!r}")
    if launch == "persistent" or (launch == "auto" and (interpreting() or tiles == 1)):
        return 1
    slots = 4 * _sm_count(device)
    if launch == "auto" and programs >= slots:
        return 1
    return max(2, min(tiles, triton.cdiv(slots, programs)))


def _sm_count(device: torch.device) -> int:
    if device.type != "cuda":
        return 1
    return torch.cuda.get_device_properties(device).multi_processor_count


def _seed(generator: torch.Generator | None, device: torch.device) -> int:
    where = generator.device if generator is not None else device
    return int(torch.randint(0, 2**62, (1,), generator=generator, device=where))


def _inputs(beta: Tensor, h: Tensor, size: int, words: int, device) -> tuple[Tensor, ...]:
    """Kernel inputs on ``device``: digit planes ``(words, 6, 32)``, sure masks of d = 2
    ``(words, 2)``, flip factors ``(32 words, 2, bits)``. Probabilities are computed on the
    CPU (float64 ``exp``), so that every device gets the same bits."""
    thresholds, sure = acceptance_thresholds(beta.cpu(), h.cpu())
    padded = torch.zeros(words * LANES, 2, dtype=torch.bool)
    padded[: sure.shape[0]] = sure[:, 4:]
    factors = torch.ones(words * LANES, 2, (size * size // 2).bit_length())
    factors[: beta.shape[0]] = flip_factors(beta.cpu(), h.cpu(), size)
    planes = _digit_planes(thresholds, words, device)
    return planes, _to_words(padded.to(device)), factors.to(device)


def _run(spins: Tensor, inputs, seed: int, sweeps: int, field: bool, launch: str) -> None:
    """Runs the sweeps and global flips on the packed ``spins`` (``(words, 2, L^2/2)``)."""
    size = math.isqrt(2 * spins.shape[2])
    block_w, block_s = _blocks(size, spins.shape[0])
    programs = spins.shape[0] // block_w
    splits = _splits(programs, triton.cdiv(size * size // 2, block_s), spins.device, launch)
    nb = (size * size // 2).bit_length()
    meta = {"L": size, "BLOCK_W": block_w, "BLOCK_S": block_s, "NB": nb, "FIELD": field}
    meta.update(num_warps=max(1, min(8, block_w * block_s // 64)), num_stages=1)
    meta.update(enable_fp_fusion=False)  # the flip's float32 arithmetic, bit for bit
    sweep, flip = _sweeps_kernel[(programs, splits)], _flip_kernel[(programs,)]
    if splits == 1:
        sweep(spins, *inputs, seed, 0, 2 * sweeps, FLIP=field, **meta)
    else:
        for t in range(2 * sweeps):
            sweep(spins, *inputs, seed, t, t + 1, FLIP=False, **meta)
            if field and t % 2 == 1:
                flip(spins, inputs[2], seed, t, **meta)
    if not field:
        flip(spins, inputs[2], seed, 2 * sweeps, **meta)


def triton_sweeps(
    beta: Tensor,
    h: Tensor,
    size: int,
    sweeps: int,
    generator: torch.Generator | None,
    initial: Tensor | None = None,
    launch: str = "auto",
) -> Tensor:
    """The same Markov chain as :func:`~simulators._ising_kernels.torch_sweeps`, in Triton.

    Multi-spin coding: 32 chains per ``int32`` word; Philox random words keyed by one seed
    drawn from ``generator`` (see the module docstring for the exact stream). The field must
    satisfy :math:`|h| < 2`.

    Arguments:
        beta: Inverse temperatures, shape ``(n,)``, on a CUDA device (or the CPU under
            ``TRITON_INTERPRET=1``).
        h: Fields, shape ``(n,)``.
        size: Lattice side :math:`L` (even).
        sweeps: Number of sweeps.
        generator: Draws the seed (on its own device).
        initial: Start from these spins ``(n, L, L)`` instead of all up (to continue a chain).
        launch: ``"persistent"`` (one launch, block barriers between half-sweeps),
            ``"split"`` (one launch per half-sweep), or ``"auto"`` (persistent when the
            words fill the GPU). All give the same lattices.

    Returns:
        Spins :math:`\\pm 1`, shape ``(n, L, L)``, ``beta``'s dtype and device.
    """
    check_device(beta.device)
    if (h.abs() >= 2).any():
        raise ValueError(f"ising: the triton kernel needs |h| < 2, got {float(h.abs().max())}")
    n = beta.shape[0]
    block_w = _blocks(size, -(-n // LANES))[0]
    words = -(-n // (LANES * block_w)) * block_w  # whole blocks: no masks on words
    up = None if initial is None else initial > 0
    spins = _pack(up, n, size, words, beta.device).contiguous()
    inputs = _inputs(beta, h, size, words, beta.device)
    _run(spins, inputs, _seed(generator, beta.device), sweeps, bool((h != 0).any()), launch)
    return (2 * _unpack(spins, n, size).to(beta.dtype) - 1).contiguous()
