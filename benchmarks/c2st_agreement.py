"""C2ST: does the default ``variant="fast"`` agree with the sbibm protocol, and how much cheaper?

For each case (shape, dimension d, n samples per side) one data set is drawn (fixed seed), then
both variants score it with classifier seeds 1..k (each seed also fixes the folds, the same for
both variants). Agreement is the difference of the mean values over the seeds: a single seed's
value moves with the training and fold noise of either variant. Prints one line per case: both
means, their difference, the seeds' spread, the CPU seconds per call of each and the ratio.

Shapes (``a`` is the reference, which z-scores both sets as in sbibm; ``b`` the approximation):

- ``equal``: N(0, I) against N(0, I).
- ``gauss-shift``: N(0, I) against N(1 / sqrt(d), I) (Bayes accuracy Phi(1/2) = 0.69).
- ``gauss-scale``: N(0, I) against N(0, s^2 I), s = 1 + 0.5 / sqrt(d).
- ``gauss-corr``: N(0, I) against correlation 0.6 between the first two coordinates.
- ``moons-blur``, ``moons-shift``: sbibm's two_moons simulator at a fixed theta (a crescent of
  radius 0.1 and radial spread 0.01) against its Gaussian blur (sd 0.01 per coordinate), or
  against the simulator at a nearby theta (shifted by 0.011); further coordinates are N(0, 1).
- ``mixture``: 0.5 N(-1.5 e1, I) + 0.5 N(1.5 e1, I) against the Gaussian with its mean and
  covariance.
- ``student-t``: N(0, I) against a multivariate Student-t (5 degrees of freedom) of unit
  covariance (heavy tails).
- ``resampled``: fresh N(0, I) draws against n draws with replacement from n / 10 draws (the
  repeats of rejection ABC's resampled accepted samples).

Usage (one thread; the sbibm protocol at d = 100 and 10,000 per side takes hours)::

    python benchmarks/c2st_agreement.py --dims 2 5 10 --sizes 1000 --seeds 1 2 3
    python benchmarks/c2st_agreement.py --cache /tmp/c2st.jsonl   # the full table, resumable

With ``--cache`` every (case, seed, variant) result is appended to a JSON-lines file and read
back on the next run (``--rerun fast`` recomputes the fast variant's rows).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # sklearn on one thread too (before numpy)
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import json
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from avo_bench.metrics import c2st

Pair = tuple[Tensor, Tensor]
MOONS_THETA = (0.3, 0.1)


def _normal(n: int, d: int, g: torch.Generator) -> Tensor:
    return torch.randn(n, d, generator=g, dtype=torch.float64)


def two_moons(n: int, theta: tuple[float, float], g: torch.Generator) -> Tensor:
    """sbibm's two_moons simulator at ``theta``: a crescent, shifted by a function of theta."""
    angle = (torch.rand(n, generator=g, dtype=torch.float64) - 0.5) * math.pi
    radius = 0.1 + 0.01 * torch.randn(n, generator=g, dtype=torch.float64)
    p = torch.stack([radius * torch.cos(angle) + 0.25, radius * torch.sin(angle)], dim=1)
    t0, t1 = theta
    return p + torch.tensor([-abs(t0 + t1) / math.sqrt(2), (t1 - t0) / math.sqrt(2)])


def _padded(x: Tensor, d: int, g: torch.Generator) -> Tensor:
    """``x`` with ``d - x.shape[1]`` further N(0, 1) coordinates."""
    return torch.cat([x, _normal(len(x), d - x.shape[1], g)], dim=1)[:, :d]


def equal(n: int, d: int, g: torch.Generator) -> Pair:
    return _normal(n, d, g), _normal(n, d, g)


def gauss_shift(n: int, d: int, g: torch.Generator) -> Pair:
    return _normal(n, d, g), _normal(n, d, g) + 1 / math.sqrt(d)


def gauss_scale(n: int, d: int, g: torch.Generator) -> Pair:
    return _normal(n, d, g), _normal(n, d, g) * (1 + 0.5 / math.sqrt(d))


