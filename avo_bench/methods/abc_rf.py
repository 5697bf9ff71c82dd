r"""ABC random forests (ABC-RF) for parameter inference: one regression forest per parameter.

With the whole budget :math:`B` spent at once, :math:`N = \lfloor B/m \rfloor` parameters
:math:`\theta_i \sim p(\theta)` are drawn from the prior and one set of :math:`m` observations is
simulated at each; :math:`s_i` is its summary (see :mod:`avo_bench.methods._summaries`: the
simulator's summary of an iid set, the raw observation when ``n_obs == 1``). For each parameter
:math:`j` a regression forest (scikit-learn's ``RandomForestRegressor``) is trained on
:math:`(s_i, \theta_{ij})`, and its *weights* at the observed summary :math:`s_o` (the weights of
quantile regression forests, Meinshausen 2006),

.. math:: w_{ij} = \frac{1}{T} \sum_{t=1}^T
          \frac{\mathbb{1}\{\ell_t(s_i) = \ell_t(s_o)\}}{|\{k : \ell_t(s_k) = \ell_t(s_o)\}|},

with :math:`\ell_t` the leaf of tree :math:`t` (``forest.apply``), give the posterior marginal
:math:`\hat p(\theta_j \mid s_o) = \sum_i w_{ij} \delta_{\theta_{ij}}` (Raynal et al. 2019, eq. 3).
Leaf sizes count every training point, as Meinshausen; the authors' ``abcrf`` package counts
bootstrap multiplicities instead (a small difference: both average the same leaves).

**Joint samples.** ABC-RF estimates each parameter's *marginal* posterior. ``joint =
"independent"`` (default, as sbibm ran it) draws each coordinate independently from its own
weights: the returned samples have the right marginals but independent coordinates, so
posterior correlations are lost and C2ST (a joint test) penalises them on tasks with correlated
posteriors (nothing is lost when the posterior factorizes, as on ``gaussian_linear``).
``joint = "mean"`` draws whole prior draws :math:`\theta_i` with the averaged weights
:math:`\bar w_i = \frac1d \sum_j w_{ij}`: correlations of the weighted prior draws are kept, each
marginal is then a mixture of the per-parameter fits.

**Defaults** are the authors' (``abcrf``'s ``regAbcrf``; Raynal et al. 2019): 500 trees,
``mtry`` = a third of the features, minimum node size 5 (ranger's rule: a node of at most 5
training points is not split, i.e. scikit-learn's ``min_samples_split = 6``), bootstrap samples of
:math:`\min(N, 10^5)` points. sbibm ran ``abcranger`` (``sbibm/algorithms/pyabcranger/abcrf.py``),
whose ``estimparam`` also appends the PLS components of the summaries that explain up to 90% of the
maximal explained variance of :math:`\theta_j` (``plsmaxvar = 0.9``): the ``paper`` preset sets
``pls = 0.9`` to match it. abcranger's 5 extra noise columns (a variable-importance diagnostic)
are not added.

References:
    Raynal, Marin, Pudlo, Ribatet, Robert, Estoup, "ABC random forests for Bayesian parameter
    inference", Bioinformatics 35(10), 2019, https://arxiv.org/abs/1605.05537

    Meinshausen, "Quantile regression forests", JMLR 7, 2006,
    https://jmlr.org/papers/v7/meinshausen06a.html

    Lueckmann et al., "Benchmarking Simulation-Based Inference", AISTATS 2021,
    https://arxiv.org/abs/2101.04653 (RF-ABC in the supplement).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from simulators import check_choice, check_positive_int

from . import register
from ._base import CountingSimulator, Result
from ._summaries import (
    check_budget,
    default_set_size,
    observed_summary,
    point_task_only,
    simulate_summaries,
)

__all__ = ["JOINT", "ABCRFConfig", "fit", "forest_weights", "pls_features"]

JOINT = ("independent", "mean")
MIN_SETS = 10
MAX_BOOTSTRAP = 100_000  # abcrf's sampsize = min(1e5, N)
ROW_CHUNK = 8192  # rows per forest.apply call: bounds the (rows, trees) leaf-index array


@dataclass(frozen=True)
class ABCRFConfig:
    """Hyperparameters of ABC-RF.

    Attributes:
        num_samples: Number of θ samples returned.
        num_trees: Trees per forest (``>= 1``).
        min_node_size: Nodes of at most this many training points are not split (``>= 1``).
        mtry: Fraction of the features tried at each split, in ``(0, 1]`` (at least one).
        pls: Append the PLS components of the summaries explaining up to this fraction of the
            maximal explained variance of each parameter (abcranger's ``plsmaxvar``), in
            ``(0, 1]``; ``None``: summaries only.
        joint: How joint samples are built from the per-parameter weights: ``"independent"``
            or ``"mean"`` (see the module docstring).
        set_size: Simulated observations per θ for an iid observed set (``None``: default).
        n_jobs: Processes of scikit-learn's forest (results do not depend on it).
    """

    num_samples: int = 10_000
    num_trees: int = 500
    min_node_size: int = 5
    mtry: float = 1 / 3
    pls: float | None = None
    joint: str = "independent"
    set_size: int | None = None
    n_jobs: int = 1

    presets: ClassVar[dict[str, dict]] = {"paper": {"pls": 0.9}}  # sbibm's abcranger

    def __post_init__(self):
        for field in ("num_samples", "num_trees", "min_node_size", "n_jobs"):
            check_positive_int("abc_rf", field, getattr(self, field))
        for field in ("mtry", "pls"):
            value = getattr(self, field)
            if field == "pls" and value is None:
                continue
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            if not ok or not 0 < value <= 1:
                valid = "a number in (0, 1]" + (" or None" if field == "pls" else "")
                raise ValueError(f"abc_rf: {field} must be {valid}, got {value!r}")
        check_choice("abc_rf", "joint", self.joint, JOINT)
        if self.set_size is not None:
            check_positive_int("abc_rf", "set_size", self.set_size, minimum=2)


def pls_features(s: np.ndarray, y: np.ndarray, s_obs: np.ndarray, max_var: float):
    """PLS components of ``s`` ``(N, k)`` for target ``y`` ``(N,)``, as abcranger selects them.

    Components are fitted on standardized summaries (constant columns dropped); the first
    :math:`K` are kept, :math:`K` the number whose cumulative explained variance of ``y`` is at
    most ``max_var`` times that of all components.

    Returns:
        The components of the training summaries ``(N, K)`` and of ``s_obs`` ``(1, K)``.
    """
    from sklearn.cross_decomposition import PLSRegression

    varying = s.std(0) > 0
    s, s_obs = s[:, varying], s_obs[:, varying]
    if s.shape[1] == 0:
        return np.zeros((len(s), 0)), np.zeros((1, 0))
    pls = PLSRegression(n_components=s.shape[1], scale=True).fit(s, y)
    scores, loadings = pls.x_scores_, pls.y_loadings_[0]  # (N, K), (K,)
    target = (y - y.mean()) / (y.std() if y.std() > 0 else 1.0)
    residual = target[:, None] - np.cumsum(scores * loadings, axis=1)
    explained = 1 - (residual**2).sum(0) / max((target**2).sum(), 1e-300)
    keep = int((explained <= max_var * explained[-1]).sum())
    return pls.transform(s)[:, :keep], pls.transform(s_obs)[:, :keep]


def forest_weights(forest, s: np.ndarray, s_obs: np.ndarray) -> np.ndarray:
    """Quantile-regression-forest weights ``(N,)`` of the training rows ``s`` at ``s_obs``.

    Arguments:
        forest: A fitted scikit-learn forest.
        s: Training features ``(N, k)``.
        s_obs: Observed features ``(1, k)``.

    Returns:
        Weights summing to one (Meinshausen 2006).
    """
    leaf_obs = forest.apply(s_obs)  # (1, T)
    same = np.concatenate(
        [forest.apply(s[i : i + ROW_CHUNK]) == leaf_obs for i in range(0, len(s), ROW_CHUNK)]
    )  # (N, T) booleans
    inverse = 1.0 / np.maximum(same.sum(0), 1) / same.shape[1]  # sizes >= 1: in-bag rows
    # chunked: a float copy of the whole (N, T) array would take 8 N T bytes
    return np.concatenate([same[i : i + ROW_CHUNK] @ inverse for i in range(0, len(s), ROW_CHUNK)])


def _seed(generator: torch.Generator) -> int:
    """A scikit-learn seed drawn from ``generator`` (never numpy's global state)."""
    return int(torch.randint(2**31 - 1, (1,), generator=generator, device=generator.device))


def _fit_parameter(s, y, s_obs, config: ABCRFConfig, seed: int) -> tuple[np.ndarray, int]:
    """Weights ``(N,)`` of the forest for one parameter, and the number of PLS components."""
    from sklearn.ensemble import RandomForestRegressor

    extra = 0
    if config.pls is not None:
        train, obs = pls_features(s, y, s_obs, config.pls)
        s, s_obs, extra = np.hstack([s, train]), np.hstack([s_obs, obs]), train.shape[1]
    forest = RandomForestRegressor(
        n_estimators=config.num_trees,
        min_samples_split=config.min_node_size + 1,
        max_features=config.mtry,
        max_samples=min(len(s), MAX_BOOTSTRAP) if len(s) > MAX_BOOTSTRAP else None,
        random_state=seed,
        n_jobs=config.n_jobs,
    ).fit(s, y)
    return forest_weights(forest, s, s_obs), extra


def _draw(theta: Tensor, weights: Tensor, joint: str, n: int, generator) -> Tensor:
    """``n`` joint samples ``(n, d)`` from per-parameter weights ``(d, N)``."""
    if joint == "mean":
        pick = torch.multinomial(weights.mean(0), n, replacement=True, generator=generator)
        return theta[pick]
    pick = torch.multinomial(weights, n, replacement=True, generator=generator)  # (d, n)
    return theta.gather(0, pick.T)


@register(
    "abc_rf",
    config=ABCRFConfig,
    applicable=point_task_only,
    description="ABC random forests: a regression forest per parameter, posterior from its weights",
)
def fit(
    simulator: CountingSimulator,
    x_obs: Tensor,
    *,
    budget: int,
    config: ABCRFConfig,
    generator: torch.Generator,
    device: torch.device | str,
) -> Result:
    """ABC-RF (Raynal et al. 2019) with quantile-regression-forest weights (Meinshausen 2006).

    Arguments:
        simulator: The counting simulator (a point task).
        x_obs: Observed data, shape ``(n_obs, *x_shape)``.
        budget: Simulation budget, at least ten simulated sets (``10 m`` rows).
        config: An :class:`ABCRFConfig`.
        generator: The only source of randomness (prior draws, forest seeds, resampling).
        device: Device of the returned samples (the forests run on the CPU).

    Returns:
        ``num_samples`` draws (see ``joint``); per-parameter posterior means, standard
        deviations and weight effective sample sizes in ``extras``.
    """
    device = torch.device(device)
    observed = observed_summary(simulator, x_obs, device)
    n_obs = len(x_obs)
    m = default_set_size(n_obs, budget if isinstance(budget, int) else 0, config.set_size)
    check_budget("abc_rf", budget, MIN_SETS * m, f"{MIN_SETS} sets of {m} simulations")
    theta = simulator.prior.sample((budget // m,), generator=generator, device=device)
    summaries = simulate_summaries(simulator, theta, m, n_obs, generator)
    s = summaries.double().cpu().numpy()
    s_obs = observed.double().cpu().numpy()[None, :]
    y = theta.double().cpu().numpy()
    fits = [_fit_parameter(s, y[:, j], s_obs, config, _seed(generator)) for j in range(y.shape[1])]
    weights = torch.as_tensor(np.stack([w for w, _ in fits]), device=device)  # (d, N)
    samples = _draw(theta, weights, config.joint, config.num_samples, generator)
    extras = _extras(simulator, theta, weights, [k for _, k in fits], m)
    history = pd.DataFrame([{"iteration": 0, "num_simulations": simulator.num_simulations}])
    return Result(samples.float(), simulator.num_simulations, history, extras)


def _extras(simulator, theta: Tensor, weights: Tensor, pls: list[int], m: int) -> dict:
    t = theta.double().T  # (d, N)
    mean = (weights * t).sum(1)
    std = (weights * (t - mean[:, None]) ** 2).sum(1).clamp_min(0).sqrt()
    ess = 1.0 / (weights**2).sum(1)
    extras: dict[str, object] = {"num_sets": theta.shape[0], "set_size": m}
    for j, name in enumerate(simulator.parameter_names):
        extras[f"mean_{name}"], extras[f"std_{name}"] = float(mean[j]), float(std[j])
        extras[f"ess_{name}"] = float(ess[j])
        extras[f"pls_components_{name}"] = pls[j]
    extras["min_ess"] = float(ess.min())
    return extras
