r"""One fit of the ``sbi`` methods that sample a posterior estimator directly (``fmpe``,
``npse``, ``npe_ensemble``): data, training of one or more estimators, sampling, the
:class:`~avo_bench.methods.Result`.

The iid observed set takes NPE's summary route (:mod:`avo_bench.methods.neural`): with
:math:`n > 1` observations the estimator is trained on summaries of simulated sets of
:math:`m` and conditioned on the observed set's summary; with one observation it is the
standard single-observation algorithm. ``npse`` also offers the ``"compose"`` route: trained on
single simulations, conditioned on every observed row (``sbi`` composes the per-observation
scores, :mod:`avo_bench.methods.vector_field`). Every simulation is drawn through the counting
simulator; every ``sbi`` call runs inside
:func:`~avo_bench.methods._sbi.seeded_global_rngs`.

``sbi`` draws these posteriors by rejecting draws outside the prior's support, without a bound:
an estimate that puts (nearly) all its mass outside never returns. A pilot of
:data:`PILOT` draws without the rejection (in a forked RNG: the draws that follow are those of
a run without it; about a tenth of the sampling's cost at 10,000 draws) checks first that some
fall inside, and a fit whose pilot has none fails with a clear error instead of hanging. (NPE
and SNPE, whose flows have a density to run MCMC on, sample such an estimate by slice sampling
instead, :mod:`~avo_bench.methods.neural`; FMPE/NPSE's density needs an ODE solve per
evaluation, or does not exist.)
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable

import pandas as pd
import torch
from torch import Tensor

from ..progress import report_progress
from ._amortized import direct_posterior_fields, set_summaries
from ._base import CountingSimulator, Result
from ._sbi import fraction_inside, sbi_seed, seeded_global_rngs
from ._sbi_more import (
    TrainingConfig,
    fit_estimator,
    observed_data,
    resolve_route,
    set_size,
    training_data,
)

__all__ = ["PILOT", "Prepared", "direct_fit", "prepare", "train_one"]

#: Draws of the pilot that checks the estimate puts mass inside the prior's support.
PILOT = 1_000


class Prepared:
    """The training data of a direct fit: route, set size :math:`m`, ``theta`` ``(N, d)``,
    ``x`` ``(N, k)`` and the observed condition ``(1, k)`` (``"compose"``: ``(n_obs, k)``)."""

    def __init__(self, route: str, m: int, theta: Tensor, x: Tensor, condition: Tensor):
        self.route, self.m, self.theta, self.x, self.condition = route, m, theta, x, condition


def prepare(
    name: str,
    simulator: CountingSimulator,
    x_obs: Tensor,
    budget: int,
    config: TrainingConfig,
    generator: torch.Generator,
    device: torch.device,
    minimum: int,
) -> Prepared:
    """Route, set size and ``budget // m`` training pairs (``ValueError`` naming the minimum
    budget, ``minimum`` training sets of ``m`` simulations, if it is smaller)."""
    route = resolve_route(config, len(x_obs))
    valid = isinstance(budget, int) and not isinstance(budget, bool)
    m = set_size(route, len(x_obs), budget if valid else 0, config)
    observed = observed_data(simulator, x_obs, route, 1, device)
    theta, x = training_data(name, simulator, budget, m, generator, device, minimum)
    condition = observed.points if route == "compose" else observed.points[:1]
    return Prepared(route, m, theta, x, condition)


def direct_fit(
    name: str,
    simulator: CountingSimulator,
    data: Prepared,
    config: TrainingConfig,
    generator: torch.Generator,
    device: torch.device,
    train: Callable[[object], tuple[object, pd.DataFrame]],
    sample_kwargs: dict | None = None,
    amortized: bool = True,
) -> Result:
    """Trains (``train(prior) -> (sbi posterior, losses)``), samples ``config.num_samples``
    draws at the observed condition and builds the result.

    Arguments:
        name: The method's name (messages).
        simulator: The counting simulator.
        data: The training data from :func:`prepare`.
        config: The method's config.
        generator: Seeds ``sbi``'s global RNGs (and orders the draws).
        device: Device of training and sampling.
        train: Builds and trains the estimator(s) on ``data`` and returns an ``sbi``
            posterior and the per-epoch losses; called inside the seeded RNG state.
        sample_kwargs: Extra arguments of the posterior's ``sample``.
        amortized: Expose the posterior's ``log_prob`` and ``sample_at`` on the result.

    Returns:
        The posterior draws, the losses as ``history``, training and sampling CPU times.
    """
    prior = simulator.prior.to_torch(device)
    with seeded_global_rngs(sbi_seed(generator), device):
        start = time.process_time()
        posterior, losses = train(prior)
        report_progress(1, 2, validation_loss=float(losses["validation_loss"].iloc[-1]))
        trained = time.process_time()
        inside = fraction_inside(posterior, prior, data.condition, device, PILOT,
                                 **(sample_kwargs or {}))  # fmt: skip
        if inside == 0.0:
            raise ValueError(
                f"{name}: none of {PILOT:,} draws of the posterior estimate at the observed data "
                "falls inside the prior's support, so sbi's rejection sampling would not end; "
                "give it more simulations, or use npe or snpe (they sample such a flow by MCMC)"
            )
        samples = posterior.sample(
            (config.num_samples,), x=data.condition, show_progress_bars=False,
            **(sample_kwargs or {}),
        )  # fmt: skip
        samples = samples.reshape(config.num_samples, -1)
        sampled = time.process_time()
    report_progress(2, 2)
    if not torch.isfinite(samples).all():
        raise FloatingPointError(f"{name}: sbi returned non-finite posterior samples")
    order = torch.randperm(len(samples), generator=generator, device=generator.device)
    extras = {
        "iid": data.route, "epochs": len(losses), "num_training_sets": len(data.theta),
        "set_size": data.m, "best_validation_loss": float(losses["validation_loss"].min()),
        "training_cpu_s": trained - start, "sampling_cpu_s": sampled - trained,
        "acceptance": inside,
    }  # fmt: skip
    fields = {}
    if amortized:
        condition = functools.partial(set_summaries, simulator)
        fields = direct_posterior_fields(posterior, data.condition[0], condition, device)
    theta = samples[order.to(samples.device)].detach().float()
    return Result(theta, simulator.num_simulations, losses, extras, **fields)


def train_one(
    make: Callable, data: Prepared, config: TrainingConfig, prior, build: dict | None = None
):
    """``make(prior)`` trained on ``data``: its ``sbi`` posterior (``build_posterior`` with the
    arguments ``build``) and losses."""
    inference = make(prior)
    estimator, losses = fit_estimator(inference, data.theta, data.x, config)
    return inference.build_posterior(estimator, **(build or {})), losses
