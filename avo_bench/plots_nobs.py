"""Parameter-space scores against the number of observations (the grid's ``n_obs`` axis).

:func:`plot_scores_vs_n_obs` draws one row of panels per task that ran at several ``n_obs``
(one panel per parameter-space score: spaces ``posterior`` and ``truth``), at one budget, with
one line per method: the mean over seeds, with bars from the lowest to the highest seed. The
score's floor (the exact posterior's value at the same sizes) is the grey dashed line. Axes are
logarithmic in ``n_obs``, and in the score where it is positive and spans more than a decade.

Use it on a run directory's rows::

    from avo_bench.plots_nobs import plot_scores_vs_n_obs
    from avo_bench.results import load_results

    plot_scores_vs_n_obs(load_results("results/iid"), "results/iid/plots/n_obs.png")
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .plots import method_colors
from .results import atomic_write

__all__ = ["PARAMETER_SPACES", "axis_rows", "plot_scores_vs_n_obs"]

PARAMETER_SPACES = ("posterior", "truth")


def axis_rows(rows: pd.DataFrame, budget: int | None = None) -> tuple[pd.DataFrame, int | None]:
    """The ``ok`` parameter-space rows of the tasks that ran at two or more ``n_obs``, at
    ``budget`` (default: the largest budget with such rows), and that budget."""
    part = rows[rows.space.isin(PARAMETER_SPACES) & (rows.status == "ok")]
    part = part[np.isfinite(part.value.to_numpy(dtype=float))]
    counts = part.groupby(["simulator", "budget"]).n_obs.nunique()
    axis = counts[counts > 1].reset_index()
    if budget is None:
        budget = int(axis.budget.max()) if len(axis) else None
    keep = axis[axis.budget == budget].simulator
    return part[part.simulator.isin(keep) & (part.budget == budget)], budget


def plot_scores_vs_n_obs(
    rows: pd.DataFrame,
    path: str | Path,
    *,
    budget: int | None = None,
    colors: dict[str, str] | None = None,
) -> Path | None:
    """Plots each parameter-space score against ``n_obs``, per task, one line per method.

    Arguments:
        rows: Tidy result rows (:func:`avo_bench.results.load_results`).
        path: Image file to write (its folder is created); the format follows the suffix.
        budget: The budget to show (default: the largest with an ``n_obs`` axis).
        colors: Colour of each method (default: the report's,
            :func:`avo_bench.plots.method_colors` of the method names of ``rows``).

    Returns:
        ``path``, or ``None`` (and nothing written) if no task ran at two or more ``n_obs``.
    """
    from matplotlib.figure import Figure

    part, budget = axis_rows(rows, budget)
    if part.empty:
        return None
    colors = colors or method_colors(rows.method.unique())
    tasks = sorted(part.simulator.unique())
    metrics = {t: _metrics(part[part.simulator == t]) for t in tasks}
    width = max(len(m) for m in metrics.values())
    fig = Figure(figsize=(3.3 * width, 2.8 * len(tasks) + 0.4), layout="constrained")
    axes = fig.subplots(len(tasks), width, squeeze=False)
    for row, task in enumerate(tasks):
        for col in range(width):
            ax = axes[row, col]
            if col >= len(metrics[task]):
                ax.axis("off")
                continue
            space, metric = metrics[task][col]
            cells = part[
                (part.simulator == task) & (part.space == space) & (part.metric == metric)
            ]
            _panel(ax, cells, colors)
            ax.set_title(f"{task}: {space} {metric}", fontsize=9)
    handles = {h.get_label(): h for ax in axes.flat for h in ax.get_legend_handles_labels()[0]}
    fig.legend(handles.values(), handles.keys(), loc="outside lower center",
               ncol=min(len(handles), 6), fontsize=8)  # fmt: skip
    fig.suptitle(f"Parameter-space scores against n_obs (budget {budget})", fontsize=10)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = path.suffix.lstrip(".") or "png"
    atomic_write(path, lambda f: fig.savefig(f, format=fmt, dpi=120))
    return path


def _metrics(rows: pd.DataFrame) -> list[tuple[str, str]]:
    order = rows.drop_duplicates(["space", "metric"])
    return [(s, m) for s in PARAMETER_SPACES for m in order[order.space == s].metric]


def _panel(ax, cells: pd.DataFrame, colors: dict) -> None:
    """One score: a line per method (mean over seeds, bars min..max) and the floor."""
    for method, group in cells.groupby("method"):
        stats = group.groupby("n_obs").value.agg(["mean", "min", "max"])
        ax.errorbar(stats.index, stats["mean"], yerr=[stats["mean"] - stats["min"],
                    stats["max"] - stats["mean"]], color=colors.get(method), marker="o", ms=3,
                    lw=1.2, capsize=2, label=method)  # fmt: skip
    floor = cells.groupby("n_obs").floor.median().dropna()
    if len(floor):
        ax.plot(floor.index, floor.to_numpy(), color="0.5", ls="--", lw=1, label="floor")
    direction, ideal = cells.direction.iloc[0], float(cells.ideal.iloc[0])
    if direction == "nearest":
        ax.axhline(ideal, color="0.7", lw=0.8, zorder=0)
    ax.set_xscale("log")
    values = cells.value.to_numpy(dtype=float)
    if (values > 0).all() and values.max() > 10 * values.min():
        ax.set_yscale("log")
    ax.set_xlabel("n_obs", fontsize=8)
    ax.tick_params(labelsize=7)
