"""Per-score statistics of a run: means with intervals, winners, floors, ranks.

:func:`summarize` turns a run's tidy rows into one row per (task, budget, score, method): the
mean over seeds with its 95 % bootstrap interval, whether the method is the best or not
significantly worse than the best (:mod:`avo_bench.stats`), its floor with an interval and
whether it is *at the floor*. Score directions, ideals and the headline order are read from
:data:`avo_bench.scoring.SCORES` (rows of scores no longer in the table keep their recorded
direction and ideal).

A *task* is a simulator, or ``simulator (n_obs=N)`` when the run has several ``n_obs``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as sps

from . import stats
from .results import KEY

__all__ = [
    "CALIBRATION",
    "CELL",
    "GROUP",
    "at_floor",
    "cells",
    "directions",
    "finished_tasks",
    "headline_scores",
    "mean_ranks",
    "summarize",
    "tasks",
]

GROUP = ["task", "budget", "space", "metric"]
CELL = [k for k in KEY if k not in ("space", "metric")]  # the columns that identify a cell
CALIBRATION = "calibration"  # the space of the calibration scores (the report's own section)


def cells(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per cell with the cell's status: ``ok`` if any of its scores is ok, else its
    failure (``error``/``timeout``), else ``n/a`` (a cell whose first score is undefined for
    its task, e.g. W1 of one observation, is still ``ok``)."""
    rank = rows.status.map({"ok": 0, "error": 1, "timeout": 1}).fillna(2)
    first = rows.assign(_rank=rank).sort_values("_rank", kind="stable").drop_duplicates(CELL)
    return first.sort_index().drop(columns="_rank")


def tasks(rows: pd.DataFrame) -> pd.Series:
    """The task label of each row: the simulator, with ``n_obs`` when a run has several."""
    if "n_obs" not in rows or rows.groupby("simulator")["n_obs"].nunique().max() <= 1:
        return rows["simulator"].astype(str)
    many = rows.groupby("simulator")["n_obs"].transform("nunique") > 1
    label = rows["simulator"] + " (n_obs=" + rows["n_obs"].astype(str) + ")"
    return label.where(many, rows["simulator"]).astype(str)


def directions(rows: pd.DataFrame) -> dict[tuple[str, str], tuple[str, float]]:
    """``(space, metric) -> (direction, ideal)``: the score table's, else the rows'."""
    from .scoring import SCORES

    sense = rows.drop_duplicates(["space", "metric"]).set_index(["space", "metric"])
    out = {key: (str(r.direction), float(r.ideal)) for key, r in sense.iterrows()}
    out.update({s.key: (s.direction, s.ideal) for s in SCORES})
    return out


def headline_scores() -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
    """Data-space and parameter-space headline scores in order of preference (the ``headline``
    entries of :data:`~avo_bench.scoring.SCORES`)."""
    from .scoring import SCORES

    ranked = sorted((s for s in SCORES if s.headline), key=lambda s: s.headline)
    data = tuple(s.key for s in ranked if s.space == "data")
    return data, tuple(s.key for s in ranked if s.space != "data")


def summarize(rows: pd.DataFrame, *, seed: int = 0) -> pd.DataFrame:
    """One row per (task, budget, space, metric, method) with statistics over seeds.

    Returns:
        Columns :data:`GROUP`, ``method``, ``direction``, ``ideal``, ``cells`` (seeds run),
        ``n`` (seeds ok), ``mean``, ``low``, ``high`` (95 % bootstrap interval), ``best``,
        ``p`` (one-sided Wilcoxon signed-rank p-value of being worse than the best),
        ``tied`` (best or not significantly worse), ``floor``, ``floor_low``,
        ``floor_high`` (the floor's mean and interval over seeds) and ``at_floor``.
    """
    rows = rows.assign(task=tasks(rows))
    sense = directions(rows)
    ok = rows[(rows.status == "ok") & np.isfinite(rows.value)]
    keys = [*GROUP, "method"]
    per = ok.groupby(keys, sort=True)
    values = [g.to_numpy() for _, g in per["value"]]
    floors = [g.to_numpy() for _, g in per["floor"]]
    both = stats.bootstrap_means(values + floors, seed=seed)
    table = pd.DataFrame(both[: len(values)], columns=["mean", "low", "high"],
                         index=per.size().index)  # fmt: skip
    table[["floor", "floor_low", "floor_high"]] = both[len(values) :]
    table["n"] = per.size()
    table["cells"] = rows.groupby(keys).size().reindex(table.index)
    table = table.reset_index()
    table["direction"] = [sense[k][0] for k in zip(table.space, table.metric, strict=True)]
    table["ideal"] = [sense[k][1] for k in zip(table.space, table.metric, strict=True)]
    wide = ok.groupby([*GROUP, "seed", "method"])["value"].mean().unstack("method")
    marks = [
        _marks(part.droplevel(GROUP).dropna(axis=1, how="all"), group, *sense[group[2:]])
        for group, part in wide.groupby(level=GROUP, sort=True)
    ]
    table = table.merge(pd.concat(marks), on=keys, how="left") if marks else table
    for column, default in (("best", False), ("tied", False), ("p", np.nan)):
        if column not in table:
            table[column] = default
    table["best"] = table["best"].fillna(False).astype(bool)
    table["tied"] = table["tied"].fillna(False).astype(bool)
    table["at_floor"] = at_floor(table)
    return table


