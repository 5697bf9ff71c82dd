"""Profile of the grid: seconds per cell for the task, the fit and the scoring, per method and task.

Runs the cells of a plan (the same cells, seeds and configs as ``python -m avo_bench run``) one
at a time, one torch thread per worker, and prints, per method × task and budget, the seconds
of each part of a cell and each method's share of the total; a table sorted by cost says where
the grid's time goes. Finished cells are cached (one JSON line each) so an interrupted profile
resumes::

    python benchmarks/profile_grid.py --budgets 1000 --seeds 1 --jobs 2 \\
        --cache results/profile-1000.jsonl

``--simulators``/``--methods`` default to every registered one (the grid's cells of the
``tiny``/``paper`` presets), ``--preset`` sets the scoring sizes and method presets.
Wall times depend on the machine's load: compare rows of one run (ratios), not runs.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import time
from pathlib import Path

import pandas as pd
import torch

__all__ = ["main", "profile_cell"]


def profile_cell(cell) -> dict:
    """Seconds of the task, the fit and the scoring of one grid cell (status as the grid's)."""
    from avo_bench import fit
    from avo_bench.methods import NotApplicable, get_method
    from avo_bench.scoring import Scored, evaluate
    from avo_bench.seeding import derive_seed, seeded_globals
    from avo_bench.tasks import Sizes, build_task

    torch.set_num_threads(1)
    row = {"simulator": cell.simulator, "method": cell.method, "budget": cell.budget,
           "seed": cell.seed, "n_obs": cell.n_obs, "status": "ok", "message": ""}  # fmt: skip
    start = time.perf_counter()
    try:
        task = build_task(cell.simulator, cell.simulator_options, cell.seed,
                          Sizes(**cell.scoring))  # fmt: skip
        row["task_s"] = time.perf_counter() - start
        method = get_method(cell.method)
        generator = torch.Generator().manual_seed(cell.cell_seed)
        start = time.perf_counter()
        result = fit(method, task.simulator, task.x_obs, budget=cell.budget,
                     generator=generator, **cell.method_config)  # fmt: skip
        row["fit_s"] = time.perf_counter() - start
        start = time.perf_counter()
        with seeded_globals(derive_seed("score-globals", cell.cell_seed)):
            evaluate(Scored(task, result.theta, cell.cell_seed, result))
        row["score_s"] = time.perf_counter() - start
    except NotApplicable as error:
        row.update(status="n/a", message=str(error))
    except Exception as error:  # a profile records a failed cell and goes on
        row.update(status="error", message=f"{type(error).__name__}: {error}"[:200])
    return row


def _table(rows: pd.DataFrame) -> str:
    ok = rows[rows.status == "ok"].copy()
    ok["total_s"] = ok[["task_s", "fit_s", "score_s"]].sum(axis=1)
    per = ok.groupby(["budget", "method", "simulator"])[["fit_s", "score_s", "total_s"]].mean()
    total = ok.groupby(["budget", "method"])["total_s"].sum()
    share = (total / ok.groupby("budget")["total_s"].sum()).rename("share")
    lines = [per.round(2).sort_values("total_s", ascending=False).to_markdown(), "",
             "Each method's share of the total seconds per budget:", "",
             pd.concat([total.round(1), share.round(3)], axis=1)
             .sort_values("total_s", ascending=False).to_markdown()]  # fmt: skip
    failed = rows[rows.status == "error"]
    if len(failed):
        lines += ["", "Failed cells:", failed[["simulator", "method", "message"]].to_markdown()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> pd.DataFrame:
    from avo_bench.plan import make_plan

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--simulators", nargs="+")
    parser.add_argument("--methods", nargs="+")
    parser.add_argument("--budgets", nargs="+", type=int, default=[1000])
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--preset", default="paper")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--cache", type=Path, default=Path("results/profile.jsonl"))
    args = parser.parse_args(argv)
    from avo_bench.methods import METHODS
    from simulators import SIMULATORS

    plan = make_plan(args.simulators or sorted(SIMULATORS), args.methods or sorted(METHODS),
                     seeds=args.seeds, budgets=args.budgets, preset=args.preset)  # fmt: skip
    done = []
    if args.cache.exists():
        done = [json.loads(line) for line in args.cache.read_text().splitlines() if line]
    seen = {(r["simulator"], r["method"], r["budget"], r["seed"], r["n_obs"]) for r in done}
    pending = [c for c in plan.cells if (*c.key[:2], c.budget, c.seed, c.n_obs) not in seen]
    args.cache.parent.mkdir(parents=True, exist_ok=True)
    context = multiprocessing.get_context("spawn")
    with context.Pool(args.jobs, maxtasksperchild=1) as pool, args.cache.open("a") as cache:
        for row in pool.imap_unordered(profile_cell, pending):
            cache.write(json.dumps(row) + "\n")
            cache.flush()
            done.append(row)
            print(f"{len(done)}/{len(plan.cells)} {row['simulator']}/{row['method']} "
                  f"{row['status']} fit {row.get('fit_s', float('nan')):.1f} s "
                  f"score {row.get('score_s', float('nan')):.1f} s", flush=True)  # fmt: skip
    rows = pd.DataFrame(done)
    print(_table(rows))
    return rows


if __name__ == "__main__":
    main()