def gauss_corr(n: int, d: int, g: torch.Generator) -> Pair:
    b = _normal(n, d, g)
    b[:, 1] = 0.6 * b[:, 0] + 0.8 * b[:, 1]
    return _normal(n, d, g), b


def moons_blur(n: int, d: int, g: torch.Generator) -> Pair:
    a = two_moons(n, MOONS_THETA, g)
    b = two_moons(n, MOONS_THETA, g) + 0.01 * _normal(n, 2, g)
    return _padded(a, d, g), _padded(b, d, g)


def moons_shift(n: int, d: int, g: torch.Generator) -> Pair:
    a = two_moons(n, MOONS_THETA, g)
    b = two_moons(n, (MOONS_THETA[0] + 0.0075, MOONS_THETA[1] + 0.0075), g)
    return _padded(a, d, g), _padded(b, d, g)


def mixture(n: int, d: int, g: torch.Generator, mu: float = 1.5) -> Pair:
    a = _normal(n, d, g)
    a[:, 0] += mu * (2 * (torch.rand(n, generator=g) < 0.5) - 1)
    b = _normal(n, d, g)
    b[:, 0] *= math.sqrt(1 + mu**2)
    return a, b


def student_t(n: int, d: int, g: torch.Generator, dof: int = 5) -> Pair:
    chi2 = _normal(n, dof, g).square().sum(dim=1, keepdim=True)
    return _normal(n, d, g), _normal(n, d, g) / torch.sqrt(chi2 / (dof - 2))


