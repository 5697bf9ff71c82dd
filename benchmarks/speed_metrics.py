"""Speed (and accuracy where a reference exists) of every metric at realistic sizes.

Prints one line per (metric, d, n per side, variant): the value, the wall time and notes. Run
sections separately on a busy machine; each stays within a few minutes on one core::

    python benchmarks/speed_metrics.py --sections w1 js mmd params
    python benchmarks/speed_metrics.py --sections c2st --sizes 1000 10000 --dims 1 2 10
    python benchmarks/speed_metrics.py --sections c2st-numerics --dims 2 5 10 --compile

Samples are N(0, I) against N(0.5, I) unless stated. W1 on the quantized path is compared with
cases whose exact value is known (a translated copy: W1 = |delta| exactly) and with POT's exact
solver where that is affordable; C2ST's fast variant is compared with the sbibm protocol on the
same data and seed (ratio = sbibm CPU time / fast CPU time; the agreement over many shapes is
``benchmarks/c2st_agreement.py``).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # numpy/sklearn on one thread, as torch

import argparse
import time
from collections.abc import Callable

import torch

from avo_bench.metrics import (
    c2st,
    distance_to_truth,
    histogram_edges,
    jensen_shannon,
    mean_error,
    mmd2,
    wasserstein1_estimate,
)


def timed(fn: Callable[[], object]) -> tuple[object, tuple[float, float]]:
    """The value of ``fn()`` and its (wall, CPU) seconds: on a shared machine the CPU time of
    this process is the figure that does not depend on the other users' load."""
    wall, cpu = time.perf_counter(), time.process_time()
    value = fn()
    return value, (time.perf_counter() - wall, time.process_time() - cpu)


def samples(n: int, d: int, seed: int, shift: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g), torch.randn(n, d, generator=g) + shift


def report(metric: str, d: int, n: int, variant: str, value: float, seconds, note=""):
    wall, cpu = seconds
    print(f"{metric:17s} d={d:<3d} n={n:<6d} {variant:16s} value={value:<9.5f} "
          f"wall={wall:7.3f}s cpu={cpu:7.3f}s  {note}", flush=True)  # fmt: skip


def bench_w1(sizes: list[int], dims: list[int]) -> None:
    for d in (d for d in dims if d <= 2):
        for n in sizes:
            a, b = samples(n, d, 0)
            est, seconds = timed(lambda a=a, b=b: wasserstein1_estimate(a, b))
            report(
                "wasserstein1", d, n, est.path, est.value, seconds, f"bound={est.error_bound:.4f}"
            )
            if d == 1:
                continue
            delta = torch.tensor([0.3, 0.4])  # |delta| = 0.5 exactly
            est, seconds = timed(lambda a=a, delta=delta: wasserstein1_estimate(a, a + delta))
            error = est.value - 0.5
            report("wasserstein1", d, n, est.path, est.value, seconds,
                   f"translation: exact=0.5 error={error:+.4f} bound={est.error_bound:.4f}")  # fmt: skip
    # Quantized against exact EMD at sizes where the exact solver is affordable.
    for n in (3000, 5000):
        a, b = samples(n, 2, 1)
        exact, t_exact = timed(lambda a=a, b=b, n=n: wasserstein1_estimate(a, b, exact_max=n))
        quant, t_quant = timed(lambda a=a, b=b: wasserstein1_estimate(a, b, exact_max=2000))
        report("wasserstein1", 2, n, exact.path, exact.value, t_exact)
        report("wasserstein1", 2, n, quant.path, quant.value, t_quant,
               f"error vs exact={quant.value - exact.value:+.4f} bound={quant.error_bound:.4f}")  # fmt: skip


