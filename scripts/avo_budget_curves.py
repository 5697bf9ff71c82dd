r"""AVO's and reparam's scores against the simulation budget, before and after issue 16.

Runs ``avo`` and ``reparam`` exactly as grid cells of the ``paper`` preset (the task of each
seed, the cell's generator seed ``derive_seed("cell", simulator, method, seed, budget)``, the
grid's scores via :func:`avo_bench.score`) under two configurations:

- ``before``: the defaults until issue 16 (:data:`BEFORE`: 64 simulations per epoch at every
  budget, a constant proposal step of 0.02, an EMA of the proposal parameters);
- ``after``: today's defaults (the budget-aware schedule of
  :func:`avo_bench.methods._avo_config.budget_schedule`).

Every finished cell is appended to ``<cache>/<config>.jsonl`` (re-running resumes), then the
script writes ``budget_curves.png`` (data-space W1 and the distance to θ* in the identified
quantity, mean ± sd over seeds, with the floor and the best other method of the reference grid
at 10^5) and ``budget_curves.md`` (the tables) to ``--out``.

The committed figure uses five seeds and budgets 10^3-10^5 (the defaults), all recomputed on
2026-12-01 with the mixture critic of issue 16 (the earlier cache's seeds 0-2 no longer
reproduced with the code of that day, e.g. Poisson seed 0 at 10^4: W1 0.35 cached, 1.10
recomputed, so the whole cache was redone). The 10^6 column holds the ``after`` schedule on
Rosenbrock, Poisson and Weinberg with seeds 0-2 (``--seeds 3 --budgets 1000 10000 100000
1000000 --simulators rosenbrock poisson weinberg --configs after``, 50-65 CPU seconds per cell),
tabulated with ``--plot-only --seeds 5`` (the title's seed count is the most any point has).

Usage::

    python scripts/avo_budget_curves.py [--seeds 5] [--budgets 1000 10000 100000]
        [--simulators poisson weinberg rosenbrock gaussian ising] [--configs before after]
        [--jobs 1] [--cache results/figures/avo/budget_cells] [--out results/figures/avo]
        [--plot-only]

References:
    | Adversarial Variational Optimization of Non-Differentiable Simulators
    | (Louppe, Hermans and Cranmer, AISTATS 2019) https://arxiv.org/abs/1707.07113
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd
import torch

import avo_bench
from avo_bench.methods import NotApplicable, get_method
from avo_bench.seeding import derive_seed
from simulators import get_simulator

SIMULATORS = ("poisson", "weinberg", "rosenbrock", "gaussian", "ising")
METHODS = ("avo", "reparam")
BUDGETS = (1_000, 10_000, 100_000)
SCORES = {("data", "wasserstein1"): "W1", ("truth", "distance_to_truth"): "distance"}
BEFORE = dict(
    schedule="budget", batch_size=64, critic_batch_size=32, n_critic=20, critic_warmup=20,
    critic_pool=64, proposal_lr=0.02, proposal_schedule="constant", average=0.95,
    reuse_simulations=True, standardize_x=True,
)  # fmt: skip
CONFIGS = {"before": BEFORE, "after": {}}
REFERENCE = Path("results/archive/reference-paper-0.1.0/results.csv")


def run_cell(simulator: str, method: str, seed: int, budget: int, config: str) -> list[dict]:
    """One grid cell of the ``paper`` preset under configuration ``config``: its score rows."""
    torch.set_num_threads(1)
    key = {"simulator": simulator, "method": method, "seed": seed, "budget": budget,
           "config": config}  # fmt: skip
    reason = get_method(method).applicable(get_simulator(simulator))
    if reason is not None:
        return [{**key, "status": "n/a", "message": reason}]
    task = avo_bench.task(simulator, seed=seed, preset="paper")
    cell_seed = derive_seed("cell", simulator, method, seed, budget)
    generator = torch.Generator().manual_seed(cell_seed)
    cpu = time.process_time()
    try:
        result = avo_bench.fit(method, task.simulator, task.x_obs, budget=budget,
                               generator=generator, **CONFIGS[config])  # fmt: skip
    except NotApplicable as error:
        return [{**key, "status": "n/a", "message": str(error)}]
    key |= {"cpu_s": time.process_time() - cpu, "num_simulations": result.num_simulations}
    scores = avo_bench.score(task, result.theta, seed=cell_seed, preset="paper")
    rows = []
    for row in scores.itertuples():
        if (row.space, row.metric) in SCORES:
            rows.append({**key, "score": SCORES[row.space, row.metric], "value": row.value,
                         "floor": row.floor, "status": row.status})  # fmt: skip
    return rows


def run(args: argparse.Namespace) -> None:
    """Runs every missing cell, ``--jobs`` at a time, appending rows to the cache."""
    args.cache.mkdir(parents=True, exist_ok=True)
    done = {tuple(r[k] for k in ("simulator", "method", "seed", "budget", "config"))
            for r in _load(args.cache)}  # fmt: skip
    cells = [(s, m, seed, b, c) for c in args.configs for b in sorted(args.budgets)
             for s in args.simulators for m in METHODS for seed in range(args.seeds)
             if (s, m, seed, b, c) not in done]  # fmt: skip
    print(f"{len(cells)} cells to run ({len(done)} cached)", flush=True)
    with ProcessPoolExecutor(args.jobs) as pool:
        for cell, rows in zip(cells, pool.map(run_cell, *zip(*cells, strict=True)), strict=True):
            with open(args.cache / f"{cell[-1]}.jsonl", "a") as file:
                file.writelines(json.dumps(row) + "\n" for row in rows)
            print(" ".join(map(str, cell)), rows[0].get("cpu_s", rows[0]["status"]), flush=True)


def _load(cache: Path) -> list[dict]:
    return [json.loads(line) for path in sorted(cache.glob("*.jsonl"))
            for line in path.read_text().splitlines() if line]  # fmt: skip


def summary(cache: Path, seeds: int) -> pd.DataFrame:
    """Mean, sd, seeds and floor per (score, simulator, method, config, budget), over the
    first ``seeds`` seeds of the cache."""
    rows = pd.DataFrame([r for r in _load(cache) if r["status"] == "ok" and r["seed"] < seeds])
    keys = ["score", "simulator", "method", "config", "budget"]
    table = rows.groupby(keys).agg(mean=("value", "mean"), sd=("value", "std"),
                                   seeds=("value", "size"), floor=("floor", "mean"),
                                   cpu_s=("cpu_s", "mean"))  # fmt: skip
    return table.reset_index()


def best_other(budget: int = 100_000) -> pd.DataFrame:
    """The best other method's mean data-space W1 per simulator in the reference grid."""
    if not REFERENCE.exists():
        return pd.DataFrame(columns=["simulator", "method", "mean"])
    rows = pd.read_csv(REFERENCE)
    rows = rows[(rows.space == "data") & (rows.metric == "wasserstein1") & (rows.status == "ok")
                & (rows.budget == budget) & ~rows.method.isin([*METHODS, "prior"])]  # fmt: skip
    means = rows.groupby(["simulator", "method"]).value.mean().reset_index(name="mean")
    return means.loc[means.groupby("simulator")["mean"].idxmin()]


