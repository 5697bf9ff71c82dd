r"""Plumbing shared by the ``sbi``-backed methods: seeding, training data, training, MCMC.

Every ``sbi``-based method (:mod:`avo_bench.methods.neural` and those built on it) follows the
same steps, each a function here:

1. :func:`single_simulations`: :math:`B` prior draws and one simulation each, every row charged
   to the budget (``sbi`` never simulates by itself);
2. :func:`train`: ``append_simulations(...).train(...)`` with the config's training fields,
   quietly, and :func:`history` of its losses (non-finite losses raise); NLE's estimator for
   the data by :func:`likelihood_estimator` (a categorical net for counts);
3. sampling, directly (NPE) or by :func:`mcmc_sample`: ``sbi``'s ``MCMCPosterior`` with its
   vectorized slice sampler on any potential (:mod:`avo_bench.methods._sbi_iid` builds the
   potential of an iid observed set).

**Randomness.** ``sbi`` draws from the global torch (and, in its slice sampler, numpy) RNGs.
Library code must not seed global state, so every ``sbi`` call runs inside
:func:`seeded_global_rngs`: ``torch.random.fork_rng`` plus a saved and restored numpy state,
seeded from an integer drawn from the method's generator (:func:`sbi_seed`). Same seed, same
result, and the caller's global RNG states are unchanged afterwards. Global state is
process-wide, so two fits must not run in threads of one process at once.

References:
    Tejero-Cantero et al., "sbi: A toolkit for simulation-based inference", JOSS 2020,
    https://doi.org/10.21105/joss.02505

    Neal, "Slice sampling", Annals of Statistics 2003, https://arxiv.org/abs/physics/0009028
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from ._base import CountingSimulator

__all__ = [
    "AUTO_CATEGORIES",
    "AUTO_FLOW",
    "FLOWS",
    "INIT_STRATEGIES",
    "INSTALL_HINT",
    "LIKELIHOODS",
    "MAX_CATEGORIES",
    "MAX_ROWS",
    "MIN_ACCEPTANCE",
    "PILOT",
    "MCMCSettings",
    "flow_mcmc_sample",
    "fraction_inside",
    "history",
    "likelihood_estimator",
    "mcmc_sample",
    "quiet",
    "sbi_seed",
    "seeded_global_rngs",
    "single_simulations",
    "train",
    "unit_scale_constants",
]

INSTALL_HINT = "pip install 'avo-bench[sbi]'"
FLOWS = ("maf", "nsf", "mdn", "made")
LIKELIHOODS = ("auto", "categorical", *FLOWS)
MAX_CATEGORIES = 1024  # the categorical estimator's largest range (one logit per value)
AUTO_CATEGORIES = 256  # "auto": count data below it get the categorical estimator, larger a flow
AUTO_FLOW = "maf"  # "auto" on other data: sbi's default (and sbibm's) for NLE
INIT_STRATEGIES = ("resample", "sir", "proposal")
MAX_ROWS = 2**16  # rows per simulator call or network evaluation: bounds memory
MIN_STD = 1e-14  # sbi's floor on the standard deviation of a z-scored column


@contextlib.contextmanager
def seeded_global_rngs(seed: int, device: torch.device) -> Iterator[None]:
    """Seeds the global torch/numpy RNGs for ``sbi`` and restores them afterwards."""
    devices = [device] if device.type == "cuda" else []
    numpy_state = np.random.get_state()  # noqa: NPY002 (sbi's slice sampler uses it)
    with torch.random.fork_rng(devices=devices):
        torch.random.default_generator.manual_seed(seed)
        if device.type == "cuda":
            torch.cuda.default_generators[device.index or 0].manual_seed(seed)
        np.random.seed(seed % 2**32)  # noqa: NPY002
        try:
            yield
        finally:
            np.random.set_state(numpy_state)  # noqa: NPY002


def sbi_seed(generator: torch.Generator) -> int:
    """One integer from ``generator`` that seeds ``sbi``'s global RNGs for a fit."""
    return int(torch.randint(2**62, (1,), generator=generator, device=generator.device))


