r"""An ensemble of neural posterior estimators (``npe_ensemble``) through ``sbi``.

:math:`K` NPEs (``sbi.inference.NPE``, as :mod:`avo_bench.methods.neural`'s ``npe``) trained
independently and combined by ``sbi``'s ``EnsemblePosterior``, the equal-weight mixture
:math:`\frac{1}{K} \sum_k q_k(\theta \mid s)`: averaging members that err in different
directions widens an overconfident posterior, the usual remedy for NPE's overconfidence at
small budgets (Hermans et al. 2022 ensembled five estimators). The members differ by their
initialization, minibatch order and validation split, and by their data (config ``data``):

- ``"shared"`` (default): every member trains on all :math:`B` simulations. A simulation is the
  scarce resource and each member learns best from all of them, so the budget is not split
  (as in Hermans et al. 2022 and deep ensembles, Lakshminarayanan et al. 2017);
- ``"bootstrap"``: each member on a bootstrap resample of the :math:`B` simulations (bagging,
  Breiman 1996; a duplicated row can land in both training and validation sets, which makes
  early stopping a little optimistic);
- ``"split"``: disjoint shares of :math:`B / K` simulations (members fully independent, each
  on fewer data; the budget must hold 20 training sets per member).

Every simulation is drawn once through the counting simulator. The iid observed set takes
NPE's summary route (:mod:`avo_bench.methods._sbi_direct`). Defaults are ``sbi``'s (MAF,
minibatch 200, learning rate 5e-4, early stopping after 20 epochs) and :math:`K = 5`; sbibm
did not run ensembles, so there is no ``paper`` preset. The result carries the mixture's
``log_prob`` and amortized ``sample_at``; its training cost is :math:`K` times NPE's.

References:
    Hermans, Delaunoy, Rozet, Wehenkel, Begy, Louppe, "A Trust Crisis In Simulation-Based
    Inference? Your Posterior Approximations Can Be Unfaithful", TMLR 2022,
    https://arxiv.org/abs/2110.06581

    Lakshminarayanan, Pritzel, Blundell, "Simple and Scalable Predictive Uncertainty Estimation
    using Deep Ensembles", NeurIPS 2017, https://arxiv.org/abs/1612.01474

    Breiman, "Bagging predictors", Machine Learning 1996, https://doi.org/10.1007/BF00058655

    Greenberg, Nonnenmacher, Macke, "Automatic Posterior Transformation for Likelihood-Free
    Inference", ICML 2019, https://arxiv.org/abs/1905.07488 (NPE)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import pandas as pd
import torch
from torch import Tensor

from simulators import check_choice, check_positive_int

from . import register
from ._base import CountingSimulator, Result
from ._sbi import FLOWS, INSTALL_HINT
from ._sbi_direct import Prepared, direct_fit, prepare, train_one
from ._sbi_more import MIN_SIMULATIONS, TrainingConfig
from ._summaries import point_task_only

__all__ = ["DATA_MODES", "NPEEnsembleConfig", "fit_npe_ensemble", "member_data"]

DATA_MODES = ("shared", "bootstrap", "split")


@dataclass(frozen=True)
class NPEEnsembleConfig(TrainingConfig):
    """Hyperparameters of the NPE ensemble.

    Attributes:
        ensemble_size: :math:`K`, number of members (at least 2).
        data: Members' training data: ``"shared"``, ``"bootstrap"`` or ``"split"``.
        estimator: Each member's flow: ``"maf"``, ``"nsf"``, ``"mdn"``, ``"made"``.
        num_samples, training_batch_size, learning_rate, stop_after_epochs, max_num_epochs,
            iid, set_size: See :class:`~avo_bench.methods._sbi_more.TrainingConfig` (``iid``:
            ``"auto"`` or ``"summary"``; ``max_num_epochs`` per member).
    """

    ensemble_size: int = 5
    data: str = "shared"
    estimator: str = "maf"

    method: ClassVar[str] = "npe_ensemble"
    routes: ClassVar[tuple[str, ...]] = ("auto", "summary")
    estimators: ClassVar[tuple[str, ...]] = FLOWS

    def __post_init__(self):
        super().__post_init__()
        check_positive_int(self.method, "ensemble_size", self.ensemble_size, minimum=2)
        check_choice(self.method, "data", self.data, DATA_MODES)


def member_data(data: Prepared, config: NPEEnsembleConfig, generator: torch.Generator):
    """The :math:`K` members' training data (``Prepared``), by ``config.data``."""
    n, k = len(data.theta), config.ensemble_size
    if config.data == "shared":
        return [data] * k
    if config.data == "split":
        parts = torch.arange(n).tensor_split(k)
    else:
        parts = [torch.randint(n, (n,), generator=generator) for _ in range(k)]
    return [Prepared(data.route, data.m, data.theta[i.to(data.theta.device)],
                     data.x[i.to(data.x.device)], data.condition) for i in parts]  # fmt: skip


@register(
    "npe_ensemble", config=NPEEnsembleConfig, applicable=point_task_only, requires="sbi",
    install_hint=INSTALL_HINT,
    description="NPE ensemble (sbi): mixture of K independently trained NPE flows",
)  # fmt: skip
def fit_npe_ensemble(
    simulator: CountingSimulator, x_obs: Tensor, *, budget: int, config: NPEEnsembleConfig,
    generator: torch.Generator, device: torch.device | str,
) -> Result:  # fmt: skip
    """An equal-weight ensemble of NPEs through ``sbi``.

    Arguments:
        simulator: The counting simulator (a point task).
        x_obs: Observed data, shape ``(n_obs, *x_shape)``.
        budget: Simulation budget, at least 20 training sets (of ``m`` simulations each on the
            summary route), or ``20 * ensemble_size`` with ``data="split"``.
        config: The method's config.
        generator: The only source of randomness.
        device: Device of the training and the samples.

    Returns:
        ``num_samples`` draws of the mixture, every member's losses (column ``member``),
        ``log_prob`` and ``sample_at``.
    """
    from sbi.inference import NPE, EnsemblePosterior

    device = torch.device(device)
    minimum = MIN_SIMULATIONS * (config.ensemble_size if config.data == "split" else 1)
    data = prepare("npe_ensemble", simulator, x_obs, budget, config, generator, device, minimum)
    members = member_data(data, config, generator)

    def make(prior):
        return NPE(prior=prior, density_estimator=config.estimator, device=str(device),
                   show_progress_bars=False)  # fmt: skip

    def train(prior):
        posteriors, tables = [], []
        for k, member in enumerate(members):
            posterior, losses = train_one(make, member, config, prior)
            posteriors.append(posterior)
            tables.append(losses.assign(member=k))
        return EnsemblePosterior(posteriors), pd.concat(tables, ignore_index=True)

    result = direct_fit("npe_ensemble", simulator, data, config, generator, device, train)
    result.extras.update(ensemble_size=config.ensemble_size, data=config.data)
    return result