def markdown(table: pd.DataFrame, others: pd.DataFrame) -> str:
    """One table per score: mean ± sd (seeds) per budget, before and after, with the floor."""
    lines = ["# AVO and reparam against the budget (`scripts/avo_budget_curves.py`)", ""]
    best = {r.simulator: f"{r.method} {r.mean:.3g}" for r in others.itertuples()}
    for score, part in table.groupby("score"):
        budgets = sorted(part.budget.unique())
        lines += [f"## {score}", "", "| simulator | method | config | "
                  + " | ".join(f"{b:.0e}" for b in budgets) + " | floor | best other at 1e5 |",
                  "|---" * (len(budgets) + 5) + "|"]  # fmt: skip
        for (sim, method, config), cells in part.groupby(["simulator", "method", "config"]):
            by = cells.set_index("budget")
            values = [f"{by.at[b, 'mean']:.3g} ± {by.at[b, 'sd']:.2g} ({by.at[b, 'seeds']})"
                      if b in by.index else "" for b in budgets]  # fmt: skip
            other = best.get(sim, "") if score == "W1" else ""
            lines.append(f"| {sim} | {method} | {config} | " + " | ".join(values)
                         + f" | {cells.floor.mean():.3g} | {other} |")  # fmt: skip
        lines.append("")
    return "\n".join(lines)


def plot(table: pd.DataFrame, others: pd.DataFrame, path: Path) -> None:
    """W1 (top) and distance to θ* (bottom) against the budget, one column per simulator."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sims = [s for s in SIMULATORS if s in set(table.simulator)]
    fig, axes = plt.subplots(2, len(sims), figsize=(3.2 * len(sims), 6), squeeze=False)
    styles = {
        ("avo", "before"): ("C0", "--", "o"),
        ("avo", "after"): ("C0", "-", "o"),
        ("reparam", "before"): ("C1", "--", "s"),
        ("reparam", "after"): ("C1", "-", "s"),
    }
    for col, sim in enumerate(sims):
        for row, score in enumerate(("W1", "distance")):
            ax, part = axes[row, col], table[(table.simulator == sim) & (table.score == score)]
            if part.empty:
                ax.text(0.5, 0.5, "no θ* (population task)", ha="center", transform=ax.transAxes)
                ax.set_axis_off()
                continue
            for (method, config), cells in part.groupby(["method", "config"]):
                color, line, marker = styles[method, config]
                ax.errorbar(cells.budget, cells["mean"], cells["sd"], color=color, ls=line,
                            marker=marker, ms=4, capsize=2,
                            label=f"{method} {config}")  # fmt: skip
            ax.axhline(part.floor.mean(), color="k", ls=":", lw=1, label="floor")
            other = others[others.simulator == sim]
            if score == "W1" and not other.empty:
                ax.plot(100_000, other["mean"].iloc[0], "k*", ms=9,
                        label=f"best other at 1e5 ({other.method.iloc[0]})")  # fmt: skip
            what = "data-space W1" if score == "W1" else "distance to θ*"
            ax.set(xscale="log", yscale="log", xlabel="simulation budget",
                   title=f"{sim}: {what}")  # fmt: skip
            ax.legend(fontsize=6)
    seeds = int(table.seeds.max())
    fig.suptitle(f"AVO and reparam vs budget: mean ± sd over {seeds} seeds "
                 "(dashed: before, solid: after)")  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--budgets", type=int, nargs="+", default=list(BUDGETS))
    parser.add_argument("--simulators", nargs="+", default=list(SIMULATORS))
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--cache", type=Path, default=Path("results/figures/avo/budget_cells"))
    parser.add_argument("--out", type=Path, default=Path("results/figures/avo"))
    parser.add_argument("--plot-only", action="store_true", help="only tabulate the cache")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if not args.plot_only:
        run(args)
    table, others = summary(args.cache, args.seeds), best_other()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "budget_curves.md").write_text(markdown(table, others))
    plot(table, others, args.out / "budget_curves.png")
    print(markdown(table, others))
    print(f"wrote {args.out / 'budget_curves.png'} and budget_curves.md")


if __name__ == "__main__":
    main()
