"""Regenerates the README's reference-results tables from ``results/reference``.

Two blocks of ``README.md`` are this script's output: the headline tables (from
"Parameter space (budget ...)" up to "Reading the tables", :func:`avo_bench.report.headline`)
and the mean-rank table (the block that starts "| method | parameter space, same tasks |",
:func:`avo_bench.summary.mean_ranks` per space, on the tasks every method finished and on every
task a method ran). A method with a pair still listed in the run's ``PENDING.md`` is left out
of the same-task columns (it would shrink every method's same-task set to the tasks it
finished) and ranked on every task it ran. Run it after adding reference cells, then update the
prose around the tables (``tests/test_reference_results.py`` checks both blocks)::

    python scripts/readme_results.py          # rewrite README.md in place
    python scripts/readme_results.py --check  # exit 1 if README.md is stale
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from avo_bench.report import headline
from avo_bench.results import load_results
from avo_bench.summary import finished_tasks, headline_scores, mean_ranks, summarize

ROOT = Path(__file__).resolve().parents[1]
HEAD_START = "Parameter space (budget "
HEAD_END = "Reading the tables ("
RANK_START = "| method | parameter space, same tasks |"


def pending_methods(run_dir: str | Path) -> tuple[str, ...]:
    """The methods with a ``| `simulator` | `method` | reason |`` row in ``PENDING.md``."""
    path = Path(run_dir) / "PENDING.md"
    found = []
    for line in path.read_text().splitlines() if path.exists() else []:
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0] not in ("simulator", "---") and cells[1] not in found:
            found.append(cells[1])
    return tuple(found)


def _column(ranked: pd.DataFrame, finished: bool) -> pd.Series:
    if ranked.empty:
        return pd.Series(dtype=object)
    chosen = [c for c in ranked.columns if ("all finished" in c) == finished]
    return ranked[chosen[-1]] if chosen else pd.Series(dtype=object)


def rank_table(rows: pd.DataFrame, exclude_same: tuple[str, ...] = ()) -> str:
    """The README's rank table: per space, same-task and every-task mean ranks."""
    table = summarize(rows)
    data_keys, parameter_keys = headline_scores()
    kept = ~rows.method.isin(exclude_same)
    same_table = table[~table.method.isin(exclude_same)]
    finished = finished_tasks(rows[kept])
    columns = {}
    for name, keys in (("parameter space", parameter_keys), ("data space", data_keys)):
        columns[f"{name}, same tasks"] = _column(mean_ranks(same_table, keys, finished), True)
        columns[f"{name}, every task it ran"] = _column(mean_ranks(table, keys, None), False)
    frame = pd.DataFrame(columns)
    key = frame["parameter space, same tasks"].str.extract(r"^([\d.]+)")[0].astype(float)
    frame = frame.assign(_key=key).sort_values("_key", na_position="last").drop(columns="_key")
    frame = frame.fillna("").replace("", "–")
    lines = ["| method | " + " | ".join(frame.columns) + " |",
             "|---|" + "---|" * len(frame.columns)]  # fmt: skip
    for method, entries in frame.iterrows():
        lines.append(f"| {method} | " + " | ".join(entries) + " |")
    return "\n".join(lines)


def rewrite(text: str, rows: pd.DataFrame, exclude_same: tuple[str, ...] = ()) -> str:
    """``text`` (the README) with both blocks regenerated from ``rows``."""
    start, end = text.index(HEAD_START), text.index(HEAD_END)
    text = text[:start] + headline(rows).strip() + "\n\n" + text[end:]
    start = text.index(RANK_START)
    stop = text.find("\n\n", start)
    stop = len(text) if stop < 0 else stop
    return text[:start] + rank_table(rows, exclude_same) + text[stop:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default=str(ROOT / "results" / "reference"))
    parser.add_argument("--readme", default=str(ROOT / "README.md"))
    parser.add_argument("--check", action="store_true", help="only report whether it is stale")
    args = parser.parse_args(argv)
    readme = Path(args.readme)
    old = readme.read_text()
    new = rewrite(old, load_results(args.run), pending_methods(args.run))
    if args.check:
        print("README.md is up to date" if new == old else "README.md is stale")
        return int(new != old)
    if new != old:
        readme.write_text(new)
    print(f"{readme}: {'rewritten' if new != old else 'unchanged'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
