r"""Neural posterior, likelihood and ratio estimation (NPE, NLE, NRE) through the ``sbi`` package.

Every simulation is one row of the budget, drawn through the budget-counting simulator and
handed to ``append_simulations`` (``sbi`` never simulates by itself). An iid observed set
:math:`x_{1..n}` is used by one of two routes (config ``iid``):

- ``"sum"``: train on :math:`B` single simulations :math:`(\theta_j, x_j)` and condition on
  every observation through the sum of per-observation log-likelihoods (NLE), log-ratios (NRE)
  or log-posteriors minus :math:`(n-1)` log-priors (factorized NPE), sampled by MCMC; the way
  NLE and NRE are meant to be used on iid data (see :mod:`avo_bench.methods._sbi_iid`, which
  also compresses repeated values and, for large 1-D sets, bins them).
- ``"summary"``: train on :math:`B/m` pairs :math:`(\theta_i, s_i)`, :math:`s_i` the summary of
  a simulated set of :math:`m` observations, and condition on the summary of the whole set (set
  size and the posterior-width mismatch when :math:`m < n` in
  :mod:`avo_bench.methods._summaries`).
- ``"auto"`` (default): ``"sum"`` for NLE and NRE; ``"summary"`` for NPE. Factorized NPE
  (``"sum"``) needs a bounded prior: with an unbounded one its potential is unbounded above
  wherever the learned per-observation posterior has heavier tails than
  :math:`p(\theta)^{(n-1)/n}` (measured on ``gaussian``: it grows without limit beyond 2 prior
  sds), so it is refused there; with a box prior the prior term is constant.

With one observation both routes are the standard algorithm. Methods:

- **npe**: ``sbi.inference.NPE`` (NPE-C/APT: a conditional flow :math:`q(\theta \mid s)`,
  sampled directly; samples outside the prior support are rejected by ``sbi``). That rejection
  has no bound, so a pilot of :data:`~avo_bench.methods._sbi.PILOT` flow draws (in a forked
  RNG: the draws that follow are unchanged) first estimates the fraction inside; under
  :data:`~avo_bench.methods._sbi.MIN_ACCEPTANCE` the draws come from ``sbi``'s slice sampler
  on the flow restricted to the support instead, as ``sbi``'s warning advises and as SNPE
  does (:mod:`~avo_bench.methods.sequential`). ``extras["acceptance"]`` is the pilot's
  fraction, ``extras["sampler"]`` ``"rejection"`` or ``"mcmc"``.
- **nle**: ``sbi.inference.NLE`` (NLE-A). ``estimator="auto"``: for count data with few values
  (every value an integer in ``0..255``: binary data, small Poisson counts) ``sbi``'s
  categorical mass estimator, the discrete net of MNLE (Boelts et al. 2022;
  ``sbi.inference.MNLE`` itself fails without a continuous column), as a flow cannot put mass
  on integers; otherwise ``sbi``'s default MAF, which sbibm ran, or an NSF on 1-D data,
  where ``sbi`` warns that a MAF is limited to Gaussians
  (:func:`~avo_bench.methods._sbi.likelihood_estimator`). Until 2026-12-02 "otherwise" was
  an NSF (``sbi``'s MAF had got stuck ignoring one parameter in one of three trainings on 2-D
  ``gaussian`` at :math:`B = 10^4`, validation loss 3.15 against 2.83), and counts up to 1,023
  were categorical; measured at :math:`10^3` on observations 1-3 (fast C2ST, 1,000 draws),
  MAF against NSF: ``gaussian_linear`` 0.553, 0.583, 0.580 against 0.725, 0.759, 0.645 (81-125
  s a cell against 224-228 s), ``two_moons`` 0.508, 0.584, 0.652 against 0.575, 0.555,
  0.699, ``sir`` 0.742, 0.996, 0.923 against 0.988, 0.989, 0.962 (the categorical net:
  0.982); sbibm's NLE (MAF) over its ten observations: 0.650, 0.773 and 0.761. SNLE's gap
  was larger (:mod:`~avo_bench.methods.sequential`). MAF is not better everywhere: on
  ``weinberg``'s 1-D angles (where the NSF is kept) NLE's distance to θ* in the reference
  cells was 0.073, 0.193, 0.125 with MAF against 0.082, 0.038, 0.003 with NSF; in the
  reference grid ``gaussian_mixture`` reads 0.744, 0.893, 0.734 against NSF's 0.686 mean
  (sbibm: 0.740), and on 2-D ``gaussian`` with 100 observations at :math:`10^4` (the iid
  route's slow test, which therefore pins NSF) MAF read 0.896 on seed 11, stuck again, where
  NSF passes (bound 0.65). With mixed evidence the default is the authors' (``sbi``'s).
- **nre**: ``sbi.inference.NRE`` (NRE-B classifier of :math:`\log r(x, \theta)`).

Other hyperparameters are ``sbi``'s defaults (MAF for NPE, residual classifier for NRE, 50
hidden features, batch 200, learning rate 5e-4, early stopping after 20 epochs without
validation improvement on 10% held out). MCMC (NLE, NRE, factorized NPE): ``sbi``'s vectorized
slice sampler in the prior's unconstrained space, 20 chains, 50 warm-up steps (``sbi``'s
default is 200: fewer for cost; bracket widths tuned there from ``sbi``'s 0.01; NLE/NRE's
``slice_width`` option), no thinning, initialised by
resampling 1,000 prior draws by their potential (``sbi``'s default is 10,000: each candidate
costs one potential evaluation over the whole observed set). Its cost is about 5 potential
evaluations per parameter per step, each over every chain and every (compressed) observation:
linear in ``num_samples`` and in the number of distinct observations. sbibm (Lueckmann et al.
2021) used an NSF for NPE, full-batch training (NRE: minibatches of a tenth of the
simulations, the ``sbi`` 0.14 it ran, :func:`~avo_bench.methods._sbi_more.ratio_batch`) and
100 chains thinned by 10; every setting is a config field, and the ``sbibm`` preset sets
sbibm's (``presets``). Randomness: see
:mod:`avo_bench.methods._sbi`.

References:
    Tejero-Cantero et al., "sbi: A toolkit for simulation-based inference", JOSS 2020,
    https://doi.org/10.21105/joss.02505

    Greenberg, Nonnenmacher, Macke, "Automatic Posterior Transformation for Likelihood-Free
    Inference", ICML 2019, https://arxiv.org/abs/1905.07488 (NPE)

    Papamakarios, Sterratt, Murray, "Sequential Neural Likelihood", AISTATS 2019,
    https://arxiv.org/abs/1805.07226 (NLE)

    Durkan, Murray, Papamakarios, "On Contrastive Learning for Likelihood-Free Inference",
    ICML 2020, https://arxiv.org/abs/2002.03712 (NRE)

    Boelts et al., "Flexible and efficient simulation-based inference for models of
    decision-making", eLife 2022, https://doi.org/10.7554/eLife.77220 (MNLE)

    Lueckmann et al., "Benchmarking Simulation-Based Inference", AISTATS 2021,
    https://arxiv.org/abs/2101.04653
"""