def resampled(n: int, d: int, g: torch.Generator) -> Pair:
    pool = _normal(max(n // 10, 1), d, g)
    return _normal(n, d, g), pool[torch.randint(len(pool), (n,), generator=g)]


SHAPES: dict[str, Callable[[int, int, torch.Generator], Pair]] = {
    "equal": equal,
    "gauss-shift": gauss_shift,
    "gauss-scale": gauss_scale,
    "gauss-corr": gauss_corr,
    "moons-blur": moons_blur,
    "moons-shift": moons_shift,
    "mixture": mixture,
    "student-t": student_t,
    "resampled": resampled,
}


def sample_pair(shape: str, n: int, d: int) -> Pair:
    """The data set of a case: the same for every classifier seed and both variants."""
    key = sum(map(ord, shape)) * 1_000_003 + 1009 * d + n
    return SHAPES[shape](n, d, torch.Generator().manual_seed(key))


def score(a: Tensor, b: Tensor, variant: str, seed: int) -> tuple[float, float]:
    """C2ST value and the CPU seconds of this process that it took."""
    start = time.process_time()
    value = c2st(a, b, variant=variant, seed=seed)
    return value, time.process_time() - start


class Cache:
    """Results by (shape, d, n, seed, variant), appended to a JSON-lines file if one is given."""

    def __init__(self, path: Path | None, rerun: set[str]):
        self.path, self.rows = path, {}
        if path is not None and path.exists():
            for line in path.read_text().splitlines():
                row = json.loads(line)
                if row["variant"] not in rerun:
                    self.rows[self._key(row)] = row

    @staticmethod
    def _key(row: dict) -> tuple:
        return row["shape"], row["d"], row["n"], row["seed"], row["variant"]

    def has(self, shape: str, d: int, n: int, seed: int) -> bool:
        """Whether the sbibm protocol's row of this case and seed is cached (the expensive one)."""
        return (shape, d, n, seed, "sbibm") in self.rows

    def get(self, shape: str, d: int, n: int, seed: int, variant: str) -> dict:
        key = (shape, d, n, seed, variant)
        if key not in self.rows:
            value, cpu = score(*sample_pair(shape, n, d), variant, seed)
            self.rows[key] = row = dict(
                zip(("shape", "d", "n", "seed", "variant"), key, strict=True)
            )
            row.update(value=value, cpu=cpu)
            if self.path is not None:
                with self.path.open("a") as f:
                    f.write(json.dumps(row) + "\n")
        return self.rows[key]


def compare(cache: Cache, shape: str, d: int, n: int, seeds: list[int]) -> dict:
    """Both variants on one case over ``seeds``: means, difference, spread, CPU seconds."""
    out = {"shape": shape, "d": d, "n": n, "seeds": len(seeds)}
    for variant in ("sbibm", "fast"):  # the expensive one first: its cache is the asset
        rows = [cache.get(shape, d, n, seed, variant) for seed in seeds]
        values = np.array([r["value"] for r in rows])
        out[variant] = values.mean()
        out[f"{variant}_sd"] = values.std(ddof=1) if len(values) > 1 else math.nan
        out[f"{variant}_cpu"] = float(np.mean([r["cpu"] for r in rows]))
    out["diff"] = out["fast"] - out["sbibm"]
    out["ratio"] = out["sbibm_cpu"] / out["fast_cpu"]
    return out


def line(r: dict) -> str:
    return (
        f"{r['shape']:12s} d={r['d']:<3d} n={r['n']:<6d} fast={r['fast']:.4f} "
        f"sbibm={r['sbibm']:.4f} diff={r['diff']:+.4f} sd(fast, sbibm)=({r['fast_sd']:.3f}, "
        f"{r['sbibm_sd']:.3f}) cpu: fast={r['fast_cpu']:.2f}s sbibm={r['sbibm_cpu']:.2f}s "
        f"ratio={r['ratio']:.1f}x"
    )


def rst_table(results: list[dict]) -> str:
    """The agreement table as reStructuredText, for the module docstring."""
    rule = "===========  ===  ======  =====  ======  ======  ======  =======  =======  ======"
    head = "shape        d    n       seeds  fast    sbibm   diff    fast s   sbibm s  ratio"
    rows = [
        f"{r['shape']:11s}  {r['d']:<3d}  {r['n']:<6d}  {r['seeds']:<5d}  {r['fast']:.4f}  "
        f"{r['sbibm']:.4f}  {r['diff']:+.3f}  {r['fast_cpu']:7.2f}  {r['sbibm_cpu']:7.1f}  "
        f"{r['ratio']:5.1f}x"
        for r in results
    ]
    return "\n".join([rule, head, rule, *rows, rule])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", nargs="+", choices=sorted(SHAPES), default=list(SHAPES))
    parser.add_argument("--dims", nargs="+", type=int, default=[2, 5, 10, 100])
    parser.add_argument("--sizes", nargs="+", type=int, default=[1000, 10_000])
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--cache", type=Path, help="JSON-lines file of results (resumable)")
    parser.add_argument("--rerun", nargs="*", default=[], choices=["fast", "sbibm"])
    parser.add_argument(
        "--sbibm-only", action="store_true", help="only fill the cache with the sbibm rows"
    )
    parser.add_argument(
        "--cached-only",
        action="store_true",
        help="only the seeds whose sbibm rows are cached (the fast rows are run if missing)",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    cache = Cache(args.cache, set(args.rerun))
    results = []
    for n in sorted(args.sizes):
        for d in sorted(args.dims):
            for shape in args.shapes:
                if args.sbibm_only:
                    for seed in args.seeds:
                        row = cache.get(shape, d, n, seed, "sbibm")
                        print(row, flush=True)
                    continue
                seeds = args.seeds
                if args.cached_only:
                    seeds = [s for s in seeds if cache.has(shape, d, n, s)]
                    if not seeds:
                        continue
                results.append(compare(cache, shape, d, n, seeds))
                print(line(results[-1]), flush=True)
    if not results:
        return
    print(rst_table(results))
    diffs = np.array([r["diff"] for r in results])
    print(
        f"max |diff| = {np.abs(diffs).max():.4f}; CPU ratio: min "
        f"{min(r['ratio'] for r in results):.1f}x, total "
        f"{sum(r['sbibm_cpu'] for r in results) / sum(r['fast_cpu'] for r in results):.1f}x"
    )


if __name__ == "__main__":
    main()
