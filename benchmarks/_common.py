"""Helpers shared by the asv benchmarks: devices, thread pinning, synchronisation."""

from __future__ import annotations

import torch

DEVICES = ["cpu", "cuda"]
THREADS = 1  # torch's default pool is erratic on 2 shared cores; pin it for every benchmark


def setup_device(device: str) -> torch.device:
    """Pins torch's thread count and skips (``NotImplementedError``) a device that is absent."""
    torch.set_num_threads(THREADS)
    if device == "cuda" and not torch.cuda.is_available():
        raise NotImplementedError("CUDA is not available")
    return torch.device(device)


def sync(device: torch.device) -> None:
    """Waits for queued kernels so that a timing includes them."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