from __future__ import annotations

import dataclasses
import functools
import time
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from simulators import check_choice, check_positive_float, check_positive_int

from ..progress import report_progress
from . import register
from ._amortized import direct_posterior_fields, set_summaries
from ._base import CountingSimulator, Result
from ._sbi import (
    FLOWS,
    INIT_STRATEGIES,
    INSTALL_HINT,
    LIKELIHOODS,
    MIN_ACCEPTANCE,
    MCMCSettings,
    flow_mcmc_sample,
    fraction_inside,
    history,
    likelihood_estimator,
    mcmc_sample,
    sbi_seed,
    seeded_global_rngs,
    single_simulations,
    train,
)
from ._sbi_more import check_flag, ratio_batch
from ._summaries import (
    check_budget,
    default_set_size,
    observed_summary,
    point_task_only,
    simulate_summaries,
)

__all__ = ["IID_ROUTES", "NLEConfig", "NPEConfig", "NREConfig"]

MIN_SETS = 20
CLASSIFIERS = ("resnet", "mlp", "linear")
IID_ROUTES = ("auto", "sum", "summary")
POSITIVE_INTS = ("num_samples", "training_batch_size", "stop_after_epochs", "max_num_epochs",
                 "max_points", "num_chains", "warmup_steps", "thin", "init_candidates")  # fmt: skip
