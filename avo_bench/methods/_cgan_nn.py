"""Small multilayer perceptrons initialised from an explicit ``torch.Generator``.

``torch.nn`` draws its default initial weights from the global RNG; library code must not touch
it, so :func:`mlp` re-draws every parameter from the generator it is given, with the same
distribution as PyTorch's default for ``nn.Linear`` (Kaiming-uniform with ``a = sqrt(5)``,
i.e. ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` for weights and biases alike).
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn

__all__ = ["init_linear_", "mlp"]


@torch.no_grad()
def init_linear_(module: nn.Module, generator: torch.Generator) -> nn.Module:
    """Re-draws the weights and biases of every ``nn.Linear`` in ``module`` from ``generator``.

    Arguments:
        module: A module; its ``nn.Linear`` submodules are re-initialised in place.
        generator: The source of randomness, on the parameters' device.

    Returns:
        ``module`` itself.
    """
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            bound = 1.0 / math.sqrt(layer.in_features)
            for parameter in (layer.weight, layer.bias):
                if parameter is not None:
                    u = torch.rand(
                        parameter.shape,
                        generator=generator,
                        device=parameter.device,
                        dtype=parameter.dtype,
                    )
                    parameter.copy_((2 * u - 1) * bound)
    return module


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
        generator: The only source of randomness for the initial weights.
        device: Where the parameters live.

    Returns:
        ``Linear -> ReLU -> ... -> Linear`` on ``device``.
    """
    sizes = [in_features, *[hidden_features] * hidden_layers]
    layers: list[nn.Module] = []
    for a, b in itertools.pairwise(sizes):
        layers += [nn.Linear(a, b, device="meta"), nn.ReLU()]
    layers.append(nn.Linear(sizes[-1], out_features, device="meta"))
    # Built on the meta device so that nn.Linear's own init never draws from the global RNG.
    network = nn.Sequential(*layers).to_empty(device=device)
    return init_linear_(network, generator)
