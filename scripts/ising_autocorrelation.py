"""Evidence that the Ising simulator's defaults return equilibrated configurations.

Two measurements, near and away from T_c = 2.269, for the checkerboard Metropolis chain of
:mod:`simulators.ising` (numba kernel when installed, else torch):

1. Integrated autocorrelation time (in sweeps) of the energy and of |m| per spin, from long
   equilibrium time series of many chains, with Sokal's automatic window (the smallest W with
   W >= 5 tau(W)); tau_int = 1/2 + sum_{t=1}^W rho(t), so Var(mean) = 2 tau_int sigma^2 / n.
2. Relaxation from the ordered start that ``simulate`` uses: the mean e and |m| of 4000
   independent chains after S sweeps, minus the equilibrium value, in standard errors.

Usage: ``python scripts/ising_autocorrelation.py [--quick]``.

Reference: Sokal, "Monte Carlo methods in statistical mechanics: foundations and new
algorithms", Cargese lectures 1996, section 3; https://doi.org/10.1007/978-1-4899-0319-8_6
"""

from __future__ import annotations

import argparse

import torch

from simulators.ising import (
    CRITICAL_TEMPERATURE,
    HAS_NUMBA,
    lattice_statistics,
    numba_sweeps,
    torch_sweeps,
)

KERNEL = numba_sweeps if HAS_NUMBA else torch_sweeps
TEMPERATURES = (1.8, 2.1, CRITICAL_TEMPERATURE, 2.6, 3.0)


def time_series(temperature: float, size: int, chains: int, length: int, burn_in: int, gen):
    """(e, |m|) of every chain after each sweep, shape ``(length, chains, 2)``."""
    beta = torch.full((chains,), 1 / temperature, dtype=torch.float64)
    h = torch.zeros_like(beta)
    spins = KERNEL(beta, h, size, burn_in, gen)
    out = []
    for _ in range(length):
        spins = KERNEL(beta, h, size, 1, gen, initial=spins)
        out.append(lattice_statistics(spins).abs())  # |e| = -e below: sign of e kept apart
    series = torch.stack(out)
    series[..., 0] = -series[..., 0]
    return series


def integrated_time(series: torch.Tensor, c: float = 5.0) -> float:
    """Sokal's windowed tau_int of ``series`` ``(length, chains)``, chains averaged."""
    x = series - series.mean(dim=0)
    length = x.shape[0]
    f = torch.fft.rfft(x, n=2 * length, dim=0)
    acf = torch.fft.irfft(f * f.conj(), dim=0)[:length].mean(dim=1)
    rho = acf / acf[0]
    tau = 0.5
    for window in range(1, length):
        tau += float(rho[window])
        if window >= c * tau:
            return tau
    return float("nan")  # series too short for this tau


def relaxation(temperature, size, sweeps, reference, reference_se, chains, gen):
    """Bias of the mean (e, |m|) after ``sweeps`` from all up, in combined standard errors."""
    beta = torch.full((chains,), 1 / temperature, dtype=torch.float64)
    stats = lattice_statistics(KERNEL(beta, torch.zeros_like(beta), size, sweeps, gen))
    stats[:, 1] = stats[:, 1].abs()
    se = (stats.var(dim=0) / chains + reference_se**2).sqrt()
    return ((stats.mean(dim=0) - reference) / se).tolist()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="L = 16 only, shorter series")
    args = parser.parse_args()
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(2026)
    sizes = (16,) if args.quick else (16, 32)
    print(f"kernel: {KERNEL.__name__}; tau_int in sweeps (Sokal window c = 5)")
    for size in sizes:
        length = (1000 if args.quick else 3000) * (size // 16) ** 2
        for temperature in TEMPERATURES:
            series = time_series(temperature, size, 64, length, 1000 * (size // 16) ** 2, gen)
            taus = torch.tensor([integrated_time(series[..., i]) for i in (0, 1)])
            tau_e, tau_m = taus.tolist()
            reference = series.mean(dim=(0, 1))
            n_eff = series.shape[0] * series.shape[1] / (2 * taus)
            reference_se = series.flatten(0, 1).std(dim=0) / n_eff.sqrt()
            print(
                f"L={size:3d} T={temperature:.3f}  tau_int(e) = {tau_e:7.2f}  "
                f"tau_int(|m|) = {tau_m:7.2f}   <e> = {reference[0]:.4f}  <|m|> = {reference[1]:.4f}"
            )
            steps = (10, 25, 50, 100, 250, 1000)
            biases = [
                relaxation(temperature, size, s, reference, reference_se, 4000, gen) for s in steps
            ]
            table = "  ".join(
                f"S={s}: {b[0]:+5.1f},{b[1]:+5.1f}" for s, b in zip(steps, biases, strict=True)
            )
            print(f"      start bias (e, |m|) in standard errors after S sweeps: {table}")


if __name__ == "__main__":
    main()
