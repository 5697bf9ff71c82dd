r"""Stored data of the sbibm tasks: standard observations and reference posterior draws.

``scripts/make_references.py`` writes ``simulators/data/<task>.npz`` (package data); this
module reads it. Posterior draws are stored as 16-bit fixed point (:func:`encode_samples`) and
returned by :class:`StoredPosterior`, which draws without replacement.
"""

from __future__ import annotations

import functools
import importlib.resources
import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from ._base import _target

__all__ = ["STORED_SAMPLES", "StoredPosterior", "decode_samples", "encode_samples", "load_data"]

#: Reference posterior draws stored per standard observation (2 x 10,000 in the grid).
STORED_SAMPLES = 20_000


@functools.cache
def load_data(name: str) -> dict[str, np.ndarray]:
    """The arrays of ``simulators/data/<name>.npz`` (cached).

    Raises:
        FileNotFoundError: If the file is missing (``scripts/make_references.py`` writes it).
    """
    path = importlib.resources.files("simulators") / "data" / f"{name}.npz"
    if not path.is_file():
        raise FileNotFoundError(
            f"{name}: no stored standard observations at {path}; generate them with "
            "`python scripts/make_references.py`"
        )
    with path.open("rb") as handle, np.load(handle) as arrays:
        return {key: arrays[key] for key in arrays.files}


def encode_samples(samples: np.ndarray) -> dict[str, np.ndarray]:
    """Posterior draws ``(m, n, d)`` as 16-bit fixed point per (observation, coordinate).

    Each coordinate keeps its midrange ``offset`` and a ``scale`` of range / 65534, a
    resolution of about 1e-4 posterior standard deviations: half the size of float32 (whose
    random mantissas do not compress), far below the Monte Carlo error of any score.
    """
    low, high = samples.min(axis=1, keepdims=True), samples.max(axis=1, keepdims=True)
    offset = (low + high) / 2
    scale = np.maximum(high - low, 1e-30) / 65534
    codes = np.round((samples - offset) / scale).astype(np.int16)
    return {"samples": codes, "samples_offset": offset, "samples_scale": scale}


def decode_samples(data: dict[str, np.ndarray], number: int) -> Tensor:
    """The stored draws of observation ``number`` as float32 ``(n, d)``."""
    k = number - 1
    values = data["samples_offset"][k] + data["samples_scale"][k] * data["samples"][k]
    return torch.from_numpy(values.astype(np.float32))


class StoredPosterior:
    """Draws without replacement from stored reference posterior samples.

    Arguments:
        samples: The stored draws ``(m, d)``.
        label: Names the task and observation in error messages.
    """

    def __init__(self, samples: Tensor, label: str):
        self.samples, self.label = samples, label

    @property
    def dim(self) -> int:
        return self.samples.shape[1]

    def sample(
        self,
        shape: Sequence[int] = (),
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> Tensor:
        """``(*shape, d)`` distinct stored draws in an order drawn from ``generator``.

        Raises:
            ValueError: If more draws are asked for than are stored.
        """
        n, stored = math.prod(shape), self.samples.shape[0]
        if n > stored:
            raise ValueError(
                f"{self.label}: {n} reference posterior draws asked for, but only {stored} are "
                "stored (draws are without replacement); ask for fewer"
            )
        order_device = generator.device if generator is not None else torch.device("cpu")
        order = torch.randperm(stored, generator=generator, device=order_device)[:n].cpu()
        draws = self.samples[order].reshape(*shape, self.dim)
        return draws.to(_target(generator, device), dtype)

    def __repr__(self) -> str:
        return f"StoredPosterior({self.label}, {self.samples.shape[0]} draws)"
