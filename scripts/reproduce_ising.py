r"""Reproduces the 2-D Ising model's exact thermodynamics and the inference of its temperature.

1. **Energy and magnetization curves.** The registered simulator (``get_simulator("ising")``)
   over a grid of temperatures across and beyond the prior range :math:`T \in [1.5, 3.5]`,
   many independent chains per temperature, at the default :math:`L = 16` (250 sweeps) and at
   :math:`L = 32` (1000 sweeps, 25 autocorrelation times at :math:`T_c`,
   ``scripts/ising_autocorrelation.py``). The mean energy per spin is compared with Kaufman's
   exact energy of the same finite periodic lattice, which it must match within its standard
   error at every :math:`T`, and with Onsager's infinite-lattice energy; the mean :math:`|m|`
   with Yang's spontaneous magnetization, from which it departs near :math:`T_c` by finite-size
   effects (:math:`|m| > 0` above :math:`T_c`, rounded transition).
2. **Inferred against true temperature.** For true temperatures :math:`T^*` across the prior
   and a few observed data sets each (``n_obs`` lattices' :math:`(e, |m|)`), every method is
   fitted through the registry under a simulation budget; its mean, standard deviation and
   central 95% interval of :math:`T` are set against the exact posterior (``sim.posterior``:
   the energy is sufficient and Kaufman's partition function gives the likelihood). A method
   that does not apply or fails is reported with its status.

Writes into ``--out`` (default ``results/figures/ising``): ``energy_magnetization.png``,
``inferred_temperature.png``, ``curves.csv`` (one row per lattice size and temperature),
``inference.csv`` (one row per true temperature, replicate and method) and ``summary.md``.

Usage::

    python scripts/reproduce_ising.py [--seed 0] [--out results/figures/ising] [--budget 10000]
        [--methods avo rejection_abc smc_abc npe prior] [--replicates 3] [--n-obs 200] [--quick]

Run time of the defaults (one thread, on a 2-core machine shared with other jobs): 6.7 and
7.8 min wall in two runs, 3.9 min of CPU; the curves ~70 s (three quarters of their spin
updates at L = 32), the inference 5.4-6.6 min, most of it NPE (8-10 s per fit; AVO 2-2.6 s,
ABC 0.4-0.5 s); ``summary.md`` records the run's. ``--quick`` (tiny sizes) takes ~20 s.

References:
    Onsager, "Crystal statistics. I. A two-dimensional model with an order-disorder
    transition", Phys. Rev. 65, 117 (1944).

    Yang, "The spontaneous magnetization of a two-dimensional Ising model", Phys. Rev. 85,
    808 (1952).

    Kaufman, "Crystal statistics. II. Partition function evaluated by spinor analysis",
    Phys. Rev. 76, 1232 (1949).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

import avo_bench
from avo_bench.methods import NotApplicable, get_method
from avo_bench.seeding import derive_seed
from simulators import get_simulator
from simulators.ising import (
    CRITICAL_TEMPERATURE,
    GridPosterior,
    kaufman_energy,
    onsager_energy,
    onsager_magnetization,
)

DEFAULT_METHODS = ("avo", "rejection_abc", "smc_abc", "npe", "prior")
LEVEL = 0.95  # central interval used for the coverage of T*
MAGNETIZATION_NOTE = (
    "<|m|> is compared with Yang's infinite-lattice spontaneous magnetization: it departs from "
    "it near T_c by finite-size effects (rounded transition, <|m|> ~ L^(-1/8) at T_c and "
    "~ 1/L above T_c, where Yang's is 0), not by a simulator error."
)
INFERENCE_NOTE = (
    "mean_abs_error: mean |mean - exact posterior mean|; mean_abs_error_vs_T_star: mean "
    "|mean - T*| (for the exact posterior: the statistical floor); median_sd_ratio: sd / exact "
    f"posterior sd; coverage: fraction of fits whose central {LEVEL:.0%} interval contains T* "
    "(trivially high for wide intervals: read it with the sd ratio). ABC, NPE and NRE condition "
    "on summaries of sets of m < n_obs simulations (`avo_bench/methods/_summaries.py`, "
    "m = 10 at a budget of 10^4), so their posterior is wider than the exact one by about "
    "sqrt(n_obs / m); AVO returns its fitted proposal, not a posterior; `prior` is the "
    "no-inference reference."
)


@dataclass(frozen=True)
class Settings:
    """What the script simulates and fits.

    Attributes:
        temperatures: Temperatures of the energy/magnetization curves.
        lattices: ``(size, sweeps, chains)`` of each curve.
        true_temperatures: The :math:`T^*` of the inference experiment.
        replicates: Observed data sets per :math:`T^*`.
        n_obs: Lattices per observed data set.
        budget: Simulations per fit.
    """

    temperatures: tuple[float, ...]
    lattices: tuple[tuple[int, int, int], ...]
    true_temperatures: tuple[float, ...]
    replicates: int
    n_obs: int
    budget: int


FULL = Settings(
    temperatures=tuple(sorted({*np.linspace(1.0, 4.5, 36).round(2), CRITICAL_TEMPERATURE})),
    lattices=((16, 250, 10_000), (32, 1000, 2000)),
    true_temperatures=tuple(np.linspace(1.6, 3.4, 10).round(2)),
    replicates=3,
    n_obs=200,
    budget=10_000,
)
QUICK = Settings(
    temperatures=(1.5, 2.0, CRITICAL_TEMPERATURE, 3.0, 4.0),
    lattices=((16, 250, 400),),
    true_temperatures=(1.8, 2.6, 3.4),
    replicates=1,
    n_obs=50,
    budget=1500,
)


def simulate_curve(size: int, sweeps: int, chains: int, temperature: float, seed: int) -> dict:
    """Mean energy and ``|m|`` per spin (with standard errors) of independent chains at ``T``."""
    simulator = get_simulator("ising", size=size, sweeps=sweeps)
    theta = torch.full((chains, 1), temperature, dtype=torch.float64)
    generator = torch.Generator().manual_seed(derive_seed("curve", seed, size, temperature))
    # _simulate: the kernel path of simulate() without its prior-box check, so that the curves
    # extend beyond the prior range.
    x = simulator._simulate(theta, generator)
    mean, se = x.mean(0), x.std(0) / math.sqrt(chains)
    exact = kaufman_energy(size, temperature)
    return {
        "size": size,
        "sweeps": sweeps,
        "chains": chains,
        "T": temperature,
        "energy": float(mean[0]),
        "energy_se": float(se[0]),
        "kaufman": exact,
        "onsager": onsager_energy(temperature),
        "energy_z": float((mean[0] - exact) / se[0]),
        "abs_m": float(mean[1]),
        "abs_m_se": float(se[1]),
        "yang": onsager_magnetization(temperature),
    }


def simulate_curves(settings: Settings, seed: int) -> pd.DataFrame:
    """One row per (lattice size, temperature), see :func:`simulate_curve`."""
    rows = [
        simulate_curve(size, sweeps, chains, temperature, seed)
        for size, sweeps, chains in settings.lattices
        for temperature in settings.temperatures
    ]
    return pd.DataFrame(rows)


def exact_summary(posterior: GridPosterior) -> dict:
    """Mean, sd and central interval of the exact (piecewise-constant) posterior of ``T``."""
    cdf = np.concatenate([[0.0], posterior.mass.cumsum(0).numpy()])
    tails = [(1 - LEVEL) / 2, (1 + LEVEL) / 2]
    low, high = np.interp(tails, cdf, posterior.edges.numpy())
    mean, sd = float(posterior.mean()), float(posterior.stddev())
    return {"exact_mean": mean, "exact_sd": sd, "exact_low": low, "exact_high": high}


def fit_method(name: str, simulator, x_obs: torch.Tensor, budget: int, seed: int) -> dict:
    """Fits ``name`` under ``budget``; its status and the mean, sd and interval of ``T``."""
    method = get_method(name)
    if not method.available():
        reason = f"needs {method.requires}: {method.install_hint}"
        return {"status": "n/a", "message": reason, "num_simulations": 0}
    try:
        result = avo_bench.fit(method, simulator, x_obs, budget=budget, seed=seed)
    except NotApplicable as error:
        return {"status": "n/a", "message": str(error), "num_simulations": 0}
    except Exception as error:  # reported in the table; the other fits go on
        message = f"{type(error).__name__}: {error}"
        return {"status": "error", "message": message, "num_simulations": math.nan}
    t = result.theta[:, 0].double()
    low, high = torch.quantile(t, torch.tensor([(1 - LEVEL) / 2, (1 + LEVEL) / 2]).double())
    return {
        "status": "ok",
        "message": "",
        "mean": float(t.mean()),
        "sd": float(t.std()),
        "low": float(low),
        "high": float(high),
        "num_simulations": result.num_simulations,
        "seconds": result.wall_time_s,
    }


def infer(settings: Settings, methods: tuple[str, ...], seed: int) -> pd.DataFrame:
    """One row per (T*, replicate, method) with the method's and the exact posterior's moments."""
    rows = []
    for t_star in settings.true_temperatures:
        for replicate in range(settings.replicates):
            simulator = get_simulator("ising", theta_star=t_star, n_obs=settings.n_obs)
            g = torch.Generator().manual_seed(derive_seed("observed", seed, t_star, replicate))
            x_obs = simulator.observe(generator=g)
            case = {"T_star": t_star, "replicate": replicate}
            case |= exact_summary(simulator.posterior(x_obs))
            for name in methods:
                fit_seed = derive_seed("fit", seed, t_star, replicate, name)
                row = case | fit_method(name, simulator, x_obs, settings.budget, fit_seed)
                rows.append({"method": name, **row})
                print(_describe(rows[-1]), flush=True)
    return pd.DataFrame(rows)


def _describe(row: dict) -> str:
    head = f"T*={row['T_star']:.2f} rep={row['replicate']} {row['method']:<14}"
    if row["status"] != "ok":
        return f"{head} {row['status']}: {row['message']}"
    return (
        f"{head} mean={row['mean']:.4f} sd={row['sd']:.4f}  exact mean="
        f"{row['exact_mean']:.4f} sd={row['exact_sd']:.4f}  ({row['seconds']:.1f} s)"
    )


def curve_summary(curves: pd.DataFrame) -> pd.DataFrame:
    """Per lattice size: the largest |energy - Kaufman| in standard errors and mean z^2."""
    rows = []
    for size, group in curves.groupby("size"):
        worst = group.loc[group["energy_z"].abs().idxmax()]
        near = group.loc[(group["abs_m"] - group["yang"]).abs().idxmax()]
        rows.append(
            {
                "size": size,
                "temperatures": len(group),
                "chains": int(group["chains"].iloc[0]),
                "max_abs_z": abs(worst["energy_z"]),
                "T_of_max_z": worst["T"],
                "mean_z2": float((group["energy_z"] ** 2).mean()),
                "max_abs_m_minus_yang": abs(near["abs_m"] - near["yang"]),
                "T_of_max_m_gap": near["T"],
            }
        )
    return pd.DataFrame(rows)


def inference_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per method: fits ok, mean |mean - exact mean| and |mean - T*|, sd ratio, coverage of T*."""
    rows = []
    for method, group in table.groupby("method", sort=False):
        ok = group[group["status"] == "ok"]
        covered = (ok["low"] <= ok["T_star"]) & (ok["T_star"] <= ok["high"])
        rows.append(
            {
                "method": method,
                "ok": f"{len(ok)}/{len(group)}",
                "mean_abs_error": (ok["mean"] - ok["exact_mean"]).abs().mean(),
                "mean_abs_error_vs_T_star": (ok["mean"] - ok["T_star"]).abs().mean(),
                "median_sd_ratio": (ok["sd"] / ok["exact_sd"]).median(),
                "coverage": covered.mean() if len(ok) else math.nan,
                "mean_seconds": ok["seconds"].mean(),
            }
        )
    cases = table.drop_duplicates(["T_star", "replicate"])
    exact = (cases["exact_low"] <= cases["T_star"]) & (cases["T_star"] <= cases["exact_high"])
    rows.append(
        {
            "method": "exact posterior",
            "ok": f"{len(cases)}/{len(cases)}",
            "mean_abs_error": 0.0,
            "mean_abs_error_vs_T_star": (cases["exact_mean"] - cases["T_star"]).abs().mean(),
            "median_sd_ratio": 1.0,
            "coverage": exact.mean(),
            "mean_seconds": math.nan,
        }
    )
    return pd.DataFrame(rows)


