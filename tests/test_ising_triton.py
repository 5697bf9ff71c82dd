"""Exactness of the Triton multi-spin-coded Ising kernel (``backend="triton"``).

*Identical random numbers*: the kernel's only randomness is Philox4x32-10 (Triton's
``randint4x``) keyed by a 64-bit seed drawn from the ``torch.Generator``, at counters that fix
each random word's role (see :mod:`simulators._ising_triton`). :func:`reference_sweeps` is a
plain checkerboard Metropolis on :math:`\\pm 1` spins, chain by chain and site by site, which
draws the same Philox words with :func:`philox4x32` (torch, checked against Random123's
known-answer vectors and against Triton itself), turns them into one 32-bit uniform per spin
and accepts a move iff that uniform is below :math:`\\lfloor q\\, 2^{32} \\rfloor`; the heat-bath
flips use the same float32 arithmetic. The kernel (bit-sliced neighbour counts, bit-serial
comparisons of 32 chains at once, early exit, either launch structure) must reproduce its
lattices bit for bit. The 4 x 4 statistics are compared with exact enumeration.

The kernel runs on CPU tensors in Triton's interpreter, which reads ``TRITON_INTERPRET`` when
triton is imported: one subprocess (:func:`_interpreter_outputs`) runs every interpreted case
for this module and the tests compare its outputs. ``gpu`` tests run the compiled kernel.
"""

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from simulators import get_simulator
from simulators._ising_triton import (
    CLASSES,
    COIN_TAG,
    FLIP_TAG,
    HAS_TRITON,
    LANES,
    _digit_planes,
    _from_words,
    _pack,
    _to_words,
    _unpack,
    acceptance_thresholds,
    flip_factors,
    philox4x32,
)
from simulators.ising import exact_moments, lattice_statistics

needs_triton = pytest.mark.skipif(not HAS_TRITON, reason="triton is not installed")
Z = 4.5  # standard errors allowed, as tests/test_ising.py


def gen(seed: int, device="cpu") -> torch.Generator:
    return torch.Generator(device).manual_seed(seed)


def seed_of(seed: int, device="cpu") -> int:
    """The Philox key that the kernel draws from ``gen(seed, device)``."""
    return int(torch.randint(0, 2**62, (1,), generator=gen(seed, device), device=device))


# the reference -------------------------------------------------------------------------------


def lane_uniforms(key: int, words: int, half: int, t: int) -> torch.Tensor:
    """32-bit uniform ``(32 words, half)`` of every chain and site of half-sweep ``t``: digit
    ``j`` (most significant first) is bit ``c`` of Philox word ``j`` of (site, word)."""
    k, w = torch.arange(half), torch.arange(words)
    r = torch.stack([philox4x32(key, (k, w[:, None], t, g)) for g in range(8)], dim=-2)
    r = r.reshape(words, half, 32)  # digit j = 4 g + output index
    bits = r[:, None] >> torch.arange(LANES)[None, :, None, None] & 1  # (w, lane, k, j)
    return (bits << torch.arange(31, -1, -1)).sum(-1).reshape(words * LANES, half)


