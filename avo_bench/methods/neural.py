r"""Neural posterior, likelihood and ratio estimation (NPE, NLE, NRE) through the ``sbi`` package.

All three train on :math:`B/m` pairs :math:`(\theta_i, s_i)` with :math:`\theta_i \sim p(\theta)`
and :math:`s_i` the summary of a simulated set of :math:`m` observations (drawn through the
budget-counting simulator and handed to ``append_simulations``; ``sbi`` never simulates by
itself), then condition on the summary of the whole observed set. Set size, summaries and the
posterior-width mismatch when :math:`m < n_{obs}` are documented in
:mod:`avo_bench.methods._summaries`; with one observation the summary is the observation.
We do not use the iid trick for NLE/NRE (training on single observations and summing the
log-likelihoods over the observed set): its MCMC evaluates the network on all :math:`n_{obs}`
observations per step, too slow for the grid's time budget at :math:`n_{obs} \sim 10^4`.

- **npe**: ``sbi.inference.NPE`` (NPE-C/APT: a conditional flow :math:`q(\theta \mid s)`,
  sampled directly; samples outside the prior support are rejected by ``sbi``).
- **nle**: ``sbi.inference.NLE`` (NLE-A: a flow :math:`q(s \mid \theta)`), posterior sampled by
  ``sbi``'s vectorized slice-sampling MCMC.
- **nre**: ``sbi.inference.NRE`` (NRE-B classifier of :math:`r(\theta, s)`), same MCMC.

Hyperparameters are ``sbi``'s defaults (MAF for NPE/NLE, residual classifier for NRE, 50
hidden features, batch 200, learning rate 5e-4, early stopping after 20 epochs without
validation improvement on 10% held out). The MCMC of NLE/NRE uses 20 vectorized slice-sampling
chains, 50 warm-up steps, no thinning, initialised by resampling prior draws by their potential.
sbibm (Lueckmann et al. 2021) used an NSF for NPE, full-batch training (batch 10,000) and 100
chains thinned by 10 after 100 warm-up steps with SIR initialisation; those settings are
3-20 times slower and exceed the grid's ~15 s per cell, but every one is a config field.

**Randomness.** ``sbi`` draws from the global torch (and, in its slice sampler, numpy) RNGs.
Library code must not seed global state, so every ``sbi`` call runs inside
``torch.random.fork_rng`` (plus a saved and restored numpy state) seeded from an integer drawn
from our generator: same seed, same result, and the caller's global RNG states are unchanged
afterwards. Global state is process-wide, so two fits must not run in threads of one process
at once (the runner's process and Dask executors are fine).

References:
    Tejero-Cantero et al., "sbi: A toolkit for simulation-based inference", JOSS 2020,
    https://doi.org/10.21105/joss.02505

    Greenberg, Nonnenmacher, Macke, "Automatic Posterior Transformation for Likelihood-Free
    Inference", ICML 2019, https://arxiv.org/abs/1905.07488 (NPE)

    Papamakarios, Sterratt, Murray, "Sequential Neural Likelihood", AISTATS 2019,
    https://arxiv.org/abs/1805.07226 (NLE)

    Durkan, Murray, Papamakarios, "On Contrastive Learning for Likelihood-Free Inference",
    ICML 2020, https://arxiv.org/abs/2002.03712 (NRE)

    Lueckmann et al., "Benchmarking Simulation-Based Inference", AISTATS 2021,
    https://arxiv.org/abs/2101.04653
"""

from __future__ import annotations

import contextlib
import functools
import io
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from simulators import check_positive_float, check_positive_int

from ..progress import report_progress
from . import register
from ._amortized import direct_posterior_fields, set_summaries
from ._base import CountingSimulator, Result
from ._summaries import (
    check_budget,
    default_set_size,
    observed_summary,
    point_task_only,
    simulate_summaries,
)

__all__ = ["NLEConfig", "NPEConfig", "NREConfig"]

INSTALL_HINT = "pip install 'avo-bench[sbi]'"
MIN_SETS = 20
FLOWS = ("maf", "nsf", "mdn", "made")
CLASSIFIERS = ("resnet", "mlp", "linear")
INIT_STRATEGIES = ("sir", "resample", "proposal")