def bench_js(sizes: list[int], dims: list[int]) -> None:
    for d in (d for d in dims if d <= 2):
        edges = histogram_edges(
            torch.randn(100_000, d, generator=torch.Generator().manual_seed(9))
        )
        for n in sizes:
            a, b = samples(n, d, 2)
            value, seconds = timed(lambda a=a, b=b, e=edges: jensen_shannon(a, b, edges=e))
            same = samples(n, d, 3, shift=0.0)
            floor = jensen_shannon(*same, edges=edges)
            report("jensen_shannon", d, n, "bits", value, seconds, f"floor={floor:.5f}")


def bench_c2st(sizes: list[int], dims: list[int], sbibm_dims: list[int]) -> None:
    """Both variants on the same data and seed, CPU seconds side by side (d >= 5 with sbibm is
    slow: both variants train until sklearn's stopping rule, hundreds of epochs)."""
    for d in dims:
        for n in sizes:
            a, b = samples(n, d, 4, shift=0.5 / d**0.5)  # same Bayes accuracy in every d
            fast, t_fast = timed(lambda a=a, b=b: c2st(a, b, seed=1))
            if d not in sbibm_dims:
                report("c2st", d, n, "fast", fast, t_fast)
                continue
            ref, t_ref = timed(lambda a=a, b=b: c2st(a, b, variant="sbibm", seed=1))
            print(f"{'c2st':17s} d={d:<3d} n={n:<6d} fast={fast:.4f} sbibm={ref:.4f} "
                  f"diff={fast - ref:+.4f} cpu: fast={t_fast[1]:.2f}s sbibm={t_ref[1]:.2f}s "
                  f"ratio={t_ref[1] / t_fast[1]:.1f}x", flush=True)  # fmt: skip


def bench_mmd(sizes: list[int], dims: list[int]) -> None:
    for d in dims:
        for n in sizes:
            a, b = samples(n, d, 5)
            value, seconds = timed(lambda a=a, b=b: mmd2(a, b))
            report("mmd2", d, n, "median-heuristic", value, seconds)


def bench_params(sizes: list[int], dims: list[int]) -> None:
    for d in dims:
        for n in sizes:
            a, b = samples(n, d, 6)
            value, seconds = timed(lambda a=a, b=b: mean_error(a, b))
            report("mean_error", d, n, "", value, seconds)
            value, seconds = timed(lambda a=a, d=d: distance_to_truth(a, torch.zeros(d)))
            report("distance_to_truth", d, n, "", value, seconds)


def bench_c2st_numerics(sizes: list[int], dims: list[int], compile_: bool = False) -> None:
    """The fast C2ST's hand-written training step (:mod:`avo_bench.metrics._mlp`: gradients by
    hand, torch's fused Adam) against autograd with ``torch.optim.Adam`` (foreach, and fused
    where torch has it; ``torch.compile``d with ``--compile``), on the same five fold networks
    and minibatches of 200 rows. Prints milliseconds per step (the best of 5 rounds of 100
    steps, the variants interleaved so that a busy machine slows them alike), the ratio to the
    hand-written step and the largest gradient difference from it. ``sizes`` is ignored."""
    for d in dims:
        _c2st_step_case(d, compile_)


