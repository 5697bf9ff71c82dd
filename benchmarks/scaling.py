"""How the cost of each kernel grows with its size: log-log least-squares slopes.

Usage::

    python -m benchmarks.scaling [--kernels critic_step mmd2 ...] [--device cpu] [--quick]

Each kernel is set up exactly as its asv benchmark (``bench_*.py``) at a range of sizes (batch,
samples, lattice side, population), timed as the best of a few repeats after a warm-up, on one
pinned thread. Prints a markdown table: the seconds at the smallest and largest size, the
exponent ``b`` of ``time ~ size^b`` fitted by least squares on all sizes, and the exponent
between the two largest sizes (fixed overheads flatten the first at small sizes; the second is
closer to the asymptotic cost). Functions are named ``measure*`` so asv does not collect them.
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from benchmarks import bench_avo, bench_methods, bench_metrics, bench_simulators
from simulators import get_simulator

Kernel = Callable[[int, str], Callable[[], object]]  # (size, device) -> zero-argument call


@dataclass(frozen=True)
class Scaling:
    """A kernel, what its size counts, the sizes, and the cost expected in theory."""

    build: Kernel
    size: str
    sizes: tuple[int, ...]
    expected: str


def _bench(cls, method: str, **fixed) -> Kernel:
    """A kernel from an asv class: ``setup`` at ``size`` (the last parameter), then ``method``."""

    def build(size: int, device: str) -> Callable[[], object]:
        bench = cls()
        names = list(cls.param_names)
        args = [fixed.get(name) for name in names]
        args[names.index("device")] = device
        args[-1] = size
        bench.setup(*args)
        return lambda: getattr(bench, method)(*args)

    return build


def _ising(size: int, device: str) -> Callable[[], object]:
    simulator = get_simulator("ising", size=size, sweeps=20)
    g = torch.Generator(device).manual_seed(0)
    theta = simulator.prior.sample((256,), generator=g)
    simulator.simulate(theta[:2], generator=g)
    return lambda: simulator.simulate(theta, generator=g)


def _simulator(name: str) -> Kernel:
    return _bench(bench_simulators.SimulatorThroughput, "time_simulate", simulator=name)


KERNELS: dict[str, Scaling] = {
    "critic_step": Scaling(
        _bench(bench_avo.CriticStep, "time_critic_step"), "critic batch m",
        (32, 128, 512, 2048, 8192), "m",
    ),
    "proposal_step": Scaling(
        _bench(bench_avo.ProposalStep, "time_proposal_step"), "proposal batch M",
        (64, 256, 1024, 4096, 16384), "M",
    ),
    "cgan_step": Scaling(
        _bench(bench_methods.CGANTrainingStep, "time_training_step"), "minibatch",
        (64, 256, 1024, 4096), "batch",
    ),
    "rejection_abc": Scaling(
        _bench(bench_methods.RejectionABCDistances, "time_distances"), "draws N",
        (10_000, 30_000, 100_000, 300_000, 1_000_000), "N log N (median, sort)",
    ),
    "smc_abc_weights": Scaling(
        _bench(bench_methods.SMCABCWeights, "time_importance_weights"), "population N",
        (100, 300, 1000, 3000), "N^2",
    ),
    "w1_closed_form_1d": Scaling(
        _bench(bench_metrics.Wasserstein1, "time_wasserstein1", path="closed_form_1d"),
        "samples n", (1_000, 10_000, 100_000, 1_000_000), "n log n",
    ),
    "w1_exact_emd": Scaling(
        _bench(bench_metrics.Wasserstein1, "time_wasserstein1", path="exact_emd"),
        "samples n", (250, 500, 1000, 2000), "n^2 (cost matrix) to n^3 (simplex)",
    ),
    "w1_quantized": Scaling(
        _bench(bench_metrics.Wasserstein1, "time_wasserstein1", path="quantized"),
        "samples n", (3_000, 10_000, 30_000, 100_000), "n (1000 centers)",
    ),
    "jensen_shannon": Scaling(
        _bench(bench_metrics.JensenShannon, "time_jensen_shannon", dim=2), "samples n",
        (10_000, 100_000, 1_000_000), "n",
    ),
    "mmd2": Scaling(
        _bench(bench_metrics.MMD, "time_mmd2"), "samples n", (500, 1000, 2000, 4000, 8000),
        "n^2",
    ),
    "c2st_fast": Scaling(
        _bench(bench_metrics.C2ST, "time_c2st", variant="fast"), "samples n",
        (1_000, 4_000, 16_000), "n beyond the 250-step floor",
    ),
    "gaussian": Scaling(_simulator("gaussian"), "batch", (1_000, 10_000, 100_000, 1_000_000), "n"),
    "rosenbrock": Scaling(
        _simulator("rosenbrock"), "batch", (1_000, 10_000, 100_000, 1_000_000), "n"
    ),
    "weinberg": Scaling(_simulator("weinberg"), "batch", (1_000, 10_000, 100_000, 1_000_000), "n"),
    "poisson": Scaling(_simulator("poisson"), "batch", (1_000, 10_000, 100_000, 1_000_000), "n"),
    "ising_chains": Scaling(_simulator("ising"), "chains", (100, 300, 1_000, 3_000), "n"),
    "ising_lattice": Scaling(_ising, "lattice side L", (16, 32, 64, 128), "L^2"),
}  # fmt: skip


def measure(call: Callable[[], object], min_seconds: float = 0.2, max_repeats: int = 5) -> float:
    """Best wall time of ``call()`` over up to ``max_repeats`` runs (stops after ``min_seconds``)."""
    call()  # warm-up
    best, spent = float("inf"), 0.0
    for _ in range(max_repeats):
        start = time.perf_counter()
        call()
        elapsed = time.perf_counter() - start
        best, spent = min(best, elapsed), spent + elapsed
        if spent >= min_seconds:
            break
    return best


def loglog_slope(sizes, seconds) -> float:
    """Least-squares slope ``b`` of ``log(seconds) = a + b log(size)``."""
    return float(np.polyfit(np.log(sizes), np.log(seconds), 1)[0])


def measure_scaling(name: str, device: str, quick: bool = False) -> dict[str, object]:
    """Times kernel ``name`` at its sizes (the first three with ``quick``)."""
    scaling = KERNELS[name]
    sizes = scaling.sizes[:3] if quick else scaling.sizes
    seconds = [measure(scaling.build(size, device)) for size in sizes]
    (s1, t1), (s2, t2) = itertools.islice(zip(sizes, seconds, strict=True), len(sizes) - 2, None)
    return {
        "kernel": name,
        "size": scaling.size,
        "sizes": f"{sizes[0]:,}-{sizes[-1]:,}",
        "first_s": seconds[0],
        "last_s": seconds[-1],
        "slope": loglog_slope(sizes, seconds),
        "last_slope": loglog_slope([s1, s2], [t1, t2]),
        "expected": scaling.expected,
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kernels", nargs="+", choices=list(KERNELS), default=list(KERNELS))
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--quick", action="store_true", help="only the three smallest sizes")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    print(f"device={args.device} threads={torch.get_num_threads()} torch={torch.__version__}")
    print("| kernel | size | range | s (smallest) | s (largest) | slope | last slope | theory |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.kernels:
        row = measure_scaling(name, args.device, args.quick)
        print(
            f"| {row['kernel']} | {row['size']} | {row['sizes']} | {row['first_s']:.2e} | "
            f"{row['last_s']:.2e} | {row['slope']:.2f} | {row['last_slope']:.2f} | "
            f"{row['expected']} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
