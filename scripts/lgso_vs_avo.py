"""L-GSO vs AVO (and CMA-ES) on Weinberg: simulations needed to reach the same |c(θ) - c(θ*)|.

The experiment of Shirobokov et al. (NeurIPS 2020, https://arxiv.org/abs/2002.04632), fig. 3 and
table 1 (simulator calls an optimizer needs to reach the optimum), on the AVO paper's physics
toy: the Weinberg angle simulator (``simulators.weinberg``, 50,000 observed events at
θ* = (42, 0.9)), whose likelihood depends on θ only through the asymmetry c(θ), so the target
is c(θ*) ≈ -1.049, not θ* itself. Every method runs with its default config:

- ``avo``: score-function gradients of the adversarial objective on real simulations;
- ``lgso``: the same objective and proposal, gradients through a local flow surrogate;
- ``cmaes``: CMA-ES on the energy distance (a gradient-free reference).

For each seed (its own observed data set) and budget, the script fits every method and records
(1) the trajectory of |c(m_t) - c(θ*)|, m_t the proposal (or search) mean after each iteration,
against the simulations used so far, from ``Result.history``; (2) the final distance of the
returned distribution, |mean c(θ) - c(θ*)| over its draws (the grid's ``distance_to_truth``).
It prints the final distances at equal budgets (mean ± sd over seeds) and the simulations each
method needs before its trajectory enters and stays within a tolerance (median over seeds, on the
largest budget's runs), and saves the figure and the numbers to ``results/figures/lgso/``.

Run: ``python scripts/lgso_vs_avo.py`` (about an hour of one CPU core with the defaults; a
smoke run: ``--budgets 600 --seeds 0 --out /tmp/lgso``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

import avo_bench
from simulators import get_simulator
from simulators.weinberg import asymmetry

METHODS = ("avo", "lgso", "cmaes")
TOLERANCES = (0.3, 0.2, 0.1)
OUT = Path(__file__).resolve().parents[1] / "results" / "figures" / "lgso"


def run(method: str, budget: int, seed: int) -> tuple[pd.DataFrame, float, float]:
    """One fit: its trajectory (simulations, |c(m_t) - c*|), final distance and CPU seconds."""
    sim = get_simulator("weinberg")
    x_obs = sim.observe(generator=torch.Generator().manual_seed(1000 + seed))
    star = float(asymmetry(sim.true_parameters.double()))
    start = time.process_time()
    result = avo_bench.fit(method, sim, x_obs, budget=budget, seed=seed)
    cpu = time.process_time() - start
    h = result.history
    mean = torch.tensor(h[["mean_E_beam", "mean_G_f"]].to_numpy(), dtype=torch.float64)
    path = pd.DataFrame(
        {"simulations": h["num_simulations"], "distance": (asymmetry(mean) - star).abs().numpy()}
    )
    final = abs(float(asymmetry(result.theta.double()).mean()) - star)
    return path, final, cpu


def needed(path: pd.DataFrame, tolerance: float) -> float:
    """Simulations after which the trajectory stays within ``tolerance`` (NaN if it never does)."""
    outside = path["distance"].to_numpy() > tolerance
    if outside[-1]:
        return float("nan")
    last = np.flatnonzero(outside)
    return float(path["simulations"].iloc[last[-1] + 1] if len(last) else path["simulations"][0])


def experiment(budgets: list[int], seeds: list[int]) -> tuple[pd.DataFrame, pd.DataFrame]:
    finals, paths = [], []
    for seed in seeds:
        for budget in budgets:
            for method in METHODS:
                path, final, cpu = run(method, budget, seed)
                finals.append({"method": method, "budget": budget, "seed": seed,
                               "distance": final, "cpu_s": cpu})  # fmt: skip
                paths.append(path.assign(method=method, budget=budget, seed=seed))
                print(f"seed {seed} budget {budget:>6} {method:<6} |c - c*| = {final:.3f} "
                      f"({cpu:.0f} s CPU)", flush=True)  # fmt: skip
    return pd.DataFrame(finals), pd.concat(paths, ignore_index=True)


def tables(finals: pd.DataFrame, paths: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    equal = finals.pivot_table(index="method", columns="budget", values="distance",
                               aggfunc=["mean", "std"])  # fmt: skip
    largest = paths[paths["budget"] == paths["budget"].max()]
    rows = []
    for method, group in largest.groupby("method"):
        row = {"method": method}
        for tolerance in TOLERANCES:
            counts = [needed(p, tolerance) for _, p in group.groupby("seed")]
            row[f"sims to {tolerance}"] = (
                float(np.nanmedian(counts)) if any(np.isfinite(counts)) else float("nan")
            )
            row[f"reached {tolerance}"] = f"{int(np.isfinite(counts).sum())}/{len(counts)}"
        rows.append(row)
    return equal, pd.DataFrame(rows).set_index("method")


def figure(paths: pd.DataFrame, finals: pd.DataFrame, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    largest = paths[paths["budget"] == paths["budget"].max()]
    for color, method in zip(("C0", "C1", "C2"), METHODS, strict=True):
        for i, (_, p) in enumerate(largest[largest["method"] == method].groupby("seed")):
            left.plot(p["simulations"], p["distance"], color=color, alpha=0.6, lw=1,
                      label=method if i == 0 else None)  # fmt: skip
        f = finals[finals["method"] == method].groupby("budget")["distance"]
        right.errorbar(f.mean().index, f.mean(), yerr=f.std(), color=color, marker="o",
                       capsize=3, label=method)  # fmt: skip
    for tolerance in TOLERANCES:
        left.axhline(tolerance, color="grey", lw=0.5, ls=":")
    left.set(xscale="log", yscale="log", xlabel="simulations used",
             ylabel="|c(mean of q) - c(θ*)|", title="trajectories (largest budget, each seed)")  # fmt: skip
    right.set(xscale="log", yscale="log", xlabel="budget",
              ylabel="|E_q c(θ) - c(θ*)|", title="returned distribution at equal budgets")  # fmt: skip
    left.legend()
    right.legend()
    fig.suptitle("Weinberg (50,000 events, θ* = (42, 0.9)): L-GSO vs AVO vs CMA-ES")
    fig.tight_layout()
    fig.savefig(out / "weinberg_lgso_vs_avo.png", dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budgets", type=int, nargs="+", default=[1_000, 3_000, 10_000, 30_000])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    finals, paths = experiment(sorted(args.budgets), args.seeds)
    equal, reach = tables(finals, paths)
    print("\n|E_q c(θ) - c(θ*)| of the returned distribution at equal budgets (mean, sd):")
    print(equal.round(3).to_string())
    print("\nsimulations before |c(mean) - c*| stays within the tolerance (median over seeds):")
    print(reach.to_string())
    finals.to_csv(args.out / "finals.csv", index=False)
    paths.to_csv(args.out / "trajectories.csv", index=False)
    summary = finals.groupby(["method", "budget"])["distance"].agg(["mean", "std", "count"])
    tables_json = {
        "equal_budgets": summary.reset_index().to_dict("records"),
        "simulations_needed": reach.reset_index().to_dict("records"),
    }
    (args.out / "tables.json").write_text(json.dumps(tables_json, indent=1) + "\n")
    figure(paths, finals, args.out)


if __name__ == "__main__":
    main()
