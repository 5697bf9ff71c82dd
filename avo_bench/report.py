"""Markdown report and PNG plots of a run directory (``python -m avo_bench report DIR``).

The report has one summary table per (space, metric, budget): methods × simulators, each entry
the mean ± sd over seeds, with the metric's floor (the value of a perfect method at the same
sample sizes) as the last row. Plots (matplotlib's object API, no global backend change):
metric vs budget per simulator, wall time vs budget, and per-cell diagnostics for the first
seed (training curves from ``Result.history``, marginals of the returned samples vs the truth
or exact posterior, predictive vs observed histograms).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from .results import KEY, atomic_write, load_results, read_artifacts, read_manifest

__all__ = ["cost", "headline", "summary", "write_report"]


def _headline_scores() -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
    """The headline's data-space and parameter-space scores in order of preference (the
    ``headline`` entries of the score table)."""
    from .scoring import SCORES

    ranked = sorted((s for s in SCORES if s.headline), key=lambda s: s.headline)
    data = tuple(s.key for s in ranked if s.space == "data")
    return data, tuple(s.key for s in ranked if s.space != "data")


def _first_scored(part: pd.DataFrame, keys: tuple, budget: int) -> pd.DataFrame:
    """Per simulator, the first of ``keys`` with ok values, as ``sim (metric)`` columns."""
    columns = {}
    for sim, group in part.groupby("simulator"):
        ok = group[group.status == "ok"]
        pairs = set(zip(ok.space, ok.metric, strict=True))
        chosen = next((p for p in keys if p in pairs), None)
        if chosen is not None:
            columns[f"{sim} ({chosen[1]})"] = summary(group, *chosen, budget)[sim]
    return pd.DataFrame(columns).fillna("n/a")


def _mean_sd(values: pd.Series, statuses: pd.Series) -> str:
    ok = values[statuses == "ok"].dropna()
    if ok.empty:
        return "error" if (statuses == "error").any() else "n/a"
    text = f"{ok.mean():.3g}" if len(ok) == 1 else f"{ok.mean():.3g} ± {ok.std():.2g}"
    return text if len(ok) == len(statuses) else f"{text} ({len(ok)}/{len(statuses)})"


def summary(rows: pd.DataFrame, space: str, metric: str, budget: int) -> pd.DataFrame:
    """Methods × simulators table of ``mean ± sd`` over seeds, with a ``floor`` row."""
    part = rows[(rows.space == space) & (rows.metric == metric) & (rows.budget == budget)]
    table = part.groupby(["method", "simulator"]).apply(
        lambda g: _mean_sd(g["value"], g["status"]), include_groups=False
    )
    table = table.unstack("simulator").fillna("")
    floors = part.groupby("simulator")["floor"].mean()
    values = [floors.get(s, math.nan) for s in table.columns]
    table.loc["*floor*"] = ["n/a" if math.isnan(v) else f"{v:.3g}" for v in values]
    return table


def cost(rows: pd.DataFrame, budget: int) -> pd.DataFrame:
    """Methods × simulators table of mean fit wall time and simulations used (ok cells)."""
    cells = rows[(rows.budget == budget) & (rows.status == "ok")].drop_duplicates(KEY[:4])
    means = cells.groupby(["method", "simulator"])[["wall_time_s", "num_simulations"]].mean()
    text = means.apply(lambda r: f"{r.wall_time_s:.3g} s / {r.num_simulations:.0f} sims", axis=1)
    return text.unstack("simulator").fillna("")


def headline(rows: pd.DataFrame, budget: int | None = None) -> str:
    """Markdown of the headline tables at ``budget`` (default: the run's middle budget).

    Three methods × simulators tables, mean ± sd over seeds: the data-space Wasserstein-1 of the
    predictive, one parameter-space score per simulator (C2ST against the exact posterior where
    there is one, else the distance of the returned mean to θ*: the ``headline`` order of
    :data:`avo_bench.scoring.SCORES`),
    and the fit wall time. The README's results table is this function's output.
    """
    budgets = sorted(int(b) for b in rows.budget.unique())
    budget = budgets[len(budgets) // 2] if budget is None else budget
    if budget not in budgets:
        raise ValueError(f"budget {budget} is not in the run; its budgets: {budgets}")
    part = rows[rows.budget == budget]
    data_keys, parameter_keys = _headline_scores()
    data = _first_scored(part, data_keys, budget)
    parameter = _first_scored(part, parameter_keys, budget)
    cells = part.drop_duplicates(KEY[:4]).assign(
        wall_time_s=lambda r: r.wall_time_s.where(r.status == "ok")
    )
    wall = cells.groupby(["method", "simulator"]).apply(
        lambda g: _mean_sd(g["wall_time_s"], g["status"]), include_groups=False
    )
    lines = [f"Data space (budget {budget}, lower is better): Wasserstein-1 of the predictive "
             "against the observed set, or for a single observation the median distance of "
             "predictive simulations to it:",
             "", _markdown(data), "",
             f"Parameter space (budget {budget}): C2ST against the exact posterior (0.5 is "
             "ideal), or distance of the returned mean to θ* (Weinberg: in the identified "
             "asymmetry c); Rosenbrock is a population task, scored in data space only:",
             "", _markdown(parameter), "",
             f"Fit wall time in seconds (budget {budget}):", "",
             _markdown(wall.unstack("simulator").fillna("n/a"))]  # fmt: skip
    return "\n".join(lines)


def _markdown(table: pd.DataFrame) -> str:
    header = "| method | " + " | ".join(table.columns) + " |"
    lines = [header, "|" + "---|" * (len(table.columns) + 1)]
    lines += ["| " + " | ".join([str(i), *map(str, r)]) + " |" for i, r in table.iterrows()]
    return "\n".join(lines)


def _provenance(run_dir: Path, rows: pd.DataFrame) -> list[str]:
    """Commands, machine and total cost of a run, from its manifest and rows."""
    manifest = read_manifest(run_dir)
    lines = []
    for inv in manifest.get("invocations", []):
        lines.append(
            f"- Command ({inv.get('started', '?')}, executor {inv.get('executor', '?')}, "
            f"jobs {inv.get('jobs', '?')}, torch threads {inv.get('threads', '?')}): "
            f"`{inv.get('command', '?')}`"
        )
    info = manifest.get("machine")
    if info:
        memory = f", {info['memory_gib']} GiB" if "memory_gib" in info else ""
        load = info.get("load_average")
        load = f"; load average at start {'/'.join(map(str, load))}" if load else ""
        gpu = f"; GPU {info['gpu']}" if "gpu" in info else ""
        lines.append(
            f"- Machine: {info.get('cpu', '?')}, {info.get('cores', '?')} cores{memory}{gpu}; "
            f"{info.get('platform', '?')}, Python {info.get('python', '?')}{load}"
        )
        packages = ", ".join(f"{k} {v}" for k, v in info.get("packages", {}).items())
        lines.append(f"- Packages: {packages}")
    cells = rows.drop_duplicates(KEY[:4])
    lines.append(
        f"- Total fit wall time {cells.wall_time_s.sum() / 60:.1f} min over {len(cells)} cells "
        f"(scoring not included); simulations used {cells.num_simulations.sum():,.0f}"
    )
    return lines


def _problems(rows: pd.DataFrame) -> str:
    size = rows.groupby(KEY[:4]).size()
    bad = rows[rows.status != "ok"].assign(what=lambda r: r.space + " " + r.metric)
    if bad.empty:
        return "Every cell and metric finished with status ok."
    lines = ["| simulator | method | seed | budget | metrics | status | message |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for (sim, method, seed, budget, status, message), group in bad.groupby(
        [*KEY[:4], "status", "message"], sort=False
    ):
        what = "all" if len(group) == size[(sim, method, seed, budget)] else ", ".join(group.what)
        text = str(message).replace("|", "\\|").replace("\n", " ")[:200]
        lines.append(f"| {sim} | {method} | {seed} | {budget} | {what} | {status} | {text} |")
    return "\n".join(lines)


def _save(fig, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=90, bbox_inches="tight"))


def _plot_budgets(rows: pd.DataFrame, plots: Path) -> list[str]:
    from matplotlib.figure import Figure

    names = []
    # one colour per method in every figure (the colour cycle would shift with the methods shown)
    colors = {m: f"C{i % 10}" for i, m in enumerate(sorted(rows.method.unique()))}
    for sim, part in rows[rows.status == "ok"].groupby("simulator"):
        pairs = list(part[["space", "metric"]].drop_duplicates().itertuples(index=False))
        fig = Figure(figsize=(4 * len(pairs), 3.2))
        for ax, (space, metric) in zip(
            fig.subplots(1, len(pairs), squeeze=False)[0], pairs, strict=True
        ):
            cur = part[(part.space == space) & (part.metric == metric)]
            for method, m in cur.groupby("method"):
                stats = m.groupby("budget")["value"].agg(["mean", "std"]).fillna(0)
                ax.errorbar(stats.index, stats["mean"], stats["std"], marker="o", label=method,
                            color=colors[method])  # fmt: skip
            floor = cur.groupby("budget")["floor"].mean()
            ax.plot(floor.index, floor.values, "k--", label="floor")
            ax.set(xscale="log", xlabel="budget", title=f"{space} {metric}")
        fig.axes[0].legend(fontsize=7)
        _save(fig, plots / f"{sim}_metrics.png")
        names.append(f"{sim}_metrics.png")
    cells = rows[rows.status == "ok"].drop_duplicates(KEY[:4])
    sims = sorted(cells.simulator.unique())
    if sims:
        fig = Figure(figsize=(3.6 * len(sims) + 1.5, 3.2), layout="constrained")
        for ax, sim in zip(fig.subplots(1, len(sims), squeeze=False)[0], sims, strict=True):
            for method, m in cells[cells.simulator == sim].groupby("method"):
                stats = m.groupby("budget")["wall_time_s"].mean().clip(lower=1e-4)
                ax.plot(stats.index, stats.values, marker="o", label=method, color=colors[method])
            ax.set(xscale="log", yscale="log", xlabel="budget", title=sim)
        fig.axes[0].set_ylabel("fit wall time (s, floored at 1e-4)")
        handles = {h.get_label(): h for ax in fig.axes for h in ax.get_lines()}
        fig.legend([handles[m] for m in sorted(handles)], sorted(handles), loc="outside right",
                   fontsize=7)  # fmt: skip
        _save(fig, plots / "wall_time.png")
        names.append("wall_time.png")
    return names


def _plot_cell(run_dir: Path, key: tuple, path: Path) -> bool:
    from matplotlib.figure import Figure

    arrays, history = read_artifacts(run_dir, key)
    if "theta" not in arrays:
        return False
    curves = [c for c in history.columns if c not in ("step", "iteration", "num_simulations")
              and pd.api.types.is_numeric_dtype(history[c])][:4]  # fmt: skip
    theta, names = arrays["theta"], [str(n) for n in arrays["parameter_names"]]
    d, k = min(theta.shape[1], 4), min(arrays["x_obs"].shape[1], 4)
    width = max(len(curves), d, k)
    fig = Figure(figsize=(3.2 * width, 2.8 * (2 + bool(curves))), layout="constrained")
    grid = list(fig.subplots(2 + bool(curves), width, squeeze=False))
    if curves:
        step = history["step"] if "step" in history else history.index
        for ax, column in zip(grid.pop(0)[: len(curves)], curves, strict=True):
            ax.plot(step, history[column])
            ax.set(title=column, xlabel="step")
    for j, ax in enumerate(grid[0][:d]):
        ax.hist(theta[:, j], bins=40, density=True, alpha=0.6, label="returned")
        if "posterior" in arrays:
            ax.hist(arrays["posterior"][:, j], bins=40, density=True, histtype="step",
                    color="k", label="exact posterior")  # fmt: skip
        if "theta_star" in arrays:
            ax.axvline(arrays["theta_star"][j], color="r", label="truth")
        ax.set(title=names[j])
    for j, ax in enumerate(grid[1][:k]):
        both = np.concatenate([arrays["x_obs"][:, j], arrays["x_sim"][:, j]])
        bins = np.histogram_bin_edges(both, bins=40)
        ax.hist(arrays["x_obs"][:, j], bins=bins, density=True, alpha=0.5, label="observed")
        ax.hist(
            arrays["x_sim"][:, j], bins=bins, density=True, histtype="step", label="predictive"
        )
        ax.set(title=f"x feature {j}")
    for row in grid:
        if row[0].has_data():
            row[0].legend(fontsize=7)
    for ax in fig.axes:
        if not ax.has_data():
            ax.set_axis_off()
    fig.suptitle(" / ".join(map(str, key)))
    _save(fig, path)
    return True


def _plots(run_dir: Path, rows: pd.DataFrame) -> list[str]:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return []
    plots = run_dir / "plots"
    names = _plot_budgets(rows, plots)
    first = rows[(rows.status == "ok") & (rows.seed == rows.seed.min())]
    for key in first.drop_duplicates(KEY[:4])[KEY[:4]].itertuples(index=False):
        name = "cells/" + "__".join(map(str, key)) + ".png"
        if _plot_cell(run_dir, tuple(key), plots / name):
            names.append(name)
    return names


def write_report(run_dir: str | Path) -> Path:
    """Writes ``report.md`` and ``plots/*.png`` for a run directory; returns the report path.

    Raises:
        ResultsError: If the directory has no readable results.
    """
    run_dir = Path(run_dir)
    rows = load_results(run_dir)
    cells = rows.drop_duplicates(KEY[:4])
    counts = cells.status.value_counts().to_dict()
    lines = [f"# avo_bench report: {run_dir.name}", "",
             f"{len(cells)} cells ({', '.join(f'{v} {k}' for k, v in counts.items())}); "
             f"version {rows.version.iloc[0]}, commit {rows.git_commit.iloc[0] or 'unknown'}.",
             "", *_provenance(run_dir, rows), "", "Entries: mean ± sd over seeds (ok cells only; (k/n) when some failed). "
             "*floor*: the metric between two independent draws of the reference at the same "
             "sample sizes, the best a method can score.", ""]  # fmt: skip
    lines += ["## Headline", "", headline(rows), ""]
    for budget in sorted(rows.budget.unique()):
        for space, metric in rows[["space", "metric"]].drop_duplicates().itertuples(index=False):
            direction = rows[(rows.metric == metric)].direction.iloc[0] or "?"
            lines += [f"## {space} {metric} (budget {budget}, {direction} is better)", ""]
            lines += [_markdown(summary(rows, space, metric, budget)), ""]
        if len(cost(rows, budget)):
            lines += [f"## cost (budget {budget}): fit wall time / simulations used", ""]
            lines += [_markdown(cost(rows, budget)), ""]
    lines += ["## Cells not ok", "", _problems(rows), ""]
    names = _plots(run_dir, rows)
    lines += ["## Plots", ""] + [f"![{n}](plots/{n})" for n in names]
    if not names:
        lines.append("(no plots: install matplotlib, `pip install 'avo-bench[plot]'`)")
    path = run_dir / "report.md"
    atomic_write(path, lambda f: f.write("\n".join(lines).encode() + b"\n"))
    return path
