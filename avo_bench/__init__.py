"""avo_bench: a benchmark of likelihood-free inference on non-differentiable simulators.

The Python API for papers::

    import avo_bench

    rows = avo_bench.run(methods=["prior"], seeds=3, budgets=[1000, 10000], out="results/mine")
    rows = avo_bench.load_results("results/mine")  # the same tidy DataFrame
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "load_results", "run"]


def __getattr__(name: str):
    # Lazy, so that `import avo_bench` (and the CLI's --help) stays light.
    if name == "run":
        from avo_bench.runner import run

        return run
    if name == "load_results":
        from avo_bench.results import load_results

        return load_results
    raise AttributeError(f"module 'avo_bench' has no attribute {name!r}")
