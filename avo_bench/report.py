"""Markdown report and PNG plots of a run directory (``python -m avo_bench report DIR``).

The report answers "which method is best on each task, by how much, and how sure are we":

1. **Headline**: per task its headline data-space and parameter-space score (the ``headline``
   order of :data:`avo_bench.scoring.SCORES`), methods × tasks, at the middle budget.
2. **Who wins**: per task and budget the best method, those not significantly worse, the
   next best and the floor.
3. **Ranks**: the mean rank of each method across tasks per budget (as sbibm summarizes),
   over every task each method finished and over only the tasks that every method finished
   or does not apply to (the same tasks for all).
4. **Calibration**: the ``calibration`` scores and the coverage of θ*.
5. **Cost**, **cells not ok** (with reasons), then one table per score and budget, and plots.

Every entry is the mean over seeds with a 95 % bootstrap interval (:mod:`avo_bench.stats`);
★ marks the best mean (among the methods that finished the most seeds), **bold** every method
not significantly worse than it, ᶠ a mean at the floor (:func:`avo_bench.summary.at_floor`).
Plots are in :mod:`avo_bench.plots`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from . import stats
from .report_published import sbibm_section
from .results import atomic_write, load_results, read_manifest
from .summary import (
    CALIBRATION,
    CELL,
    GROUP,
    finished_tasks,
    headline_scores,
    mean_ranks,
    summarize,
    tasks,
)
from .summary import cells as summary_cells

__all__ = ["cost", "headline", "score_table", "who_wins", "write_report"]

READING = (
    "How to read: every entry is the mean over seeds with its 95 % BCa bootstrap interval "
    "(resampling seeds; with one seed there is none, and with 5 seeds such an interval covers "
    "the true mean only about 87 % of the time for normal data); (k/n): k of n seeds finished. "
    "★: the best mean among the methods that finished the most seeds; **bold**: the best "
    "and every method not significantly worse than it "
    f"(one-sided Wilcoxon signed-rank test on the seeds both finished, p ≥ {stats.ALPHA}; "
    "with n seeds the smallest p is 2^-n, so below 5 seeds nothing is significantly worse). "
    "*floor*: the score of a perfect answer (the exact posterior, or where there is none the "
    "true parameters) at the same sample sizes, one draw per seed, with its interval over "
    "seeds; ᶠ: a mean within the floor's interval or better, i.e. *at the floor*, not "
    "distinguishable from perfect. The floor is not a lower bound: it is a random draw of a "
    "perfect answer's score, so a perfect method scores below it about half of the time, and "
    "data-space scores compare the predictive with the observed set it was fitted to (see "
    "the section on the floor)."
)

FLOOR = (
    "A score below its floor is not better than perfect. Every score is computed from finite "
    "samples and the floor is one draw of the same computation for the perfect answer, so "
    "a method as good as perfect lands on either side of it (about half of the time below). "
    "Two effects add to this: (1) data-space scores compare the predictive with the very "
    "observed set the method was fitted to, while a perfect point answer (the true "
    "parameters) is compared through a fresh set, so a method that fits the observed set's "
    "noise can beat it; (2) the distance of the returned mean to θ* can be smaller than the "
    "exact posterior's by chance (a biased or luckily centred answer). A method returning "
    "fewer samples is compared with a floor at its own sample size."
)


def _fmt(value: float) -> str:
    return "n/a" if not np.isfinite(value) else f"{value:.3g}"


def _entry(r) -> str:
    text = _fmt(r.mean) + ("" if np.isnan(r.low) else f" [{_fmt(r.low)}, {_fmt(r.high)}]")
    if r.tied:
        text = f"**{text}**"
    text += "★" * bool(r.best) + "ᶠ" * bool(r.at_floor)
    return text + (f" ({r.n}/{r.cells})" if r.n < r.cells else "")


def _status(rows: pd.DataFrame) -> pd.Series:
    """``n/a`` or ``error`` per (task, budget, space, metric, method) without an ok value."""
    keys = [*GROUP, "method"]
    error = (
        (rows.status == "error")
        .groupby([tasks(rows).rename("task"), *(rows[k] for k in keys[1:])])
        .any()
    )
    return error.map({True: "error", False: "n/a"})


def score_table(
    table: pd.DataFrame, rows: pd.DataFrame, key: tuple[str, str], budget: int
) -> pd.DataFrame:
    """Methods × tasks table of one score at one budget, marked, with a *floor* row."""
    part = table[(table.space == key[0]) & (table.metric == key[1]) & (table.budget == budget)]
    statuses = _status(rows).xs((budget, *key), level=("budget", "space", "metric"))
    out = statuses.unstack("task").fillna("")
    for r in part.itertuples():
        if r.n:
            out.loc[r.method, r.task] = _entry(r)
    floors = part.groupby("task")[["floor", "floor_low", "floor_high"]].median()
    out.loc["*floor*"] = [_floor_text(floors.loc[t]) if t in floors.index else "n/a"
                          for t in out.columns]  # fmt: skip
    return out


def _floor_text(f) -> str:
    bounds = "" if np.isnan(f.floor_low) else f" [{_fmt(f.floor_low)}, {_fmt(f.floor_high)}]"
    return _fmt(f.floor) + bounds


def _first_scored(table: pd.DataFrame, keys: tuple, budget: int) -> dict[str, tuple[str, str]]:
    """Per task, the first of ``keys`` with ok values at ``budget``."""
    part = table[(table.budget == budget) & (table.n > 0)]
    chosen = {}
    for task, t in part.groupby("task"):
        present = set(zip(t.space, t.metric, strict=True))
        key = next((k for k in keys if k in present), None)
        if key is not None:
            chosen[task] = key
    return chosen


def _headline_table(table, rows, keys, budget) -> pd.DataFrame:
    columns = {}
    for task, key in _first_scored(table, keys, budget).items():
        columns[f"{task} ({key[1]})"] = score_table(table, rows, key, budget)[task]
    return pd.DataFrame(columns).fillna("n/a")


def _middle(rows: pd.DataFrame, budget: int | None) -> int:
    budgets = sorted(int(b) for b in rows.budget.unique())
    budget = budgets[len(budgets) // 2] if budget is None else budget
    if budget not in budgets:
        raise ValueError(f"budget {budget} is not in the run; its budgets: {budgets}")
    return budget


def headline(
    rows: pd.DataFrame, budget: int | None = None, table: pd.DataFrame | None = None
) -> str:
    """Markdown of the headline at ``budget`` (default: the run's middle budget).

    Two methods × tasks tables, marked (see the module docstring): per task the first
    data-space and the first parameter-space score with values, in the ``headline`` order of
    :data:`avo_bench.scoring.SCORES`. The README's results table is this function's output.
    """
    budget = _middle(rows, budget)
    table = summarize(rows) if table is None else table
    data_keys, parameter_keys = headline_scores()
    lines = [f"Parameter space (budget {budget}): per task its first headline score "
             f"({', '.join(m for _, m in parameter_keys)}):", "",
             _markdown(_headline_table(table, rows, parameter_keys, budget)), "",
             f"Data space (budget {budget}): per task its first headline score "
             f"({', '.join(m for _, m in data_keys)}):", "",
             _markdown(_headline_table(table, rows, data_keys, budget))]  # fmt: skip
    return "\n".join(lines)


def who_wins(table: pd.DataFrame, rows: pd.DataFrame) -> str:
    """Markdown table: per task, headline score and budget, the winner and its margin."""
    data_keys, parameter_keys = headline_scores()
    lines = []
    for budget in sorted(table.budget.unique()):
        for keys in (parameter_keys, data_keys):
            for task, key in _first_scored(table, keys, budget).items():
                lines.append(
                    (task, keys is data_keys, budget, _win_line(table, task, key, budget))
                )
    header = ["| task | score | budget | best | not significantly worse | next best | floor |",
              "|---|---|---|---|---|---|---|"]  # fmt: skip
    return "\n".join(header + [line for *_, line in sorted(lines)])


def _win_line(table: pd.DataFrame, task: str, key: tuple[str, str], budget: int) -> str:
    part = table[(table.task == task) & (table.budget == budget) & (table.space == key[0])
                 & (table.metric == key[1]) & (table.n > 0)]  # fmt: skip
    part = part.iloc[np.argsort(stats.badness(part["mean"], part.direction.iloc[0],
                                              part.ideal.iloc[0]), kind="stable")]  # fmt: skip
    best = part.iloc[0]
    tied = ", ".join(part.method[part.tied & ~part.best]) or "none"
    nxt = ""
    if len(part) > 1:
        second = part.iloc[1]
        change = (second["mean"] - best["mean"]) / abs(best["mean"]) if best["mean"] else np.nan
        gap = second["mean"] - best["mean"]
        nxt = f"{second.method} {_fmt(second['mean'])} ({gap:+.2g}, {change:+.1%})"
    floor = _floor_text(best) + (" (best is at the floor)" if best.at_floor else "")
    text = f"{best.method} {_fmt(best['mean'])}" + (
        "" if np.isnan(best.low) else f" [{_fmt(best.low)}, {_fmt(best.high)}]"
    )
    return f"| {task} | {key[0]} {key[1]} | {budget} | {text} | {tied} | {nxt} | {floor} |"


def ranks(table: pd.DataFrame, rows: pd.DataFrame | None = None) -> str:
    """Markdown of the mean rank of each method across tasks (headline scores); with ``rows``,
    also on only the tasks that every method finished (or does not apply to)."""
    data_keys, parameter_keys = headline_scores()
    finished = None if rows is None else finished_tasks(rows)
    common = ("" if finished is None else
              " A method is ranked on the tasks where it finished; the columns \"tasks all "
              "finished\" rank on only the tasks where every method of the run finished every "
              "seed or does not apply, so that every method meets the same tasks.")  # fmt: skip
    lines = []
    for name, keys in (("parameter space", parameter_keys), ("data space", data_keys)):
        ranked = mean_ranks(table, keys, finished)
        if len(ranked):
            lines += [f"Mean rank in {name} (1 = best; in parentheses the number of tasks "
                      f"ranked; each task's first headline score).{common}", "",
                      _markdown(ranked), ""]  # fmt: skip
    return "\n".join(lines)


def coverage_table(rows: pd.DataFrame, budget: int, levels=(0.5, 0.9)) -> pd.DataFrame:
    """Methods × tasks: how often θ* lies in the central region of each level (``uniform``
    calibration scores: the credibility level of θ* per cell)."""
    from .summary import directions

    sense = directions(rows)
    uniform = [k for k, (d, _) in sense.items() if d == "uniform"]
    part = rows[(rows.budget == budget) & (rows.status == "ok")]
    keys = pd.MultiIndex.from_frame(part[["space", "metric"]])
    part = part[keys.isin(uniform)]  # a boolean mask (an empty list would select columns)
    part = part.assign(task=tasks(part))
    out = part.groupby(["method", "task"])["value"].agg(
        lambda v: " / ".join(f"{(v <= a).sum()}/{len(v)}" for a in levels)
    )
    return out.unstack("task").fillna("n/a") if len(out) else pd.DataFrame()


def cost(rows: pd.DataFrame, budget: int) -> pd.DataFrame:
    """Methods × tasks table of mean fit wall time [interval] and simulations used (ok cells)."""
    cells = rows[(rows.budget == budget) & (rows.status == "ok")].drop_duplicates(CELL)
    cells = cells.assign(task=tasks(cells))
    groups = cells.groupby(["method", "task"])
    times = stats.bootstrap_means([g.to_numpy() for _, g in groups["wall_time_s"]])
    sims = groups["num_simulations"].mean()
    text = [
        f"{_fmt(t[0])} s" + ("" if np.isnan(t[1]) else f" [{_fmt(t[1])}, {_fmt(t[2])}]")
        + f" / {s:,.0f}"
        for t, s in zip(times, sims, strict=True)
    ]  # fmt: skip
    return pd.Series(text, sims.index).unstack("task").fillna("") if text else pd.DataFrame()


def _markdown(table: pd.DataFrame) -> str:
    if table.empty:
        return "(none)"
    header = "| method | " + " | ".join(map(str, table.columns)) + " |"
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
    cells = rows.drop_duplicates(CELL)
    lines.append(
        f"- Total fit wall time {cells.wall_time_s.sum() / 60:.1f} min over {len(cells)} cells "
        f"(scoring not included); simulations used {cells.num_simulations.sum():,.0f}"
    )
    return lines


def _problems(rows: pd.DataFrame) -> str:
    """Cells not ok, and scores n/a or failed in ok cells, grouped by reason."""
    cells = summary_cells(rows)
    failed = set(map(tuple, cells.loc[cells.status != "ok", CELL].to_numpy()))
    whole = rows[[tuple(k) in failed for k in rows[CELL].to_numpy()]]
    part = rows[(rows.status != "ok") & ~rows.index.isin(whole.index)]
    lines = []
    for title, bad, by in (
        ("Cells not ok", whole.drop_duplicates(CELL), ["simulator", "method", "status"]),
        ("Scores not ok in finished cells", part, ["space", "metric", "method", "status"]),
    ):
        if bad.empty:
            continue
        lines += [f"{title}:", "", "| " + " | ".join(by) + " | cells | message |",
                  "|" + "---|" * (len(by) + 2)]  # fmt: skip
        for group, g in bad.groupby([*by, "message"], sort=True):
            text = str(group[-1]).replace("|", "\\|").replace("\n", " ")[:200]
            seeds = ", ".join(f"{s}@{b}" for s, b in g[["seed", "budget"]].to_numpy()[:6])
            more = f" … ({len(g)})" if len(g) > 6 else ""
            lines.append("| " + " | ".join(map(str, group[:-1])) + f" | {seeds}{more} | {text} |")
        lines.append("")
    return "\n".join(lines) or "Every cell and score finished with status ok."


def not_run(run_dir: str | Path, rows: pd.DataFrame) -> pd.DataFrame:
    """The cells of the run's grid (its manifest's identity) that have no rows yet: a run that
    was stopped, or is still going. Columns ``simulator, method, seed, budget, n_obs``; empty
    when the grid cannot be rebuilt (no manifest, or a registry that no longer has its
    entries)."""
    from .plan import PRESETS, make_plan

    key = ["simulator", "method", "seed", "budget", "n_obs"]
    identity = read_manifest(run_dir).get("identity")
    try:
        preset = identity["preset"]
        ladder = identity.get("n_obs")
        if ladder is not None and tuple(ladder) == PRESETS[preset].n_obs:
            ladder = None  # the preset's own ladder (an explicit one is strict)
        plan = make_plan(
            list(identity["simulators"]), list(identity["methods"]), seeds=identity["seeds"],
            budgets=identity["budgets"], preset=preset, device="cpu",
            simulator_options=identity["simulators"], method_options=identity["methods"],
            n_obs=ladder, c2st=identity["scoring"].get("c2st", "fast"),
        )  # fmt: skip
    except (KeyError, TypeError, ValueError):
        return pd.DataFrame(columns=key)
    done = set(map(tuple, rows[key].drop_duplicates().astype(object).to_numpy()))
    planned = [(c.simulator, c.method, c.seed, c.budget, c.n_obs) for c in plan.cells]
    return pd.DataFrame([c for c in planned if c not in done], columns=key)


def _not_run_text(missing: pd.DataFrame) -> list[str]:
    if missing.empty:
        return []
    lines = [f"Cells of this run's grid not run yet ({len(missing)}; re-running its command "
             "runs them):", "", "| simulator | method | cells |", "|---|---|---|"]  # fmt: skip
    for (sim, method), g in missing.groupby(["simulator", "method"], sort=False):
        cells = ", ".join(f"{s}@{b}" for s, b in g[["seed", "budget"]].to_numpy()[:6])
        more = f" … ({len(g)})" if len(g) > 6 else ""
        lines.append(f"| {sim} | {method} | {cells}{more} |")
    return [*lines, ""]


def _score_sections(table: pd.DataFrame, rows: pd.DataFrame) -> list[str]:
    """One marked table per score and budget (the long tables after the summary)."""
    from .scoring import SCORES

    described = {s.key: s.description for s in SCORES}
    lines = []
    for budget in sorted(table.budget.unique()):
        keys = table[table.budget == budget][["space", "metric", "direction"]].drop_duplicates()
        for space, metric, direction in keys.itertuples(index=False):
            about = described.get((space, metric), "")
            lines += [f"### {space} {metric} (budget {budget}, {direction} is better)", "",
                      *([about, ""] if about else []),
                      _markdown(score_table(table, rows, (space, metric), budget)), ""]  # fmt: skip
    return lines


def write_report(run_dir: str | Path, *, cell_plots: bool = False) -> Path:
    """Writes ``report.md`` and ``plots/*.png`` for a run directory; returns the report path.

    Arguments:
        run_dir: The run directory.
        cell_plots: Also draw one diagnostic figure per cell of the first seed (training
            curves, marginals, predictive): slow on large runs, off by default.

    Raises:
        ResultsError: If the directory has no readable results.
    """
    from .plots import plot_run

    run_dir = Path(run_dir)
    rows = load_results(run_dir)
    table = summarize(rows)
    budget = _middle(rows, None)
    cells = summary_cells(rows)
    counts = cells.status.value_counts().to_dict()
    missing = not_run(run_dir, rows)
    pending = f"; {len(missing)} cells of its grid not run yet" if len(missing) else ""
    lines = [f"# avo_bench report: {run_dir.name}", "",
             f"{len(cells)} cells ({', '.join(f'{v} {k}' for k, v in counts.items())}{pending}), "
             f"seeds {sorted(int(s) for s in rows.seed.unique())}; version {rows.version.iloc[0]}, commit "
             f"{rows.git_commit.iloc[0] or 'unknown'}.", "", *_provenance(run_dir, rows), "",
             READING, "", "## Headline", "", headline(rows, budget, table), "",
             "## Who wins", "", who_wins(table, rows), "", "## Ranks across tasks", "",
             ranks(table, rows), "## Calibration", "", *_calibration(table, rows, budget),
             "## Cost", ""]  # fmt: skip
    for b in sorted(rows.budget.unique()):
        lines += [f"Fit wall time [interval] / simulations used (budget {b}):", "",
                  _markdown(cost(rows, b)), ""]  # fmt: skip
    lines += sbibm_section(rows)
    lines += ["## Cells not ok", "", *_not_run_text(missing), _problems(rows), "",
              "## The floor", "", FLOOR, "",
              "## Every score", "", *_score_sections(table, rows)]  # fmt: skip
    names = plot_run(run_dir, rows, table, cell_plots=cell_plots)
    lines += ["## Plots", ""] + [f"![{n}](plots/{n})" for n in names]
    if not names:
        lines.append("(no plots: install matplotlib, `pip install 'avo-bench[plot]'`)")
    path = run_dir / "report.md"
    atomic_write(path, lambda f: f.write("\n".join(lines).encode() + b"\n"))
    return path


def _calibration(table: pd.DataFrame, rows: pd.DataFrame, budget: int) -> list[str]:
    """The calibration section: θ* coverage and the ``calibration`` scores at ``budget``."""
    from .scoring import SCORES

    lines = []
    coverage = coverage_table(rows, budget)
    if len(coverage):
        lines += [f"θ* inside the returned distribution's central 50 % / 90 % region (budget "
                  f"{budget}; cells): a calibrated method has θ* inside about half / nine "
                  "tenths of the time.", "", _markdown(coverage), ""]  # fmt: skip
    part = table[(table.space == CALIBRATION) & (table.budget == budget)]
    for spec in SCORES:
        if spec.space != CALIBRATION or spec.direction not in stats.DIRECTIONS:
            continue
        if not ((part.metric == spec.metric) & (part.n > 0)).any():
            continue
        out = score_table(table, rows, spec.key, budget)
        out = out[~out.isin(["n/a", ""]).all(axis=1)]  # methods it does not apply to
        lines += [f"{spec.metric} (budget {budget}, {spec.direction} is better"
                  + (f", ideal {spec.ideal:g}" if spec.direction == "nearest" else "")
                  + f"): {spec.description}", "", _markdown(out), ""]  # fmt: skip
    return lines or ["No calibration scores in this run.", ""]
