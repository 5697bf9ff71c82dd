"""Where NLE's iid potential spends its time, and what two exact-in-arithmetic rewrites would save.

Run ``python benchmarks/speed_nle_potential.py [--obs 1000] [--chains 20] [--repeats 20]``.
Pins torch to one thread (as the grid's workers are). NLE and SNLE on an iid task evaluate
``sum_i log q(x_i | theta)`` over every observation and every chain at each slice-sampling step
(:class:`avo_bench.methods._sbi_iid.IIDPotential`): on ``gaussian`` (2-D data, 1,000
observations, 20 chains) one evaluation runs ``sbi``'s MAF (5 MADE transforms, 50 hidden
units, ``tanh``) on 20,000 rows, and a py-spy profile of a whole reference cell (988 s) put 95 %
of it in the flow, most of that in ``tanh``. This script times one evaluation of that potential
(the estimator built by ``sbi``'s ``likelihood_nn("maf")``, its weights perturbed at random
instead of trained: the timing does not depend on them) as ``sbi`` runs it, and with

- ``broadcast``: each MADE's context layer, ``tanh(W theta + b)``, evaluated once per distinct
  ``theta`` (the chains) and broadcast over the observations, instead of once per row;
- ``sigmoid``: ``tanh(t)`` computed as ``2 sigmoid(2t) - 1`` (the same function; torch's CPU
  ``tanh`` costs several times its ``sigmoid`` per element);
- both.

It prints milliseconds per evaluation, the ratio to ``sbi``'s, and the largest difference of the
potential from ``sbi``'s (float rounding only). Nothing here changes the library: these are
measurements for deciding whether to patch ``nflows``' MADE.
"""

from __future__ import annotations

import argparse
import contextlib
import time

import torch
import torch.nn.functional as F


def _sigmoid_tanh(t: torch.Tensor) -> torch.Tensor:
    return 2.0 * torch.sigmoid(2.0 * t) - 1.0


@contextlib.contextmanager
def patched(module: torch.nn.Module, *, broadcast: int | None, sigmoid: bool):
    """MADE.forward of ``module``'s MADEs rewritten: ``broadcast`` (the number of distinct
    contexts ``c``: rows are ordered observation-major, row ``j`` has context ``j % c``) and/or
    ``tanh`` through ``sigmoid``."""
    from nflows.transforms.made import MADE

    originals = {}
    for made in (m for m in module.modules() if isinstance(m, MADE)):
        activation = _sigmoid_tanh if sigmoid else made.activation
        blocks_activation = []
        for block in made.blocks:
            blocks_activation.append(block.activation)
            block.activation = activation

        def forward(inputs, context=None, made=made, activation=activation):
            temps = made.initial_layer(inputs)
            if context is not None:
                if broadcast:
                    distinct = context[:broadcast]
                    part = activation(made.context_layer(distinct))
                    temps = (temps.view(-1, broadcast, temps.shape[-1]) + part).view_as(temps)
                else:
                    temps = temps + activation(made.context_layer(context))
            if not made.use_residual_blocks:
                temps = activation(temps)
            for block in made.blocks:
                temps = block(temps, context)
            return made.final_layer(temps)

        originals[made] = blocks_activation
        made.forward = forward
    try:
        yield
    finally:
        for made, activations in originals.items():
            del made.forward
            for block, activation in zip(made.blocks, activations, strict=True):
                block.activation = activation


def best_ms(call, repeats: int) -> float:
    call()
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        timings.append(time.perf_counter() - start)
    return 1e3 * min(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--obs", type=int, default=1000, help="distinct observations")
    parser.add_argument("--chains", type=int, default=20)
    parser.add_argument("--dim", type=int, default=2, help="dimension of x and theta")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)
    from sbi.neural_nets import likelihood_nn

    from avo_bench.methods._sbi_iid import terms

    generator = torch.Generator().manual_seed(0)
    theta_train = torch.randn(1000, args.dim, generator=generator)
    x_train = theta_train + torch.randn(1000, args.dim, generator=generator)
    estimator = likelihood_nn("maf")(theta_train, x_train).eval()
    with torch.no_grad():  # nflows starts its MADE outputs at zero; make every unit count
        for parameter in estimator.parameters():
            parameter.add_(0.1 * torch.randn(parameter.shape, generator=generator))
    points = torch.randn(args.obs, args.dim, generator=generator)
    theta = 0.1 * torch.randn(args.chains, args.dim, generator=generator)
    f = terms("likelihood", estimator)

    def potential() -> torch.Tensor:
        with torch.no_grad():
            return f(points, theta).sum(0)

    base = potential()
    base_ms = best_ms(potential, args.repeats)
    print(f"threads={torch.get_num_threads()} torch={torch.__version__} obs={args.obs} "
          f"chains={args.chains} dim={args.dim} rows={args.obs * args.chains}")  # fmt: skip
    print(f"{'variant':<20} {'ms/eval':>9} {'ratio':>7} {'max |d potential|':>18}")
    print(f"{'sbi (as run)':<20} {base_ms:9.2f} {1.0:7.2f} {0.0:18.3g}")
    for name, broadcast, sigmoid in [("broadcast", True, False), ("sigmoid", False, True),
                                     ("broadcast+sigmoid", True, True)]:  # fmt: skip
        with patched(estimator, broadcast=args.chains if broadcast else None, sigmoid=sigmoid):
            value = potential()
            ms = best_ms(potential, args.repeats)
        diff = (value - base).abs().max().item()
        print(f"{name:<20} {ms:9.2f} {base_ms / ms:7.2f} {diff:18.3g}")
    x = torch.randn(args.obs * args.chains, 50, generator=generator)
    tanh_ms = best_ms(lambda: torch.tanh(x), args.repeats)
    sigmoid_ms = best_ms(lambda: _sigmoid_tanh(x), args.repeats)
    linear_ms = best_ms(lambda: F.linear(x, torch.ones(50, 50)), args.repeats)
    print(f"one (rows, 50) tensor: tanh {tanh_ms:.2f} ms, 2 sigmoid(2t) - 1 {sigmoid_ms:.2f} ms, "
          f"50x50 linear {linear_ms:.2f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