def plot_curves(curves: pd.DataFrame, path: Path) -> None:
    """Energy with Kaufman and Onsager, its residual in standard errors, |m| with Yang."""
    fig = Figure(figsize=(15, 4.2))
    ax_e, ax_z, ax_m = fig.subplots(1, 3)
    fine = np.linspace(curves["T"].min(), curves["T"].max(), 300)
    for i, (size, group) in enumerate(curves.groupby("size")):
        style = {"color": f"C{i}", "ms": 3}
        t, label = group["T"], f"simulated, L = {size}"
        ax_e.errorbar(t, group["energy"], group["energy_se"], fmt="o", **style, label=label)
        kaufman = [kaufman_energy(size, x) for x in fine]
        ax_e.plot(fine, kaufman, "--", color=f"C{i}", lw=1, label=f"Kaufman, L = {size}")
        ax_z.plot(t, group["energy_z"], "o-", **style, label=f"L = {size}")
        ax_m.errorbar(t, group["abs_m"], group["abs_m_se"], fmt="o", **style, label=label)
    ax_e.plot(fine, [onsager_energy(t) for t in fine], "k", lw=1, label="Onsager, L = inf")
    ax_m.plot(fine, [onsager_magnetization(t) for t in fine], "k", lw=1, label="Yang, L = inf")
    ax_z.axhspan(-2, 2, color="0.9")
    for ax in (ax_e, ax_z, ax_m):
        ax.axvspan(1.5, 3.5, color="C2", alpha=0.06)  # the prior range of T
        ax.axvline(CRITICAL_TEMPERATURE, color="0.5", ls=":", lw=1)
        ax.legend(fontsize=7)
        ax.set_xlabel("T")
    ax_e.set(ylabel="energy per spin", title="<e> vs exact (shaded: prior range)")
    ax_z.set(ylabel="(<e> - Kaufman) / SE", title="energy residual vs Kaufman (band: +-2 SE)")
    ax_m.set(ylabel="<|m|>", title="<|m|> vs Yang (finite-size: |m| > 0 above T_c)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def plot_inference(table: pd.DataFrame, path: Path) -> None:
    """Per method: mean +- sd of T against T* (top) and minus the exact mean (bottom)."""
    methods = list(dict.fromkeys(table["method"]))
    fig = Figure(figsize=(3.4 * len(methods), 6.5))
    axes = fig.subplots(2, len(methods), sharex=True, squeeze=False)
    for (top, bottom), method in zip(axes.T, methods, strict=True):
        _inference_panels(top, bottom, table[table["method"] == method], method)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def _inference_panels(top, bottom, rows: pd.DataFrame, method: str) -> None:
    ok = rows[rows["status"] == "ok"]
    x = ok["T_star"] + 0.03 * (ok["replicate"] - ok["replicate"].mean())  # replicates apart
    exact, fitted = {"fmt": "k.", "ms": 3}, {"fmt": "o", "ms": 3, "color": "C1"}
    top.plot([1.5, 3.5], [1.5, 3.5], color="0.6", lw=1, label="identity")
    top.errorbar(x - 0.015, ok["exact_mean"], ok["exact_sd"], **exact, label="exact posterior")
    top.errorbar(x + 0.015, ok["mean"], ok["sd"], **fitted, label=method)
    bottom.errorbar(x - 0.015, 0 * x, ok["exact_sd"], **exact, label="exact sd")
    error = ok["mean"] - ok["exact_mean"]
    bottom.errorbar(x + 0.015, error, ok["sd"], **fitted, label=f"{method} - exact mean")
    failed = rows[rows["status"] != "ok"]
    if len(failed):  # shown, not hidden
        first = failed.iloc[0]
        note = f"{len(failed)} x {first['status']}:\n{first['message'][:80]}"
        top.text(0.03, 0.6, note, transform=top.transAxes, fontsize=6, wrap=True, color="C3")
    top.set(title=method, ylabel="inferred T (mean +- sd)", xlim=(1.45, 3.55))
    bottom.set(xlabel="true T*", ylabel="mean - exact posterior mean")
    top.legend(fontsize=6, loc="lower right")
    bottom.legend(fontsize=6)


def markdown(frame: pd.DataFrame) -> str:
    """A pipe table of ``frame`` (4 significant digits)."""
    cells = frame.apply(lambda column: column.map(_cell))
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * frame.shape[1]]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in cells.values.tolist()])


