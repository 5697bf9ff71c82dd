"""Throughput of the simulators: every registered one, Weinberg events/s, Ising spin updates/ns.

``SimulatorThroughput`` times one ``simulate`` call on a batch of prior draws for every
simulator in the registry (one simulation per parameter row); ``WeinbergEvents`` reports the
e+e- -> mu+mu- generator's events per second with and without detector effects; ``IsingSweeps``
reports Metropolis spin updates per nanosecond of ``Ising.simulate`` (``n * L^2 * sweeps``
updates for ``n`` chains on an ``L x L`` lattice).
"""

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
        self.theta = self.simulator.prior.sample(
            (batch,), generator=self.generator, device=self.device
        )
        self.simulator.simulate(self.theta[:2], generator=self.generator)  # warm-up / compile

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


WEINBERG_OPTIONS = {  # as benchmarks/speed_weinberg.py
    "exact": {},
    "detector": {"resolution": 0.05, "acceptance": 0.9},
}


class WeinbergEvents:
    """Events per second of ``Weinberg.simulate`` (one event per prior draw)."""

    params = (list(WEINBERG_OPTIONS), DEVICES, [10_000, 1_000_000])
    param_names = ["options", "device", "events"]

    def setup(self, options, device, events):
        self.device = setup_device(device)
        self.simulator = get_simulator("weinberg", **WEINBERG_OPTIONS[options])
        self.generator = torch.Generator(self.device).manual_seed(0)
        self.theta = self.simulator.prior.sample(
            (events,), generator=self.generator, device=self.device
        )
        self.simulator.simulate(self.theta[:2], generator=self.generator)

    def simulate(self) -> torch.Tensor:
        return self.simulator.simulate(self.theta, generator=self.generator)

    def track_events_per_second(self, options, device, events):
        sync(self.device)
        start = time.perf_counter()
        self.simulate()
        sync(self.device)
        return events / (time.perf_counter() - start)

    track_events_per_second.unit = "events/s"

    def peakmem_simulate(self, options, device, events):
        self.simulate()


class IsingSweeps:
    """``Ising.simulate`` (default backend: numba on CPU, torch on CUDA) of ``chains`` chains
    for 100 sweeps at the prior's temperatures, per lattice side ``L``."""

    params = (DEVICES, [16, 64])
    param_names = ["device", "size"]
    sweeps = 100
    updates = 2**20  # about a million spin updates per sweep over all chains

    def setup(self, device, size):
        self.device = setup_device(device)
        self.simulator = get_simulator("ising", size=size, sweeps=self.sweeps)
        self.chains = max(1, self.updates // size**2)
        self.generator = torch.Generator(self.device).manual_seed(0)
        self.theta = self.simulator.prior.sample(
            (self.chains,), generator=self.generator, device=self.device
        )
        self.simulator.simulate(self.theta[:2], generator=self.generator)  # compile

    def spin_updates(self) -> int:
        return self.chains * self.simulator.size**2 * self.sweeps

    def time_sweeps(self, device, size):
        self.simulator.simulate(self.theta, generator=self.generator)
        sync(self.device)

    def track_spin_updates_per_ns(self, device, size):
        sync(self.device)
        start = time.perf_counter()
        self.simulator.simulate(self.theta, generator=self.generator)
        sync(self.device)
        return self.spin_updates() / (time.perf_counter() - start) / 1e9

    track_spin_updates_per_ns.unit = "updates/ns"
