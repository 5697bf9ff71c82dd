r"""Plumbing of the newer ``sbi`` methods (vector-field, contrastive/balanced ratio, sequential
and ensemble estimators), on top of :mod:`avo_bench.methods._sbi`.

- :class:`TrainingConfig` and :class:`MCMCConfig`: the config fields every one of them shares
  (``sbi``'s training defaults, the iid route, ``sbi``'s slice sampler), validated once;
- :func:`training_data` and :func:`simulate`: parameters and their simulations for an iid route
  (single simulations for ``"sum"``, summaries of sets of :math:`m` for ``"summary"``), every
  row charged to the budget; :func:`round_sizes` splits a budget into rounds;
- :func:`fit_estimator`: one ``append_simulations(...).train(...)``, with extra arguments for
  ``append_simulations`` (a proposal) and ``train`` (atoms, classes, regularization);
- :func:`mcmc_draws`: draws of the summed per-observation potential of a likelihood or ratio
  estimator (:class:`avo_bench.methods._sbi_iid.IIDPotential`) by ``sbi``'s slice sampler.

Every ``sbi`` call runs inside :func:`avo_bench.methods._sbi.seeded_global_rngs` (the caller's
``with`` block), so results are reproducible and the caller's global RNG states are unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import pandas as pd
import torch
from torch import Tensor

from simulators import check_choice, check_positive_float, check_positive_int

from ._base import CountingSimulator
from ._sbi import INIT_STRATEGIES, MAX_ROWS, MCMCSettings, history, mcmc_sample, quiet
from ._sbi_iid import Observed, compress, terms
from ._summaries import check_budget, default_set_size, observed_summary

__all__ = [
    "VALIDATION_FRACTION",
    "MCMCConfig",
    "TrainingConfig",
    "check_flag",
    "fit_estimator",
    "mcmc_draws",
    "observed_data",
    "ratio_batch",
    "resolve_route",
    "round_sizes",
    "set_size",
    "shuffled",
    "simulate",
    "training_data",
]

MIN_SIMULATIONS = 20  # training sets of a single-round fit (as avo_bench.methods.neural)
ROUTES = ("auto", "sum", "summary")
_TRAINING_INTS = ("num_samples", "training_batch_size", "stop_after_epochs", "max_num_epochs")
_MCMC_INTS = ("num_chains", "warmup_steps", "thin", "init_candidates", "max_points")


VALIDATION_FRACTION = 0.1  # sbi's held-out share


def check_flag(method: str, field: str, value) -> None:
    """``value`` must be ``True`` or ``False``."""
    if not isinstance(value, bool):
        raise ValueError(f"{method}: {field} must be True or False, got {value!r}")


def ratio_batch(batch: int, num_examples: int, validation_sized: bool) -> int:
    """NRE's minibatch on ``num_examples`` training pairs. ``sbi`` 0.14 (the version sbibm's
    published runs pinned, ``sbi==0.14.2``) clipped NRE's minibatch to the *validation* set's
    size, ``min(batch, num_examples - int(0.9 * num_examples))`` (``snre_base.py``:
    ``clipped_batch_size``), so sbibm's ``training_batch_size=10000`` trained NRE on
    minibatches of 100 at 10^3 simulations and 1,000 at 10^4; ``sbi`` 0.15 and later cap it
    by the training set only (at 10^4 one full-batch step per epoch). ``validation_sized``
    applies 0.14's clip; otherwise ``batch`` is returned."""
    if not validation_sized:
        return batch
    return max(1, min(batch, num_examples - int((1 - VALIDATION_FRACTION) * num_examples)))


