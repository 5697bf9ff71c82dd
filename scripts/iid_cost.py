r"""Cost of the iid ("sum") routes of NLE and NRE as the observed set grows.

The route trains on single simulations (a cost independent of ``n_obs``) and samples
:math:`\sum_i \log q(x_i \mid \theta)` by MCMC, whose cost grows with the number of distinct
observations (:mod:`avo_bench.methods.neural`). This script fits each method on each task at
each ``n_obs`` and prints the CPU seconds of training and of sampling (``Result.extras``),
the number of distinct (or binned) points the potential evaluates, and the error of the mean in
exact posterior standard deviations where the task has an exact posterior.

Usage::

    python scripts/iid_cost.py [--tasks gaussian poisson weinberg] [--methods nle nre]
        [--n-obs 100 1000 10000] [--budget 2000] [--epochs 20] [--samples 10000] [--seed 0]

Defaults measure sampling at the grid's settings (10,000 samples, 20 chains) after a short
training (``--budget 2000 --epochs 20``: the sampling cost does not depend on how well the
network fits; the training cost at the grid's budget is printed by a full fit, e.g.
``--budget 10000 --epochs 0`` for no cap). Run on one thread (``torch.set_num_threads(1)``).
"""

from __future__ import annotations

import argparse
import json

import torch

import avo_bench
from simulators import get_simulator

TASK_OPTIONS = {"gaussian": {"dim": 2}}


def measure(task: str, method: str, n_obs: int, args) -> dict:
    """One fit; its costs and accuracy."""
    sim = get_simulator(task, **TASK_OPTIONS.get(task, {}), n_obs=n_obs)
    x_obs = sim.observe(generator=torch.Generator().manual_seed(args.seed + 1))
    config = {"num_samples": args.samples}
    if args.epochs:
        config["max_num_epochs"] = args.epochs
    result = avo_bench.fit(method, sim, x_obs, budget=args.budget, seed=args.seed, **config)
    extras = result.extras
    row = {"task": task, "method": method, "n_obs": n_obs, "points": extras["observed_points"],
           "binned": extras["binned"], "estimator": extras["estimator"],
           "training_cpu_s": round(extras["training_cpu_s"], 1),
           "sampling_cpu_s": round(extras["sampling_cpu_s"], 1)}  # fmt: skip
    if sim.provides("posterior"):
        posterior = sim.posterior(x_obs)
        mean, sd = posterior.mean().double(), posterior.stddev().double()
        z = (result.theta.double().mean(0) - mean) / sd
        row["max_abs_z"] = round(float(z.abs().max()), 2)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", nargs="+", default=["gaussian", "poisson", "weinberg"])
    parser.add_argument("--methods", nargs="+", default=["nle", "nre"])
    parser.add_argument("--n-obs", nargs="+", type=int, default=[100, 1000, 10_000])
    parser.add_argument("--budget", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=20, help="max epochs (0: no cap)")
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    for task in args.tasks:
        for method in args.methods:
            for n_obs in args.n_obs:
                print(json.dumps(measure(task, method, n_obs, args)), flush=True)


if __name__ == "__main__":
    main()