def single_simulations(
    simulator: CountingSimulator, budget: int, generator: torch.Generator, device: torch.device
) -> tuple[Tensor, Tensor]:
    """``budget`` prior draws and one simulation at each, every one charged to the budget.

    Returns:
        ``theta`` of shape ``(budget, d)`` and ``x`` of shape ``(budget, k)`` (each observation
        flattened), both ``float32`` on ``device``.
    """
    theta = simulator.prior.sample((budget,), generator=generator, device=device)
    x = torch.cat([simulator.simulate(rows, generator) for rows in theta.split(MAX_ROWS)])
    return theta, x.flatten(start_dim=1).float()


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silences ``sbi``'s printed convergence message and its expected warnings."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        # 1-D data or parameters are expected here (poisson): sbi's note that a flow on a 1-D
        # space is limited to Gaussians would otherwise repeat for every cell; likewise its
        # reminders about discrete columns (we pass them as documented).
        warnings.filterwarnings("ignore", message="In one-dimensional output space")
        warnings.filterwarnings("ignore", message="The mixed neural density estimator assumes")
        warnings.filterwarnings("ignore", message="Inferring num_categories from batch_x")
        # NLE's flows z-score a column constant in the first training set by unit scale
        # (:func:`likelihood_estimator`), which is what this warning asks for
        warnings.filterwarnings("ignore", message="Data has constant values in dimension")
        yield


def train(inference, theta: Tensor, x: Tensor, config) -> torch.nn.Module:
    """``inference.append_simulations(theta, x).train(...)`` with ``config``'s training fields
    (``training_batch_size``, ``learning_rate``, ``stop_after_epochs``, ``max_num_epochs``)."""
    with quiet():
        return inference.append_simulations(theta, x).train(
            training_batch_size=config.training_batch_size,
            learning_rate=config.learning_rate,
            stop_after_epochs=config.stop_after_epochs,
            max_num_epochs=config.max_num_epochs,
        )


def history(inference) -> pd.DataFrame:
    """Per-epoch training and validation losses of a trained ``sbi`` trainer.

    Raises:
        FloatingPointError: If a loss is not finite.
    """
    summary = getattr(inference, "_summary", {})
    train_loss, valid = summary.get("training_loss", []), summary.get("validation_loss", [])
    table = pd.DataFrame(
        {"iteration": range(len(train_loss)), "training_loss": train_loss,
         "validation_loss": valid}
    )  # fmt: skip
    if not np.isfinite(table[["training_loss", "validation_loss"]].to_numpy()).all():
        raise FloatingPointError(f"sbi training produced a non-finite loss:\n{table.tail()}")
    return table


def _is_counts(*tensors: Tensor, below: int = MAX_CATEGORIES) -> bool:
    return all(bool(((t >= 0) & (t == t.round()) & (t < below)).all()) for t in tensors)


def _categorical(num_categories: int, num_columns: int):
    """Builder of ``sbi``'s categorical mass estimator on the values ``0..num_categories-1``
    (MNLE's discrete net: 50 hidden features, 2 blocks, z-scored parameters)."""

    def build(batch_theta: Tensor, batch_x: Tensor):  # sbi's NLE builder signature
        from sbi.neural_nets.estimators import CategoricalMADE, CategoricalMassEstimator
        from sbi.utils.sbiutils import standardizing_net

        net = CategoricalMADE(
            num_categories=torch.full((num_columns,), num_categories),
            num_hidden_features=50,
            num_context_features=batch_theta.shape[1],
            embedding_net=standardizing_net(batch_theta),
        )
        return CategoricalMassEstimator(net, batch_x[0].shape, batch_theta[0].shape)

    build.num_categories = num_categories  # SNLE checks its later rounds against it
    return build


def unit_scale_constants(x: Tensor) -> Tensor:
    """``x`` with every column that is constant (standard deviation below :data:`MIN_STD`)
    spread by alternating ``+1, -1`` about its value (``0`` on an odd last row): the column's
    mean is unchanged and its standard deviation about 1 (``x`` itself if none is)."""
    constant = x.std(0) < MIN_STD if len(x) > 1 else torch.zeros(x.shape[1:], dtype=torch.bool)
    if not bool(constant.any()):
        return x
    signs = torch.ones(len(x), dtype=x.dtype, device=x.device)
    signs[1::2] = -1
    if len(x) % 2:
        signs[-1] = 0
    return torch.where(constant, x + signs.reshape(-1, *[1] * (x.dim() - 1)), x)


def _flow(model: str):
    """``sbi``'s NLE builder for ``model`` with its defaults (what ``NLE(density_estimator=
    model)`` builds), z-scoring a column that is constant in the training data by unit scale.

    ``sbi`` floors a z-scored column's standard deviation at :data:`MIN_STD`, so a column
    constant in the first training set is scaled by ``1e14``: harmless while every value is
    that constant (it maps to 0), but a later value one unit away lands at ``1e14`` and the
    loss is NaN. That happens to SNLE on ``sir``, whose first count (day 0, ``Binomial(1000,
    1e-6)``) is 0 in every simulation of the first round of 100 and 1 in some later round
    (every reference cell stopped with "NaN/Inf present in NLE loss"); likewise an observed
    value off the constant. The builder sees the constant columns spread to unit scale
    (:func:`unit_scale_constants`): the standardization centres them and leaves their scale.
    Columns that vary are z-scored exactly as ``sbi`` does; on data where every column varies
    the estimator is ``sbi``'s."""
    from sbi.neural_nets import likelihood_nn

    build = likelihood_nn(model=model)

    def flow(batch_theta: Tensor, batch_x: Tensor):  # sbi's NLE builder signature
        return build(batch_theta, unit_scale_constants(batch_x))

    flow.model = model
    return flow


