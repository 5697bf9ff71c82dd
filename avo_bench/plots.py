"""The report's figures (matplotlib's object API; no global backend or style change).

- ``scores_<task>.png``: every score of a task with a direction, at most 4 panels a row. With one
  budget a dot/interval plot (methods on the vertical axis, the mean and its 95 % interval
  over seeds on the horizontal one); with several, curves over the budget with intervals. The
  floor is a grey band (its interval over seeds); a log axis when one value is over
  :data:`RATIO` times another; panels whose values are all equal (e.g. no sample outside the prior)
  are left out.
- ``calibration.png``: per task, the coverage of each method's central regions against their
  credibility level (the diagonal is calibrated): of exact posterior draws where a task has
  an exact posterior (``posterior_levels`` of each cell, averaged over seeds), else of θ*
  over seeds; ``amortized_coverage.png``: the same over an amortized method's test
  simulations.
- ``wall_time.png``: fit wall time per method and task.
- ``cells/*.png`` (optional): per-cell diagnostics of the first seed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from . import stats
from .results import atomic_write, has_artifacts, read_artifacts
from .summary import CELL, tasks

__all__ = ["method_colors", "plot_run"]

PER_ROW = 4
RATIO = 4  # a log axis when the largest value is over RATIO times the smallest
ALPHAS = np.linspace(0, 1, 51)
KEY_TEXT = ("mean over seeds with 95 % bootstrap interval;  ★ best;  filled: not significantly "
            "worse than the best;  open: significantly worse;  grey band: the floor (a perfect "
            "answer's score) with its interval")  # fmt: skip


def plot_run(run_dir: Path, rows: pd.DataFrame, table: pd.DataFrame, *,
             cell_plots: bool = False) -> list[str]:  # fmt: skip
    """Draws the report's figures under ``run_dir/plots``; returns their names."""
    try:
        from matplotlib.figure import Figure  # noqa: F401
    except ImportError:
        return []
    plots = Path(run_dir) / "plots"
    colors = method_colors(rows.method.unique())
    names = []
    for task, part in table.groupby("task"):
        fig = _scores_figure(part, colors)
        if fig is not None:
            names.append(_save(fig, plots, f"scores_{task}.png".replace(" ", "_")))
    # calibration.png and amortized_coverage.png read the cells' stored arrays (cells/, not
    # committed with the reference runs): a copy of a run that lacks some of them keeps the
    # figures drawn where they were complete, rather than redrawing them from less (θ* levels
    # for the cells without arrays, mixed with exact-posterior levels for the others).
    stored = _arrays_complete(run_dir, rows)
    for name, draw, from_arrays in (("calibration.png", _calibration, True),
                                    ("wall_time.png", _wall_time, False),
                                    ("amortized_coverage.png", _amortized, True)):  # fmt: skip
        if from_arrays and not stored and (plots / name).exists():
            names.append(name)
            continue
        fig = draw(run_dir, rows, colors)
        if fig is not None:
            names.append(_save(fig, plots, name))
    names += _n_obs_plots(rows, plots)
    if cell_plots:
        names += _cell_plots(run_dir, rows, plots)
    return names


def _arrays_complete(run_dir: Path, rows: pd.DataFrame) -> bool:
    """Whether every ``ok`` cell at the headline budget has its arrays stored."""
    budget = _headline_budget(rows)
    cells = rows[(rows.budget == budget) & (rows.status == "ok")].drop_duplicates(CELL)
    return all(has_artifacts(run_dir, key) for key in cells[CELL].itertuples(index=False))


def method_colors(methods) -> dict[str, str]:
    """A distinct colour per method, over the sorted names: matplotlib's ``tab10`` for up to
    10 methods; beyond, the 20 hues of ``tab20`` (its dark shades first, then the light ones)
    and then ``tab20b``'s, so the registry's 20-odd methods never share a colour (``C{i % 10}``
    gave two methods one colour from the 11th on)."""
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    names = sorted(methods)
    if len(names) <= 10:
        palette = list(colormaps["tab10"].colors)
    else:
        tab20 = list(colormaps["tab20"].colors)
        palette = tab20[0::2] + tab20[1::2] + list(colormaps["tab20b"].colors)[0::4]
        palette += list(colormaps["tab20b"].colors)[2::4] + list(colormaps["tab20c"].colors)
    return {m: to_hex(palette[i % len(palette)]) for i, m in enumerate(names)}


def _save(fig, plots: Path, name: str) -> str:
    (plots / name).parent.mkdir(parents=True, exist_ok=True)
    atomic_write(plots / name, lambda f: fig.savefig(f, format="png", dpi=80))
    return name


