"""Seeds: one integer per run, derived per cell, and the only place global RNGs are touched.

:func:`derive_seed` turns labelled parts (``"cell", simulator, method, seed, budget``) into a
stable 63-bit seed, so results do not depend on the executor or the order cells run in.
:func:`seeded_globals` gives third-party code that draws from global RNGs (``sbi``,
scikit-learn) a seeded state for one block and restores the caller's afterwards.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator

import numpy as np
import torch

__all__ = ["derive_seed", "seeded_globals"]


def derive_seed(*parts: object) -> int:
    """A stable 63-bit seed from ``parts`` (never Python's salted ``hash``)."""
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


@contextlib.contextmanager
def seeded_globals(seed: int) -> Iterator[None]:
    """Seeds torch's and numpy's *global* RNGs for the block and restores them afterwards.

    For third-party code that draws from global RNGs (sbi, sklearn): the runner wraps fits and
    scoring in it, so a cell's numbers do not depend on what ran before it in the process.
    """
    cuda = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    state = np.random.get_state()  # noqa: NPY002 (restored below)
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seed)
        np.random.seed(seed % 2**32)  # noqa: NPY002
        try:
            yield
        finally:
            np.random.set_state(state)  # noqa: NPY002
