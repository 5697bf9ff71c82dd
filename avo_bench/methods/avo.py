r"""Adversarial Variational Optimization (AVO) of non-differentiable simulators.

A proposal :math:`q(\theta \mid \psi)` plays the GAN generator: :math:`\theta \sim q`,
:math:`\tilde x = g(z; \theta)`. A critic :math:`d(x; \phi)` learns to tell :math:`\tilde x`
from the observed :math:`x` (:mod:`._critics`), and since the simulator has no gradient,
:math:`\psi` follows the score-function (REINFORCE) estimate of the gradient of

.. math:: U_g(\psi) + \gamma H(q_\psi), \qquad U_g = E_{\theta \sim q}[L_g(\tilde x)],
          \qquad \nabla_\psi U_g = E_q[L_g \nabla_\psi \log q(\theta \mid \psi)].

The sign is the paper's: :math:`+\gamma H` is *minimised*, so :math:`\gamma > 0` penalises the
entropy and concentrates :math:`q` toward a point estimate (AVO-MWE); :math:`\gamma = 0` lets
:math:`q` spread into a posterior-predictive fit (AVO-EB), which is what population tasks need.

Each *epoch* draws the critic's simulations from the current :math:`q` in one batched call
(``n_critic * critic_batch_size`` fresh ones as in the paper, or a ``critic_pool`` the critic's
minibatches are resampled from), takes ``n_critic`` critic steps, then one proposal step on
``batch_size`` fresh simulations, or on the critic's simulations when ``reuse_simulations`` (they
come from the same :math:`q`; the critic has seen them, a small bias traded for the budget).
Every simulation counts against the budget: with budget :math:`B`, ``epochs = (B - warm-up) //
per-epoch simulations``. How many simulations an epoch draws, the step size and its decay and
the averaging follow from :math:`B` (:func:`~._avo_config.budget_schedule`, measured in the
docstring of :class:`~._avo_config.AVOConfig`); ``schedule="paper"`` gives the paper's
(``scripts/reproduce_avo.py``). The schedule used is recorded in ``Result.extras``. Below the
smallest budget the schedule can learn from, and for a single observation (the critic would
compare the predictive with a point mass, whose optimum is a point estimate, not a posterior),
the method raises :class:`~._base.NotApplicable` with the reason.

References:
    | Adversarial Variational Optimization of Non-Differentiable Simulators
    | (Louppe, Hermans and Cranmer, AISTATS 2019) https://arxiv.org/abs/1707.07113
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict
from typing import NamedTuple

import pandas as pd
import torch
from torch import Tensor

from avo_bench.progress import report_progress

from . import register
from ._avo_config import AVOConfig, Schedule, resolve_schedule
from ._base import CountingSimulator, NotApplicable, Result
from ._critics import MLPCritic, critic_epoch, generator_loss
from ._nn import FlatAdam
from ._proposals import BASELINES, MixtureProposal, make_proposal, score_function_grad

__all__ = [
    "BASELINES",
    "MIN_OBSERVATIONS",
    "AVOConfig",
    "Draw",
    "applicable",
    "fit",
    "score_function_grad",
    "train",
]

MIN_OBSERVATIONS = 2  # the critic compares distributions: one observation is a point mass

# training loop (shared with the reparameterized baseline) ---------------------------------


class Draw(NamedTuple):
    """Simulations from the proposal: ``psi`` (a leaf, with a graph to ``theta`` and ``x`` in
    pathwise mode), ``theta`` ``(n, d)``, mixture ``component`` ``(n,)`` and the critic's input
    ``x`` ``(n, features)`` (standardized)."""

    psi: Tensor
    theta: Tensor
    component: Tensor
    x: Tensor


def _step_size(schedule: Schedule, epoch: int) -> float:
    if schedule.proposal_schedule == "constant":
        return schedule.proposal_lr
    return schedule.proposal_lr * 0.5 * (1 + math.cos(math.pi * (epoch - 1) / schedule.epochs))


def _nan_guard(name: str, epoch: int, **values: Tensor) -> None:
    for what, value in values.items():
        if not bool(torch.isfinite(value).all()):
            raise FloatingPointError(f"{name}: NaN or inf in the {what} at iteration {epoch}")


def applicable(simulator) -> str | None:
    """``None`` if AVO applies to ``simulator``, otherwise why not (a single observation)."""
    return None if simulator.n_obs >= MIN_OBSERVATIONS else _single(simulator.name, 1)


def _single(name: str, n_obs: int) -> str:
    return (
        f"AVO fits the predictive to the distribution of an observed set; {name!r} has "
        f"n_obs = {n_obs}, and against one observation the critic's optimum is a point mass "
        "at the minimum expected distance, not a posterior (use n_obs >= "
        f"{MIN_OBSERVATIONS} iid observations, or a posterior method)"
    )


def _standardizer(x_obs: Tensor, standardize: bool) -> tuple[Tensor, Tensor]:
    loc, scale = x_obs.mean(0), x_obs.std(0)
    if not standardize:
        loc, scale = torch.zeros_like(loc), torch.ones_like(loc)
    return loc, torch.where(scale > 0, scale, torch.ones_like(scale))


def train(
    simulator: CountingSimulator,
    x_obs: Tensor,
    budget: int,
    config: AVOConfig,
    generator: torch.Generator,
    device: torch.device | str,
    grad_fn: Callable[..., tuple[Tensor, dict[str, float]]],
    name: str,
    pathwise: bool = False,
) -> Result:
    """The AVO loop with a pluggable proposal gradient; returns the method's Result.

    ``grad_fn(proposal, draw, critic, config)`` returns ``(grad, diagnostics)`` for a
    :class:`Draw` from the current proposal.
    With ``pathwise`` the proposal draws keep their graph, so ``x`` is differentiable in
    ``psi`` when the simulator is (the reparameterized baseline).

    Raises:
        NotApplicable: For fewer than two observations, or a budget below the schedule's
            minimum (the reason names it).
    """
    device = torch.device(device)
    x_obs = torch.as_tensor(x_obs).to(device, torch.float32).flatten(1)
    if x_obs.shape[0] < MIN_OBSERVATIONS:
        raise NotApplicable(_single(simulator.name, x_obs.shape[0]))
    proposal, psi = make_proposal(simulator, config, generator)
    plan = resolve_schedule(config, budget, proposal.components)
    psi = psi.to(device)
    loc, scale = _standardizer(x_obs, plan.standardize_x)
    real_all = (x_obs - loc) / scale
    critic = MLPCritic(real_all.shape[1], plan.critic_hidden, generator, config.critic_slope)
    critic_opt = FlatAdam(critic.params, config.critic_lr, config.critic_betas)
    psi_opt = FlatAdam(psi, plan.proposal_lr, config.proposal_betas)
    m, pool = plan.critic_batch_size, plan.critic_pool

    def simulate(n: int, keep_graph: bool) -> Draw:
        with torch.set_grad_enabled(keep_graph):
            leaf = psi.detach().requires_grad_(keep_graph)
            theta, component = proposal.sample(leaf, n, generator)
            x = simulator.simulate(theta.float(), generator)
            return Draw(leaf, theta, component, (x.flatten(1) - loc) / scale)

    def critic_steps(steps: int) -> tuple[Draw, Tensor]:
        draw = simulate(pool or steps * m, pathwise and plan.reuse_simulations)
        idx = torch.randint(real_all.shape[0], (steps, m), generator=generator, device=device)
        fake = draw.x.detach()
        if pool is None:
            fake = fake.view(steps, m, -1)
        else:  # minibatches resampled from the epoch's pool of simulations
            fake = fake[torch.randint(pool, (steps, m), generator=generator, device=device)]
        stats = critic_epoch(
            critic, critic_opt, fake, real_all[idx], config.critic_loss, config.penalty, generator
        )
        return draw, stats

    if plan.critic_warmup > 0:
        critic_steps(plan.critic_warmup)
    rows, psi_avg = [], psi.clone()
    for epoch in range(1, plan.epochs + 1):
        if config.reset_critic_optimizer:
            critic_opt.reset()
        draw, stats = critic_steps(plan.n_critic)
        with torch.no_grad():
            n = draw.x.shape[0]
            gap = critic(real_all[:n]).mean() - critic(draw.x.detach()).mean()
        if not plan.reuse_simulations:
            draw = simulate(plan.batch_size, pathwise)
        grad, diagnostics = grad_fn(proposal, draw, critic, config)
        _nan_guard(name, epoch, critic_loss=stats, critic=critic.params, gradient=grad)
        psi_opt.lr = _step_size(plan, epoch)
        psi_opt.step(grad)
        psi_avg.lerp_(psi, 1.0 if epoch == 1 else 1 - plan.average)
        _nan_guard(name, epoch, proposal=psi)
        diagnostics["step_size"] = psi_opt.lr
        rows.append(_row(epoch, simulator, proposal, psi, stats, gap, diagnostics))
        if epoch % max(1, plan.epochs // 100) == 0 or epoch == plan.epochs:
            report_progress(epoch, plan.epochs, critic_loss=rows[-1]["critic_loss"])
    theta, _ = proposal.sample(psi_avg, config.num_samples, generator)
    history = pd.DataFrame(rows)
    extras = _extras(config, plan, proposal.summary(psi_avg), simulator)
    extras["final_critic_loss"] = float(history["critic_loss"].iloc[-1])
    extras["final_critic_gap"] = float(history["critic_gap"].iloc[-1])
    return Result(theta.float(), simulator.num_simulations, history, extras)


def _row(epoch, simulator, proposal, psi, stats, gap, diagnostics) -> dict[str, float]:
    mean, std = proposal.summary(psi)
    row = {
        "iteration": epoch,
        "num_simulations": simulator.num_simulations,
        "critic_loss": float(stats[0]),
        "critic_gap": float(gap),
        **diagnostics,
    }
    for i, name in enumerate(simulator.parameter_names):
        row[f"mean_{name}"], row[f"std_{name}"] = float(mean[i]), float(std[i])
    return row


def _extras(config, plan: Schedule, summary, simulator) -> dict[str, object]:
    # The schedule actually used and the returned proposal's mean and std per parameter.
    extras: dict[str, object] = {
        "epochs": plan.epochs,
        "simulations_per_epoch": plan.simulations_per_epoch,
        "warmup_simulations": plan.warmup_simulations,
    }
    for i, name in enumerate(simulator.parameter_names):
        extras[f"final_mean_{name}"] = float(summary[0][i])
        extras[f"final_std_{name}"] = float(summary[1][i])
    extras["config"] = repr(asdict(config))
    extras["schedule"] = repr(asdict(plan))
    return extras


def _avo_grad(proposal: MixtureProposal, draw: Draw, critic: MLPCritic, config: AVOConfig):
    with torch.no_grad():
        losses = generator_loss(critic(draw.x), config.critic_loss)
    return score_function_grad(proposal, draw.psi, draw.theta.detach(), losses, config)


@register(
    "avo",
    config=AVOConfig,
    applicable=applicable,
    description="Adversarial Variational Optimization: critic + score-function proposal updates",
)
def fit(
    simulator: CountingSimulator,
    x_obs: Tensor,
    *,
    budget: int,
    config: AVOConfig,
    generator: torch.Generator,
    device: torch.device | str,
) -> Result:
    """Adversarial Variational Optimization (Louppe et al., 2019) of ``simulator`` to ``x_obs``.

    Arguments:
        simulator: A budget-counting simulator (never differentiated).
        x_obs: Observed data ``(n_obs, *x_shape)``.
        budget: Simulation budget; the number of epochs follows from it.
        config: An :class:`AVOConfig`.
        generator: The only randomness source, on ``device``.
        device: Where the critic and proposal live.

    Returns:
        ``num_samples`` draws from the final proposal, the simulations used, a per-epoch
        history (critic loss, critic gap :math:`-U_d`, proposal mean/std, gradient variance)
        and the settings used in ``extras``.
    """
    return train(simulator, x_obs, budget, config, generator, device, _avo_grad, "avo")
