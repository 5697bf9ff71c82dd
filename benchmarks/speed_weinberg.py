"""Throughput of the Weinberg and Poisson simulators, printed as events per second.

Run ``python benchmarks/speed_weinberg.py [--device cpu|cuda] [--repeats 5]``. Pins torch to one
thread; each figure is the best of ``repeats`` timings of one ``simulate`` call on a batch of
prior draws (one event per row, so every row has its own parameters).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch

from simulators import get_simulator

BATCHES = (1_000, 10_000, 100_000, 1_000_000)


def best_seconds(call: Callable[[], object], device: torch.device, repeats: int) -> float:
    """Best wall time of ``call`` over ``repeats`` runs, after one warm-up run."""
    call()
    timings = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        call()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        timings.append(time.perf_counter() - start)
    return min(timings)


def throughput(name: str, options: dict, batch: int, device: torch.device, repeats: int) -> float:
    """Events per second of ``simulate`` for ``batch`` prior draws."""
    sim = get_simulator(name, **options)
    generator = torch.Generator(device).manual_seed(0)
    theta = sim.prior.sample((batch,), generator=generator)
    seconds = best_seconds(lambda: sim.simulate(theta, generator=generator), device, repeats)
    return batch / seconds


CONFIGS = [
    ("weinberg", {}),
    ("weinberg", {"resolution": 0.05, "acceptance": 0.9}),
    ("poisson", {}),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    device = torch.device(args.device)
    print(f"device={device} threads={torch.get_num_threads()} torch={torch.__version__}")
    print(f"{'simulator':<10} {'options':<38} {'batch':>9} {'events/s':>12}")
    for name, options in CONFIGS:
        for batch in BATCHES:
            rate = throughput(name, options, batch, device, args.repeats)
            print(f"{name:<10} {options!s:<38} {batch:>9,d} {rate:>12.3e}")


if __name__ == "__main__":
    main()
