"""Speed of the Ising Metropolis kernels in spin updates per second, on one CPU core.

Run ``python benchmarks/speed_ising.py``: it times checkerboard Metropolis sweeps of a batch of
chains with a plain NumPy ``int8`` baseline, the pure-torch kernel and the numba kernel, and
``Ising.simulate`` at its defaults. The asv classes at the bottom time the same kernels
(no work at import time).
"""

from __future__ import annotations

import time

import numpy as np
import torch

from simulators import get_simulator
from simulators._ising_kernels import HAS_NUMBA, numba_sweeps, torch_sweeps

CRITICAL = 2.0 / np.log(1.0 + np.sqrt(2.0))


def numpy_sweeps(beta: np.ndarray, size: int, sweeps: int, rng: np.random.Generator):
    """Baseline: vectorized NumPy checkerboard Metropolis on ``int8`` spins, no field."""
    n = beta.shape[0]
    spins = np.ones((n, size, size), dtype=np.int8)
    index = np.arange(size)
    colours = [(index[:, None] + index[None, :]) % 2 == c for c in (0, 1)]
    # acceptance by k = s * (neighbour sum) in {-4, -2, 0, 2, 4}, per chain
    table = np.minimum(1.0, np.exp(-2.0 * np.arange(-4, 5)[None, :] * beta[:, None]))
    table = table.astype(np.float32)[:, :, None, None]
    for _ in range(sweeps):
        u = rng.random(spins.shape, dtype=np.float32)
        for colour in colours:
            nn = (
                np.roll(spins, 1, 1)
                + np.roll(spins, -1, 1)
                + np.roll(spins, 1, 2)
                + np.roll(spins, -1, 2)
            )
            k = (spins * nn + 4).astype(np.intp)
            accept = np.take_along_axis(table[:, :, 0, 0], k.reshape(n, -1), 1).reshape(k.shape)
            spins[(u < accept) & colour] *= -1
    return spins


def rate(run, n: int, size: int, sweeps: int, repeats: int = 3) -> float:
    """Best-of-``repeats`` spin updates per second of ``run(sweeps)``."""
    run(1)  # warm-up (compilation, allocation)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run(sweeps)
        best = min(best, time.perf_counter() - start)
    return n * size * size * sweeps / best


def kernels(n: int, size: int, field: float):
    beta = torch.full((n,), 1 / CRITICAL, dtype=torch.float64)
    h = torch.full((n,), field, dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    rng = np.random.default_rng(0)
    runs = {
        "numpy int8 baseline": lambda s: numpy_sweeps(beta.numpy(), size, s, rng),
        "torch float32": lambda s: torch_sweeps(beta.float(), h.float(), size, s, gen),
    }
    if field != 0:
        del runs["numpy int8 baseline"]
    if HAS_NUMBA:
        runs["numba"] = lambda s: numba_sweeps(beta, h, size, s, gen)
    return runs


def main():
    torch.set_num_threads(1)
    print("spin updates per second, one core, T = T_c; numba = multi-spin-coded kernel")
    for n, size, field, sweeps in [
        (1000, 16, 0.0, 250),
        (1000, 16, 0.1, 250),
        (4096, 32, 0.0, 100),
        (64, 64, 0.0, 100),
        (1, 256, 0.0, 20),
    ]:
        runs = kernels(n, size, field)
        base = None
        for name, run in runs.items():
            r = rate(run, n, size, sweeps if name == "numba" else max(2, sweeps // 10))
            base = base or r
            print(f"  n={n:5d} L={size:3d} h={field:.1f}  {name:20s} {r:10.3e}  x{r / base:6.1f}")
    sim = get_simulator("ising")
    theta = sim.prior.sample((1000,), generator=torch.Generator().manual_seed(0))
    sim.simulate(theta[:2], torch.Generator().manual_seed(0))
    start = time.perf_counter()
    sim.simulate(theta, torch.Generator().manual_seed(1))
    elapsed = time.perf_counter() - start
    print(f"Ising() defaults {sim.options()}: simulate(1000 chains) {elapsed:.3f} s")


class TimeIsingSweeps:
    """asv: 20 sweeps of 1000 chains on a 16 x 16 lattice, per backend and device."""

    params = (["numba", "torch"], ["cpu", "cuda"])
    param_names = ("backend", "device")

    def setup(self, backend, device):
        if device == "cuda" and not torch.cuda.is_available():
            raise NotImplementedError("no CUDA")
        if backend == "numba" and (device != "cpu" or not HAS_NUMBA):
            raise NotImplementedError("numba runs on the CPU only")
        self.kernel = numba_sweeps if backend == "numba" else torch_sweeps
        self.beta = torch.full((1000,), 1 / CRITICAL, device=device)
        self.h = torch.zeros_like(self.beta)
        self.gen = torch.Generator(device).manual_seed(0)
        self.device = device
        self.kernel(self.beta, self.h, 16, 1, self.gen)

    def time_sweeps(self, backend, device):
        self.kernel(self.beta, self.h, 16, 20, self.gen)
        if self.device == "cuda":
            torch.cuda.synchronize()

    def track_spin_updates_per_second(self, backend, device):
        start = time.perf_counter()
        self.time_sweeps(backend, device)
        return 1000 * 16 * 16 * 20 / (time.perf_counter() - start)

    track_spin_updates_per_second.unit = "updates/s"


class TimeIsingSimulate:
    """asv: ``Ising().simulate`` of 1000 prior draws at the defaults, without and with field."""

    params = ([False, True],)
    param_names = ("field",)

    def setup(self, field):
        self.sim = get_simulator("ising", field=field)
        self.theta = self.sim.prior.sample((1000,), generator=torch.Generator().manual_seed(0))
        self.sim.simulate(self.theta[:64], torch.Generator().manual_seed(1))

    def time_simulate(self, field):
        self.sim.simulate(self.theta, torch.Generator().manual_seed(2))


if __name__ == "__main__":
    main()