@dataclass(frozen=True)
class NPEConfig:
    """Hyperparameters of NPE (``sbi``'s defaults).

    Attributes:
        num_samples: Number of posterior samples returned.
        estimator: Conditional density estimator: ``"maf"``, ``"nsf"``, ``"mdn"``, ``"made"``.
        training_batch_size: Minibatch size.
        learning_rate: Adam learning rate.
        stop_after_epochs: Early-stopping patience on the validation loss.
        max_num_epochs: Hard cap on the number of epochs.
        set_size: Simulated observations per θ for an iid observed set (``None``: default).
    """

    num_samples: int = 10_000
    estimator: str = "maf"
    training_batch_size: int = 200
    learning_rate: float = 5e-4
    stop_after_epochs: int = 20
    max_num_epochs: int = 2**31 - 1
    set_size: int | None = None

    def __post_init__(self):
        name = _method_name(self)
        for field in ("num_samples", "training_batch_size", "stop_after_epochs", "max_num_epochs"):
            check_positive_int(name, field, getattr(self, field))
        check_positive_float(name, "learning_rate", self.learning_rate)
        choices = CLASSIFIERS if isinstance(self, NREConfig) else FLOWS
        if self.estimator not in choices:
            raise ValueError(f"{name}: estimator must be one of {choices}, got {self.estimator!r}")
        if self.set_size is not None:
            check_positive_int(name, "set_size", self.set_size, minimum=2)


@dataclass(frozen=True)
class NLEConfig(NPEConfig):
    """Hyperparameters of NLE: those of :class:`NPEConfig` plus the MCMC sampler's.

    Attributes:
        num_chains: Parallel slice-sampling chains.
        warmup_steps: Discarded steps per chain.
        thin: Keep every ``thin``-th step.
        init_strategy: Chain initialisation: ``"resample"``, ``"sir"`` or ``"proposal"``.
    """

    num_chains: int = 20
    warmup_steps: int = 50
    thin: int = 1
    init_strategy: str = "resample"

    def __post_init__(self):
        super().__post_init__()
        for field in ("num_chains", "warmup_steps", "thin"):
            check_positive_int(_method_name(self), field, getattr(self, field))
        if self.init_strategy not in INIT_STRATEGIES:
            raise ValueError(
                f"{_method_name(self)}: init_strategy must be one of {INIT_STRATEGIES}, "
                f"got {self.init_strategy!r}"
            )


@dataclass(frozen=True)
class NREConfig(NLEConfig):
    """Hyperparameters of NRE: those of :class:`NLEConfig`; the estimator is a classifier
    (``"resnet"``, ``"mlp"`` or ``"linear"``)."""

    estimator: str = "resnet"


def _method_name(config: NPEConfig) -> str:
    return {NPEConfig: "npe", NLEConfig: "nle", NREConfig: "nre"}[type(config)]


@contextlib.contextmanager
def _seeded_global_rngs(seed: int, device: torch.device) -> Iterator[None]:
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


