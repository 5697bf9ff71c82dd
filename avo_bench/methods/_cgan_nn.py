"""Multilayer perceptrons for the cGAN, initialised from an explicit ``torch.Generator``.

``torch.nn`` draws its default initial weights from the global RNG; library code must not touch
it, so :func:`mlp` builds the layers on the ``meta`` device (no draws at all) and re-draws every
parameter from the generator it is given with :func:`avo_bench.methods._nn.reset_parameters_`
(PyTorch's default distribution for ``nn.Linear``).
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from ._nn import reset_parameters_

__all__ = ["mlp"]


def mlp(
    in_features: int,
    out_features: int,
    hidden_features: int,
    hidden_layers: int,
    *,
    generator: torch.Generator,
    device: torch.device | str = "cpu",
) -> nn.Sequential:
    """A ReLU multilayer perceptron with generator-seeded initial weights.

    Arguments:
        in_features: Input size.
        out_features: Output size.
        hidden_features: Width of every hidden layer.
        hidden_layers: Number of hidden layers (``>= 1``).
        generator: The only source of randomness for the initial weights, on ``device``.
        device: Where the parameters live.

    Returns:
        ``Linear -> ReLU -> ... -> Linear`` on ``device``.
    """
    sizes = [in_features, *[hidden_features] * hidden_layers]
    layers: list[nn.Module] = []
    for a, b in itertools.pairwise(sizes):
        layers += [nn.Linear(a, b, device="meta"), nn.ReLU()]
    layers.append(nn.Linear(sizes[-1], out_features, device="meta"))
    network = nn.Sequential(*layers).to_empty(device=device)
    return reset_parameters_(network, generator)
