"""Wall and CPU time of the new methods, and the wrappers' overhead over their libraries alone.

Run ``python benchmarks/speed_new_methods.py`` (one CPU thread). It prints

1. for each method with its default config on sbibm's gaussian_linear task
   (``get_simulator("gaussian", dim=10, prior_var=0.1, noise_var=0.1, n_obs=1)``) at 10^3 and
   10^4 simulations: the wall time and the CPU time of the fit (``time.process_time``, which a
   shared machine inflates less than the wall time), their ratio, the simulations used and, with
   ``--c2st``, the C2ST against the analytic posterior;
2. abc_rf through ``avo_bench`` against the same forests fitted by scikit-learn directly on the
   same reference table (same seeds, same weights): the CPU-time ratio is the wrapper's
   overhead (counting simulator, summaries, weights and resampling);
3. with ``--sbi-overhead``, npe and fmpe through ``avo_bench`` against ``sbi`` called directly
   as its tutorial does (``append_simulations(theta, x).train()``, then ``build_posterior`` and
   ``sample``) on the same simulations with the same seeds and settings. The draws are checked
   to be identical, so the ratio is the wrapper's overhead alone (counting simulator, checks,
   copies, the density and amortized-sampling closures). The MCMC methods are not compared:
   on iid data they sample ``avo_bench``'s compressed iid potential, not ``sbi``'s (and three
   NLE fits each way at 300 simulations with 10,000 draws did not finish in 20 minutes).

The methods ``sbi`` provides run only where it is installed (``pip install 'avo-bench[sbi]'``).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import time

import numpy as np
import torch
from torch import Tensor

import avo_bench
from avo_bench.methods import get_method
from avo_bench.methods.abc_rf import _fit_parameter, _seed
from simulators import get_simulator

METHODS = ("abc_rf", "cmaes", "lgso", "fmpe", "npse", "nre_c", "bnre", "npe_ensemble", "snpe",
           "snle", "snre")  # fmt: skip


def gaussian_linear():
    simulator = get_simulator("gaussian", dim=10, prior_var=0.1, noise_var=0.1, n_obs=1)
    return simulator, simulator.observe(generator=torch.Generator().manual_seed(1))


def measure_method(name: str, budget: int, c2st: bool, seed: int = 0) -> dict:
    simulator, x_obs = gaussian_linear()
    start = time.process_time()
    result = avo_bench.fit(name, simulator, x_obs, budget=budget, seed=seed)
    row = {"wall": result.wall_time_s, "cpu": time.process_time() - start}
    row["sims"], row["c2st"] = result.num_simulations, float("nan")
    if c2st:
        from avo_bench.metrics import c2st as metric

        generator = torch.Generator().manual_seed(5)
        reference = simulator.posterior(x_obs).sample((1000,), generator=generator)
        row["c2st"] = metric(reference, result.theta[:1000])
    return row


def measure_forests_direct(budget: int, seed: int = 0) -> float:
    """CPU seconds of abc_rf's forests and weights alone, on the reference table of a fit."""
    simulator, x_obs = gaussian_linear()
    config = get_method("abc_rf").make_config()
    generator = torch.Generator().manual_seed(seed)
    theta = simulator.prior.sample((budget,), generator=generator)
    s = simulator.simulate(theta, generator).double().numpy()
    y, s_obs = theta.double().numpy(), x_obs.double().numpy()
    start = time.process_time()
    for j in range(y.shape[1]):
        _fit_parameter(s, y[:, j], s_obs, config, _seed(generator))
    return time.process_time() - start