def _training_data(simulator, x_obs, budget, set_size, generator, device, name):
    """Prior draws and their summaries ``(N, d), (N, k)``, the observed summary, ``m``."""
    observed = observed_summary(simulator, x_obs, device)
    valid = isinstance(budget, int) and not isinstance(budget, bool)
    m = default_set_size(len(x_obs), budget if valid else 0, set_size)
    check_budget(name, budget, MIN_SETS * m, f"{MIN_SETS} training sets of {m} simulations")
    theta = simulator.prior.sample((budget // m,), generator=generator, device=device)
    summaries = simulate_summaries(simulator, theta, m, len(x_obs), generator)
    return theta, summaries, observed, m


def _history(inference) -> pd.DataFrame:
    summary = getattr(inference, "_summary", {})
    train, valid = summary.get("training_loss", []), summary.get("validation_loss", [])
    history = pd.DataFrame(
        {"iteration": range(len(train)), "training_loss": train, "validation_loss": valid}
    )
    if not np.isfinite(history[["training_loss", "validation_loss"]].to_numpy()).all():
        raise FloatingPointError(f"sbi training produced a non-finite loss:\n{history.tail()}")
    return history


def _build(name: str, config: NPEConfig, prior, device: torch.device):
    from sbi.inference import NLE, NPE, NRE

    kwargs = {"prior": prior, "device": str(device), "show_progress_bars": False}
    if name == "nre":
        return NRE(classifier=config.estimator, **kwargs)
    return {"npe": NPE, "nle": NLE}[name](density_estimator=config.estimator, **kwargs)


def _train_and_sample(name, config, prior, theta, summaries, observed, device):
    """Runs ``sbi``: train on ``(theta, summaries)``, sample the posterior at ``observed``."""
    with warnings.catch_warnings():
        # 1-D summaries or parameters are expected here (poisson): sbi's note that a flow on a
        # 1-D space is limited to Gaussians would otherwise repeat for every cell.
        warnings.filterwarnings("ignore", message="In one-dimensional output space")
        return _train_and_sample_quietly(name, config, prior, theta, summaries, observed, device)


def _train_and_sample_quietly(name, config, prior, theta, summaries, observed, device):
    inference = _build(name, config, prior, device)
    with contextlib.redirect_stdout(io.StringIO()):  # sbi prints its convergence message
        estimator = inference.append_simulations(theta, summaries).train(
            training_batch_size=config.training_batch_size,
            learning_rate=config.learning_rate,
            stop_after_epochs=config.stop_after_epochs,
            max_num_epochs=config.max_num_epochs,
        )
    history = _history(inference)
    report_progress(1, 2, validation_loss=float(history["validation_loss"].iloc[-1]))
    if name == "npe":
        posterior = inference.build_posterior(estimator)
    else:
        from sbi.inference.posteriors.posterior_parameters import MCMCPosteriorParameters

        mcmc = MCMCPosteriorParameters(
            method="slice_np_vectorized",
            num_chains=config.num_chains,
            warmup_steps=config.warmup_steps,
            thin=config.thin,
            init_strategy=config.init_strategy,
        )
        posterior = inference.build_posterior(estimator, posterior_parameters=mcmc)
    shape = (config.num_samples,)
    samples = posterior.sample(shape, x=observed[None], show_progress_bars=False)
    return samples.reshape(config.num_samples, -1), history, posterior


def _fit(name, simulator, x_obs, budget, config, generator, device) -> Result:
    device = torch.device(device)
    theta, summaries, observed, m = _training_data(
        simulator, x_obs, budget, config.set_size, generator, device, name
    )
    prior = simulator.prior.to_torch(device)
    seed = int(torch.randint(2**62, (1,), generator=generator, device=device))
    with _seeded_global_rngs(seed, device):
        samples, history, posterior = _train_and_sample(
            name, config, prior, theta, summaries, observed, device
        )
    report_progress(2, 2)
    if not torch.isfinite(samples).all():
        raise FloatingPointError(f"{name}: sbi returned non-finite posterior samples")
    extras = {
        "epochs": len(history),
        "best_validation_loss": float(history["validation_loss"].min()),
        "num_training_sets": len(theta),
        "set_size": m,
    }
    # NPE is amortized with a normalized density (NLE/NRE: an unnormalized potential and MCMC)
    fields = {}
    if name == "npe":
        condition = functools.partial(set_summaries, simulator)
        fields = direct_posterior_fields(posterior, observed, condition, device)
    return Result(samples.detach().float(), simulator.num_simulations, history, extras, **fields)


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
        budget: Simulation budget, at least {MIN_SETS} training sets of ``m`` simulations.
        config: The method's config dataclass.
        generator: The only source of randomness (seeds ``sbi`` inside a forked RNG state).
        device: Device of the training and the samples.

    Returns:
        ``num_samples`` posterior samples; the per-epoch losses as ``history``.
    """
    return fit


for _name, _config, _description in (
    ("npe", NPEConfig, "NPE (sbi): conditional flow q(theta | summary), direct sampling"),
    ("nle", NLEConfig, "NLE (sbi): flow likelihood q(summary | theta), slice-sampling MCMC"),
    ("nre", NREConfig, "NRE (sbi): classifier likelihood ratio, slice-sampling MCMC"),
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