def likelihood_estimator(choice: str, x: Tensor, points: Tensor, *, headroom: int = 1):
    """NLE's density estimator for ``choice`` (``"auto"``, ``"categorical"`` or a flow name).

    ``"auto"``: the categorical mass estimator (MNLE's discrete net) for count data with few
    values (every training value ``x`` and observed point an integer in
    ``0..AUTO_CATEGORIES-1``: binary data, small Poisson counts); else :data:`AUTO_FLOW`
    (``sbi``'s default MAF, which sbibm ran), or the NSF on one-dimensional data, where ``sbi``
    warns that a MAF is "limited to Gaussians". Larger counts (``sir``'s binomial counts up to
    1,000) are nearly continuous for a flow, and one logit per value learns them badly. The
    measurements behind the rule are in :mod:`avo_bench.methods.neural`.

    Arguments:
        choice: The config's ``estimator``.
        x: The (first) training data, ``(n, k)``.
        points: The observed points.
        headroom: The categorical net's values run to ``headroom`` times the largest seen
            (at most :data:`MAX_CATEGORIES`): SNLE's later rounds simulate at posterior draws,
            which can exceed the first round's largest count (``sir``: 684 after 627).

    Returns:
        The resolved name and what ``sbi.inference.NLE(density_estimator=...)`` takes: the
        categorical builder, or ``sbi``'s builder of the flow with its defaults, z-scoring a
        column that is constant in the training data by unit scale (:func:`_flow`).

    Raises:
        ValueError: For ``"categorical"`` on data that are not counts below
            :data:`MAX_CATEGORIES`.
    """
    if choice == "auto":
        if _is_counts(x, points, below=AUTO_CATEGORIES):
            choice = "categorical"
        else:  # sbi warns that a MAF on one-dimensional data is "limited to Gaussians"
            choice = AUTO_FLOW if x.shape[1] > 1 else "nsf"
    if choice != "categorical":
        return choice, _flow(choice)
    if not _is_counts(x, points):
        raise ValueError(
            f"nle: estimator 'categorical' needs count data (integers in 0..{MAX_CATEGORIES - 1}); "
            f"choose one of {FLOWS} for these data"
        )
    top = min(headroom * (int(max(x.max(), points.max())) + 1), MAX_CATEGORIES)
    return "categorical", _categorical(top, x.shape[1])


@dataclass(frozen=True)
class MCMCSettings:
    """Settings of ``sbi``'s vectorized slice sampler (``slice_np_vectorized``).

    Attributes:
        num_chains: Parallel chains (one batched potential evaluation per step for all).
        warmup_steps: Discarded steps per chain (the bracket widths are tuned during them).
        thin: Keep every ``thin``-th step.
        init_strategy: ``"resample"`` (prior candidates resampled by their potential),
            ``"sir"`` (by potential minus prior) or ``"proposal"`` (prior draws).
        init_candidates: Prior candidates evaluated for ``resample``/``sir``.
        slice_width: Initial bracket width (see :func:`mcmc_sample`; 0.01 is ``sbi``'s).
    """

    num_chains: int = 20
    warmup_steps: int = 50
    thin: int = 1
    init_strategy: str = "resample"
    init_candidates: int = 1000
    slice_width: float = 0.01


