r"""Adding a simulator: binomial success counts with a conjugate, exact Beta posterior.

A worked example of the simulator contract (``simulators/_base.py``), registered from user code
with ``@register``. Each of ``dim`` independent arms has a success probability
:math:`\theta_j \sim U[0, 1]` (the uniform prior is :math:`\mathrm{Beta}(1, 1)`) and one
simulation is the vector of success counts of ``trials`` Bernoulli trials per arm,

.. math:: x_j \mid \theta \sim \mathrm{Binomial}(\mathrm{trials}, \theta_j), \quad j = 1..d.

The counts are discrete, so the simulator is not differentiable in :math:`\theta`. Given an
observed set of :math:`n` count vectors with per-arm totals :math:`S_j`, the posterior factorizes
into :math:`\mathrm{Beta}(1 + S_j,\ 1 + n\,\mathrm{trials} - S_j)` (Gelman et al., *Bayesian Data
Analysis*, 3rd ed., 2013, section 2.4), so ``posterior(x_obs)`` is exact and the runner scores
every method against it in parameter space (W1, C2ST, error of the mean).

Registering from user code adds the simulator to ``SIMULATORS`` *of this process*, which is
all ``avo_bench.run(..., jobs=1)`` needs: the default in-process executor runs every cell here.
Worker processes are fresh interpreters that import ``simulators`` (whose own modules register
themselves on import) and, because they are started with ``spawn``, re-run the *top-level* code
of the main script, not its ``if __name__ == "__main__":`` block. So ``jobs > 1`` (and a local
Dask cluster) also work when the script registers at import time, as this one does (measured:
the same rows as ``jobs=1``); their cells fail (status ``error``, message ``unknown simulator
'binomial'`` and why) when the registration runs only under the ``__main__`` guard, in a
notebook or under pytest. ``python -m avo_bench run`` and the workers of a remote Dask scheduler never see
it. To make a simulator available everywhere, save its module as ``simulators/<name>.py``:
every public module of that package is imported, hence registered, by ``import simulators``.

Usage::

    python examples/custom_simulator.py [--seed 0] [--out DIR] [--methods prior rejection_abc]
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy import special
from torch import Tensor

import avo_bench
from simulators import BoxUniform, Simulator, check_positive_int, register

__all__ = ["BetaPosterior", "Binomial", "main"]


class BetaPosterior:
    r"""Product of independent :math:`\mathrm{Beta}(a_j, b_j)` distributions on :math:`[0, 1]^d`.

    Arguments:
        a: First shape parameters, shape ``(d,)``, positive.
        b: Second shape parameters, shape ``(d,)``, positive.
    """

    def __init__(self, a: Tensor, b: Tensor):
        self.a = torch.as_tensor(a, dtype=torch.float64).flatten()
        self.b = torch.as_tensor(b, dtype=torch.float64).flatten()
        if self.a.shape != self.b.shape or not bool(((self.a > 0) & (self.b > 0)).all()):
            raise ValueError(f"need positive shapes of equal size, got {self.a}, {self.b}")

    @property
    def dim(self) -> int:
        return self.a.numel()

    def sample(
        self,
        shape: Sequence[int] = (),
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> Tensor:
        """Exact draws ``(*shape, d)`` by inverting the CDF of uniforms from ``generator``."""
        device = device or (generator.device if generator is not None else "cpu")
        u = torch.rand(*shape, self.dim, generator=generator, device=device, dtype=torch.float64)
        theta = special.betaincinv(self.a.numpy(), self.b.numpy(), u.cpu().numpy())
        return torch.as_tensor(theta, dtype=dtype, device=device)

    def log_prob(self, theta: Tensor) -> Tensor:
        """Log density of ``theta`` of shape ``(..., d)``; ``-inf`` outside the unit box."""
        t = theta.double().cpu()
        a, b = self.a, self.b
        log_norm = torch.lgamma(a) + torch.lgamma(b) - torch.lgamma(a + b)
        terms = torch.xlogy(a - 1, t) + torch.xlogy(b - 1, 1 - t) - log_norm
        inside = ((t >= 0) & (t <= 1)).all(dim=-1)
        value = torch.where(inside, terms.sum(dim=-1), -math.inf)
        return value.to(theta.device, theta.dtype)

    def mean(self) -> Tensor:
        return self.a / (self.a + self.b)

    def stddev(self) -> Tensor:
        total = self.a + self.b
        return (self.a * self.b / (total**2 * (total + 1))).sqrt()


@register("binomial")
class Binomial(Simulator):
    r"""Binomial success counts of ``dim`` arms, :math:`x_j \sim \mathrm{Bin}(\mathrm{trials}, \theta_j)`.

    Arguments:
        dim: Number of arms :math:`d` (parameters and counts per simulation).
        trials: Bernoulli trials per arm and simulation.
        n_obs: Default number of observed count vectors.
        theta_star: True success probabilities (scalar or ``dim`` values in ``[0, 1]``); by
            default ``0.3, 0.6, 0.3, ...``.
    """

    kind = "point"
    description = "Binomial success counts of independent arms with an exact Beta posterior"
    differentiable = False

    def __init__(
        self,
        *,
        dim: int = 2,
        trials: int = 10,
        n_obs: int = 100,
        theta_star: float | Sequence[float] | None = None,
    ):
        for field, value in (("dim", dim), ("trials", trials), ("n_obs", n_obs)):
            check_positive_int("binomial", field, value)
        if theta_star is None:
            theta_star = [0.3 if j % 2 == 0 else 0.6 for j in range(dim)]
        try:
            star = torch.as_tensor(theta_star, dtype=torch.float64).flatten()
        except (TypeError, ValueError, RuntimeError):
            star = torch.tensor([math.nan])
        star = star.expand(dim).clone() if star.numel() == 1 else star
        if star.numel() != dim or not bool(((star >= 0) & (star <= 1)).all()):
            raise ValueError(
                f"binomial: theta_star must be a scalar or {dim} values in [0, 1], "
                f"got {theta_star!r}"
            )
        self.trials, self.n_obs = trials, n_obs
        self.parameter_names = tuple(f"p{j + 1}" for j in range(dim))
        self.x_shape = (dim,)
        self.prior = BoxUniform([0.0] * dim, [1.0] * dim)
        self.true_parameters = star.float()

    def _simulate(self, theta: Tensor, generator: torch.Generator | None) -> Tensor:
        # theta is validated by Simulator.simulate (shape, finite, inside [0, 1]).
        return torch.binomial(torch.full_like(theta, self.trials), theta, generator=generator)

    def summarize(self, x: Tensor) -> Tensor:
        """The set mean of the counts, ``(..., m, d) -> (..., d)``: sufficient (with ``m``)."""
        return x.mean(dim=-2)

    def posterior(self, x_obs: Tensor) -> BetaPosterior:
        """The exact posterior of ``theta`` given observed counts of shape ``(n, d)``."""
        x = torch.as_tensor(x_obs).detach().double().cpu()
        if x.ndim != 2 or x.shape[1] != self.theta_dim or x.shape[0] < 1:
            raise ValueError(
                f"binomial: x_obs must have shape (n >= 1, {self.theta_dim}), got {tuple(x.shape)}"
            )
        bad = ~torch.isfinite(x) | (x < 0) | (x > self.trials) | (x != torch.round(x))
        if bad.any():
            raise ValueError(
                f"binomial: x_obs must be counts in 0..{self.trials}, got {float(x[bad][0])}"
            )
        successes = x.sum(dim=0)
        return BetaPosterior(1 + successes, 1 + x.shape[0] * self.trials - successes)


def _rounded(values: Tensor) -> list[float]:
    return np.round(values.double().numpy(), 4).tolist()


def summary(rows: pd.DataFrame) -> pd.DataFrame:
    """One line per method: the scores of every (space, metric), mean over seeds."""
    ok = rows[rows["status"] == "ok"]
    return ok.pivot_table(index="method", columns=["space", "metric"], values="value")


def main(argv: Sequence[str] | None = None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0, help="run seed (observed data, fits)")
    parser.add_argument("--out", type=Path, default=Path("results/examples/custom_simulator"))
    parser.add_argument("--methods", nargs="+", default=["prior", "rejection_abc", "smc_abc"])
    parser.add_argument("--jobs", type=int, default=1, help="> 1: worker processes")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # a script may set global state; library code never does

    # The API by hand: an observed set and its exact posterior (the runner draws its own).
    simulator = Binomial()
    x_obs = simulator.observe(generator=torch.Generator().manual_seed(args.seed))
    exact = simulator.posterior(x_obs)
    print(f"theta* = {_rounded(simulator.true_parameters)}; one observed set of {len(x_obs)}: "
          f"exact posterior mean {_rounded(exact.mean())}, sd {_rounded(exact.stddev())}")  # fmt: skip

    rows = avo_bench.run(
        simulators=["binomial"],
        methods=args.methods,
        preset="tiny",
        seeds=[args.seed],
        out=args.out,
        jobs=args.jobs,
    )
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(summary(rows).round(3))
    failed = rows[rows["status"] == "error"]
    for message in failed["message"].unique():
        print(f"error: {message}")
    return rows


if __name__ == "__main__":
    main()
