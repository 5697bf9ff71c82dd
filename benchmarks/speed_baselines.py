"""Wall time of the likelihood-free baselines, and the overhead of wrapping ``sbi``.

Run ``python benchmarks/speed_baselines.py`` (one CPU thread). It prints

1. the wall time of every baseline (rejection_abc, smc_abc and, with ``sbi`` installed, npe,
   nle, nre) with its default config on sbibm's gaussian_linear task
   (``get_simulator("gaussian", dim=10, prior_var=0.1, noise_var=0.1, n_obs=1)``) at 10^3 and
   10^4 simulations, with the C2ST against the analytic posterior for reference;
2. NPE through ``avo_bench`` against the same training run by ``sbi`` directly (same data, same
   hyperparameters, same seed): the ratio is the wrapper's overhead (counting simulator,
   summaries, forked RNG state).
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import time

import torch

import avo_bench
from avo_bench.methods import get_method
from simulators import get_simulator

BASELINES = ("rejection_abc", "smc_abc", "npe", "nle", "nre")


def gaussian_linear():
    simulator = get_simulator("gaussian", dim=10, prior_var=0.1, noise_var=0.1, n_obs=1)
    return simulator, simulator.observe(generator=torch.Generator().manual_seed(1))


def measure_method(name: str, budget: int, seed: int = 0, **config):
    simulator, x_obs = gaussian_linear()
    result = avo_bench.fit(name, simulator, x_obs, budget=budget, seed=seed, **config)
    seconds = result.wall_time_s
    reference = simulator.posterior(x_obs).sample((1000,), generator=torch.Generator())
    from avo_bench.metrics import c2st

    return seconds, c2st(reference, result.theta[:1000]), result.num_simulations


def npe_direct(budget: int, epochs: int, seed: int = 0) -> float:
    """The same NPE run (``epochs`` epochs exactly) through sbi directly; its wall time."""
    from sbi.inference import NPE

    simulator, x_obs = gaussian_linear()
    start = time.perf_counter()
    generator = torch.Generator().manual_seed(seed)
    theta = simulator.prior.sample((budget,), generator=generator)
    x = simulator.simulate(theta, generator)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        inference = NPE(prior=simulator.prior.to_torch(), show_progress_bars=False)
        estimator = inference.append_simulations(theta, x).train(
            max_num_epochs=epochs, stop_after_epochs=10**9
        )
        posterior = inference.build_posterior(estimator)
        posterior.sample((1000,), x=x_obs, show_progress_bars=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budgets", type=int, nargs="+", default=[1_000, 10_000])
    parser.add_argument("--methods", nargs="+", default=list(BASELINES))
    parser.add_argument("--overhead-budget", type=int, default=1_000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    has_sbi = importlib.util.find_spec("sbi") is not None
    if has_sbi:
        import sbi.inference  # noqa: F401  (import once, outside every timing)
    print(f"{'method':<14} {'budget':>8} {'wall s':>8} {'C2ST':>6} {'sims':>7}")
    for name in args.methods:
        if get_method(name).requires and not has_sbi:
            print(f"{name:<14} skipped: {get_method(name).install_hint}")
            continue
        for budget in args.budgets:
            seconds, accuracy, used = measure_method(name, budget)
            print(f"{name:<14} {budget:>8} {seconds:>8.2f} {accuracy:>6.3f} {used:>7}", flush=True)
    if has_sbi:
        budget = args.overhead_budget
        fixed = {"max_num_epochs": 50, "stop_after_epochs": 10**9}  # same work in both runs
        direct, wrapped = math.inf, math.inf
        for _ in range(3):  # alternate and keep the fastest of each: the machine may be shared
            direct = min(direct, npe_direct(budget, fixed["max_num_epochs"]))
            wrapped = min(wrapped, measure_method("npe", budget, **fixed)[0])
        print(
            f"npe at {budget} (50 epochs, best of 3): sbi directly {direct:.2f} s, "
            f"through avo_bench {wrapped:.2f} s, ratio {wrapped / direct:.3f}"
        )


if __name__ == "__main__":
    main()
