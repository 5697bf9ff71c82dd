"""Throughput of the simulators: every registered one, Weinberg events/s, Ising spin updates/ns.

``SimulatorThroughput`` times one ``simulate`` call on a batch of prior draws for every
simulator in the registry (one simulation per parameter row); ``WeinbergEvents`` reports the
e+e- -> mu+mu- generator's events per second with and without detector effects; ``IsingSweeps``
reports Metropolis spin updates per nanosecond of ``Ising.simulate`` (``n * L^2 * sweeps``
updates for ``n`` chains on an ``L x L`` lattice), also for the Triton kernel on CUDA.
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
    """``Ising.simulate`` of ``chains`` chains for 100 sweeps at the prior's temperatures, per
    lattice side ``L`` and backend: ``"auto"`` (numba on CPU; triton, else torch, on CUDA) or
    ``"triton"`` (the multi-spin-coded CUDA kernel; skipped without CUDA and triton). The
    triton runs simulate 16 times more chains (2^24 spin updates per sweep, 65536 chains at
    L = 16): a GPU is filled only by tens of thousands of chains."""

    params = (DEVICES, [16, 64], ["auto", "triton"])
    param_names = ["device", "size", "backend"]
    sweeps = 100
    updates = 2**20  # about a million spin updates per sweep over all chains
    triton_updates = 2**24

    def setup(self, device, size, backend):
        self.device = setup_device(device)
        if backend == "triton":
            from simulators.ising import HAS_TRITON

            if not HAS_TRITON or self.device.type != "cuda":
                raise NotImplementedError("the triton backend needs CUDA and triton")
        self.simulator = get_simulator("ising", size=size, sweeps=self.sweeps, backend=backend)
        updates = self.triton_updates if backend == "triton" else self.updates
        self.chains = max(1, updates // size**2)
        self.generator = torch.Generator(self.device).manual_seed(0)
        self.theta = self.simulator.prior.sample(
            (self.chains,), generator=self.generator, device=self.device
        )
        # warm-up on the whole batch: Triton compiles one kernel per tile shape (numba: 0.1 s)
        self.simulator.simulate(self.theta, generator=self.generator)

    def spin_updates(self) -> int:
        return self.chains * self.simulator.size**2 * self.sweeps

    def time_sweeps(self, device, size, backend):
        self.simulator.simulate(self.theta, generator=self.generator)
        sync(self.device)

    def track_spin_updates_per_ns(self, device, size, backend):
        sync(self.device)
        start = time.perf_counter()
        self.simulator.simulate(self.theta, generator=self.generator)
        sync(self.device)
        return self.spin_updates() / (time.perf_counter() - start) / 1e9

    track_spin_updates_per_ns.unit = "updates/ns"
