"""Speed of AVO at the paper's settings, against the original NumPy + autograd reference code.

The reference (glouppe/paper-avo, code/weinberg.py and code/toy-poisson.py: one simulator call
and one autograd critic evaluation per sample) takes about 190 s (Weinberg) and 140 s (Poisson)
per run single-threaded on the development machine, 4.3 ms and 3.7 ms per critic step. Same
settings here: 300 epochs x 100 critic steps of 32 simulated + 32 observed rows, 64 simulations
per proposal step, critic warm-up of 1000 (Weinberg) / 100 (Poisson) steps.

Usage::

    python benchmarks/speed_avo.py [--device cpu|cuda] [--repeat 1]

Functions are named ``measure_*`` (not ``time_*``) so that asv, which collects this folder,
does not mistake them for its benchmarks. Prints seconds per run and per epoch, milliseconds per critic step (critic alone, on fixed
data), and the speed-up over the reference anchors.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from reproduce_avo import POISSON, WEINBERG

import avo_bench
from avo_bench.methods._critics import MLPCritic, critic_epoch
from avo_bench.methods._nn import FlatAdam
from simulators import get_simulator

ANCHORS = {"weinberg": (190.0, 4.3), "poisson": (140.0, 3.7)}  # s per run, ms per critic step


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_run(name: str, options: dict, device: torch.device) -> tuple[float, float, int]:
    """Wall and CPU seconds of one full AVO run at the paper's settings (gamma = 5).

    CPU time is the fair figure on a shared machine, where wall time includes waiting.
    """
    simulator = get_simulator(name)
    g = torch.Generator(device=device).manual_seed(0)
    x_obs = simulator.observe(generator=g)
    _sync(device)
    start, cpu = time.perf_counter(), time.process_time()
    result = avo_bench.fit("avo", simulator, x_obs, budget=10**8, generator=g, device=device,
                           **options, gamma=5.0, epochs=300)  # fmt: skip
    _sync(device)
    return time.perf_counter() - start, time.process_time() - cpu, result.num_simulations


def measure_critic_step(device: torch.device, steps: int = 3000) -> tuple[float, float]:
    """Wall and CPU milliseconds per WGAN-GP critic step (forward, gradient, Adam) alone."""
    g = torch.Generator(device=device).manual_seed(0)
    critic = MLPCritic(1, (10, 10), g)
    optimizer = FlatAdam(critic.params, 0.01, (0.5, 0.5))
    fake = torch.randn(steps, 32, 1, generator=g, device=device)
    real = torch.randn(steps, 32, 1, generator=g, device=device)
    critic_epoch(critic, optimizer, fake[:10], real[:10], "wgan-gp", 0.025, g)  # warm-up
    _sync(device)
    start, cpu = time.perf_counter(), time.process_time()
    critic_epoch(critic, optimizer, fake, real, "wgan-gp", 0.025, g)
    _sync(device)
    return (time.perf_counter() - start) / steps * 1e3, (time.process_time() - cpu) / steps * 1e3


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("CUDA is not available")
    step_ms, step_cpu = measure_critic_step(device)
    print(f"critic step alone: {step_ms:.3f} ms wall, {step_cpu:.3f} ms CPU ({device})")
    for name, options in (("weinberg", WEINBERG), ("poisson", POISSON)):
        run_s, anchor_step = ANCHORS[name]
        for _ in range(args.repeat):
            seconds, cpu, sims = measure_run(name, options, device)
            print(
                f"{name}: {seconds:.2f} s wall / {cpu:.2f} s CPU per run, "
                f"{cpu / 300 * 1e3:.1f} ms CPU per epoch, {sims} simulations; reference "
                f"{run_s:.0f} s -> {run_s / seconds:.1f}x (wall), {run_s / cpu:.1f}x (CPU); "
                f"critic step {anchor_step / step_cpu:.1f}x (CPU)"
            )


if __name__ == "__main__":
    main()
