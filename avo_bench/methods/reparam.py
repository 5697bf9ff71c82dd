r"""Reparameterized-gradient baseline: AVO's objective with pathwise gradients.

For a *differentiable* simulator :math:`x = g(z; \theta)`, the proposal objective of AVO,
:math:`U_g(\psi) + \gamma H(q_\psi)` with :math:`U_g = E_{\theta \sim q_\psi}[L_g(g(z; \theta))]`,
can be differentiated along the sampling path: :math:`\theta = T_\psi(\epsilon)` (the
inverse-CDF draw of :mod:`._proposals`) and
:math:`\nabla_\psi U_g = E[\nabla_x L_g \cdot \partial_\theta g \cdot \partial_\psi T_\psi]`.
Same critic, same proposal family, same budget accounting as ``avo``: only the gradient
estimator changes, so the gap between the two measures what the score-function estimator costs
per simulation: a lower bound on what the non-differentiable methods could achieve.

The discrete component choice of a mixture proposal has no pathwise gradient; its logits use
the score-function term with a leave-one-out mean baseline. The entropy is exact for one
Gaussian and a pathwise Monte Carlo estimate :math:`-E[\log q(T_\psi(\epsilon))]` otherwise.

References:
    | Auto-Encoding Variational Bayes (Kingma and Welling, 2014)
    | https://arxiv.org/abs/1312.6114
    | Monte Carlo Gradient Estimation in Machine Learning (Mohamed et al., 2020)
    | https://arxiv.org/abs/1906.10652
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from simulators import Simulator

from . import register
from ._base import CountingSimulator, NotApplicable, Result
from ._critics import MLPCritic, generator_loss
from ._proposals import MixtureProposal
from .avo import AVOConfig, Draw, train
from .avo import applicable as avo_applicable

__all__ = ["ReparamConfig", "applicable", "fit", "pathwise_grad"]


@dataclass(frozen=True)
class ReparamConfig(AVOConfig):
    """The :class:`~avo_bench.methods.avo.AVOConfig` fields, with the same defaults.

    ``baseline`` only applies to the mixture logits (the one score-function term).
    """

    method: ClassVar[str] = "reparam"


def applicable(simulator: Simulator) -> str | None:
    """``None`` for a differentiable simulator with an observed set (as ``avo``), otherwise
    the reason the method does not apply."""
    if not getattr(simulator, "differentiable", False):
        return (
            f"reparam needs pathwise gradients through the simulator, but {simulator.name!r} "
            "is not differentiable (differentiable=False)"
        )
    return avo_applicable(simulator)


def pathwise_grad(
    proposal: MixtureProposal, draw: Draw, critic: MLPCritic, config: AVOConfig
) -> tuple[Tensor, dict[str, float]]:
    r"""Pathwise estimate of :math:`\nabla_\psi [U_g + \gamma H(q_\psi)]` from ``draw``.

    Arguments:
        proposal: The proposal family.
        draw: Draws whose ``x`` keeps its graph to the leaf ``draw.psi``.
        critic: The current critic.
        config: The configuration (``critic_loss``, ``gamma``).

    Returns:
        The gradient, shape of ``psi``, and the mean generator loss.
    """
    if not draw.x.requires_grad:
        raise RuntimeError(
            "reparam: the simulator output carries no gradient; is the simulator really "
            "differentiable in theta?"
        )
    losses = generator_loss(critic(draw.x), config.critic_loss)
    surrogate = losses.mean()
    if proposal.components > 1:
        f = losses.detach()
        baseline = (f.sum() - f) / (f.shape[0] - 1)
        log_w = proposal.unpack(draw.psi)[2][draw.component]
        surrogate = surrogate + ((f - baseline).to(log_w) * log_w).mean()
    if config.gamma > 0:
        entropy = proposal.entropy(draw.psi)
        if entropy is None:
            entropy = -proposal.log_prob(draw.theta, draw.psi).mean()
        surrogate = surrogate + config.gamma * entropy
    (grad,) = torch.autograd.grad(surrogate, draw.psi)
    return grad, {"generator_loss": float(losses.detach().mean())}


@register(
    "reparam",
    config=ReparamConfig,
    applicable=applicable,
    description="AVO's objective with reparameterized (pathwise) gradients; differentiable only",
)
def fit(
    simulator: CountingSimulator,
    x_obs: Tensor,
    *,
    budget: int,
    config: ReparamConfig,
    generator: torch.Generator,
    device: torch.device | str,
) -> Result:
    """Fits the AVO proposal by pathwise gradients through a differentiable simulator.

    Arguments:
        simulator: A budget-counting simulator with ``differentiable = True``.
        x_obs: Observed data ``(n_obs, *x_shape)``.
        budget: Simulation budget; the number of epochs follows from it.
        config: A :class:`ReparamConfig`.
        generator: The only randomness source, on ``device``.
        device: Where the critic and proposal live.

    Returns:
        Samples of the final proposal, the simulations used, per-epoch history and settings.

    Raises:
        NotApplicable: For a non-differentiable simulator.
    """
    reason = applicable(simulator)
    if reason is not None:
        raise NotApplicable(reason)
    return train(
        simulator, x_obs, budget, config, generator, device, pathwise_grad, "reparam", True
    )