def measure_sbi_direct(name: str, budget: int, seed: int = 0) -> tuple[float, Tensor]:
    """CPU seconds and draws of ``name`` (npe or fmpe) by ``sbi`` alone, on the simulations and
    with the seeds ``avo_bench.fit(name, ..., seed=seed)`` uses (n_obs = 1: no summaries)."""
    from sbi.inference import FMPE, NPE

    simulator, x_obs = gaussian_linear()
    config = get_method(name).make_config()
    generator = torch.Generator().manual_seed(seed)
    theta = simulator.prior.sample((budget,), generator=generator)
    x = simulator.simulate(theta, generator).float().flatten(start_dim=1)
    sbi_seed = int(torch.randint(2**62, (1,), generator=generator))
    prior = simulator.prior.to_torch("cpu")
    with torch.random.fork_rng(), contextlib.redirect_stdout(io.StringIO()):
        torch.manual_seed(sbi_seed)
        start = time.process_time()
        if name == "npe":
            inference = NPE(prior=prior, density_estimator=config.estimator,
                            show_progress_bars=False)  # fmt: skip
        else:
            inference = FMPE(prior=prior, vf_estimator=config.estimator,
                             show_progress_bars=False)  # fmt: skip
        estimator = inference.append_simulations(theta, x).train(
            training_batch_size=config.training_batch_size, learning_rate=config.learning_rate,
            stop_after_epochs=config.stop_after_epochs,
        )  # fmt: skip
        posterior = inference.build_posterior(estimator)
        draws = posterior.sample((config.num_samples,), x=x_obs.float().flatten()[None],
                                 show_progress_bars=False)  # fmt: skip
        return time.process_time() - start, draws


def sbi_overhead(name: str, budget: int, seed: int = 0) -> None:
    """Prints the best-of-3 CPU of ``name`` through ``avo_bench`` and through ``sbi`` alone."""
    simulator, x_obs = gaussian_linear()
    direct, wrapped = np.inf, np.inf
    for _ in range(3):  # alternate and keep the fastest of each: the machine may be shared
        cpu, draws = measure_sbi_direct(name, budget, seed)
        direct = min(direct, cpu)
        start = time.process_time()
        result = avo_bench.fit(name, simulator, x_obs, budget=budget, seed=seed)
        wrapped = min(wrapped, time.process_time() - start)
    rows = lambda t: t.float()[t.float()[:, 0].argsort()]  # noqa: E731 (fmpe shuffles its draws)
    same = torch.equal(rows(draws), rows(result.theta))
    print(f"{name} at {budget} (best of 3, CPU): sbi alone {direct:.2f} s, through avo_bench "
          f"{wrapped:.2f} s, ratio {wrapped / direct:.3f}, identical draws: {same}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budgets", type=int, nargs="+", default=[1_000, 10_000])
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--c2st", action="store_true", help="also score C2ST (slow)")
    parser.add_argument("--overhead-budget", type=int, default=1_000)
    parser.add_argument(
        "--sbi-overhead",
        nargs="*",
        default=[],
        choices=["npe", "fmpe"],
        help="measure these sbi wrappers' overhead (and no other table)",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.sbi_overhead:
        for name in args.sbi_overhead:
            sbi_overhead(name, args.overhead_budget)
        return
    print(f"{'method':<8} {'budget':>7} {'wall s':>8} {'CPU s':>8} {'CPU/wall':>8} {'C2ST':>6} "
          f"{'sims':>6}")  # fmt: skip
    for name in args.methods:
        if not get_method(name).available():
            print(f"{name:<8} skipped: {get_method(name).install_hint}")
            continue
        for budget in args.budgets:
            r = measure_method(name, budget, args.c2st)
            print(f"{name:<8} {budget:>7} {r['wall']:>8.2f} {r['cpu']:>8.2f} "
                  f"{r['cpu'] / r['wall']:>8.2f} {r['c2st']:>6.3f} {r['sims']:>6}", flush=True)  # fmt: skip
    if "abc_rf" in args.methods:
        budget = args.overhead_budget
        direct, wrapped = np.inf, np.inf
        for _ in range(3):  # alternate and keep the fastest of each: the machine may be shared
            direct = min(direct, measure_forests_direct(budget))
            wrapped = min(wrapped, measure_method("abc_rf", budget, c2st=False)["cpu"])
        print(f"abc_rf at {budget} (best of 3, CPU): forests alone {direct:.2f} s, "
              f"through avo_bench {wrapped:.2f} s, ratio {wrapped / direct:.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