# sbibm's settings (github.com/sbi-benchmark/results @ 2a49a57, benchmarking_sbi/config/algorithm/
# {npe,nle,nre}.yaml): batch 10,000 (full batch below 10^4 training pairs; NRE: a tenth of
# them, the clip of the sbi 0.14.2 sbibm pinned, hence validation_sized_batches); 100 chains
# thinned by 10 after 100 warm-up steps, SIR initialisation (sbibm: 100 batches of 1,000
# candidates; here 10,000 candidates). NPE: NSF; NLE: MAF; NRE: residual classifier (already
# the default).
_SBIBM_TRAINING = {"training_batch_size": 10_000}
_SBIBM_MCMC = {"num_chains": 100, "thin": 10, "warmup_steps": 100, "init_candidates": 10_000}


@dataclass(frozen=True)
class NPEConfig:
    """Hyperparameters of NPE (``sbi``'s defaults) and of the iid routes.

    Attributes:
        num_samples: Number of posterior samples returned.
        estimator: Conditional density estimator: ``"maf"``, ``"nsf"``, ``"mdn"``, ``"made"``.
        training_batch_size: Minibatch size.
        learning_rate: Adam learning rate.
        stop_after_epochs: Early-stopping patience on the validation loss.
        max_num_epochs: Hard cap on the number of epochs.
        iid: Route to an iid observed set: ``"auto"``, ``"sum"`` or ``"summary"`` (module
            docstring).
        set_size: ``"summary"`` route: simulated observations per θ (``None``: default).
        max_points: ``"sum"`` route: a 1-D observed set with more distinct values is binned
            into this many equal-count groups (:func:`avo_bench.methods._sbi_iid.compress`).
        num_chains, warmup_steps, thin, init_strategy, init_candidates: MCMC settings (see
            :class:`avo_bench.methods._sbi.MCMCSettings`), used by every route that samples
            by MCMC.
    """

    num_samples: int = 10_000
    estimator: str = "maf"
    training_batch_size: int = 200
    learning_rate: float = 5e-4
    stop_after_epochs: int = 20
    max_num_epochs: int = 2**31 - 1
    iid: str = "auto"
    set_size: int | None = None
    max_points: int = 256
    num_chains: int = 20
    warmup_steps: int = 50
    thin: int = 1
    init_strategy: str = "resample"
    init_candidates: int = 1000
    presets: ClassVar[dict[str, dict]] = {"sbibm": {"estimator": "nsf", **_SBIBM_TRAINING}}

    def __post_init__(self):
        name = _method_name(self)
        for field in POSITIVE_INTS:
            check_positive_int(name, field, getattr(self, field))
        check_positive_float(name, "learning_rate", self.learning_rate)
        choices = {"npe": FLOWS, "nle": LIKELIHOODS, "nre": CLASSIFIERS}[name]
        check_choice(name, "estimator", self.estimator, choices)
        check_choice(name, "iid", self.iid, IID_ROUTES)
        check_choice(name, "init_strategy", self.init_strategy, INIT_STRATEGIES)
        if hasattr(self, "slice_width"):
            check_positive_float(name, "slice_width", self.slice_width)
        if hasattr(self, "validation_sized_batches"):
            check_flag(name, "validation_sized_batches", self.validation_sized_batches)
        if self.set_size is not None:
            check_positive_int(name, "set_size", self.set_size, minimum=2)


@dataclass(frozen=True)
class NLEConfig(NPEConfig):
    """Hyperparameters of NLE: those of :class:`NPEConfig`; the estimator is ``"auto"``
    (categorical for count data, else MAF), ``"categorical"`` or a flow; ``slice_width`` is
    the slice sampler's initial bracket width (:class:`avo_bench.methods._sbi.MCMCSettings`)."""

    estimator: str = "auto"
    slice_width: float = 0.01
    presets: ClassVar[dict[str, dict]] = {
        "sbibm": {"estimator": "maf", **_SBIBM_TRAINING, **_SBIBM_MCMC}
    }


