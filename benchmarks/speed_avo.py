"""Speed of AVO at the paper's settings, against the original NumPy + autograd reference code.

The reference (glouppe/paper-avo, code/weinberg.py and code/toy-poisson.py: one simulator call
and one autograd critic evaluation per sample) takes about 190 s (Weinberg) and 140 s (Poisson)
per run single-threaded on the development machine, 4.3 ms and 3.7 ms per critic step. Same
settings here: 300 epochs x 100 critic steps of 32 simulated + 32 observed rows, 64 simulations
per proposal step, critic warm-up of 1000 (Weinberg) / 100 (Poisson) steps.

Usage::

    python benchmarks/speed_avo.py [--device cpu|cuda] [--repeat 1]

Functions are named ``measure_*`` (not ``time_*``) so that asv, which collects this folder,
does not mistake them for its benchmarks. Prints seconds per run and per epoch, milliseconds per
critic step (critic alone, on fixed data), and the speed-up over the reference anchors.

``--numerics`` instead prints the hand-written numerics against the library's (issue 21): the
WGAN-GP critic gradient (closed form, autograd's double backward, ``torch.func``; eager and
``torch.compile``-d) and Adam (:class:`FlatAdam`, ``torch.optim.Adam`` for-loop, foreach, fused
and compiled), CPU milliseconds per call (best of ``--repeat`` blocks), the ratio to the
hand-written code, the compile time and the largest difference from the hand-written result.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reproduce_avo import POISSON, WEINBERG

import avo_bench
from avo_bench.methods._critics import MLPCritic, critic_epoch
from avo_bench.methods._nn import FlatAdam
from benchmarks.bench_avo import GRADIENTS, OPTIMIZERS
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


def _per_call(call, calls: int, repeat: int, device: torch.device) -> float:
    # CPU milliseconds per call, best of `repeat` blocks (the least disturbed by other load)
    best = float("inf")
    for _ in range(repeat):
        _sync(device)
        start = time.process_time()
        for _ in range(calls):
            call()
        _sync(device)
        best = min(best, (time.process_time() - start) / calls * 1e3)
    return best


def measure_gradients(m: int, device: torch.device, calls: int, repeat: int) -> list[dict]:
    """Each :data:`GRADIENTS` implementation on one (10, 10) critic and ``3m`` rows."""
    g = torch.Generator(device=device).manual_seed(0)
    critic = MLPCritic(1, (10, 10), g)
    fake = torch.randn(m, 1, generator=g, device=device) + 1.0
    real = torch.randn(m, 1, generator=g, device=device)
    eps = torch.rand(m, 1, generator=g, device=device)
    batch = torch.cat([fake, real, eps * real + (1 - eps) * fake])
    reference = critic.loss_and_grad(batch, "wgan-gp", WEINBERG["penalty"], stats=False)[1]
    rows = []
    for name, make in GRADIENTS.items():
        gradient = make(critic, WEINBERG["penalty"])
        start = time.perf_counter()
        first = gradient(batch)
        _sync(device)
        compile_s = time.perf_counter() - start
        ms = _per_call(lambda: gradient(batch), calls, repeat, device)  # noqa: B023
        error = float((first - reference).abs().max())
        rows.append({"what": f"gradient m={m}", "name": name, "ms": ms, "first_s": compile_s,
                     "max_diff": error})  # fmt: skip
    return rows


def measure_optimizers(device: torch.device, calls: int, repeat: int) -> list[dict]:
    """Each :data:`OPTIMIZERS` implementation on the critic's 141 parameters; ``max_diff`` is
    the largest difference from :class:`FlatAdam` after 100 identical steps."""
    g = torch.Generator(device=device).manual_seed(0)
    start_params = MLPCritic(1, (10, 10), g).params
    grads = torch.randn(100, *start_params.shape, generator=g, device=device)
    results, rows = {}, []
    for name, make in OPTIMIZERS.items():
        params = start_params.clone()
        step = make(params, 0.01, (0.5, 0.5))
        start = time.perf_counter()
        for grad in grads:
            step(grad)
        _sync(device)
        first_s = time.perf_counter() - start
        results[name] = params.detach().clone()
        ms = _per_call(lambda: step(grads[0]), calls, repeat, device)  # noqa: B023
        error = float((results[name] - results["flat"]).abs().max())
        rows.append({"what": "adam step", "name": name, "ms": ms, "first_s": first_s,
                     "max_diff": error})  # fmt: skip
    return rows


def print_numerics(device: torch.device, repeat: int) -> None:
    """The table of :func:`measure_gradients` (m = 32, 256) and :func:`measure_optimizers`."""
    rows = [*measure_gradients(32, device, 2000, repeat), *measure_gradients(256, device, 2000,
            repeat), *measure_optimizers(device, 5000, repeat)]  # fmt: skip
    print(f"{'kernel':16s} {'implementation':15s} {'ms CPU':>8s} {'/ hand':>7s} "
          f"{'first call s':>12s} {'max |diff|':>10s}")  # fmt: skip
    base = {}
    for row in rows:
        base.setdefault(row["what"], row["ms"])  # the first of each kernel is the hand-written
        print(f"{row['what']:16s} {row['name']:15s} {row['ms']:8.4f} "
              f"{row['ms'] / base[row['what']]:7.2f} {row['first_s']:12.2f} "
              f"{row['max_diff']:10.2e}")  # fmt: skip


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--numerics", action="store_true",
                        help="hand-written critic gradient and Adam against the library's")  # fmt: skip
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("CUDA is not available")
    if args.numerics:
        print_numerics(device, max(args.repeat, 3))
        return
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