def _cell(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def write_summary(path: Path, settings: Settings, args, curves, inference, seconds) -> None:
    failed = inference[inference["status"] != "ok"].drop_duplicates(["method", "message"])
    notes = [f"- {r.method}: {r.status}: {r.message}" for r in failed.itertuples()] or ["- none"]
    text = [
        "# Ising reproduction (`scripts/reproduce_ising.py`)",
        "",
        f"Command: `{' '.join(['python scripts/reproduce_ising.py', *args])}`",
        f"Run time: curves {seconds[0]:.0f} s, inference {seconds[1]:.0f} s (one CPU thread).",
        "",
        "## Energy vs Kaufman's exact finite-lattice energy",
        "",
        f"{len(settings.temperatures)} temperatures in [{min(settings.temperatures):.2f}, "
        f"{max(settings.temperatures):.2f}]; z = (mean energy - Kaufman) / standard error.",
        "",
        markdown(curve_summary(curves)),
        "",
        MAGNETIZATION_NOTE,
        "",
        f"## Inferred T vs T* (budget {settings.budget}, n_obs {settings.n_obs}, "
        f"{settings.replicates} data sets per T*)",
        "",
        INFERENCE_NOTE,
        "",
        markdown(inference_summary(inference)),
        "",
        "Methods not ok:",
        *notes,
        "",
    ]
    path.write_text("\n".join(text))


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("results/figures/ising"))
    parser.add_argument("--budget", type=int, help=f"simulations per fit (default {FULL.budget})")
    parser.add_argument(
        "--methods", nargs="+", default=list(DEFAULT_METHODS), help="registered method names"
    )
    parser.add_argument("--replicates", type=int, help="observed data sets per T*")
    parser.add_argument("--n-obs", type=int, help="lattices per observed data set")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke test")
    return parser.parse_args(argv)


