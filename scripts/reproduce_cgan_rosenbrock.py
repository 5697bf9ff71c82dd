"""Reproduces the cGAN Rosenbrock inverse problem (figures 5-6 of the cGAN seed notes).

Trains the ``cgan`` method on prior pairs ``(theta, y = M(theta))``, feeds the observed
``y ~ P_Y`` (a truncated Gaussian around 350) through the generator and checks the inferred
``P_theta`` by pushing it back through the model. Prints W1 and JS of the push-forward against
``P_Y`` next to the same distances for the prior's push-forward and for a second independent
sample of ``P_Y`` (the finite-sample floor), and writes three PNG figures into
``results/figures/cgan/``: the inferred parameters over the Rosenbrock level sets, the
push-forward histogram over the exact ``P_Y`` density, and the training losses.

Usage::

    python scripts/reproduce_cgan_rosenbrock.py [--budget 10000] [--seed 0] [--out DIR]

Reference: Parikh, Kozloski, Gurev, https://arxiv.org/abs/2009.08267
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from scipy.spatial.distance import jensenshannon
from scipy.stats import wasserstein_distance

import avo_bench
from simulators import get_simulator

BINS = np.linspace(0.0, 1000.0, 101)  # fixed JS binning over the relevant output range


def js_divergence(a: np.ndarray, b: np.ndarray) -> float:
    """Jensen-Shannon divergence (nats) of two samples histogrammed on :data:`BINS`."""
    p, _ = np.histogram(np.clip(a, BINS[0], BINS[-1]), BINS)
    q, _ = np.histogram(np.clip(b, BINS[0], BINS[-1]), BINS)
    return float(jensenshannon(p, q) ** 2)


def distances(y: np.ndarray, y_obs: np.ndarray) -> tuple[float, float]:
    return wasserstein_distance(y, y_obs), js_divergence(y, y_obs)


def plot(sim, theta, y_fit, y_obs, history, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "theta.png", out / "push_forward.png", out / "losses.png"]
    t1, t2 = np.meshgrid(np.linspace(-2, 2, 300), np.linspace(-1, 3, 300))
    grid = sim.simulate(torch.tensor(np.stack([t1.ravel(), t2.ravel()], 1), dtype=torch.float64))
    fig, ax = plt.subplots(figsize=(5, 4.5))
    ax.contour(t1, t2, grid.reshape(t1.shape).numpy(), levels=[250, 350, 450], colors="grey")
    ax.scatter(theta[:, 0], theta[:, 1], s=3, alpha=0.5, label="cGAN $P_\\theta$")
    ax.set(xlabel="$\\theta_1$", ylabel="$\\theta_2$", title="inferred $P_\\theta$ (contours: y)")
    ax.legend(loc="upper left")
    fig.savefig(paths[0], dpi=120, bbox_inches="tight")
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.hist(y_obs, bins=40, density=True, alpha=0.5, label="observed $P_Y$")
    ax.hist(
        y_fit, bins=np.linspace(150, 550, 41), density=True, alpha=0.5, label="$M_\\# P_\\theta$"
    )
    ys = torch.linspace(200, 500, 400)
    ax.plot(ys, sim.observed_density(ys), "k", lw=1, label="exact $P_Y$ density")
    ax.set(xlabel="y", ylabel="density", title="push-forward of the inferred $P_\\theta$")
    ax.legend()
    fig.savefig(paths[1], dpi=120, bbox_inches="tight")
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for column in ("d_loss", "g_loss"):
        ax.plot(history["step"], history[column], label=column)
    ax.set(xlabel="step", ylabel="loss (per epoch)", title="cGAN training")
    ax.legend()
    fig.savefig(paths[2], dpi=120, bbox_inches="tight")
    plt.close("all")
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budget", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("results/figures/cgan"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    sim = get_simulator("rosenbrock")
    x_obs = sim.observe(generator=torch.Generator().manual_seed(1000 + args.seed))
    start = time.perf_counter()
    result = avo_bench.fit(
        "cgan", sim, x_obs, budget=args.budget, seed=args.seed, num_samples=sim.n_obs
    )
    seconds = time.perf_counter() - start
    g = torch.Generator().manual_seed(2000 + args.seed)
    y_obs = x_obs.flatten().numpy()
    y_fit = sim.simulate(result.theta, g).flatten().numpy()
    y_prior = sim.simulate(sim.prior.sample((sim.n_obs,), generator=g)).flatten().numpy()
    y_floor = sim.observe(generator=g).flatten().numpy()
    print(f"cgan on rosenbrock: budget {args.budget}, seed {args.seed}, {seconds:.1f} s")
    for label, y in (
        ("cgan push-forward", y_fit),
        ("prior push-forward", y_prior),
        ("floor", y_floor),
    ):
        w1, js = distances(y, y_obs)
        print(f"  {label:<20} W1 {w1:8.2f}   JS {js:.4f}")
    print("  extras:", {k: round(v, 4) for k, v in result.extras.items()})
    for path in plot(sim, result.theta.numpy(), y_fit, y_obs, result.history, args.out):
        print(f"  wrote {path}")


if __name__ == "__main__":
    main()
