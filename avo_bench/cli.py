"""Command line: ``python -m avo_bench <command>``.

The CLI only parses arguments, builds configs and calls the library. Exit status: 0 when
every cell is ``ok`` or ``n/a``; 1 when cells of the run failed (``run``: listed at the end,
one line per distinct error) or, for ``compare``, when rows differ; 2 for unknown commands or
options and invalid names or values, with a message naming the valid choices (argparse's
convention); 130 when interrupted.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import warnings
from collections.abc import Sequence

from simulators import SIMULATORS, simulator_options

__all__ = ["main"]

RUN_KEYS = ("simulators", "methods", "seeds", "budgets", "n_obs", "preset", "c2st", "order",
            "device", "out", "jobs", "executor", "scheduler", "threads", "cell_timeout", "quiet",
            "retry_errors", "replace_methods", "report")  # fmt: skip
PLAIN = ("preset", "c2st", "order", "device", "out", "jobs", "executor", "scheduler", "threads",
         "cell_timeout")  # fmt: skip


def _list(args: argparse.Namespace) -> int:
    from avo_bench.methods import METHODS

    print("Simulators:")
    for name, cls in sorted(SIMULATORS.items()):
        sim = cls()
        print(f"  {name:<12} kind={sim.kind:<10} theta=({', '.join(sim.parameter_names)})")
        print(f"  {'':<12} x_shape={sim.x_shape}, n_obs={sim.n_obs}: {sim.description}")
        if args.verbose:
            options = ", ".join(f"{k}={v!r}" for k, v in simulator_options(name).items())
            print(f"  {'':<12} options: {options}")
    print("Methods:")
    if not METHODS:
        print("  (none registered)")
    for name, method in sorted(METHODS.items()):
        status = "" if method.available() else f"  [unavailable: {method.install_hint}]"
        print(f"  {name:<14} {method.description}{status}")
    return 0


def _literal(text: str) -> object:
    """A TOML literal (``5``, ``0.1``, ``true``, ``[1, 2]``, ``"s"``), else the raw string."""
    from avo_bench.formats import toml

    tomllib = toml()
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _assignments(items: Sequence[str], flag: str) -> dict[str, dict]:
    table: dict[str, dict] = {}
    for item in items:
        name, dot, rest = item.partition(".")
        key, eq, value = rest.partition("=")
        if not (dot and eq and name and key):
            raise ValueError(f"{flag} expects NAME.KEY=VALUE, got {item!r}")
        table.setdefault(name, {})[key.strip()] = _literal(value.strip())
    return table


def _tokens(values: Sequence[str] | None) -> list[str] | None:
    if values is None:
        return None
    return [t for v in values for t in v.replace(",", " ").split()]


def _integer(token: str, what: str) -> int:
    try:
        return int(token.replace("_", ""))
    except ValueError:
        pass
    try:
        value = float(token)
    except ValueError:
        value = None
    if value is None or not value.is_integer():
        raise ValueError(f"bad {what} {token!r}: expected an integer")
    return int(value)


def _seeds(values: list[str]) -> int | list[int]:
    tokens = _tokens(values)
    if len(tokens) == 1 and "," not in values[0]:
        return _integer(tokens[0], "seed count")
    return [_integer(t, "seed") for t in tokens]


def _cores() -> int:
    """The cores this process may use (its CPU affinity where the OS tells it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _run_options(args: argparse.Namespace) -> dict:
    from avo_bench.formats import load_toml

    data = load_toml(args.config) if args.config else {}
    options = dict(data.get("run", {}))
    unknown = sorted(set(options) - set(RUN_KEYS))
    if unknown:
        raise ValueError(f"config [run]: unknown key(s) {unknown}; valid keys: {list(RUN_KEYS)}")
    cli = {
        "simulators": _tokens(args.simulators),
        "methods": _tokens(args.methods),
        "seeds": _seeds(args.seeds) if args.seeds else None,
        "budgets": [_integer(t, "budget") for t in _tokens(args.budgets)]
        if args.budgets
        else None,
        "n_obs": [_integer(t, "n_obs") for t in _tokens(args.n_obs)] if args.n_obs else None,
        **{k: getattr(args, k) for k in PLAIN},
        "replace_methods": _tokens(args.replace_methods),
        "quiet": True if args.quiet else None,
        "retry_errors": True if args.retry_errors else None,
        "report": False if args.no_report else None,
    }
    options.update({k: v for k, v in cli.items() if v is not None})
    methods = {k: dict(v) for k, v in data.get("methods", {}).items()}
    for name, values in _assignments(args.set, "--set").items():
        methods.setdefault(name, {}).update(values)
    sims = {k: dict(v) for k, v in data.get("simulators", {}).items()}
    for name, values in _assignments(args.option, "--option").items():
        sims.setdefault(name, {}).update(values)
    return {**options, "method_options": methods, "simulator_options": sims}


def _run(args: argparse.Namespace) -> int:
    import torch

    from avo_bench.runner import CellErrors, failure_summary, run
    from avo_bench.summary import cells as summary_cells

    options = _run_options(args)
    options.setdefault("quiet", False)
    options.setdefault("jobs", _cores())  # one worker per core, one torch thread each
    options["command"] = "python -m avo_bench " + shlex.join(args.argv)
    # This process runs the cells of the in-process executor: pin its torch threads like the
    # workers' (default 1; torch's default pool stalls under contention on small machines).
    torch.set_num_threads(options.get("threads") or 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CellErrors)  # printed below instead
        rows = run(**options)
    cells = summary_cells(rows)
    counts = ", ".join(f"{v} {k}" for k, v in cells.status.value_counts().items())
    out = options.get("out") or f"results/{options.get('preset', 'quick')}"
    print(f"{len(cells)} cells ({counts}); results in {out}/results.csv")
    if options.get("report", True):
        print(f"report: {out}/report.md")
    summary = failure_summary(rows)
    if summary:
        print(f"{summary}\nre-run them with --retry-errors", file=sys.stderr)
        return 1
    return 0


def _report(args: argparse.Namespace) -> int:
    from avo_bench.report import write_report

    try:
        print(write_report(args.dir, cell_plots=args.cell_plots))
    except OSError as error:  # e.g. a read-only directory: a usage error, not a crash
        raise ValueError(f"cannot write the report into {args.dir}: {error}") from None
    return 0


def _compare(args: argparse.Namespace) -> int:
    from avo_bench.results import compare

    table = compare(args.dir_a, args.dir_b)
    rel = table["rel_diff"].abs().fillna(float("inf"))
    significant = (table["change"] != "same") & (
        (table["change"] != "changed") | (rel > args.rtol)
    )
    changed = table[significant]
    print(f"{len(table)} rows compared: {len(changed)} differ (rtol={args.rtol:g})")
    if not changed.empty:
        print(changed.to_string(index=False, max_rows=200))
    return 1 if len(changed) else 0


def _run_parser(commands) -> None:
    from avo_bench.executors import EXECUTORS
    from avo_bench.metrics import C2ST_VARIANTS
    from avo_bench.plan import ORDERS, PRESETS

    presets = "; ".join(f"{k}: {p.description}" for k, p in PRESETS.items())
    p = commands.add_parser(
        "run", help="run the benchmark grid (default: every simulator × method)",
        description="Run simulators × methods × seeds × budgets; write tidy rows to "
        "OUT/results.csv as cells finish, then a report. Re-running resumes.",
    )  # fmt: skip
    p.add_argument("--config", metavar="FILE", help="TOML file: [run] keys as these flags "
                   "(underscored), [methods.NAME] config keys, [simulators.NAME] options; "
                   "flags override it")  # fmt: skip
    p.add_argument("--simulators", nargs="+", metavar="NAME", help="simulators (default all)")
    p.add_argument("--methods", nargs="+", metavar="NAME", help="methods (default all)")
    p.add_argument("--seeds", nargs="+", metavar="N", help="a count (3 = seeds 0,1,2) or a "
                   "list (0,5,7 or 5,); default 1")  # fmt: skip
    p.add_argument("--budgets", nargs="+", metavar="B", help="simulation budgets "
                   "(e.g. 1000,10000); default: the preset's")  # fmt: skip
    p.add_argument("--n-obs", nargs="+", metavar="N", help="numbers of observations: every "
                   "task with an iid observed set runs at each (e.g. 1,10,100,1000); default: "
                   "the preset's ladder (iid), else each task's own n_obs")  # fmt: skip
    p.add_argument("--preset", choices=list(PRESETS), help=f"default quick. {presets}")
    p.add_argument("--c2st", choices=list(C2ST_VARIANTS), help="parameter-space C2ST variant "
                   "(default: the preset's; sbibm: sbibm's classifier, several times the cost "
                   "of fast)")  # fmt: skip
    p.add_argument("--order", choices=list(ORDERS), help="which cells run first: simulators "
                   "(default: simulator-major) or methods (method-major, e.g. an extended "
                   "grid's cheap methods before its expensive ones); results do not depend on "
                   "it, and a run directory resumes in either order")  # fmt: skip
    p.add_argument("--device", help="cpu (default) or cuda[:N]")
    p.add_argument("--out", metavar="DIR", help="run directory (default results/PRESET)")
    p.add_argument(
        "--jobs",
        type=int,
        metavar="N",
        help="parallel workers (default: the cores available, one torch thread each)",
    )
    p.add_argument("--executor", choices=list(EXECUTORS), help="default: inprocess for "
                   "--jobs 1, processes for more, dask with --scheduler")  # fmt: skip
    p.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler, tcp://host:port")
    p.add_argument("--threads", type=int, metavar="N", help="torch threads per worker (def. 1)")
    limits = ", ".join(f"{k} {p.cell_timeout:g}" for k, p in PRESETS.items())
    p.add_argument("--cell-timeout", type=float, metavar="SECONDS", help="wall-time limit of "
                   "one cell (task, fit, scoring); a cell past it is killed and recorded as "
                   f"timeout. Default per preset ({limits}); 0: no limit (in-process cells then "
                   "run in this process)")  # fmt: skip
    p.add_argument("--set", action="append", default=[], metavar="METHOD.KEY=VALUE",
                   help="method config override, e.g. avo.gamma=5 (repeatable)")  # fmt: skip
    p.add_argument("--option", action="append", default=[], metavar="SIM.KEY=VALUE",
                   help="simulator option, e.g. gaussian.dim=3 (repeatable)")  # fmt: skip
    p.add_argument("--retry-errors", action="store_true", help="re-run cells that failed "
                   "(error or timeout)")  # fmt: skip
    p.add_argument("--replace-methods", nargs="+", metavar="NAME", help="delete these methods' "
                   "rows and artifacts in --out and run their cells again with their config as "
                   "given now (after a method changed); the manifest records the old configs. "
                   "To resume an interrupted replacement, run again without this flag")  # fmt: skip
    p.add_argument("--no-report", action="store_true", help="skip the report at the end")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(handler=_run)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m avo_bench",
        description="Benchmark likelihood-free inference methods on stochastic simulators.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    lister = commands.add_parser("list", help="list registered simulators and methods")
    lister.add_argument("-v", "--verbose", action="store_true", help="also show options")
    lister.set_defaults(handler=_list)
    _run_parser(commands)
    report = commands.add_parser("report", help="write report.md and plots for a run directory")
    report.add_argument("dir", metavar="DIR")
    report.add_argument("--cell-plots", action="store_true", help="also draw the per-cell "
                        "diagnostics of seed 0 (needs the run's cells/ arrays; slower)")  # fmt: skip
    report.set_defaults(handler=_report)
    comp = commands.add_parser("compare", help="differences between two runs (exit 1 if any)")
    comp.add_argument("dir_a", metavar="DIR_A")
    comp.add_argument("dir_b", metavar="DIR_B")
    comp.add_argument("--rtol", type=float, default=0.0, help="ignore relative changes below")
    comp.set_defaults(handler=_compare)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.argv = argv
    try:
        return args.handler(args)
    except ValueError as error:  # invalid input: usage-style error, status 2
        print(f"{parser.prog} {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; re-run the same command to resume", file=sys.stderr)
        return 130
