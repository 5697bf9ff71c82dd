"""The "no inference" baseline: return draws from the prior.

Every method must beat this row. It uses no simulation at all, so its scores are the level a
method reaches by ignoring the data: in data space the prior predictive against ``x_obs``, in
parameter space the prior against the truth. It also keeps the grid non-empty on its own.

References:
    Lueckmann et al., "Benchmarking Simulation-Based Inference", AISTATS 2021
    (https://arxiv.org/abs/2101.04653), where prior samples are the reference floor of C2ST.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from simulators import check_positive_int

from . import register
from ._base import CountingSimulator, Result

__all__ = ["PriorConfig", "fit"]


@dataclass(frozen=True)
class PriorConfig:
    """Config of the prior baseline.

    Attributes:
        num_samples: Number of prior draws returned.
    """

    num_samples: int = 10_000

    def __post_init__(self):
        check_positive_int("prior", "num_samples", self.num_samples)


@register("prior", config=PriorConfig)
def fit(
    simulator: CountingSimulator,
    x_obs: torch.Tensor,
    *,
    budget: int,
    config: PriorConfig,
    generator: torch.Generator,
    device: torch.device | str,
) -> Result:
    """Prior draws, no simulations: the no-inference reference every method must beat.

    Arguments:
        simulator: The (counting) simulator; only its prior is used.
        x_obs: Observed data, ignored.
        budget: Simulation budget, unused.
        config: A :class:`PriorConfig`.
        generator: Source of randomness, on ``device``.
        device: Device of the returned samples.

    Returns:
        A :class:`Result` with ``config.num_samples`` prior draws, shape ``(n, d_theta)``.
    """
    theta = simulator.prior.sample((config.num_samples,), generator=generator, device=device)
    return Result(theta=theta, num_simulations=0)
