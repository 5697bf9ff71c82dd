"""The report's comparison with published results: our C2ST beside sbibm's on its ten tasks.

For every sbibm task in a run (a simulator with entries in
:data:`avo_bench.published.SBIBM_C2ST`), one table: per method and budget, our C2ST (the
``posterior c2st`` score) as mean ± sd (number of observations) over the run's seeds (seed
``k`` is sbibm's observation ``k + 1``), beside sbibm's published mean ± sd over its
observations 1-10 and over the observations of our cells
(:func:`avo_bench.published.sbibm_published_observations`), with the C2ST variant that scored
ours.

References:
    Lueckmann, Boelts, Greenberg, Goncalves, Macke, "Benchmarking Simulation-Based Inference",
    AISTATS 2021, https://arxiv.org/abs/2101.04653
"""

from __future__ import annotations

import pandas as pd

from .published import (
    SBIBM_C2ST,
    SBIBM_C2ST_SOURCES,
    SBIBM_LABELS,
    sbibm_published_observations,
)

__all__ = ["published_table", "sbibm_section"]

SPACE, METRIC = "posterior", "c2st"
SBIBM_TASKS = frozenset(task for task, _, _ in SBIBM_C2ST)
#: Tasks whose standard observations share sbibm's θ* but not its data (today's torch draws
#: the counts and mixture labels differently; the distractors are drawn another way): see
#: :mod:`simulators._sbibm`. Their "same observations" are the same θ*, not the same x.
OTHER_DATA = frozenset({"gaussian_mixture", "sir", "slcp_distractors"})


def _cell(mean: float, sd: float, n: int) -> str:
    if n == 0:
        return "-"
    return f"{mean:.3f} ± {sd:.3f} ({n})" if n > 1 else f"{mean:.3f} (1)"


def _ours(part: pd.DataFrame) -> tuple[str, str]:
    """Our ``mean ± sd (n)`` over the ok cells, and what else happened to the others."""
    ok = part[part.status == "ok"].value.astype(float)
    text = _cell(ok.mean(), ok.std(ddof=1), len(ok))
    others = part[part.status != "ok"].status.value_counts()
    note = ", ".join(f"{n} {status}" for status, n in others.items())
    return text, note


def _same(task: str, method: str, budget: int, part: pd.DataFrame) -> str:
    """sbibm's ``mean ± sd (n)`` on the observations of our ok cells (seed k: observation k + 1)."""
    values = sbibm_published_observations(task, method, budget)
    seeds = part[part.status == "ok"].seed.astype(int).unique()
    same = pd.Series([values[s + 1] for s in seeds if s + 1 in values], dtype=float)
    return _cell(same.mean(), same.std(ddof=1), len(same))


def published_table(rows: pd.DataFrame, task: str) -> pd.DataFrame:
    """Ours beside sbibm's published C2ST on ``task``: one row per (method, budget) of the run.

    Arguments:
        rows: Result rows (:data:`avo_bench.results.COLUMNS`) of any run.
        task: An sbibm task name.

    Returns:
        Columns ``method``, ``budget``, ``ours``, ``sbibm``, ``sbibm, same observations``
        (sbibm's values on the observations our ok cells ran), ``variant``, ``not ok`` (``-``
        where sbibm reports no value for the method or budget).
    """
    mine = rows[(rows.simulator == task) & (rows.space == SPACE) & (rows.metric == METRIC)]
    mine = mine[mine.n_obs == 1] if "n_obs" in mine else mine
    table = []
    for (method, budget), part in mine.groupby(["method", "budget"], sort=False):
        ours, note = _ours(part)
        published = SBIBM_C2ST.get((task, method, int(budget)))
        variants = sorted(str(v) for v in part.variant.dropna().unique() if str(v))
        table.append({"method": method, "budget": int(budget), "ours": ours,
                      "sbibm": _cell(*published) if published else "-",
                      "sbibm, same observations": _same(task, method, int(budget), part),
                      "variant": ", ".join(variants) or "-", "not ok": note or "-"})  # fmt: skip
    columns = ["method", "budget", "ours", "sbibm", "sbibm, same observations", "variant",
               "not ok"]  # fmt: skip
    return pd.DataFrame(table, columns=columns).sort_values(["method", "budget"], kind="stable")


def _markdown(table: pd.DataFrame) -> list[str]:
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    return lines + ["| " + " | ".join(map(str, r)) + " |" for r in table.itertuples(index=False)]


def sbibm_section(rows: pd.DataFrame) -> list[str]:
    """The report's "Published results (sbibm)" section as markdown lines; ``[]`` when the run
    has no sbibm task with a C2ST score."""
    tasks = [t for t in dict.fromkeys(rows.simulator) if t in SBIBM_TASKS]
    scored = rows[(rows.space == SPACE) & (rows.metric == METRIC)]
    tasks = [t for t in tasks if (scored.simulator == t).any()]
    if not tasks:
        return []
    lines = ["## Published results (sbibm)", "",
             "C2ST against the reference posterior (0.5: indistinguishable), mean ± sd (number "
             "of observations): ours over this run's seeds (seed k is sbibm's observation "
             "k + 1), sbibm's over its observations 1-10 (Lueckmann et al. 2021) and over the "
             "observations of our cells (a run of a few observations compares with these: the "
             "spread between observations is often larger than between methods). Labels: "
             + "; ".join(f"{m} = {label}" for m, label in SBIBM_LABELS.items()) + ".", ""]  # fmt: skip
    for task in tasks:
        table = published_table(rows, task)
        sources = sorted({SBIBM_C2ST_SOURCES[task, m] for m in table.method
                          if (task, m) in SBIBM_C2ST_SOURCES})  # fmt: skip
        lines += [f"### {task}", "", *_markdown(table), ""]
        lines += [f"Published values: {'; '.join(sources)}.", ""] if sources else []
        if task in OTHER_DATA:
            lines += [f"{task}'s observations here have sbibm's θ* but not its data (see "
                      "`simulators/_sbibm.py`): the same-observation column compares runs on "
                      "the same θ*, with other observed x.", ""]  # fmt: skip
    return lines
