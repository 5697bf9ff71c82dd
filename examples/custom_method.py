r"""Adding a method: ABC with local-linear regression adjustment (Beaumont et al. 2002).

A worked example of the method contract (``avo_bench/methods/_base.py``), registered from user
code with ``@register(name, config=..., applicable=...)``. The whole budget is spent at once:
:math:`N = \lfloor B/m \rfloor` prior draws :math:`\theta_i`, one simulated set of :math:`m`
observations each, summarized as :math:`s_i` (the public helpers of ``avo_bench.methods``,
shared with ``rejection_abc``). The fraction ``quantile`` of draws closest to the observed
summary :math:`s_{obs}` (MAD-scaled Euclidean distance :math:`d_i`) is kept with Epanechnikov
weights :math:`w_i = 1 - (d_i/\epsilon)^2`, and the weighted least-squares fit
:math:`\phi(\theta_i) \approx \alpha + \beta^\top (s_i - s_{obs})` corrects every kept draw to
the observed summary,

.. math:: \phi_i^* = \phi(\theta_i) - \hat\beta^\top (s_i - s_{obs}),

where :math:`\phi` is the logit of the position inside a bounded prior box (so the adjusted
draws stay inside it, as Beaumont et al. transform bounded parameters) and the identity for
unbounded coordinates. The returned samples are drawn from the adjusted :math:`\theta_i^*` with
probabilities :math:`\propto w_i`. When :math:`\theta \mid s` is linear-Gaussian (the
``gaussian`` task with its sufficient set mean) the adjustment is exact up to the regression's
estimation error, so far fewer simulations than rejection ABC reach the same accuracy.

Like :mod:`examples.custom_simulator`, the registration lives in this process: it works with
``jobs=1`` (and with worker processes only when the main script registers at import time);
for the CLI, save the module as ``avo_bench/methods/<name>.py``.

References:
    Beaumont, Zhang, Balding, "Approximate Bayesian computation in population genetics",
    Genetics 162(4), 2002.

Usage::

    python examples/custom_method.py [--seed 0] [--out DIR] [--budget 2000]
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pandas as pd
import torch
from torch import Tensor

import avo_bench
from avo_bench.methods import (
    CountingSimulator,
    Result,
    check_budget,
    default_set_size,
    distances,
    mad_scale,
    observed_summary,
    point_task_only,
    register,
    simulate_summaries,
)
from simulators import check_positive_int

__all__ = ["RegressionABCConfig", "fit", "main"]


@dataclass(frozen=True)
class RegressionABCConfig:
    """Hyperparameters of regression-adjusted ABC.

    Attributes:
        num_samples: Number of θ samples returned.
        quantile: Fraction of the prior draws kept for the regression, in ``(0, 1]``.
        set_size: Simulated observations per θ for an iid observed set (``None``: the
            budget-dependent default of :func:`avo_bench.methods.default_set_size`).
    """

    num_samples: int = 1000
    quantile: float = 0.5
    set_size: int | None = None
    # The runner applies these for its presets (user overrides win): a narrower window once
    # there are draws to spare.
    presets: ClassVar[dict[str, dict]] = {"paper": {"quantile": 0.2}}

    def __post_init__(self):
        check_positive_int("regression_abc", "num_samples", self.num_samples)
        ok = isinstance(self.quantile, int | float) and not isinstance(self.quantile, bool)
        if not ok or not 0 < self.quantile <= 1:
            raise ValueError(f"regression_abc: quantile must be in (0, 1], got {self.quantile!r}")
        if self.set_size is not None:
            check_positive_int("regression_abc", "set_size", self.set_size, minimum=2)


def _bounds(simulator, theta: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    low = simulator.prior.low.to(theta)
    high = simulator.prior.high.to(theta)
    return low, high, torch.isfinite(low) & torch.isfinite(high)


def _to_phi(simulator, theta: Tensor) -> Tensor:
    """Logit of the position in the prior box for bounded coordinates, identity otherwise."""
    low, high, box = _bounds(simulator, theta)
    unit = (theta - low) / torch.where(box, high - low, 1.0)
    return torch.where(box, torch.logit(unit, eps=1e-6), theta)


def _from_phi(simulator, phi: Tensor) -> Tensor:
    low, high, box = _bounds(simulator, phi)
    return torch.where(box, low + (high - low) * torch.sigmoid(phi), phi)


def _adjust(phi: Tensor, s: Tensor, weights: Tensor) -> Tensor:
    """Weighted least squares of ``phi (k, d)`` on ``[1, s (k, p)]``; ``phi`` minus the fit."""
    design = torch.cat([torch.ones_like(s[:, :1]), s], dim=1)
    root = weights.sqrt()[:, None]
    coef = torch.linalg.lstsq((root * design).cpu(), (root * phi).cpu()).solution
    return phi - s @ coef[1:].to(phi)


@register(
    "regression_abc",
    config=RegressionABCConfig,
    applicable=point_task_only,
    description="ABC with local-linear regression adjustment (Beaumont et al. 2002)",
)
def fit(
    simulator: CountingSimulator,
    x_obs: Tensor,
    *,
    budget: int,
    config: RegressionABCConfig,
    generator: torch.Generator,
    device: torch.device | str,
) -> Result:
    """Regression-adjusted rejection ABC (Beaumont, Zhang, Balding 2002).

    Arguments:
        simulator: The counting simulator (a point task); at most ``budget`` rows are simulated.
        x_obs: Observed data, shape ``(n_obs, *x_shape)``.
        budget: Simulation budget: enough sets that ``quantile`` of them exceed the number of
            regression coefficients.
        config: A :class:`RegressionABCConfig`.
        generator: The only source of randomness, on ``device``.
        device: Device of the computation.

    Returns:
        ``num_samples`` adjusted θ; the tolerance, kept draws and set size in ``extras``.
    """
    device = torch.device(device)
    observed = observed_summary(simulator, x_obs, device)
    m = default_set_size(len(x_obs), budget, config.set_size)
    sets = math.ceil((observed.numel() + 2) / config.quantile)  # kept > regression coefficients
    check_budget("regression_abc", budget, sets * m, f"{sets} sets of {m} simulations")
    theta = simulator.prior.sample((budget // m,), generator=generator, device=device)
    summaries = simulate_summaries(simulator, theta, m, len(x_obs), generator)
    scale = mad_scale(summaries)
    d = distances(summaries, observed, scale)
    k = max(observed.numel() + 2, round(config.quantile * len(theta)))
    kept = torch.argsort(d, stable=True)[:k]
    epsilon = float(d[kept[-1]])
    if not math.isfinite(epsilon) or epsilon == 0:
        raise RuntimeError(f"regression_abc: degenerate tolerance {epsilon} (NaN summaries?)")
    weights = (1 - (d[kept] / epsilon) ** 2).double()
    s = ((summaries[kept] - observed) / scale).double()
    adjusted = _from_phi(simulator, _adjust(_to_phi(simulator, theta[kept].double()), s, weights))
    pick = torch.multinomial(weights, config.num_samples, replacement=True, generator=generator)
    extras = {"epsilon": epsilon, "num_kept": k, "num_draws": len(theta), "set_size": m}
    history = pd.DataFrame([{"iteration": 0, **extras}])
    return Result(adjusted[pick].float(), history=history, extras=extras)


def main(argv: Sequence[str] | None = None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0, help="run seed (observed data, fits)")
    parser.add_argument("--out", type=Path, default=Path("results/examples/custom_method"))
    parser.add_argument("--budget", type=int, default=2000, help="simulations per fit")
    parser.add_argument("--n-obs", type=int, default=10, help="observed samples (gaussian)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # a script may set global state; library code never does

    rows = avo_bench.run(
        simulators=["gaussian"],
        methods=["prior", "rejection_abc", "regression_abc"],
        preset="tiny",
        seeds=[args.seed],
        budgets=[args.budget],
        # set_size = n_obs: the simulated summaries match the observed one (see default_set_size)
        simulator_options={"gaussian": {"n_obs": args.n_obs}},
        method_options={
            "rejection_abc": {"set_size": args.n_obs},
            "regression_abc": {"set_size": args.n_obs},
        },
        out=args.out,
    )
    ok = rows[rows["status"] == "ok"]
    table = ok.pivot_table(index="method", columns=["space", "metric"], values="value")
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.round(3))
    for message in rows.loc[rows["status"] == "error", "message"].unique():
        print(f"error: {message}")
    return rows


if __name__ == "__main__":
    main()