@dataclass(frozen=True)
class NREConfig(NPEConfig):
    """Hyperparameters of NRE: those of :class:`NPEConfig`; the estimator is a classifier
    (``"resnet"``, ``"mlp"`` or ``"linear"``); ``slice_width`` as :class:`NLEConfig`.
    ``validation_sized_batches``: clip the minibatch to the validation set's size, as the
    ``sbi`` 0.14 that sbibm ran did for NRE (:func:`~avo_bench.methods._sbi_more.ratio_batch`);
    the ``sbibm`` preset sets it. Measured on gaussian_linear observation 1 at 10^4, the
    ``sbibm`` preset otherwise, same seed: full-batch steps (``sbi`` today) trained 170 epochs
    in 715 CPU s to C2ST 0.651 (largest mean error 0.85 posterior sds); minibatches of 1,000
    trained 95 epochs in 59 CPU s to C2ST 0.595 (0.48 sds). sbibm: 0.544 on that observation,
    0.534-0.602 over its ten."""

    estimator: str = "resnet"
    slice_width: float = 0.01
    validation_sized_batches: bool = False
    presets: ClassVar[dict[str, dict]] = {
        "sbibm": {**_SBIBM_TRAINING, **_SBIBM_MCMC, "validation_sized_batches": True}
    }


def _method_name(config: NPEConfig) -> str:
    return {NPEConfig: "npe", NLEConfig: "nle", NREConfig: "nre"}[type(config)]


def _route(name: str, config: NPEConfig, simulator, n_obs: int) -> str:
    route = config.iid if config.iid != "auto" else ("summary" if name == "npe" else "sum")
    bounded = bool(torch.isfinite(simulator.prior.low).all() and torch.isfinite(
        simulator.prior.high).all())  # fmt: skip
    if name == "npe" and route == "sum" and n_obs > 1 and not bounded:
        raise ValueError(
            f"npe: iid='sum' (factorized NPE) needs a bounded prior: with {simulator.name}'s "
            f"unbounded prior its potential sum_i log q(theta | x_i) - (n - 1) log p(theta) is "
            "unbounded above (MCMC diverges); use iid='summary'"
        )
    return route


