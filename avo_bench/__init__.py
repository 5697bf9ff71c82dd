"""avo_bench: a benchmark of likelihood-free inference on non-differentiable simulators.

The Python API for papers::

    import avo_bench

    # one method on one observation, scored exactly as a grid cell
    task = avo_bench.task("gaussian", seed=0)
    result = avo_bench.fit("rejection_abc", task.simulator, task.x_obs, budget=10_000, seed=0)
    scores = avo_bench.score(task, result.theta)

    # the grid
    rows = avo_bench.run(methods=["prior"], seeds=3, budgets=[1000, 10000], out="results/mine")
    rows = avo_bench.load_results("results/mine")  # the same tidy DataFrame
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "fit", "load_results", "run", "score", "task"]


def __getattr__(name: str):
    # Lazy, so that `import avo_bench` (and the CLI's --help) stays light.
    if name == "run":
        from avo_bench.runner import run

        return run
    if name in ("fit", "score", "task"):
        from avo_bench import api

        return getattr(api, name)
    if name == "load_results":
        from avo_bench.results import load_results

        return load_results
    raise AttributeError(f"module 'avo_bench' has no attribute {name!r}")
