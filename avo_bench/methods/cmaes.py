r"""CMA-ES on a data-space discrepancy: a black-box optimizer of :math:`\theta` beside AVO.

The covariance matrix adaptation evolution strategy (the ``cma`` package, Hansen's reference
implementation) minimizes over :math:`\theta` the **energy distance** between the distribution of
simulations at :math:`\theta` and the observed set,

.. math:: D(\theta) = 2 E|X - Y| - E|X - X'| - E|Y - Y'|, \qquad X, X' \sim p(x \mid \theta),
          \ Y, Y' \sim \hat p_{obs},

with :math:`|\cdot|` the Euclidean norm of the flattened observations, each coordinate divided by
its standard deviation over the observed set (no scaling for a single observation, as AVO).
:math:`D \ge 0` is zero only when the two distributions agree (Székely and Rizzo 2013); it is MMD²
with the distance kernel and needs no bandwidth. Each candidate :math:`\theta_k` gets :math:`m`
fresh simulations and the unbiased estimate
:math:`\hat D_k = \frac{2}{mn} \sum_{i,l} |x_{ki} - y_l| - \frac{1}{m(m-1)} \sum_{i \ne j}
|x_{ki} - x_{kj}| - c`, computed vectorized over the population and against every observed row;
the constant :math:`c`, the :math:`E|Y - Y'|` term, does not depend on :math:`\theta` and is
estimated once, on at most 2,000 observed rows, for the reported values only. CMA-ES ranks the
noisy :math:`\hat D_k`; a generation costs ``popsize * m`` simulations, all counted.

**Coordinates and bounds.** CMA-ES works in prior-standardized coordinates
:math:`u = (\theta - E_p[\theta]) / \mathrm{sd}_p(\theta)` (``sigma0`` is in prior standard
deviations), starting at the prior mean. Candidates outside the prior box are *resampled*, so
each generation is a draw of the search distribution :math:`N(m, \sigma^2 C)` truncated to the
box (Hansen's "resampling" constraint handling); the mean, a convex combination of candidates,
stays inside. The returned ``num_samples`` are draws of the final search distribution truncated to
the prior box, like AVO's proposal, for a direct comparison.

**Defaults** are ``cma``'s: population :math:`4 + \lfloor 3 \ln d \rfloor`, its step-size and
covariance updates and stopping rules (a triggered rule ends the run early; ``extras["stop"]``).
Selective mirrored sampling (``cma``'s default below 6 candidates) is off: it injects mirrored
candidates into later draws, which the truncation by resampling and the returned draws must not
contain. ``sigma0 = 1`` prior standard deviation follows ``cma``'s advice that the optimum lie
within about :math:`x_0 \pm 3 \sigma_0`. The simulations per candidate default to
:math:`m = \sqrt{B / \lambda}`, as many generations as simulations per candidate.

References:
    Hansen, "The CMA Evolution Strategy: A Tutorial", 2016, https://arxiv.org/abs/1604.00772

    Hansen, Akimoto, Baudis, "CMA-ES/pycma", Zenodo, 2019,
    https://doi.org/10.5281/zenodo.2559634

    Székely, Rizzo, "Energy statistics: A class of statistics based on distances", Journal of
    Statistical Planning and Inference 143(8), 2013.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from simulators import check_positive_int

from ..progress import report_progress
from . import register
from ._base import CountingSimulator, Result
from ._summaries import check_budget

__all__ = ["CMAESConfig", "energy_distance", "fit"]

INSTALL_HINT = "pip install cma  (a dependency of avo-bench)"
MAX_RESAMPLES = 1000
CHUNK = 2**22  # distances per cdist call
CONSTANT_ROWS = 2000


@dataclass(frozen=True)
class CMAESConfig:
    """Hyperparameters of CMA-ES on the energy distance.

    Attributes:
        popsize: Candidates per generation :math:`\\lambda \\ge 2`; ``None``: ``cma``'s default
            :math:`4 + \\lfloor 3 \\ln d \\rfloor`.
        sigma0: Initial step size in prior standard deviations, a finite number ``> 0``.
        simulations: Simulations :math:`m \\ge 2` per candidate; ``None``:
            :math:`\\mathrm{round}(\\sqrt{B / \\lambda})` (at least 2).
        init_mean: Initial mean per parameter (parameter units), or ``None``: the prior mean.
        num_samples: Number of θ draws returned from the final search distribution.
    """

    popsize: int | None = None
    sigma0: float = 1.0
    simulations: int | None = None
    init_mean: tuple[float, ...] | None = None
    num_samples: int = 1000

    def __post_init__(self):
        if isinstance(self.init_mean, list):  # TOML / JSON give lists
            object.__setattr__(self, "init_mean", tuple(self.init_mean))
        if self.popsize is not None:
            ok = isinstance(self.popsize, int) and not isinstance(self.popsize, bool)
            if not ok or self.popsize < 2:
                raise ValueError(
                    "cmaes: popsize must be None (cma's default 4 + floor(3 ln d)) or an "
                    f"integer >= 2, got {self.popsize!r}"
                )
        ok = isinstance(self.sigma0, int | float) and not isinstance(self.sigma0, bool)
        if not (ok and math.isfinite(self.sigma0) and self.sigma0 > 0):
            raise ValueError(
                "cmaes: sigma0 must be a finite number > 0 (initial step size in prior standard "
                f"deviations; cma advises about a third of the search range, e.g. 1), "
                f"got {self.sigma0!r}"
            )
        if self.simulations is not None:
            check_positive_int("cmaes", "simulations", self.simulations, minimum=2)
        check_positive_int("cmaes", "num_samples", self.num_samples)
        mean = self.init_mean
        if mean is not None and not (
            isinstance(mean, tuple)
            and len(mean) > 0
            and all(isinstance(v, int | float) and math.isfinite(v) for v in mean)
        ):
            raise ValueError(
                f"cmaes: init_mean must be None or a tuple of finite numbers, got {mean!r}"
            )


def energy_distance(x: Tensor, y: Tensor) -> Tensor:
    r"""The :math:`\theta`-dependent part of the unbiased energy distance, per set.

    Arguments:
        x: Simulated sets ``(k, m, f)``, :math:`m \ge 2`.
        y: Observed rows ``(n, f)``.

    Returns:
        :math:`\frac{2}{mn} \sum |x_i - y_l| - \frac{1}{m(m-1)} \sum_{i \ne j} |x_i - x_j|`,
        shape ``(k,)``.
    """
    m = x.shape[1]
    per = max(1, CHUNK // (m * len(y)))
    cross = torch.cat([torch.cdist(c, y[None]).mean((1, 2)) for c in x.split(per)])
    within = torch.cdist(x, x).sum((1, 2)) / (m * (m - 1))
    return 2 * cross - within


def _within(y: Tensor, generator: torch.Generator) -> float:
    """:math:`E|Y - Y'|` estimated on at most ``CONSTANT_ROWS`` observed rows (0 for one)."""
    if len(y) < 2:
        return 0.0
    rows = torch.randperm(len(y), generator=generator, device=y.device)[:CONSTANT_ROWS]
    sub = y[rows]
    return float(torch.cdist(sub, sub).sum() / (len(sub) * (len(sub) - 1)))


class _Box:
    """Prior-standardized coordinates ``u = (theta - mean) / std`` and the box in them."""

    def __init__(self, prior, dtype=torch.float64):
        self.mean, self.std = prior.mean().to(dtype), prior.stddev().to(dtype)
        self.low_theta, self.high_theta = prior.low.to(dtype), prior.high.to(dtype)
        self.low = ((self.low_theta - self.mean) / self.std).numpy()
        self.high = ((self.high_theta - self.mean) / self.std).numpy()

    def inside(self, u: np.ndarray) -> np.ndarray:
        return ((u >= self.low) & (u <= self.high)).all(axis=1)

    def theta(self, u: np.ndarray) -> Tensor:
        theta = self.mean + self.std * torch.as_tensor(u, dtype=self.mean.dtype)
        return torch.minimum(torch.maximum(theta, self.low_theta), self.high_theta)


def _draw_inside(es, box: _Box, n: int) -> np.ndarray:
    """``n`` draws ``(n, d)`` of the current search distribution inside the box (resampled)."""
    out = np.asarray(es.ask(n))
    bad = ~box.inside(out)
    for _ in range(MAX_RESAMPLES):
        if not bad.any():
            return out
        out[bad] = np.asarray(es.ask(int(bad.sum())))
        bad = ~box.inside(out)
    raise RuntimeError(f"cmaes: {MAX_RESAMPLES} resamplings left candidates outside the prior")


def _strategy(config: CMAESConfig, box: _Box, d: int, generator: torch.Generator):
    import cma

    def randn(*shape: int) -> np.ndarray:  # cma's normal draws, from our generator only
        z = torch.randn(*shape, generator=generator, device=generator.device, dtype=torch.float64)
        return z.cpu().numpy()

    x0 = np.zeros(d)
    if config.init_mean is not None:
        if len(config.init_mean) not in (1, d):
            raise ValueError(f"cmaes: init_mean must have 1 or {d} values, got {config.init_mean}")
        mean = torch.tensor(config.init_mean, dtype=torch.float64).expand(d)
        x0 = ((mean - box.mean) / box.std).numpy()
        if not box.inside(x0[None])[0]:
            raise ValueError(
                f"cmaes: init_mean must lie inside the prior box, got {mean.tolist()}"
            )
    options = {"randn": randn, "seed": math.nan, "verbose": -9, "CMA_mirrors": 0}
    if config.popsize is not None:
        options["popsize"] = config.popsize
    return cma.CMAEvolutionStrategy(x0, config.sigma0, options)


def _popsize(config: CMAESConfig, d: int) -> int:
    return config.popsize if config.popsize is not None else 4 + int(3 * math.log(d))


def _simulations(config: CMAESConfig, budget: object, popsize: int) -> int:
    if config.simulations is not None:
        return config.simulations
    valid = isinstance(budget, int) and not isinstance(budget, bool) and budget > 0
    return max(2, round(math.sqrt(budget / popsize))) if valid else 2


def applicable(simulator) -> str | None:
    """``None`` for a point task; for a population task, the reason CMA-ES does not apply."""
    if simulator.kind != "point":
        return (
            f"cmaes searches for a single θ*, but {simulator.name} is a {simulator.kind} task "
            "(each observation has its own θ), whose fit is a distribution P_θ, not a point"
        )
    return None


@register(
    "cmaes",
    config=CMAESConfig,
    applicable=applicable,
    requires="cma",
    install_hint=INSTALL_HINT,
    description="CMA-ES minimizing the energy distance between simulated and observed sets",
)
def fit(
    simulator: CountingSimulator,
    x_obs: Tensor,
    *,
    budget: int,
    config: CMAESConfig,
    generator: torch.Generator,
    device: torch.device | str,
) -> Result:
    """CMA-ES (Hansen 2016) on the energy distance to ``x_obs``; draws of its final distribution.

    Arguments:
        simulator: The counting simulator (a point task).
        x_obs: Observed data, shape ``(n_obs, *x_shape)``.
        budget: Simulation budget: at least two generations of ``popsize * m`` simulations.
        config: A :class:`CMAESConfig`.
        generator: The only source of randomness (``cma``'s normal draws come from it).
        device: Device of the simulations and the distances.

    Returns:
        ``num_samples`` draws of the final search distribution truncated to the prior box; one
        history row per generation (step size, mean, spread, best and median discrepancy).
    """
    device = torch.device(device)
    d = simulator.theta_dim
    popsize = _popsize(config, d)
    m = _simulations(config, budget, popsize)
    why = f"two generations of {popsize} candidates x {m} simulations"
    check_budget("cmaes", budget, 2 * popsize * m, why)
    y = x_obs.to(device, torch.float32).flatten(1)
    scale = y.std(0) if len(y) > 1 else torch.ones_like(y[0])
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    y = y / scale
    constant = _within(y, generator)
    box = _Box(simulator.prior)
    es = _strategy(config, box, d, generator)
    generations, rows = budget // (popsize * m), []
    for generation in range(1, generations + 1):
        if es.stop():
            break
        u = _draw_inside(es, box, popsize)
        theta = box.theta(u).to(device, torch.float32).repeat_interleave(m, dim=0)
        x = simulator.simulate(theta, generator).to(device, torch.float32)
        values = energy_distance((x.flatten(1) / scale).view(popsize, m, -1), y) + constant
        es.tell(list(u), values.double().cpu().tolist())
        rows.append(_row(generation, simulator, es, box, values))
        report_progress(generation, generations, discrepancy=rows[-1]["median_discrepancy"])
    theta = box.theta(_draw_inside(es, box, config.num_samples)).to(device, torch.float32)
    extras = {"generations": len(rows), "popsize": popsize, "simulations_per_candidate": m,
              "stop": ", ".join(f"{k}={v}" for k, v in es.stop().items())}  # fmt: skip
    extras.update({k.replace("mean_", "final_mean_").replace("std_", "final_std_"): v
                   for k, v in rows[-1].items() if k.startswith(("mean_", "std_"))})  # fmt: skip
    return Result(theta, simulator.num_simulations, pd.DataFrame(rows), extras)


def _row(generation: int, simulator, es, box: _Box, values: Tensor) -> dict[str, float]:
    mean = box.theta(np.asarray(es.mean)[None])[0]
    std = box.std * torch.as_tensor(np.asarray(es.stds), dtype=box.std.dtype)
    row = {
        "iteration": generation,
        "num_simulations": simulator.num_simulations,
        "sigma": float(es.sigma),
        "best_discrepancy": float(values.min()),
        "median_discrepancy": float(values.median()),
    }
    for i, name in enumerate(simulator.parameter_names):
        row[f"mean_{name}"], row[f"std_{name}"] = float(mean[i]), float(std[i])
    return row
