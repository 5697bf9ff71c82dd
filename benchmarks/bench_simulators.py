"""Throughput of every registered simulator (one simulation per parameter row)."""

from __future__ import annotations

import time

import torch

from simulators import SIMULATORS, get_simulator

from ._common import DEVICES, setup_device, sync


class SimulatorThroughput:
    """``simulate`` on a batch of prior draws, for every simulator, device and batch size."""

    params = (sorted(SIMULATORS), DEVICES, [1_000, 100_000])
    param_names = ["simulator", "device", "batch"]
    timeout = 300

    def setup(self, name, device, batch):
        self.device = setup_device(device)
        self.simulator = get_simulator(name)
        self.generator = torch.Generator(self.device).manual_seed(0)
        self.theta = self.simulator.prior.sample((batch,), generator=self.generator)
        self.simulator.simulate(self.theta[:2], generator=self.generator)  # warm-up / compile

    def time_simulate(self, name, device, batch):
        self.simulator.simulate(self.theta, generator=self.generator)
        sync(self.device)

    def track_simulations_per_second(self, name, device, batch):
        start = time.perf_counter()
        self.simulator.simulate(self.theta, generator=self.generator)
        sync(self.device)
        return batch / (time.perf_counter() - start)

    track_simulations_per_second.unit = "simulations/s"

    def peakmem_simulate(self, name, device, batch):
        self.simulator.simulate(self.theta, generator=self.generator)