def settings_from(args: argparse.Namespace) -> Settings:
    """The preset with the command line's overrides; ``ValueError`` for a bad value."""
    settings = QUICK if args.quick else FULL
    for field in ("budget", "replicates", "n_obs"):
        value = getattr(args, field)
        if value is not None and value < 1:
            raise ValueError(f"--{field.replace('_', '-')} must be an integer >= 1, got {value}")
        settings = replace(settings, **{field: value}) if value is not None else settings
    for name in args.methods:
        get_method(name)  # ValueError listing the registered methods
    return settings


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    settings = settings_from(args)
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    curves = simulate_curves(settings, args.seed)
    middle = time.perf_counter()
    print(curves.to_string(index=False, float_format="%.5g"))
    print(curve_summary(curves).to_string(index=False, float_format="%.4g"))
    inference = infer(settings, tuple(dict.fromkeys(args.methods)), args.seed)
    seconds = (middle - start, time.perf_counter() - middle)
    print(inference_summary(inference).to_string(index=False, float_format="%.4g"))
    print(f"run time: curves {seconds[0]:.1f} s, inference {seconds[1]:.1f} s")
    curves.to_csv(args.out / "curves.csv", index=False)
    inference.to_csv(args.out / "inference.csv", index=False)
    command = sys.argv[1:] if argv is None else argv
    write_summary(args.out / "summary.md", settings, command, curves, inference, seconds)
    plot_curves(curves, args.out / "energy_magnetization.png")
    plot_inference(inference, args.out / "inferred_temperature.png")
    print(f"figures and tables written to {args.out}/")


if __name__ == "__main__":
    main()