def _c2st_step_case(d: int, compile_: bool) -> None:
    from avo_bench.metrics import _mlp

    folds, batch = 5, _mlp.BATCH
    g = torch.Generator().manual_seed(0)
    net = _mlp._Ensemble(folds, d, 10 * d, g)
    x = torch.cat([torch.randn(folds, batch, d, generator=g), torch.ones(folds, batch, 1)], 2)
    sign = 1 - 2 * torch.randint(0, 2, (folds, batch, 1), generator=g).float()
    coef, l2 = sign / batch, _mlp.ALPHA / batch
    out = torch.empty(2, folds)
    masks = [m.view(s) for m, s in zip(net.weight_mask.split(net.sizes), net.shapes, strict=True)]

    def loss_fn(params):
        ones, h = x[..., -1:], x
        for w in params[:-1]:
            h = torch.cat([torch.bmm(h, w).relu(), ones], dim=2)
        u = (torch.bmm(h, params[-1]) * sign).clamp(_mlp.MIN_MARGIN, _mlp.MAX_LOSS)
        norm = sum(((w * m) ** 2).sum() for w, m in zip(params, masks, strict=True))
        return torch.nn.functional.softplus(u).sum() / batch + 0.5 * l2 * norm

    def library(fused: bool, compiled: bool):
        params = [p.detach().clone().requires_grad_() for p in net.params]
        kind = {"fused": True} if fused else {"foreach": True}
        opt = torch.optim.Adam(params, lr=_mlp.LEARNING_RATE, betas=_mlp.BETAS,
                               eps=_mlp.EPSILON, **kind)  # fmt: skip
        loss = torch.compile(loss_fn) if compiled else loss_fn

        def step():
            opt.zero_grad(set_to_none=False)
            loss(params).backward()
            opt.step()

        return step, params

    # gradient agreement at the same weights (before any step)
    _, reference = library(False, False)
    loss_fn(reference).backward()
    net._backward(x, sign, coef, l2, out[1])
    diff = max(float((a.grad - b).abs().max()) for a, b in zip(reference, net.grads, strict=True))
    variants = {"hand-written": lambda: net.step(x, sign, coef, l2, out),
                "autograd+Adam(foreach)": library(False, False)[0]}  # fmt: skip
    try:
        variants["autograd+Adam(fused)"] = library(True, False)[0]
        variants["autograd+Adam(fused)"]()
    except (RuntimeError, TypeError) as error:
        print(f"  fused Adam unavailable on this build: {error}".splitlines()[0])
        variants.pop("autograd+Adam(fused)", None)
    if compile_:
        start = time.perf_counter()
        try:
            variants["compiled+Adam(foreach)"] = library(False, True)[0]
            for _ in range(3):
                variants["compiled+Adam(foreach)"]()
            print(f"  torch.compile: {time.perf_counter() - start:.1f} s to compile")
        except Exception as error:  # a C++ compiler may be missing
            print(f"  torch.compile failed: {type(error).__name__}: {error}".splitlines()[0])
            variants.pop("compiled+Adam(foreach)", None)
    best = dict.fromkeys(variants, float("inf"))
    for _ in range(5):
        for name, step in variants.items():
            step()  # warm
            start = time.process_time()
            for _ in range(100):
                step()
            best[name] = min(best[name], (time.process_time() - start) * 10)  # ms per step
    for name, ms in best.items():
        note = f"  max|grad diff|={diff:.1e}" if name == "hand-written" else ""
        print(f"c2st-step d={d:<3d} h={10 * d:<4d} {name:24s} {ms:8.3f} ms/step "
              f"ratio={ms / best['hand-written']:5.2f}x{note}", flush=True)  # fmt: skip


SECTIONS = {"w1": bench_w1, "js": bench_js, "c2st": bench_c2st, "mmd": bench_mmd,
            "params": bench_params, "c2st-numerics": bench_c2st_numerics}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sections", nargs="+", choices=sorted(SECTIONS), default=sorted(SECTIONS)
    )
    parser.add_argument("--sizes", nargs="+", type=int, default=[1000, 10_000])
    parser.add_argument("--dims", nargs="+", type=int, default=[1, 2, 10])
    parser.add_argument("--sbibm-dims", nargs="+", type=int, default=[1, 2],
                        help="dimensions where the sbibm protocol also runs (d=10, n=1000: minutes)")  # fmt: skip
    parser.add_argument("--compile", action="store_true",
                        help="c2st-numerics: also time the torch.compile'd autograd step")  # fmt: skip
    args = parser.parse_args()
    torch.set_num_threads(1)
    for name in args.sections:
        if name == "c2st":
            bench_c2st(args.sizes, args.dims, args.sbibm_dims)
        elif name == "c2st-numerics":
            bench_c2st_numerics(args.sizes, args.dims, args.compile)
        else:
            SECTIONS[name](args.sizes, args.dims)


if __name__ == "__main__":
    main()