@dataclass(frozen=True)
class TrainingConfig:
    """Fields shared by the ``sbi`` methods (``sbi``'s training defaults).

    Attributes:
        num_samples: Number of posterior samples returned (sbibm's protocol: 10,000).
        training_batch_size: Minibatch size.
        learning_rate: Adam learning rate.
        stop_after_epochs: Early-stopping patience on the validation loss.
        max_num_epochs: Hard cap on the number of epochs (of each training).
        iid: Route to an iid observed set (:mod:`avo_bench.methods.neural`): ``"sum"``
            (single simulations, conditioned on every observation), ``"summary"`` (summaries
            of simulated sets) or ``"auto"`` (the method's default); see ``routes``.
        set_size: ``"summary"`` route: simulated observations per θ (``None``: default).
    """

    num_samples: int = 10_000
    training_batch_size: int = 200
    learning_rate: float = 5e-4
    stop_after_epochs: int = 20
    max_num_epochs: int = 2**31 - 1
    iid: str = "auto"
    set_size: int | None = None

    method: ClassVar[str] = ""
    routes: ClassVar[tuple[str, ...]] = ROUTES  # the iid routes this method offers
    auto_route: ClassVar[str] = "summary"  # what "auto" means for this method
    estimators: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self):
        for field in _TRAINING_INTS:
            check_positive_int(self.method, field, getattr(self, field))
        check_positive_float(self.method, "learning_rate", self.learning_rate)
        check_choice(self.method, "iid", self.iid, self.routes)
        if self.set_size is not None:
            check_positive_int(self.method, "set_size", self.set_size, minimum=2)
        if self.estimators:
            check_choice(self.method, "estimator", self.estimator, self.estimators)


@dataclass(frozen=True)
class MCMCConfig(TrainingConfig):
    """:class:`TrainingConfig` plus ``sbi``'s slice sampler (see
    :class:`avo_bench.methods._sbi.MCMCSettings`) and the ``"sum"`` route's binning of large
    1-D observed sets (``max_points``, :func:`avo_bench.methods._sbi_iid.compress`)."""

    num_chains: int = 20
    warmup_steps: int = 50
    thin: int = 1
    init_strategy: str = "resample"
    init_candidates: int = 1000
    slice_width: float = 0.01
    max_points: int = 256

    auto_route: ClassVar[str] = "sum"

    def __post_init__(self):
        super().__post_init__()
        for field in _MCMC_INTS:
            check_positive_int(self.method, field, getattr(self, field))
        check_choice(self.method, "init_strategy", self.init_strategy, INIT_STRATEGIES)
        check_positive_float(self.method, "slice_width", self.slice_width)

    def mcmc(self) -> MCMCSettings:
        """The sampler's settings."""
        return MCMCSettings(self.num_chains, self.warmup_steps, self.thin, self.init_strategy,
                            self.init_candidates, self.slice_width)  # fmt: skip


def resolve_route(config: TrainingConfig, n_obs: int) -> str:
    """``"sum"`` or ``"summary"``: the config's route (``"auto"``: the method's default).
    With one observation both are the standard algorithm; ``"sum"`` is reported."""
    route = config.auto_route if config.iid == "auto" else config.iid
    return "sum" if n_obs == 1 else route


def set_size(route: str, n_obs: int, budget: int, config: TrainingConfig) -> int:
    """Rows :math:`m` per training set: 1 on the ``"sum"`` and ``"compose"`` routes (single
    simulations), else the summary default."""
    if route in ("sum", "compose"):
        return 1
    return default_set_size(n_obs, budget, config.set_size)


