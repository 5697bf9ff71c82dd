"""Simulation throughput of sbibm's ten tasks: batched ``simulate`` next to a per-row loop.

``SbibmThroughput`` times one batched ``simulate`` call on prior draws (one simulation per
row) for every task, device and batch size; ``SbibmRowLoop`` times the plain alternative, one
``simulate`` call per row, on a small batch (sbibm's simulators loop over rows in Python, and
call Julia once per row for ``sir`` and ``lotka_volterra``). Both report simulations per
second. The ODE tasks must run 10^5 simulations in under a minute on one core.
"""

from __future__ import annotations

import time

import torch

from simulators import get_simulator

from ._common import DEVICES, setup_device, sync

TASKS = [
    "gaussian_linear",
    "gaussian_linear_uniform",
    "gaussian_mixture",
    "two_moons",
    "slcp",
    "slcp_distractors",
    "bernoulli_glm",
    "bernoulli_glm_raw",
    "sir",
    "lotka_volterra",
]


class SbibmThroughput:
    """Batched ``simulate`` on prior draws, for every task, device and batch size."""

    params = (TASKS, DEVICES, [1_000, 100_000])
    param_names = ["task", "device", "batch"]
    timeout = 600

    def setup(self, name, device, batch):
        self.device = setup_device(device)
        self.simulator = get_simulator(name)
        self.generator = torch.Generator(self.device).manual_seed(0)
        self.theta = self.simulator.prior.sample(
            (batch,), generator=self.generator, device=self.device
        )
        self.simulator.simulate(self.theta[:2], generator=self.generator)  # warm-up

    def time_simulate(self, name, device, batch):
        self.simulator.simulate(self.theta, generator=self.generator)
        sync(self.device)

    def track_simulations_per_second(self, name, device, batch):
        sync(self.device)
        start = time.perf_counter()
        self.simulator.simulate(self.theta, generator=self.generator)
        sync(self.device)
        return batch / (time.perf_counter() - start)

    track_simulations_per_second.unit = "simulations/s"

    def peakmem_simulate(self, name, device, batch):
        self.simulator.simulate(self.theta, generator=self.generator)


class SbibmRowLoop:
    """One ``simulate`` call per row (the unbatched baseline), ``rows`` rows."""

    params = (TASKS, DEVICES, [100])
    param_names = ["task", "device", "rows"]
    timeout = 600

    def setup(self, name, device, rows):
        self.device = setup_device(device)
        self.simulator = get_simulator(name)
        self.generator = torch.Generator(self.device).manual_seed(0)
        self.theta = self.simulator.prior.sample(
            (rows,), generator=self.generator, device=self.device
        )
        self.simulator.simulate(self.theta[:1], generator=self.generator)

    def loop(self):
        for row in self.theta.split(1):
            self.simulator.simulate(row, generator=self.generator)

    def time_loop(self, name, device, rows):
        self.loop()
        sync(self.device)

    def track_simulations_per_second(self, name, device, rows):
        sync(self.device)
        start = time.perf_counter()
        self.loop()
        sync(self.device)
        return rows / (time.perf_counter() - start)

    track_simulations_per_second.unit = "simulations/s"
