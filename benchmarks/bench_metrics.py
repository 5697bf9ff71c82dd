"""asv benchmarks of the metrics (:mod:`avo_bench.metrics`) on N(0, I) against N(0.5, I).

Wasserstein-1 on its three paths (1-D closed form; exact EMD by POT's network simplex; the
quantized approximation beyond ``exact_max``), Jensen-Shannon on fixed bins, C2ST (fast variant
and the sbibm protocol, small sizes only: sbibm's training runs to convergence) and the unbiased
MMD². The POT and scikit-learn parts run on the CPU whatever the device.
"""

from __future__ import annotations

import torch

from avo_bench.metrics import (
    c2st,
    histogram_edges,
    jensen_shannon,
    mmd2,
    wasserstein1_estimate,
    wasserstein1_path,
)

from ._common import DEVICES, setup_device, sync

W1_PATHS = {  # path -> (dimension, exact_max as a function of n)
    "closed_form_1d": (1, lambda n: n),
    "exact_emd": (2, lambda n: n),
    "quantized": (2, lambda n: 1),
}


def samples(n: int, d: int, device: torch.device, seed: int = 0):
    """``n`` draws of N(0, I_d) and ``n`` of N(0.5, I_d) on ``device``."""
    g = torch.Generator(device).manual_seed(seed)
    a = torch.randn(n, d, generator=g, device=device)
    return a, torch.randn(n, d, generator=g, device=device) + 0.5


class Wasserstein1:
    """``wasserstein1_estimate`` forced onto each path (``exact_max``) at ``n`` per side."""

    params = (list(W1_PATHS), DEVICES, [1_000, 3_000])
    param_names = ["path", "device", "n"]
    timeout = 120

    def setup(self, path, device, n):
        self.device = setup_device(device)
        d, exact_max = W1_PATHS[path]
        self.exact_max = exact_max(n)
        self.a, self.b = samples(n, d, self.device)
        if not wasserstein1_path(n, n, d, exact_max=self.exact_max).startswith(path):
            raise ValueError(f"bench_metrics: {path} is not the path taken at n={n}")

    def estimate(self):
        return wasserstein1_estimate(self.a, self.b, exact_max=self.exact_max)

    def time_wasserstein1(self, path, device, n):
        self.estimate()
        sync(self.device)

    def peakmem_wasserstein1(self, path, device, n):
        self.estimate()


class JensenShannon:
    """``jensen_shannon`` on the default bins (30 in 1-D, 10 x 10 in 2-D) of a reference."""

    params = ([1, 2], DEVICES, [1_000, 1_000_000])
    param_names = ["dim", "device", "n"]

    def setup(self, d, device, n):
        self.device = setup_device(device)
        self.a, self.b = samples(n, d, self.device)
        self.edges = histogram_edges(samples(10_000, d, torch.device("cpu"), seed=1)[0])

    def divergence(self) -> float:
        return jensen_shannon(self.a, self.b, edges=self.edges)

    def time_jensen_shannon(self, d, device, n):
        self.divergence()
        sync(self.device)

    def peakmem_jensen_shannon(self, d, device, n):
        self.divergence()


class C2ST:
    """``c2st`` in 2-D, 5 folds; the sbibm protocol only at ``n <= 1000`` per side."""

    params = (["fast", "sbibm"], DEVICES, [200, 1_000])
    param_names = ["variant", "device", "n"]
    timeout = 300

    def setup(self, variant, device, n):
        self.device = setup_device(device)
        self.a, self.b = samples(n, 2, self.device)

    def accuracy(self, variant: str) -> float:
        return c2st(self.a, self.b, variant=variant, seed=1)

    def time_c2st(self, variant, device, n):
        self.accuracy(variant)
        sync(self.device)


class MMD:
    """Unbiased MMD² with the median-heuristic bandwidth, in 2-D."""

    params = (DEVICES, [1_000, 10_000])
    param_names = ["device", "n"]
    timeout = 120

    def setup(self, device, n):
        self.device = setup_device(device)
        self.a, self.b = samples(n, 2, self.device)

    def value(self) -> float:
        return mmd2(self.a, self.b)

    def time_mmd2(self, device, n):
        self.value()
        sync(self.device)

    def peakmem_mmd2(self, device, n):
        self.value()
