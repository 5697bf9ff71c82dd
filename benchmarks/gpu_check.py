"""GPU check of the Triton Ising kernel: CUDA exactness tests, then spin updates per ns.

Run ``python benchmarks/gpu_check.py`` on a machine with CUDA and triton (``pip install -e
'.[dev,triton]'``). It runs the ``gpu`` tests of ``tests/test_ising_triton.py`` and
``tests/test_ising.py`` (the compiled kernel against the CPU reference on identical Philox
numbers, both launch structures; the 4 x 4 enumeration), then times ``Ising.simulate`` with
the triton and torch backends and each launch structure of the kernel, printing spin updates
per ns (the goal: >= 1000 on an H100/H200). Without CUDA or triton it says so and exits 0;
``--strict`` makes that exit 1. About two minutes on an H200 (mostly Triton compilation).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from simulators import get_simulator  # noqa: E402
from simulators.ising import HAS_TRITON  # noqa: E402

SWEEPS = 100
UPDATES = 2**24  # spin updates per sweep over all chains: 65536 chains at L = 16


def missing() -> str | None:
    """Why the check cannot run here, or None."""
    if not torch.cuda.is_available():
        return "CUDA is not available"
    if not HAS_TRITON:
        return "triton is not installed (pip install -e '.[triton]')"
    return None


def run_tests() -> int:
    """The CUDA tests (``-m gpu``); returns pytest's exit status."""
    files = ["tests/test_ising_triton.py", "tests/test_ising.py"]
    command = [sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider"]
    return subprocess.run([*command, *files], cwd=ROOT).returncode


def rate(run, updates: int, repeats: int = 3) -> float:
    """Best of ``repeats`` timed calls of ``run()`` (after a warm-up), in updates per ns."""
    run()
    best = float("inf")
    for _ in range(repeats):
        torch.cuda.synchronize()
        start = time.perf_counter()
        run()
        torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return updates / best / 1e9


def simulate_rate(size: int, backend: str, sweeps: int = SWEEPS) -> float:
    """``Ising.simulate`` of ``UPDATES / L^2`` chains at prior temperatures, updates per ns."""
    sim = get_simulator("ising", size=size, sweeps=sweeps, backend=backend)
    generator = torch.Generator("cuda").manual_seed(0)
    theta = sim.prior.sample((UPDATES // size**2,), generator=generator, device="cuda")
    return rate(lambda: sim.simulate(theta, generator=generator), UPDATES * sweeps)


def launch_rate(size: int, launch: str, field: bool) -> float:
    """The kernel alone with a given launch structure (``persistent`` or ``split``)."""
    from simulators._ising_triton import triton_sweeps

    n = UPDATES // size**2
    generator = torch.Generator("cuda").manual_seed(0)
    beta = 1 / (1.5 + 2 * torch.rand(n, generator=generator, device="cuda"))
    h = (torch.rand(n, generator=generator, device="cuda") - 0.5) if field else beta * 0
    return rate(
        lambda: triton_sweeps(beta, h, size, SWEEPS, generator, launch=launch), UPDATES * SWEEPS
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strict", action="store_true", help="exit 1 without CUDA/triton")
    parser.add_argument("--no-tests", action="store_true", help="throughput only")
    args = parser.parse_args()
    reason = missing()
    if reason:
        print(f"gpu_check: skipped: {reason}")
        return 1 if args.strict else 0
    print(f"gpu_check: {torch.cuda.get_device_name()}, torch {torch.__version__}")
    status = 0 if args.no_tests else run_tests()
    for size in (16, 64):
        print(f"L = {size}, {UPDATES // size**2} chains, {SWEEPS} sweeps:")
        print(f"  simulate triton          {simulate_rate(size, 'triton'):10.1f} updates/ns")
        print(f"  simulate torch (10 sw.)  {simulate_rate(size, 'torch', 10):10.1f} updates/ns")
        for launch in ("persistent", "split"):
            for field in (False, True):
                value = launch_rate(size, launch, field)
                print(f"  kernel {launch:10s} field={field!s:5s} {value:10.1f} updates/ns")
    return status


if __name__ == "__main__":
    sys.exit(main())