def round_sizes(budget: int, rounds: int, m: int) -> list[int]:
    """Training sets per round: ``budget // m`` split as evenly as possible (sbibm gave every
    round ``floor(budget / rounds)``; the remainder goes to the first rounds here, so the
    whole budget is used)."""
    total = budget // m
    return [total // rounds + (i < total % rounds) for i in range(rounds)]


def simulate(
    simulator: CountingSimulator, theta: Tensor, m: int, generator: torch.Generator
) -> Tensor:
    """Training data ``(N, k)`` at ``theta`` ``(N, d)``: one flattened simulation each
    (``m == 1``) or the summary of a set of ``m`` (all ``N * m`` rows charged)."""
    rows = theta.repeat_interleave(m, dim=0)
    x = torch.cat([simulator.simulate(chunk, generator) for chunk in rows.split(MAX_ROWS)])
    if m == 1:
        return x.flatten(start_dim=1).float()
    sets = x.reshape(len(theta), m, *x.shape[1:])
    return simulator.summarize(sets).reshape(len(theta), -1).float()


def training_data(
    name: str,
    simulator: CountingSimulator,
    budget: int,
    m: int,
    generator: torch.Generator,
    device: torch.device,
    minimum: int = MIN_SIMULATIONS,
) -> tuple[Tensor, Tensor]:
    """``budget // m`` prior draws and their training data (``ValueError`` naming the
    minimum budget, ``minimum`` sets of ``m``, if it is smaller)."""
    check_budget(name, budget, minimum * m, f"{minimum} training sets of {m} simulations")
    theta = simulator.prior.sample((budget // m,), generator=generator, device=device)
    return theta, simulate(simulator, theta, m, generator)


def observed_data(
    simulator: CountingSimulator, x_obs: Tensor, route: str, max_points: int, device
) -> Observed:
    """The observed set as the estimator is conditioned on it: its summary (one point,
    ``"summary"``), every row (``"compose"``), or its distinct rows with counts (``"sum"``;
    1-D sets with more than ``max_points`` distinct values are binned,
    :func:`~avo_bench.methods._sbi_iid.compress`)."""
    summary = observed_summary(simulator, x_obs, device)  # also validates x_obs
    if route == "summary" or len(x_obs) == 1:
        return Observed(summary[None], torch.ones(1, device=device), 1, binned=False)
    if route == "compose":
        rows = x_obs.to(device, torch.float32).flatten(start_dim=1)
        return Observed(rows, torch.ones(len(rows), device=device), len(rows), binned=False)
    return compress(x_obs.to(device), max_points)


def fit_estimator(
    inference,
    theta: Tensor,
    x: Tensor,
    config: TrainingConfig,
    *,
    batch_cap: int | None = None,
    append: dict | None = None,
    **train,
) -> tuple[torch.nn.Module, pd.DataFrame]:
    """``inference.append_simulations(theta, x, **append).train(...)``: the config's training
    fields, the batch size capped at ``batch_cap`` (sbibm capped it at one round's
    simulations), and ``train``'s extra arguments; the estimator and this training's losses."""
    done = len(getattr(inference, "_summary", {}).get("training_loss", []))
    batch = min(config.training_batch_size, batch_cap or config.training_batch_size)
    with quiet():
        estimator = inference.append_simulations(theta, x, **(append or {})).train(
            training_batch_size=batch, learning_rate=config.learning_rate,
            stop_after_epochs=config.stop_after_epochs, max_num_epochs=config.max_num_epochs,
            **train,
        )  # fmt: skip
    losses = history(inference).iloc[done:].reset_index(drop=True)
    return estimator, losses.assign(iteration=range(len(losses)))


def mcmc_draws(
    kind: str, estimator: torch.nn.Module, observed: Observed, prior, config: MCMCConfig,
    num_samples: int, device: torch.device
) -> Tensor:  # fmt: skip
    """``num_samples`` draws ``(num_samples, d)`` of
    :math:`\\sum_u w_u \\log f(x_u, \\theta) + \\log p(\\theta)` by ``sbi``'s slice sampler, ``f``
    a likelihood (``kind="likelihood"``) or ratio (``"ratio"``) estimator."""
    from ._sbi_iid import IIDPotential

    potential = IIDPotential(terms(kind, estimator.eval()), observed, prior, 1.0, device)
    return mcmc_sample(potential, prior, config.mcmc(), num_samples)


def shuffled(samples: Tensor, generator: torch.Generator) -> Tensor:
    """``samples`` in a random order (ensemble members' draws come grouped by member)."""
    order = torch.randperm(len(samples), generator=generator, device=generator.device)
    return samples[order.to(samples.device)]