def _grid(n: int, width: float = 3.4, height: float = 2.8, *, left: float = 0.6,
          legend: bool = False, sharey: bool = False):  # fmt: skip
    """A figure of ``n`` panels, at most :data:`PER_ROW` a row, laid out by hand (margins in
    inches: matplotlib's constrained layout costs more than the drawing)."""
    from matplotlib.figure import Figure

    cols = min(n, PER_ROW)
    rows = -(-n // cols)
    right = 1.3 if legend else 0.2
    size = (left + width * cols + right, 0.9 + height * rows)
    fig = Figure(figsize=size)
    axes = fig.subplots(rows, cols, squeeze=False, sharey=sharey).ravel()
    fig.subplots_adjust(left=left / size[0], right=1 - right / size[0], bottom=0.65 / size[1],
                        top=1 - 0.55 / size[1], wspace=0.25 if sharey else 0.35,
                        hspace=0.95 / (height - 0.95))  # fmt: skip
    for ax in axes[n:]:
        ax.set_axis_off()
    return fig, axes[:n]


def _top(fig) -> float:
    """A suptitle's ``y``: 0.06 inch below the top edge, above the panels' titles (which end
    about 0.3 inch below it in :func:`_grid`'s 0.55-inch top margin)."""
    return 1 - 0.06 / fig.get_figheight()


def _legend(fig, axes) -> None:
    handles = {}
    for ax in axes:
        for h in ax.get_lines():
            if not h.get_label().startswith("_"):
                handles.setdefault(h.get_label(), h)
    labels = sorted(handles)
    fig.legend([handles[k] for k in labels], labels, loc="center right", fontsize=7)


def _panels(part: pd.DataFrame) -> list[tuple[str, str]]:
    """Scores of a task worth a panel: with a direction and not all equal."""
    from .scoring import SCORES

    order = {s.key: i for i, s in enumerate(SCORES)}
    keep = []
    groups = sorted(part.groupby(["space", "metric"]), key=lambda g: order.get(g[0], len(order)))
    for (space, metric), p in groups:
        if p.direction.iloc[0] not in stats.DIRECTIONS or not (p.n > 0).any():
            continue
        values = p[["mean", "low", "high"]].to_numpy()
        if np.nanmax(values) == np.nanmin(values):
            continue
        keep.append((space, metric))
    return keep


def _log_scale(values: np.ndarray) -> bool:
    values = values[np.isfinite(values)]
    return bool(len(values) and values.min() > 0 and values.max() > RATIO * values.min())


def _scores_figure(part: pd.DataFrame, colors: dict):
    panels = _panels(part)
    if not panels:
        return None
    single = part.budget.nunique() == 1
    methods = sorted(part.method.unique(), reverse=True)
    if single:
        fig, axes = _grid(len(panels), 2.6, 0.25 * len(methods) + 1.0, left=1.1, sharey=True)
    else:
        fig, axes = _grid(len(panels), legend=True)
    for ax, (space, metric) in zip(axes, panels, strict=True):
        p = part[(part.space == space) & (part.metric == metric) & (part.n > 0)]
        (_dots if single else _curves)(ax, p, colors, methods)
        ax.set_title(f"{space} {metric}", fontsize=8.5)
        direction, ideal = p.direction.iloc[0], p.ideal.iloc[0]
        better = (
            f"nearest {ideal:g} is better" if direction == "nearest" else f"{direction} is better"
        )
        (ax.set_xlabel if single else ax.set_ylabel)(better, fontsize=7)
    fig.suptitle(part.task.iloc[0], fontsize=11, weight="bold", y=_top(fig))
    if single:
        fig.text(0.5, 0.01, KEY_TEXT, ha="center", va="bottom", fontsize=7)
    else:
        fig.text(0.5, 0.01, "mean over seeds with 95 % bootstrap interval; grey band: the floor "
                 "(a perfect answer's score) with its interval", ha="center", fontsize=7)  # fmt: skip
        _legend(fig, axes)
    return fig


def _dots(ax, p: pd.DataFrame, colors: dict, methods: list[str]) -> None:
    """Mean (★ best, filled: not significantly worse, open: worse) and interval per method."""
    y = p.method.map({m: i for i, m in enumerate(methods)}).to_numpy()
    color = [colors[m] for m in p.method]
    ax.hlines(y, p.low.fillna(p["mean"]), p.high.fillna(p["mean"]), colors=color, lw=1.5)
    face = [c if tied else "white" for c, tied in zip(color, p.tied, strict=True)]
    ax.scatter(p["mean"], y, s=np.where(p.best, 90, 25), c=face, edgecolors=color,
               marker="o", zorder=3)  # fmt: skip
    best = p[p.best]
    ax.scatter(best["mean"], y[p.best.to_numpy()], s=90, marker="*", c="k", zorder=4)
    _floor_band(ax, p, vertical=True)
    ax.set_yticks(range(len(methods)), methods, fontsize=8)
    ax.set_ylim(-0.6, len(methods) - 0.4)
    values = p[["mean", "low", "high", "floor_low", "floor_high"]].to_numpy().ravel()
    if p.direction.iloc[0] != "nearest" and _log_scale(values):  # a signed score stays linear
        _log(ax.xaxis)
    ax.tick_params(axis="x", labelsize=8)


def _curves(ax, p: pd.DataFrame, colors: dict, methods: list[str]) -> None:
    """Mean over the budgets per method, intervals as vertical bars."""
    for method, m in p.groupby("method"):
        m = m.sort_values("budget")
        ax.plot(m.budget, m["mean"], marker="o", ms=3, label=method, color=colors[method])
    color = [colors[m] for m in p.method]
    ax.vlines(p.budget, p.low.fillna(p["mean"]), p.high.fillna(p["mean"]), colors=color, lw=1)
    _floor_band(ax, p, vertical=False)
    _log(ax.xaxis)
    if p.direction.iloc[0] != "nearest" and _log_scale(
        p[["mean", "low", "high"]].to_numpy().ravel()
    ):
        _log(ax.yaxis)
    ax.set_xlabel("budget", fontsize=8)
    ax.tick_params(labelsize=8)


def _log(axis) -> None:
    """A log axis with ticks at powers of ten, and at 2 and 5 (or 3) times them when the data
    span less than one (or 2.5) decades, so that labels neither overlap nor vanish; no minor
    ticks (drawing them costs more than the rest of the figure)."""
    from matplotlib.ticker import LogFormatterSciNotation, LogLocator, NullLocator

    low, high = axis.get_data_interval()
    decades = np.log10(high / low) if low > 0 else np.inf
    subs = (1.0, 2.0, 5.0) if decades < 1 else (1.0, 3.0) if decades < 2.5 else (1.0,)
    axis.axes.set_xscale("log") if axis is axis.axes.xaxis else axis.axes.set_yscale("log")
    axis.set_major_locator(LogLocator(subs=subs))
    axis.set_major_formatter(LogFormatterSciNotation(labelOnlyBase=False))
    axis.set_minor_locator(NullLocator())


def _floor_band(ax, p: pd.DataFrame, vertical: bool) -> None:
    floor = (
        p.groupby("budget")[["floor", "floor_low", "floor_high"]].median().dropna(subset=["floor"])
    )
    if floor.empty:
        return
    low = floor.floor_low.fillna(floor.floor)
    high = floor.floor_high.fillna(floor.floor)
    if vertical:
        ax.axvspan(low.iloc[0], high.iloc[0], color="0.85", label="floor", zorder=0)
        ax.axvline(floor.floor.iloc[0], color="0.5", lw=1, ls="--", zorder=0)
    else:
        ax.fill_between(floor.index, low, high, color="0.85", label="floor", zorder=0)
        ax.plot(floor.index, floor.floor, color="0.5", lw=1, ls="--", zorder=0)


def _headline_budget(rows: pd.DataFrame) -> int:
    budgets = sorted(int(b) for b in rows.budget.unique())
    return budgets[len(budgets) // 2]


def _levels(run_dir: Path, rows: pd.DataFrame, name: str) -> dict:
    """``{(task, method): [per-seed arrays of levels]}`` from the cells' artifacts."""
    budget = _headline_budget(rows)
    cells = rows[(rows.budget == budget) & (rows.status == "ok")].drop_duplicates(CELL)
    cells = cells.assign(task=tasks(cells))
    out: dict = {}
    for r in cells.itertuples():
        arrays, _ = read_artifacts(run_dir, tuple(getattr(r, k) for k in CELL))
        if name in arrays:
            out.setdefault((r.task, r.method), []).append(np.asarray(arrays[name], float))
    return out


def _truth_levels(rows: pd.DataFrame) -> dict:
    """``{(task, method): [one array of θ* levels over seeds]}`` (``uniform`` scores)."""
    budget = _headline_budget(rows)
    part = rows[(rows.budget == budget) & (rows.status == "ok") & (rows.direction == "uniform")]
    part = part.assign(task=tasks(part))
    return {k: [g.to_numpy()] for k, g in part.groupby(["task", "method"])["value"]}


def _coverage_figure(levels: dict, colors: dict, title: str, caption: str, titles=None):
    if not levels:
        return None
    names = sorted({task for task, _ in levels})
    fig, axes = _grid(len(names), width=2.6, height=2.8, legend=True)
    for ax, task in zip(axes, names, strict=True):
        ax.plot([0, 1], [0, 1], color="0.5", ls="--", lw=1)
        for (t, method), arrays in sorted(levels.items()):
            if t != task:
                continue
            curves = np.stack([stats.coverage_curve(a, ALPHAS) for a in arrays])
            ax.plot(ALPHAS, curves.mean(axis=0), color=colors[method], label=method, lw=1.5)
            if len(curves) > 1:
                ax.fill_between(ALPHAS, curves.min(axis=0), curves.max(axis=0),
                                color=colors[method], alpha=0.12, lw=0)  # fmt: skip
        ax.set(xlim=(0, 1), ylim=(0, 1), title=(titles or {}).get(task, task))
        ax.tick_params(labelsize=8)
        ax.title.set_fontsize(9)
    axes[0].set_ylabel("coverage", fontsize=8)
    axes[0].set_xlabel("credibility level of the central region", fontsize=8)
    _legend(fig, axes)
    fig.suptitle(title, fontsize=10, y=_top(fig))
    fig.text(0.5, 0.01, caption, ha="center", va="bottom", fontsize=7)
    return fig


def _calibration(run_dir: Path, rows: pd.DataFrame, colors: dict):
    levels = _truth_levels(rows)
    exact = _levels(run_dir, rows, "posterior_levels")
    names = {t: f"{t} (θ* over {len(v[0])} seeds)" for (t, _), v in levels.items()}
    levels.update(exact)
    names = {t: n for t, n in names.items() if t not in {task for task, _ in exact}}
    return _coverage_figure(
        levels, colors, "Coverage at the observed data (band: range over seeds)",
        "exact posterior draws where the task has an exact posterior, else θ* over seeds; "
        "below the diagonal: overconfident", names,
    )  # fmt: skip


def _amortized(run_dir: Path, rows: pd.DataFrame, colors: dict):
    levels = _levels(run_dir, rows, "amortized_levels")
    return _coverage_figure(levels, colors, "Expected coverage (band: range over seeds)",
                            "amortized methods, over test simulations from the prior; below "
                            "the diagonal: overconfident")  # fmt: skip


def _wall_time(run_dir: Path, rows: pd.DataFrame, colors: dict):
    cells = rows[rows.status == "ok"].drop_duplicates(CELL)
    if cells.empty:
        return None
    cells = cells.assign(task=tasks(cells), wall=cells.wall_time_s.clip(lower=1e-4))
    single = cells.budget.nunique() == 1
    names = sorted(cells.task.unique())
    if single:
        methods = sorted(cells.method.unique(), reverse=True)
        fig, axes = _grid(len(names), 2.4, 0.2 * len(methods) + 1.0, left=1.1, sharey=True)
    else:
        fig, axes = _grid(len(names), width=2.6, height=2.4, legend=True)
    for ax, task in zip(axes, names, strict=True):
        for method, m in cells[cells.task == task].groupby("method"):
            mean = m.groupby("budget")["wall"].mean()
            if single:
                y = [methods.index(method)] * len(m)
                ax.plot(m.wall, y, "o", color=colors[method], ms=4, alpha=0.7)
            else:
                ax.plot(mean.index, mean.values, marker="o", ms=3, label=method,
                        color=colors[method])  # fmt: skip
        _log(ax.xaxis)
        if single:
            ax.set_yticks(range(len(methods)), methods, fontsize=8)
        else:
            _log(ax.yaxis)
        ax.set_title(task, fontsize=9)
        ax.tick_params(labelsize=7)
    axes[0].set_xlabel("fit wall time (s)" if single else "budget", fontsize=8)
    if not single:
        axes[0].set_ylabel("fit wall time (s)", fontsize=8)
        _legend(fig, axes)
    return fig


def _n_obs_plots(rows: pd.DataFrame, plots: Path) -> list[str]:
    """Scores against n_obs (:mod:`avo_bench.plots_nobs`) when the rows have several."""
    if "n_obs" not in rows or rows.n_obs.nunique() <= 1:
        return []
    try:
        from .plots_nobs import plot_scores_vs_n_obs
    except ImportError:
        return []
    name = "scores_vs_n_obs.png"
    return [name] if plot_scores_vs_n_obs(rows, plots / name) is not None else []


def _cell_plots(run_dir: Path, rows: pd.DataFrame, plots: Path) -> list[str]:
    from .plots_cell import plot_cell

    names = []
    first = rows[(rows.status == "ok") & (rows.seed == rows.seed.min())]
    several = "n_obs" in rows and rows.n_obs.nunique() > 1
    for key in first.drop_duplicates(CELL)[CELL].itertuples(index=False):
        name = "cells/" + "__".join(map(str, key if several else key[:4])) + ".png"
        fig = plot_cell(run_dir, tuple(key))
        if fig is not None:
            names.append(_save(fig, plots, name))
    return names
