r"""Contrastive and balanced neural ratio estimation (NRE-C, BNRE) through ``sbi``.

Both learn a classifier whose logit estimates :math:`\log r(x, \theta) = \log p(x \mid \theta)
- \log p(x)` and sample :math:`p(\theta) \prod_i r(x_i, \theta)` by ``sbi``'s slice sampler,
like :mod:`avo_bench.methods.neural`'s ``nre`` (route ``"sum"`` for iid sets: single
simulations, summed log-ratios, repeated values compressed; ``"summary"``: summaries of
simulated sets), with the same MCMC settings.

- **nre_c**: ``sbi.inference.NRE_C``: a :math:`(K+1)`-way classification of which of
  :math:`K` contrastive parameters (or none, the marginal class, weighted by
  :math:`\gamma`) generated :math:`x`; unlike NRE-B's, its ratio is normalized.
  ``sbi``'s defaults :math:`K = 5`, :math:`\gamma = 1`.
- **bnre**: ``sbi.inference.BNRE``: NRE-A's binary classifier plus a balancing penalty
  :math:`\lambda (\mathbb{E}[d(\theta, x)] + \mathbb{E}[d(\theta', x)] - 1)^2` that pushes the
  posterior towards conservative (wider, not overconfident) estimates; ``sbi``'s default
  :math:`\lambda = 100` (the paper's).

Other hyperparameters are ``sbi``'s defaults (residual classifier, 50 hidden features, batch
200, learning rate 5e-4, early stopping after 20 epochs); sbibm (Lueckmann et al. 2021)
predates both methods, so there is no ``paper`` preset.

References:
    Miller, Weniger, Forré, "Contrastive Neural Ratio Estimation", NeurIPS 2022,
    https://arxiv.org/abs/2210.06170 (NRE-C)

    Delaunoy, Hermans, Rozet, Wehenkel, Louppe, "Towards Reliable Simulation-Based Inference
    with Balanced Neural Ratio Estimation", NeurIPS 2022, https://arxiv.org/abs/2208.13624
    (BNRE)
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from simulators import check_positive_float, check_positive_int

from ..progress import report_progress
from . import register
from ._base import CountingSimulator, Result
from ._sbi import INSTALL_HINT, sbi_seed, seeded_global_rngs
from ._sbi_more import (
    MIN_SIMULATIONS,
    MCMCConfig,
    fit_estimator,
    mcmc_draws,
    observed_data,
    resolve_route,
    set_size,
    training_data,
)
from ._summaries import point_task_only

__all__ = ["BNREConfig", "NRECConfig", "fit_bnre", "fit_nre_c"]

CLASSIFIERS = ("resnet", "mlp", "linear")


@dataclass(frozen=True)
class NRECConfig(MCMCConfig):
    """Hyperparameters of NRE-C (``sbi``'s defaults).

    Attributes:
        estimator: Classifier: ``"resnet"``, ``"mlp"`` or ``"linear"``.
        num_classes: :math:`K`, contrastive parameters per observation.
        gamma: :math:`\\gamma`, odds of a dependent pair against an independent one.
        Others: see :class:`~avo_bench.methods._sbi_more.MCMCConfig`.
    """

    estimator: str = "resnet"
    num_classes: int = 5
    gamma: float = 1.0

    method: ClassVar[str] = "nre_c"
    estimators: ClassVar[tuple[str, ...]] = CLASSIFIERS

    def __post_init__(self):
        super().__post_init__()
        check_positive_int(self.method, "num_classes", self.num_classes)
        check_positive_float(self.method, "gamma", self.gamma)

    def train_kwargs(self) -> dict:
        """``train``'s method-specific arguments."""
        return {"num_classes": self.num_classes, "gamma": self.gamma}


@dataclass(frozen=True)
class BNREConfig(MCMCConfig):
    """Hyperparameters of BNRE (``sbi``'s defaults).

    Attributes:
        estimator: Classifier: ``"resnet"``, ``"mlp"`` or ``"linear"``.
        regularization_strength: :math:`\\lambda`, weight of the balancing penalty.
        Others: see :class:`~avo_bench.methods._sbi_more.MCMCConfig`.
    """

    estimator: str = "resnet"
    regularization_strength: float = 100.0

    method: ClassVar[str] = "bnre"
    estimators: ClassVar[tuple[str, ...]] = CLASSIFIERS

    def __post_init__(self):
        super().__post_init__()
        check_positive_float(
            self.method, "regularization_strength", self.regularization_strength, True
        )

    def train_kwargs(self) -> dict:
        """``train``'s method-specific arguments."""
        return {"regularization_strength": self.regularization_strength}


def _fit(simulator, x_obs, budget, config, generator, device) -> Result:
    from sbi.inference import BNRE, NRE_C

    name, device = config.method, torch.device(device)
    route = resolve_route(config, len(x_obs))
    valid = isinstance(budget, int) and not isinstance(budget, bool)
    m = set_size(route, len(x_obs), budget if valid else 0, config)
    observed = observed_data(simulator, x_obs, route, config.max_points, device)
    theta, x = training_data(name, simulator, budget, m, generator, device, MIN_SIMULATIONS)
    prior = simulator.prior.to_torch(device)
    trainer = {"nre_c": NRE_C, "bnre": BNRE}[name]
    with seeded_global_rngs(sbi_seed(generator), device):
        start = time.process_time()
        inference = trainer(classifier=config.estimator, prior=prior, device=str(device),
                            show_progress_bars=False)  # fmt: skip
        estimator, losses = fit_estimator(inference, theta, x, config, **config.train_kwargs())
        report_progress(1, 2, validation_loss=float(losses["validation_loss"].iloc[-1]))
        trained = time.process_time()
        samples = mcmc_draws("ratio", estimator, observed, prior, config, config.num_samples,
                             device)  # fmt: skip
        sampled = time.process_time()
    report_progress(2, 2)
    if not torch.isfinite(samples).all():
        raise FloatingPointError(f"{name}: sbi returned non-finite posterior samples")
    extras = {
        "iid": route, "epochs": len(losses), "num_training_sets": len(theta), "set_size": m,
        "best_validation_loss": float(losses["validation_loss"].min()),
        "observed_points": len(observed.points), "binned": observed.binned,
        "training_cpu_s": trained - start, "sampling_cpu_s": sampled - trained,
    }  # fmt: skip
    return Result(samples.detach().float(), simulator.num_simulations, losses, extras)


_DOC = """{title} through ``sbi``; posterior draws by slice sampling.

    Arguments:
        simulator: The counting simulator (a point task).
        x_obs: Observed data, shape ``(n_obs, *x_shape)``.
        budget: Simulation budget, at least 20 training sets (of ``m`` simulations each on the
            summary route).
        config: The method's config.
        generator: The only source of randomness.
        device: Device of the training and the samples.

    Returns:
        ``num_samples`` posterior draws and the per-epoch losses.
    """


@register(
    "nre_c", config=NRECConfig, applicable=point_task_only, requires="sbi",
    install_hint=INSTALL_HINT,
    description="NRE-C (sbi): contrastive (K+1)-class ratio r(x, theta) summed over iid x, MCMC",
)  # fmt: skip
def fit_nre_c(
    simulator: CountingSimulator, x_obs: Tensor, *, budget: int, config: NRECConfig,
    generator: torch.Generator, device: torch.device | str,
) -> Result:  # fmt: skip
    return _fit(simulator, x_obs, budget, config, generator, device)


@register(
    "bnre", config=BNREConfig, applicable=point_task_only, requires="sbi",
    install_hint=INSTALL_HINT,
    description="BNRE (sbi): balanced (conservative) ratio r(x, theta) summed over iid x, MCMC",
)  # fmt: skip
def fit_bnre(
    simulator: CountingSimulator, x_obs: Tensor, *, budget: int, config: BNREConfig,
    generator: torch.Generator, device: torch.device | str,
) -> Result:  # fmt: skip
    return _fit(simulator, x_obs, budget, config, generator, device)


fit_nre_c.__doc__ = _DOC.format(title="Contrastive neural ratio estimation (NRE-C)")
fit_bnre.__doc__ = _DOC.format(title="Balanced neural ratio estimation (BNRE)")
