"""Command line: ``python -m avo_bench <command>``.

The CLI only parses arguments, builds configs and calls the library. Unknown commands or
options exit with status 2 and a usage message (argparse's convention).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from simulators import SIMULATORS, simulator_options

__all__ = ["main"]


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m avo_bench",
        description="Benchmark likelihood-free inference methods on stochastic simulators.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    lister = commands.add_parser("list", help="list registered simulators and methods")
    lister.add_argument("-v", "--verbose", action="store_true", help="also show options")
    lister.set_defaults(handler=_list)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)