def mcmc_sample(
    potential, prior, settings: MCMCSettings, num_samples: int, chains: dict | None = None
) -> Tensor:
    """``num_samples`` draws of ``exp(potential)`` by ``sbi``'s vectorized slice sampler.

    The chains run in the unconstrained space of ``sbi``'s ``mcmc_transform(prior)`` (z-scored,
    or a logit-type map for a box prior), so they never leave the prior support and the prior
    has unit scale there. ``sbi`` starts every bracket 0.01 wide and steps it out 0.01 per
    potential evaluation until it leaves the slice, so on a posterior of unit scale the first
    sweep costs up to a hundred evaluations per coordinate and all chains wait for the slowest
    (``MCMCPosterior.sample`` does not expose the width, so it is passed on here). The width
    changes the cost only: slice sampling leaves its target invariant for any width, and the
    widths are tuned during warm-up. ``sbi``'s 0.01 is the default; the sequential methods
    start one prior scale wide (1.0), where it halved SNLE's cost. Measured for NLE at 10^3
    (2,000 draws, one core), 0.01 vs 1.0: gaussian_linear 62/66 s vs 58/55 s (C2ST 0.696/0.726
    vs 0.704/0.747), gaussian with 100 iid observations 65 vs 68 s (0.677 vs 0.689): no gain
    once the posterior is narrower than the prior, so NLE/NRE keep ``sbi``'s width.

    Arguments:
        potential: An ``sbi`` ``BasePotential`` (``theta (c, d) -> (c,)``) with its ``x_o`` set.
        prior: The prior as a ``torch.distributions`` object (initialization and transform).
        settings: The sampler's settings.
        num_samples: Number of draws returned.
        chains: ``None``, or a dict through which consecutive calls continue their chains
            (sbibm's ``init_strategy="latest_sample"`` across the rounds of SNLE/SNRE): the
            chains start at ``chains["last"]`` when it is there (the last states of an earlier
            call, in the unconstrained space; ``settings.init_strategy`` otherwise), and this
            call's last states are stored there.

    Returns:
        Draws of shape ``(num_samples, d)``.
    """
    from sbi.inference.posteriors import MCMCPosterior
    from sbi.utils.sbiutils import mcmc_transform

    width = settings.slice_width

    class Posterior(MCMCPosterior):  # sbi's sample() does not expose the bracket width
        def _slice_np_mcmc(self, *args, **kwargs):
            return super()._slice_np_mcmc(*args, **{**kwargs, "init_width": width})

    posterior = Posterior(
        potential,
        proposal=prior,
        theta_transform=mcmc_transform(prior, device=potential.device),
        method="slice_np_vectorized",
        num_chains=settings.num_chains,
        warmup_steps=settings.warmup_steps,
        thin=settings.thin,
        init_strategy=settings.init_strategy,
        init_strategy_parameters={"num_candidate_samples": settings.init_candidates},
    )
    if chains is not None and "last" in chains:  # sbi keeps them in this attribute (sbibm too)
        posterior.init_strategy, posterior._mcmc_init_params = "latest_sample", chains["last"]
    with quiet():
        samples = posterior.sample((num_samples,), x=potential.x_o, show_progress_bars=False)
    if chains is not None:
        chains["last"] = posterior._mcmc_init_params
    return samples.reshape(num_samples, -1)


#: Flow draws that estimate the fraction of a direct posterior's mass inside the prior support.
PILOT = 10_000
#: Below this fraction inside, a direct posterior is sampled by MCMC: ``sbi``'s rejection would
#: need over 10^7 flow draws per 10^4 kept, and it has no bound (SNPE on ``slcp``: 0.01 % inside,
#: a reference cell ran into its 30-minute timeout).
MIN_ACCEPTANCE = 1e-3


def fraction_inside(
    posterior, prior, x_o: Tensor, device: torch.device, num_draws: int = PILOT, **sample_kwargs
) -> float:
    """Fraction of ``num_draws`` draws of the ``sbi`` posterior at ``x_o``, drawn without
    ``sbi``'s rejection at the prior's bounds, inside the prior's support. The draws come from a
    forked torch RNG, so the draws that follow are those of a run without this pilot.
    ``sample_kwargs`` go to the posterior's ``sample``."""
    from sbi.utils.sbiutils import within_support

    cuda = [device] if device.type == "cuda" else []
    with torch.no_grad(), torch.random.fork_rng(devices=cuda):
        draws = posterior.sample((num_draws,), x=x_o, show_progress_bars=False,
                                 reject_outside_prior=False, **sample_kwargs)  # fmt: skip
    return float(within_support(prior, draws.reshape(num_draws, -1)).float().mean())


def flow_mcmc_sample(estimator, prior, x_o: Tensor, num_samples: int, device) -> Tensor:
    """``num_samples`` draws of the flow's density at ``x_o`` restricted to the prior's support,
    by ``sbi``'s slice sampler with its default settings (:class:`MCMCSettings`): what ``sbi``'s
    low-acceptance warning advises (``sample_with="mcmc"``) for a flow that leaks its mass."""
    from ._sbi_iid import IIDPotential, Observed, terms

    one = Observed(x_o, torch.ones(1, device=x_o.device), 1, False)
    potential = IIDPotential(terms("posterior", estimator.eval()), one, prior, 0.0, device)
    return mcmc_sample(potential, prior, MCMCSettings(), num_samples)