def _marks(wide: pd.DataFrame, group: tuple, direction: str, ideal: float) -> pd.DataFrame:
    """Best and not-significantly-worse marks of the methods of one (task, budget, score);
    ``wide``: seeds × methods of values.

    The best is the best mean among the methods that finished the most seeds of the group: a
    method with fewer finished seeds (failed or not run yet) is compared with it on the seeds
    both finished, but never crowned on fewer seeds than its competitors (a single lucky seed
    would otherwise beat three honest ones)."""
    out = pd.DataFrame({"method": list(wide.columns)})
    out[GROUP] = list(group)
    if direction not in stats.DIRECTIONS:  # e.g. calibration levels: no better or worse
        return out.assign(best=False, tied=False, p=np.nan)
    bad = pd.DataFrame(stats.badness(wide.to_numpy(), direction, ideal), wide.index, wide.columns)
    finished = bad.notna().sum()
    complete = finished[finished == finished.max()].index  # only these may be ★ (see below)
    best = bad.mean()[complete].idxmin()
    diff = bad.drop(columns=best).sub(bad[best], axis=0)
    diff = diff[bad[best].notna()]
    p = pd.Series(1.0, index=diff.columns)
    varied = (diff.fillna(0) != 0).any()
    if varied.any():
        with np.errstate(all="ignore"):
            test = sps.wilcoxon(diff.loc[:, varied].to_numpy(), alternative="greater",
                                zero_method="zsplit", nan_policy="omit", axis=0)  # fmt: skip
        p[varied] = np.nan_to_num(np.atleast_1d(test.pvalue), nan=1.0)
    p[best] = np.nan
    out["p"] = out.method.map(p)
    out["best"] = out.method == best
    out["tied"] = out.best | (out.p >= stats.ALPHA)
    return out


def at_floor(table: pd.DataFrame) -> pd.Series:
    """Whether each mean is at its floor: within the floor's interval over seeds, or better
    (with one seed, at least as good as the floor). Never for scores without a floor or a
    direction."""
    low = table.floor_low.fillna(table.floor)
    high = table.floor_high.fillna(table.floor)
    mean, ideal = table["mean"], table["ideal"]
    near = (mean - ideal).abs() <= np.maximum((low - ideal).abs(), (high - ideal).abs())
    result = np.select(
        [table.direction == "lower", table.direction == "higher", table.direction == "nearest"],
        [mean <= high, mean >= low, near],
        default=False,
    )
    return pd.Series(result, index=table.index) & table.floor.notna() & table["mean"].notna()


def finished_tasks(rows: pd.DataFrame) -> dict[int, set[str]]:
    """Per budget, the tasks on which every method of the run finished every seed or does not
    apply: each method has one ``ok`` (or ``n/a``) cell per seed of the run there, none
    missing, failed or timed out. Ranks over these tasks compare every method on the same
    tasks (a method still pending or failing on a task would otherwise be ranked only on the
    others, where its competitors may be ranked on harder ones too)."""
    cell = cells(rows).assign(task=tasks(rows))
    seeds = cell.seed.nunique()
    out = {}
    for budget, part in cell.groupby("budget"):
        done = part.status.isin(["ok", "n/a"])
        count = done.groupby([part.task, part.method]).sum().unstack("method")
        count = count.reindex(columns=part.method.unique()).fillna(0)
        out[budget] = set(count.index[(count == seeds).all(axis=1)])
    return out


def mean_ranks(
    table: pd.DataFrame,
    keys: tuple[tuple[str, str], ...],
    finished: dict[int, set[str]] | None = None,
) -> pd.DataFrame:
    """Mean rank of each method across tasks per budget, on each task's first score of
    ``keys`` that has values (e.g. the headline parameter-space scores).

    Arguments:
        table: :func:`summarize`'s table.
        keys: The scores to rank on, in order of preference.
        finished: Optional :func:`finished_tasks`: then a second column per budget ranks on
            only those tasks (every method finished them or does not apply).

    Returns:
        Methods (index) × budgets (columns) of ``"mean rank (tasks)"`` strings, sorted by the
        mean rank at the largest budget (on the finished tasks first, where given).
    """
    columns, order = {}, None
    for budget, part in table.groupby("budget"):
        means, sense = {}, {}
        for task, t in part.groupby("task"):
            has = {
                k for k in keys if ((t.space == k[0]) & (t.metric == k[1]) & t["n"].gt(0)).any()
            }
            key = next((k for k in keys if k in has), None)
            if key is None:
                continue
            chosen = t[(t.space == key[0]) & (t.metric == key[1])]
            means[task] = chosen.set_index("method")["mean"]
            sense[task] = (chosen.direction.iloc[0], float(chosen.ideal.iloc[0]))
        if not means:
            continue
        means = pd.DataFrame(means).T
        ranks = stats.mean_ranks(means, sense)
        columns[f"budget {budget}"] = _rank_text(ranks)
        order = ranks.index
        if finished is not None:
            common = [t for t in means.index if t in finished.get(budget, set())]
            name = f"budget {budget}, the {len(common)} tasks all finished"
            if common:
                same = stats.mean_ranks(means.loc[common], sense)
                same = same[same.tasks > 0]
                columns[name] = _rank_text(same)
                order = same.index.append(order.difference(same.index, sort=False))
            else:
                columns[name] = pd.Series(dtype=object)
    if not columns:
        return pd.DataFrame()
    return pd.DataFrame(columns).reindex(order).fillna("")


def _rank_text(ranks: pd.DataFrame) -> pd.Series:
    """``"mean rank (tasks)"`` per method of :func:`avo_bench.stats.mean_ranks`' table."""
    return pd.Series([f"{r.mean_rank:.2f} ({r.tasks})" for r in ranks.itertuples()], ranks.index)


def cells_of(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per cell (the first row of each)."""
    return rows.drop_duplicates(CELL)