def heat_bath(spins, beta, h, key: int, t: int) -> torch.Tensor:
    """The global flip after half-sweep ``t``, chain by chain, in the kernel's float32."""
    n, size = spins.shape[0], spins.shape[-1]
    excess = (spins > 0).sum(dim=(1, 2)) - size * size // 2
    factors = flip_factors(beta, h, size)[torch.arange(n), (excess <= 0).long()]
    x = torch.ones(n)
    for i in range(factors.shape[1]):
        x = torch.where((excess.abs() >> i & 1) == 1, x * factors[:, i], x)
    chain = torch.arange(n)
    r = philox4x32(key, (chain % 32 // 4, chain // 32, t, FLIP_TAG))[chain, chain % 4]
    u = (r >> 8).float() * 2.0**-24
    return torch.where(u * (1 + x) < 1, -1, 1)[:, None, None] * spins


def metropolis(spins, thresholds, sure, key: int, t: int) -> torch.Tensor:
    """Half-sweep ``t`` (colour ``t % 2``): one move per site, accepted iff U < P."""
    n, size = spins.shape[0], spins.shape[-1]
    half, words = size * size // 2, -(-n // LANES)
    k = torch.arange(half)
    y, x = k // (size // 2), 2 * (k % (size // 2)) + ((k // (size // 2) + t) & 1)
    s = spins[:, y, x]
    neighbours = [spins[:, y, (x + 1) % size], spins[:, y, (x - 1) % size]]
    neighbours += [spins[:, (y + 1) % size, x], spins[:, (y - 1) % size, x]]
    d = sum((nb != s).long() for nb in neighbours)
    cls = torch.where(d <= 2, 2 * d + (s < 0).long(), 0)
    certain = (d >= 3) | sure.gather(1, cls)
    u = lane_uniforms(key, words, half, t)[:n]
    flip = certain | (u < thresholds.gather(1, cls))
    spins = spins.clone()
    spins[:, y, x] = torch.where(flip, -s, s)
    return spins


def reference_sweeps(beta, h, size: int, sweeps: int, key: int, initial=None) -> torch.Tensor:
    """Checkerboard Metropolis from all up (or ``initial``) on the kernel's random numbers."""
    n = beta.shape[0]
    spins = torch.ones(n, size, size, dtype=torch.long)
    if initial is not None:
        spins = (initial > 0).long() * 2 - 1
    thresholds, sure = acceptance_thresholds(beta, h)
    field = bool((h != 0).any())
    for t in range(2 * sweeps):
        spins = metropolis(spins, thresholds, sure, key, t)
        if field and t % 2 == 1:
            spins = heat_bath(spins, beta, h, key, t)
    if not field:
        chain = torch.arange(n)
        coin = philox4x32(key, (0, chain // 32, 2 * sweeps, COIN_TAG))[:, 0] >> (chain % 32) & 1
        spins = (1 - 2 * coin)[:, None, None] * spins
    return spins.double()


def zero_temperature_sweep(spins: torch.Tensor) -> torch.Tensor:
    """One checkerboard sweep at T -> 0, flipping iff s * (neighbour sum) <= 0."""
    index = torch.arange(spins.shape[-1])
    odd = (index[:, None] + index[None, :]) % 2 == 1
    for colour in (~odd, odd):
        k = spins * sum(spins.roll(shift, dim) for shift in (1, -1) for dim in (1, 2))
        spins = torch.where(colour & (k <= 0), -spins, spins)
    return spins


# cases run by the kernel (interpreted on the CPU, or compiled on CUDA) -----------------------


def exact_cases() -> dict[str, dict]:
    """Kernel inputs compared with :func:`reference_sweeps`: partial words (70, 100 chains),
    a side whose half lattice is no power of two (6), fields of both signs and zero, the
    extremes of the prior, an initial state."""
    t = torch.linspace(1.5, 3.5, 70, dtype=torch.float64)
    t_field = torch.linspace(1.5, 3.5, 100, dtype=torch.float64)
    h = torch.linspace(-0.5, 0.5, 100, dtype=torch.float64)
    h[::7] = 0.0
    initial = torch.randint(0, 2, (40, 6, 6), generator=gen(5)).double() * 2 - 1
    beta_initial = torch.full((40,), 1 / 2.2, dtype=torch.float64)
    return {
        "no_field": {"beta": 1 / t, "h": torch.zeros(70).double(), "size": 6, "sweeps": 3},
        "field": {"beta": 1 / t_field, "h": h, "size": 8, "sweeps": 3},
        "initial": {
            "beta": beta_initial, "h": torch.full((40,), 0.3).double(), "size": 6,
            "sweeps": 2, "initial": initial,
        },
    }  # fmt: skip


def variants(name: str) -> list[tuple[str, int | None]]:
    """(launch, tile elements): both launch structures with the default tiles; for the case
    "initial" also 16-site tiles (a program loops over two tiles, of 16 and 2 sites)."""
    tiles = (None, 16) if name == "initial" else (None,)
    return [(launch, tile) for launch in ("persistent", "split") for tile in tiles]


def run_exact_cases(device="cpu") -> dict[str, torch.Tensor]:
    """Each case by :func:`triton_sweeps`, seeded by ``gen(i)``, in every :func:`variants`."""
    from simulators import _ising_triton

    out = {}
    for i, (name, case) in enumerate(exact_cases().items()):
        case = {key: v.to(device) if torch.is_tensor(v) else v for key, v in case.items()}
        for launch, tile in variants(name):
            _ising_triton.TILE_ELEMENTS = tile
            spins = _ising_triton.triton_sweeps(
                case["beta"], case["h"], case["size"], case["sweeps"], gen(i, device),
                initial=case.get("initial"), launch=launch,
            )  # fmt: skip
            out[f"{name}/{launch}/{tile}"] = spins.cpu()
    _ising_triton.TILE_ELEMENTS = None
    return out


def enumeration_settings() -> dict[str, list]:
    return {"no_field": [1.6, 2.3, 3.3], "field": [(1.6, -0.3), (2.3, 0.05), (3.3, 0.5)]}


def run_enumeration(device="cpu", chains: int = 3000) -> dict[str, torch.Tensor]:
    """(e, m) of 4 x 4 lattices from ``Ising(backend="triton")``, ``(settings, chains, 2)``."""
    out = {}
    for i, (name, settings) in enumerate(enumeration_settings().items()):
        field = name == "field"
        sim = get_simulator(
            "ising", size=4, sweeps=20, output="lattice", field=field, backend="triton"
        )
        theta = torch.tensor(settings, dtype=torch.float64).reshape(len(settings), -1)
        theta = theta.repeat(chains, 1).to(device)
        spins = sim.simulate(theta, generator=gen(11 + i, device))
        stats = lattice_statistics(spins).double().cpu()
        out[name] = stats.view(chains, len(settings), 2).transpose(0, 1)
    return out


def run_zero_temperature(device="cpu") -> dict[str, torch.Tensor]:
    """One sweep at beta = 1000 from random states: deterministic up to the global flip."""
    from simulators._ising_triton import triton_sweeps

    initial = torch.randint(0, 2, (70, 6, 6), generator=gen(0)).double() * 2 - 1
    beta = torch.full((70,), 1000.0, dtype=torch.float64, device=device)
    out = triton_sweeps(beta, torch.zeros_like(beta), 6, 1, gen(1, device), initial=initial)
    return {"initial": initial, "out": out.cpu()}


def _interpreter_outputs(path: str) -> None:
    """Runs every case in Triton's interpreter (``TRITON_INTERPRET=1``) and saves them."""
    import time

    from simulators._ising_triton import interpreting

    assert interpreting(), "TRITON_INTERPRET=1 must be set before triton is imported"
    torch.set_num_threads(1)
    out, seconds = {}, {}
    for name, run in [
        ("exact", run_exact_cases), ("enumeration", run_enumeration),
        ("zero_temperature", run_zero_temperature), ("philox", run_philox_probe),
    ]:  # fmt: skip
        start = time.perf_counter()
        out[name] = run()
        seconds[name] = time.perf_counter() - start
    out["seconds"] = seconds
    torch.save(out, path)


if HAS_TRITON:
    import triton
    import triton.language as tl

    @triton.jit
    def _philox_probe_kernel(out, seed, N: tl.constexpr):
        i = tl.arange(0, N)
        r0, r1, r2, r3 = tl.randint4x(seed, i.to(tl.int64) * 0x100000001)
        tl.store(out + 4 * i, r0.to(tl.int32, bitcast=True))
        tl.store(out + 4 * i + 1, r1.to(tl.int32, bitcast=True))
        tl.store(out + 4 * i + 2, r2.to(tl.int32, bitcast=True))
        tl.store(out + 4 * i + 3, r3.to(tl.int32, bitcast=True))


def run_philox_probe(device="cpu") -> torch.Tensor:
    """Triton's ``randint4x`` at offset ``i (2^32 + 1)`` = counter ``(i, i, 0, 0)``, key 2^40+7."""
    out = torch.zeros(64 * 4, dtype=torch.int32, device=device)
    _philox_probe_kernel[(1,)](out, 2**40 + 7, N=64)
    return out.cpu().long() & 0xFFFFFFFF


@pytest.fixture(scope="module")
def interpreted(tmp_path_factory):
    if not HAS_TRITON:
        pytest.skip("triton is not installed")
    path = tmp_path_factory.mktemp("triton") / "outputs.pt"
    root = Path(__file__).resolve().parents[1]
    code = (
        f"import sys; sys.path[:0] = [{str(root)!r}, {str(root / 'tests')!r}]; "
        f"import test_ising_triton as t; t._interpreter_outputs({str(path)!r})"
    )
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    return torch.load(path)


# tests without triton: the reference's pieces ------------------------------------------------


def test_philox_matches_random123_known_answers():
    # Random123 kat_vectors, philox4x32 with 10 rounds: (counter, key) -> output.
    cases = [
        ((0, 0, 0, 0), 0, (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
        ((0xFFFFFFFF,) * 4, 2**64 - 1, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
        (
            (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
            0x299F31D0 << 32 | 0xA4093822,
            (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
        ),
    ]
    for counter, key, expected in cases:
        assert philox4x32(key, counter).tolist() == list(expected)


def test_acceptance_thresholds_are_the_metropolis_probabilities():
    beta = torch.tensor([1 / 1.5, 1 / 2.3, 1 / 3.5, 1000.0], dtype=torch.float64)
    h = torch.tensor([0.0, 0.5, -0.5, 0.1], dtype=torch.float64)
    thresholds, sure = acceptance_thresholds(beta, h)
    for c, (d, s) in enumerate(CLASSES):
        q = torch.exp(-2 * beta * (4 - 2 * d + s * h)).clamp(max=1.0)
        assert torch.equal(sure[:, c], q >= 1)
        assert ((thresholds[:, c] - torch.where(q >= 1, 0.0, q * 2**32)).abs() < 1).all()
    assert sure[:, :4].sum() == 0  # |h| < 2: moves with d < 2 are never certain
    assert sure[:, 4].tolist() == [True, False, True, False]  # d = 2, s = +1: s h <= 0


def test_flip_factors_give_the_heat_bath_probability():
    beta, h, size = torch.tensor([0.4, 0.6]).double(), torch.tensor([0.3, -0.2]).double(), 8
    factors = flip_factors(beta, h, size)
    assert factors.shape == (2, 2, 6)  # |U| <= 32: six bits
    for excess in (-32, -5, 0, 7, 32):
        side = 0 if excess > 0 else 1
        bits = [i for i in range(6) if abs(excess) >> i & 1]
        x = factors[:, side, bits].double().prod(-1)
        assert torch.allclose(x, torch.exp(4 * beta * h * excess), rtol=1e-5)


def test_packing_round_trips():
    up = torch.rand(70, 6, 6, generator=gen(0)) < 0.5
    packed = _pack(up, 70, 6, 3, "cpu")
    assert packed.shape == (3, 2, 18) and packed.dtype == torch.int32
    assert torch.equal(_unpack(packed, 70, 6), up)
    assert _unpack(packed, 96, 6)[70:].all()  # padding chains start up
    assert torch.equal(_pack(None, 70, 6, 3, "cpu"), _pack(torch.ones_like(up), 70, 6, 3, "cpu"))
    values = torch.randint(0, 2, (64, 5), generator=gen(1))
    assert torch.equal(_from_words(_to_words(values)), values.bool())
    assert _to_words(torch.ones(32, 1, dtype=torch.long)).item() == -1
    bit31 = torch.zeros(32, dtype=torch.long)
    bit31[31] = 1
    assert _to_words(bit31).item() == -(2**31)  # chain 31 is the sign bit
    thresholds = torch.randint(0, 2**32, (40, 6), generator=gen(2))
    planes = _from_words(_digit_planes(thresholds, 2, "cpu")).long()  # (64, 6, 32): digits
    assert torch.equal((planes[:40] << torch.arange(31, -1, -1)).sum(-1), thresholds)


def test_reference_agrees_with_the_enumeration():
    # The reference itself is a correct sampler (on Philox words, no kernel involved).
    beta = torch.full((1500,), 1 / 2.3, dtype=torch.float64)
    spins = reference_sweeps(beta, torch.full_like(beta, 0.2), 4, 20, key=123)
    e, m = lattice_statistics(spins).unbind(-1)
    exact = exact_moments(4, 2.3, 0.2)
    assert_close(e, exact["energy"])
    assert_close(m, exact["magnetization"])


def test_backend_errors():
    sim = get_simulator("ising", size=4, backend="triton") if HAS_TRITON else None
    if sim is None:
        with pytest.raises(ValueError, match="needs the triton package"):
            get_simulator("ising", backend="triton")
        return
    if torch.cuda.is_available():
        pytest.skip("CPU tensors are refused only without CUDA and the interpreter")
    with pytest.raises(ValueError, match="runs on CUDA tensors"):
        sim.simulate(torch.tensor([[2.0]]))


def assert_close(samples: torch.Tensor, exact: float):
    mean, se = float(samples.mean()), float(samples.std() / math.sqrt(samples.numel()))
    assert abs(mean - exact) <= Z * se, f"{mean:.5f} +- {se:.5f} vs exact {exact:.5f}"


# the interpreted kernel ----------------------------------------------------------------------


def check_exact(outputs: dict[str, torch.Tensor], device="cpu") -> None:
    for i, (name, case) in enumerate(exact_cases().items()):
        expected = reference_sweeps(
            case["beta"], case["h"], case["size"], case["sweeps"], seed_of(i, device),
            case.get("initial"),
        )  # fmt: skip
        for launch, tile in variants(name):
            got = outputs[f"{name}/{launch}/{tile}"]
            assert torch.equal(got, expected), (name, launch, tile, (got != expected).sum())


@needs_triton
def test_interpreted_kernel_equals_reference_bit_for_bit(interpreted):
    check_exact(interpreted["exact"])


@needs_triton
def test_interpreted_philox_is_tritons(interpreted):
    i = torch.arange(64)
    expected = philox4x32(2**40 + 7, (i, i, 0, 0)).reshape(-1)
    assert torch.equal(interpreted["philox"], expected)


@needs_triton
def test_interpreted_kernel_matches_enumeration(interpreted):
    stats = interpreted["enumeration"]
    for temperature, s in zip(enumeration_settings()["no_field"], stats["no_field"], strict=True):
        exact = exact_moments(4, temperature)
        assert_close(s[:, 0], exact["energy"])
        assert_close(s[:, 1].abs(), exact["abs_magnetization"])
        assert_close(s[:, 1], 0.0)
    for (temperature, h), s in zip(enumeration_settings()["field"], stats["field"], strict=True):
        exact = exact_moments(4, temperature, h)
        assert_close(s[:, 0], exact["energy"])
        assert_close(s[:, 1], exact["magnetization"])


@needs_triton
def test_interpreted_kernel_continues_from_initial_state(interpreted):
    run = interpreted["zero_temperature"]
    overlap = (run["out"] * zero_temperature_sweep(run["initial"])).mean(dim=(1, 2))
    assert set(overlap.tolist()) == {-1.0, 1.0}  # equal or flipped, both occur


# the compiled kernel ---------------------------------------------------------------------------


@needs_triton
def test_kernels_compile_for_hopper_without_a_gpu():
    # Triton's compiler (front end, MLIR, LLVM, ptxas) for sm_90, no driver needed: the
    # compiled path, which the interpreter does not exercise, builds.
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from simulators import _ising_triton as m

    if m.interpreting():
        pytest.skip("TRITON_INTERPRET is set")
    pointers = {"spins": "*i32", "planes": "*i32", "sure2": "*i32", "factors": "*fp32"}
    scalars = {"seed": "i64", "t0": "i32", "t1": "i32"}
    meta = {"L": 16, "BLOCK_W": 2, "BLOCK_S": 128, "FIELD": True, "FLIP": True, "NB": 8}
    options = {"num_warps": 4, "num_stages": 1, "enable_fp_fusion": False}
    signature = {**pointers, **scalars, **dict.fromkeys(meta, "constexpr")}
    source = ASTSource(fn=m._sweeps_kernel, signature=signature, constexprs=meta)
    kernel = triton.compile(source, target=GPUTarget("cuda", 90, 32), options=options)
    assert kernel.asm["cubin"] and "bar.sync" in kernel.asm["ptx"]
    meta = {"L": 16, "BLOCK_W": 2, "BLOCK_S": 128, "NB": 8, "FIELD": False}
    signature = {"spins": "*i32", "factors": "*fp32", "seed": "i64", "t": "i32"}
    signature.update(dict.fromkeys(meta, "constexpr"))
    source = ASTSource(fn=m._flip_kernel, signature=signature, constexprs=meta)
    assert triton.compile(source, target=GPUTarget("cuda", 90, 32), options=options).asm["cubin"]


@pytest.mark.gpu
@needs_triton
def test_cuda_kernel_equals_reference_bit_for_bit():
    check_exact(run_exact_cases("cuda"), "cuda")
    i = torch.arange(64)
    assert torch.equal(run_philox_probe("cuda"), philox4x32(2**40 + 7, (i, i, 0, 0)).reshape(-1))


@pytest.mark.gpu
@needs_triton
def test_cuda_kernel_matches_enumeration():
    stats = run_enumeration("cuda", chains=20000)
    for (temperature, h), s in zip(enumeration_settings()["field"], stats["field"], strict=True):
        exact = exact_moments(4, temperature, h)
        assert_close(s[:, 0], exact["energy"])
        assert_close(s[:, 1], exact["magnetization"])
    assert get_simulator("ising")._kernel(torch.zeros(1, device="cuda")).__name__ == (
        "triton_sweeps"
    )
