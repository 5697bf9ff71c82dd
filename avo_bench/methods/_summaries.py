r"""Summaries, set sizes and distances shared by the ABC and ``sbi`` baselines.

The classical likelihood-free methods compare (ABC) or condition on (NPE, NLE, NRE) one fixed-size
vector per simulated data set. For a point task with an iid observed set
:math:`x_{1..n_{obs}}` that vector is the simulator's documented summary
(``simulator.summarize``) of a set of :math:`m` simulated observations at one :math:`\theta`;
with a single observation (``n_obs == 1``) it is the observation itself, flattened.

**Set size** :math:`m`. Each simulated set costs :math:`m` rows of the budget, so there is a
trade-off between the number of sets :math:`B / m` and how informative each is. The default is

.. math:: m = \min\bigl(n_{obs},\ \max(2,\ \mathrm{round}(\sqrt{B} / 10))\bigr),

i.e. 10 rows per set and 1,000 sets at :math:`B = 10^4`, 100 rows and 10,000 sets at
:math:`B = 10^6`; :math:`m = 1` when :math:`n_{obs} = 1`. The observed summary always uses all
:math:`n_{obs}` observations, so when :math:`m < n_{obs}` the simulated summaries are noisier
than the observed one and the inferred posterior is the one for :math:`m` observations: wider
than the exact posterior by about :math:`\sqrt{n_{obs}/m}` for mean-like summaries. Set
``set_size = n_obs`` in a method's config (budget permitting) to remove the mismatch.

**Distance** (ABC). Euclidean distance between summaries, each coordinate divided by its
median absolute deviation over the prior-predictive summaries of the first round (the usual
ABC scaling, e.g. Prangle, "Adapting the ABC distance function", Bayesian Analysis 2017,
https://arxiv.org/abs/1507.00874). Coordinates with zero MAD fall back to their standard
deviation, then to 1.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from simulators import Simulator

from ._base import CountingSimulator

__all__ = [
    "check_budget",
    "default_set_size",
    "distances",
    "mad_scale",
    "observed_summary",
    "point_task_only",
    "simulate_summaries",
]

MAX_ROWS = 2**16  # rows per simulator call: bounds memory for large budgets and big x


def point_task_only(simulator: Simulator) -> str | None:
    """Applicability rule of the posterior baselines: they infer one θ*, not a population."""
    if simulator.kind != "point":
        return (
            f"{simulator.name} is a {simulator.kind} task (each observation has its own θ); "
            "posterior methods infer a single θ* and do not fit a population P_θ"
        )
    return None


def check_budget(method: str, budget: object, minimum: int, why: str) -> int:
    """Raises ``ValueError`` naming the minimum unless ``budget`` is an int ``>= minimum``."""
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < minimum:
        raise ValueError(
            f"{method}: budget must be an integer >= {minimum} ({why}), got {budget!r}"
        )
    return budget


def default_set_size(n_obs: int, budget: int, set_size: int | None) -> int:
    """Rows :math:`m` per simulated set (see the module docstring); ``set_size`` overrides."""
    if n_obs == 1:
        return 1
    if set_size is not None:
        return set_size
    return min(n_obs, max(2, round(math.sqrt(max(budget, 0)) / 10)))


def observed_summary(simulator: Simulator, x_obs: Tensor, device: torch.device) -> Tensor:
    """The summary of the whole observed set, shape ``(k,)``, ``float32`` on ``device``.

    Raises:
        ValueError: If ``x_obs`` does not have shape ``(n_obs, *x_shape)`` or is not finite.
    """
    x = torch.as_tensor(x_obs).to(device, torch.float32)
    if x.ndim != 1 + len(simulator.x_shape) or tuple(x.shape[1:]) != tuple(simulator.x_shape):
        raise ValueError(
            f"x_obs must have shape (n_obs, {', '.join(map(str, simulator.x_shape))}) "
            f"for {simulator.name}, got {tuple(x.shape)}"
        )
    if not torch.isfinite(x).all():
        raise ValueError(f"x_obs for {simulator.name} contains NaN or inf")
    if x.shape[0] == 1:
        return x.flatten()
    return simulator.summarize(x).flatten().float()


def simulate_summaries(
    simulator: CountingSimulator,
    theta: Tensor,
    set_size: int,
    n_obs: int,
    generator: torch.Generator,
) -> Tensor:
    """Summaries of sets of ``set_size`` simulations at each ``theta`` row.

    Arguments:
        simulator: The counting simulator; ``len(theta) * set_size`` rows are charged.
        theta: Parameters, shape ``(N, d)``.
        set_size: Rows :math:`m` per set.
        n_obs: Size of the observed set (``1``: the summary is the raw observation).
        generator: Source of randomness.

    Returns:
        Summaries of shape ``(N, k)``, ``float32``.
    """
    rows = theta.repeat_interleave(set_size, dim=0)
    chunks = [simulator.simulate(chunk, generator) for chunk in rows.split(MAX_ROWS)]
    x = torch.cat(chunks).float()
    if n_obs == 1:
        return x.flatten(start_dim=1)
    sets = x.reshape(len(theta), set_size, *x.shape[1:])
    return simulator.summarize(sets).reshape(len(theta), -1).float()


def mad_scale(summaries: Tensor) -> Tensor:
    """Per-coordinate scale ``(k,)``: 1.4826 MAD, else the standard deviation, else 1."""
    median = summaries.nanmedian(dim=0).values
    scale = 1.4826 * (summaries - median).abs().nanmedian(dim=0).values
    std = summaries.std(dim=0) if len(summaries) > 1 else torch.zeros_like(scale)
    scale = torch.where(scale > 0, scale, std)
    return torch.where((scale > 0) & torch.isfinite(scale), scale, torch.ones_like(scale))


def distances(summaries: Tensor, observed: Tensor, scale: Tensor) -> Tensor:
    """Scaled Euclidean distances ``(N,)`` between ``(N, k)`` summaries and ``(k,)``.

    A non-finite summary (a simulator returning NaN or inf) gets distance ``inf``: never kept.
    """
    d = ((summaries - observed) / scale).norm(dim=-1)
    return torch.where(torch.isfinite(d), d, torch.full_like(d, math.inf))
