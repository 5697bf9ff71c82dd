r"""Rejection ABC: keep the prior draws whose simulated data lie closest to the observed data.

With the whole budget :math:`B` spent at once, :math:`N = \lfloor B/m \rfloor` parameters
:math:`\theta_i \sim p(\theta)` are drawn from the prior and one set of :math:`m` observations is
simulated at each (see :mod:`avo_bench.methods._summaries` for the set size :math:`m`, the
summaries :math:`s`). **Acceptance rule**: the :math:`k` draws with the smallest
distance :math:`\rho(s(x_i), s(x_{obs}))` are accepted, i.e. the tolerance :math:`\epsilon` is the
:math:`k/N` quantile of the distances (Pritchard et al. 1999; the quantile form of Beaumont,
Zhang & Balding 2002). By default :math:`k = \mathrm{round}(\sqrt{N})` (100 of :math:`10^4`),
otherwise ``quantile * N``. **Distance** (``distance``): ``"mad"`` (default), Euclidean between
summaries scaled per coordinate by their median absolute deviation over the :math:`N`
prior-predictive summaries; ``"l2"``, the unscaled Euclidean distance (``sbi``'s ``MCABC`` and
sbibm). The returned
``num_samples`` draws are resampled uniformly with replacement from the :math:`k` accepted ones,
or, with ``kde=True``, drawn from a Gaussian KDE of them with sbibm's cross-validated bandwidth
(:mod:`avo_bench.methods._kde`). The ``sbibm`` preset is sbibm's "REJ-ABC 100 KDE": the
``num_top_samples=100`` closest draws by the unscaled L2 distance, then the KDE.

References:
    Pritchard, Seielstad, Perez-Lezaun, Feldman, "Population growth of human Y chromosomes: a study
    of Y chromosome microsatellites", Molecular Biology and Evolution 16(12), 1999.

    Beaumont, Zhang, Balding, "Approximate Bayesian computation in population genetics",
    Genetics 162(4), 2002.

    Lueckmann et al., "Benchmarking Simulation-Based Inference", AISTATS 2021,
    https://arxiv.org/abs/2101.04653 (REJ-ABC, appendix A.1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import pandas as pd
import torch
from torch import Tensor

from simulators import check_positive_int

from . import register
from ._base import CountingSimulator, Result
from ._kde import fit_kde
from ._summaries import (
    check_budget,
    default_set_size,
    distances,
    mad_scale,
    observed_summary,
    point_task_only,
    simulate_summaries,
)

__all__ = ["RejectionABCConfig", "fit"]

MIN_SETS = 2
DISTANCES = ("mad", "l2")


@dataclass(frozen=True)
class RejectionABCConfig:
    """Hyperparameters of rejection ABC.

    Attributes:
        num_samples: Number of θ samples returned (resampled from the accepted draws).
        quantile: Accepted fraction of the prior draws, in ``(0, 1]``; ``None``: keep
            ``round(sqrt(N))`` of the ``N`` draws (or ``num_top_samples``).
        num_top_samples: Accept this many closest draws (at most ``N``; sbibm's
            ``num_top_samples``); exclusive with ``quantile``.
        kde: Return draws of a Gaussian KDE of the accepted draws (sbibm's cross-validated
            bandwidth, :mod:`avo_bench.methods._kde`) instead of resampling them.
        set_size: Simulated observations per θ for an iid observed set (``None``: the
            budget-dependent default of :mod:`avo_bench.methods._summaries`).
        distance: ``"mad"`` (Euclidean on MAD-scaled summaries) or ``"l2"`` (unscaled, sbibm's).
    """

    num_samples: int = 10_000
    quantile: float | None = None
    num_top_samples: int | None = None
    kde: bool = False
    set_size: int | None = None
    distance: str = "mad"
    presets: ClassVar[dict[str, dict]] = {
        "sbibm": {"num_top_samples": 100, "kde": True, "distance": "l2"}
    }

    def __post_init__(self):
        check_positive_int("rejection_abc", "num_samples", self.num_samples)
        if self.quantile is not None:
            ok = isinstance(self.quantile, int | float) and not isinstance(self.quantile, bool)
            if not ok or not 0 < self.quantile <= 1:
                raise ValueError(
                    f"rejection_abc: quantile must be in (0, 1] or None, got {self.quantile!r}"
                )
        if self.num_top_samples is not None:
            check_positive_int("rejection_abc", "num_top_samples", self.num_top_samples)
            if self.quantile is not None:
                raise ValueError(
                    f"rejection_abc: give quantile ({self.quantile!r}) or num_top_samples "
                    f"({self.num_top_samples!r}), not both"
                )
        if not isinstance(self.kde, bool):
            raise ValueError(f"rejection_abc: kde must be True or False, got {self.kde!r}")
        if self.kde and self.num_top_samples == 1:
            raise ValueError("rejection_abc: kde needs num_top_samples >= 2, got 1")
        if self.set_size is not None:
            check_positive_int("rejection_abc", "set_size", self.set_size, minimum=2)
        if self.distance not in DISTANCES:
            raise ValueError(
                f"rejection_abc: distance must be one of {DISTANCES}, got {self.distance!r}"
            )


def _num_accepted(num_draws: int, config: RejectionABCConfig) -> int:
    if config.num_top_samples is not None:
        return min(num_draws, config.num_top_samples)
    if config.quantile is None:
        return max(1, round(math.sqrt(num_draws)))
    return max(1, min(num_draws, round(config.quantile * num_draws)))


def _closest(d: Tensor, k: int) -> Tensor:
    """Indices of the ``k`` smallest distances (stable: ties keep draw order)."""
    return torch.argsort(d, stable=True)[:k]


@register(
    "rejection_abc",
    config=RejectionABCConfig,
    applicable=point_task_only,
    description="Rejection ABC: prior draws whose scaled summaries are closest to x_obs",
)
def fit(
    simulator: CountingSimulator,
    x_obs: Tensor,
    *,
    budget: int,
    config: RejectionABCConfig,
    generator: torch.Generator,
    device: torch.device | str,
) -> Result:
    """Rejection ABC with a quantile tolerance (Pritchard et al. 1999; Beaumont et al. 2002).

    Arguments:
        simulator: The counting simulator (a point task).
        x_obs: Observed data, shape ``(n_obs, *x_shape)``.
        budget: Simulation budget, at least two simulated sets (``2 m`` rows).
        config: A :class:`RejectionABCConfig`.
        generator: The only source of randomness, on ``device``.
        device: Device of the computation.

    Returns:
        ``num_samples`` accepted θ (resampled, or KDE draws with ``kde``), the tolerance,
        acceptance (and KDE bandwidth) in ``extras``.
    """
    device = torch.device(device)
    observed = observed_summary(simulator, x_obs, device)
    n_obs = len(x_obs)
    m = default_set_size(n_obs, budget if isinstance(budget, int) else 0, config.set_size)
    check_budget("rejection_abc", budget, MIN_SETS * m, f"{MIN_SETS} sets of {m} simulations")
    n_draws = budget // m
    theta = simulator.prior.sample((n_draws,), generator=generator, device=device)
    summaries = simulate_summaries(simulator, theta, m, n_obs, generator)
    scale = mad_scale(summaries) if config.distance == "mad" else torch.ones_like(observed)
    d = distances(summaries, observed, scale)
    if not torch.isfinite(d).any():
        raise RuntimeError("rejection_abc: every simulated summary is NaN or inf")
    k = _num_accepted(n_draws, config)
    accepted = _closest(d, k)
    epsilon = float(d[accepted[-1]])
    extras = {"epsilon": epsilon, "num_accepted": k, "num_draws": n_draws, "set_size": m}
    if config.kde:
        kde = fit_kde(theta[accepted])
        samples = kde.sample(config.num_samples, generator)
        extras["kde_bandwidth"] = kde.bandwidth
    else:
        pick = torch.randint(k, (config.num_samples,), generator=generator, device=device)
        samples = theta[accepted][pick]
    history = pd.DataFrame([{"iteration": 0, **extras}])
    return Result(samples, simulator.num_simulations, history, extras)
