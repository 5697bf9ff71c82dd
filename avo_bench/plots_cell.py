"""Diagnostic figure of one cell: training curves, marginals of the returned samples against
the truth or the exact posterior, predictive against observed histograms (from the cell's
stored artifacts)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .results import read_artifacts

__all__ = ["plot_cell"]


def plot_cell(run_dir: Path, key: tuple):
    """The figure of cell ``key`` = (simulator, method, seed, budget), or ``None`` without
    stored samples."""
    from matplotlib.figure import Figure

    arrays, history = read_artifacts(run_dir, key)
    if "theta" not in arrays:
        return None
    curves = [c for c in history.columns if c not in ("step", "iteration", "num_simulations")
              and pd.api.types.is_numeric_dtype(history[c])][:4]  # fmt: skip
    theta, names = arrays["theta"], [str(n) for n in arrays["parameter_names"]]
    d, k = min(theta.shape[1], 4), min(arrays["x_obs"].shape[1], 4)
    width = max(len(curves), d, k)
    fig = Figure(figsize=(3.2 * width, 2.8 * (2 + bool(curves))), layout="constrained")
    grid = list(fig.subplots(2 + bool(curves), width, squeeze=False))
    if curves:
        step = history["step"] if "step" in history else history.index
        for ax, column in zip(grid.pop(0)[: len(curves)], curves, strict=True):
            ax.plot(step, history[column])
            ax.set(title=column, xlabel="step")
    _marginals(grid[0][:d], arrays, names)
    _predictive(grid[1][:k], arrays)
    for row in grid:
        if row[0].has_data():
            row[0].legend(fontsize=7)
    for ax in fig.axes:
        if not ax.has_data():
            ax.set_axis_off()
    fig.suptitle(" / ".join(map(str, key)))
    return fig


def _marginals(axes, arrays: dict, names: list[str]) -> None:
    for j, ax in enumerate(axes):
        ax.hist(arrays["theta"][:, j], bins=40, density=True, alpha=0.6, label="returned")
        if "posterior" in arrays:
            ax.hist(arrays["posterior"][:, j], bins=40, density=True, histtype="step",
                    color="k", label="exact posterior")  # fmt: skip
        if "theta_star" in arrays:
            ax.axvline(arrays["theta_star"][j], color="r", label="truth")
        ax.set(title=names[j])


def _predictive(axes, arrays: dict) -> None:
    if "x_sim" not in arrays:
        return
    for j, ax in enumerate(axes):
        both = np.concatenate([arrays["x_obs"][:, j], arrays["x_sim"][:, j]])
        bins = np.histogram_bin_edges(both, bins=40)
        ax.hist(arrays["x_obs"][:, j], bins=bins, density=True, alpha=0.5, label="observed")
        ax.hist(
            arrays["x_sim"][:, j], bins=bins, density=True, histtype="step", label="predictive"
        )
        ax.set(title=f"x feature {j}")