def _summary_data(simulator, x_obs, budget, config, generator, device, name):
    """Prior draws, summaries of simulated sets ``(N, d), (N, k)``, the observed summary, m."""
    from ._sbi_iid import Observed

    observed = observed_summary(simulator, x_obs, device)
    valid = isinstance(budget, int) and not isinstance(budget, bool)
    m = default_set_size(len(x_obs), budget if valid else 0, config.set_size)
    check_budget(name, budget, MIN_SETS * m, f"{MIN_SETS} training sets of {m} simulations")
    theta = simulator.prior.sample((budget // m,), generator=generator, device=device)
    summaries = simulate_summaries(simulator, theta, m, len(x_obs), generator)
    return theta, summaries, Observed(observed[None], torch.ones(1), 1, binned=False), m


def _single_data(simulator, x_obs, budget, config, generator, device, name):
    """Prior draws and one simulation each ``(B, d), (B, k)``, the compressed observed set."""
    from ._sbi_iid import compress

    observed_summary(simulator, x_obs, device)  # validates x_obs
    check_budget(name, budget, MIN_SETS, f"{MIN_SETS} training simulations")
    theta, x = single_simulations(simulator, budget, generator, device)
    return theta, x, compress(x_obs.to(device), config.max_points), 1


def _trainer(name, config, prior, device, x, observed):
    from sbi.inference import NLE, NPE, NRE

    kwargs = {"prior": prior, "device": str(device), "show_progress_bars": False}
    if name == "nre":
        return NRE(classifier=config.estimator, **kwargs), config.estimator
    if name == "npe":
        return NPE(density_estimator=config.estimator, **kwargs), config.estimator
    label, estimator = likelihood_estimator(config.estimator, x, observed.points)
    return NLE(density_estimator=estimator, **kwargs), label


def _sample(name, route, config, inference, estimator, prior, observed, device):
    """Posterior samples ``(num_samples, d)``, the direct posterior (NPE) or ``None``, and
    extras (NPE's direct route: the pilot's fraction inside the support and the sampler)."""
    from ._sbi_iid import IIDPotential, terms

    if name == "npe" and (route == "summary" or observed.count == 1):
        posterior = inference.build_posterior(estimator)
        x_o, n = observed.points[:1], config.num_samples
        acceptance = fraction_inside(posterior, prior, x_o, device)
        if acceptance >= MIN_ACCEPTANCE:
            samples = posterior.sample((n,), x=x_o, show_progress_bars=False).reshape(n, -1)
            return samples, posterior, {"acceptance": acceptance, "sampler": "rejection"}
        samples = flow_mcmc_sample(estimator, prior, x_o, n, device)
        return samples, posterior, {"acceptance": acceptance, "sampler": "mcmc"}
    kind = {"nle": "likelihood", "nre": "ratio", "npe": "posterior"}[name]
    prior_weight = 1 - observed.count if kind == "posterior" else 1
    potential = IIDPotential(terms(kind, estimator.eval()), observed, prior, prior_weight, device)
    settings = MCMCSettings(config.num_chains, config.warmup_steps, config.thin,
                            config.init_strategy, config.init_candidates,
                            getattr(config, "slice_width", MCMCSettings.slice_width))  # fmt: skip
    return mcmc_sample(potential, prior, settings, config.num_samples), None, {}


def _fit(name, simulator, x_obs, budget, config, generator, device) -> Result:
    device = torch.device(device)
    route = _route(name, config, simulator, len(x_obs))
    data = _summary_data if route == "summary" else _single_data
    theta, x, observed, m = data(simulator, x_obs, budget, config, generator, device, name)
    prior = simulator.prior.to_torch(device)
    with seeded_global_rngs(sbi_seed(generator), device):
        start = time.process_time()
        inference, label = _trainer(name, config, prior, device, x, observed)
        if name == "nre":
            batch = ratio_batch(config.training_batch_size, len(theta),
                                config.validation_sized_batches)  # fmt: skip
            config = dataclasses.replace(config, training_batch_size=batch)
        estimator = train(inference, theta, x, config)
        losses = history(inference)
        report_progress(1, 2, validation_loss=float(losses["validation_loss"].iloc[-1]))
        trained = time.process_time()
        samples, posterior, sampling = _sample(
            name, route, config, inference, estimator, prior, observed, device
        )
        sampled = time.process_time()
    report_progress(2, 2)
    if not torch.isfinite(samples).all():
        raise FloatingPointError(f"{name}: sbi returned non-finite posterior samples")
    extras = {
        "iid": route, "estimator": label, "epochs": len(losses),
        "best_validation_loss": float(losses["validation_loss"].min()),
        "num_training_sets": len(theta), "set_size": m,
        "observed_points": len(observed.points), "binned": observed.binned,
        "training_cpu_s": trained - start, "sampling_cpu_s": sampled - trained, **sampling,
    }  # fmt: skip
    fields = {}
    if posterior is not None:  # amortized, with a normalized density (MCMC: neither)
        condition = functools.partial(set_summaries, simulator)
        fields = direct_posterior_fields(posterior, observed.points[0], condition, device)
    return Result(samples.detach().float(), simulator.num_simulations, losses, extras, **fields)


def _make_fit(name: str, description: str):
    def fit(
        simulator: CountingSimulator,
        x_obs: Tensor,
        *,
        budget: int,
        config: NPEConfig,
        generator: torch.Generator,
        device: torch.device | str,
    ) -> Result:
        return _fit(name, simulator, x_obs, budget, config, generator, device)

    fit.__name__ = f"fit_{name}"
    fit.__doc__ = f"""{description}

    Arguments:
        simulator: The counting simulator (a point task).
        x_obs: Observed data, shape ``(n_obs, *x_shape)``.
        budget: Simulation budget, at least {MIN_SETS} training simulations (route ``"sum"``)
            or sets of ``m`` simulations (route ``"summary"``).
        config: The method's config dataclass.
        generator: The only source of randomness (seeds ``sbi`` inside a forked RNG state).
        device: Device of the training and the samples.

    Returns:
        ``num_samples`` posterior samples; the per-epoch losses as ``history``.
    """
    return fit


for _name, _config, _description in (
    ("npe", NPEConfig, "NPE (sbi): conditional flow q(theta | summary), direct sampling"),
    ("nle", NLEConfig, "NLE (sbi): likelihood q(x | theta) summed over iid x, MCMC"),
    ("nre", NREConfig, "NRE (sbi): classifier ratio r(x, theta) summed over iid x, MCMC"),
):
    register(
        _name,
        config=_config,
        applicable=point_task_only,
        requires="sbi",
        install_hint=INSTALL_HINT,
        description=_description,
    )(_make_fit(_name, _description))

del _name, _config, _description
