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
per-epoch simulations`` (both recorded in ``Result.extras``), so larger budgets run longer.
The paper's settings are reachable with a large budget, see ``scripts/reproduce_avo.py``.

References:
    | Adversarial Variational Optimization of Non-Differentiable Simulators
    | (Louppe, Hermans and Cranmer, AISTATS 2019) https://arxiv.org/abs/1707.07113
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import ClassVar, NamedTuple

import pandas as pd
import torch
from torch import Tensor

from avo_bench.progress import report_progress

from . import register
from ._base import CountingSimulator, Result
from ._critics import CRITIC_LOSSES, MLPCritic, critic_epoch, generator_loss
from ._nn import FlatAdam
from ._proposals import BASELINES, COORDINATES, MixtureProposal, make_proposal, score_function_grad

__all__ = ["BASELINES", "PROPOSALS", "AVOConfig", "Draw", "fit", "score_function_grad", "train"]

PROPOSALS = ("auto", "gaussian", "mixture")
SCHEDULES = ("constant", "cosine")


def _is_int(value: object, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _is_real(value: object, low: float, high: float = math.inf) -> bool:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    return ok and math.isfinite(value) and low <= value <= high


@dataclass(frozen=True)
class AVOConfig:
    r"""Hyperparameters of AVO.

    The defaults suit the grid's 10^4-simulation budget: 64 simulations per epoch reused by
    20 critic steps and the proposal step (about 150 epochs), standardized data and
    coordinates so one step size fits every simulator, Adam (0.02, betas 0.9/0.999) on the
    proposal, whose second-moment memory damps the noisy score-function steps.

    The paper's settings are ``batch_size=64, critic_batch_size=32, n_critic=100,
    reuse_simulations=False, standardize_x=False, critic_warmup=100`` (Poisson:
    ``penalty=0.025``, Adam betas ``(0.5, 0.5)``; Weinberg: ``penalty=0.0025``,
    ``critic_warmup=1000``, betas ``(0.9, 0.999)``), see ``scripts/reproduce_avo.py``.
    For Weinberg that script also sets ``proposal_schedule="cosine", average=0.95``: with the
    paper's constant step the last iterate wanders along the noisy score-function steps (the
    asymmetry :math:`c` of its mean off by up to 0.24 over seeds), annealed it settles (within
    0.03 of :math:`c^*` at :math:`\gamma = 5` over 12 seeds).

    Attributes:
        critic_loss: ``"wgan-gp"`` (paper), ``"wgan-lp"`` (one-sided penalty, Petzka et al.,
            2018) or ``"bce-r1"`` (logistic loss + R1, the later implementation).
        penalty: Gradient penalty weight :math:`\lambda \ge 0`.
        gamma: Entropy weight :math:`\gamma \ge 0`; the minimised objective is
            :math:`U_g + \gamma H(q)`, so larger values concentrate :math:`q`.
        baseline: Control variate of the score-function gradient: ``"optimal"`` (default),
            ``"mean"`` or ``"none"`` (plain REINFORCE, as in the paper). See
            :func:`score_function_grad`.
        proposal: ``"gaussian"`` (mean-field, the paper's), ``"mixture"`` (``components``
            truncated mean-field Gaussians, for population tasks) or ``"auto"`` (mixture for
            population simulators, Gaussian otherwise).
        components: Mixture components :math:`K \ge 2` of the ``"mixture"`` proposal.
        coordinates: Working coordinates of :math:`\psi`: ``"standardized"`` (box prior to
            :math:`[0, 1]`, Gaussian prior to z-scores) or ``"raw"``.
        init_mean: Initial proposal mean per parameter, or ``None`` for the prior mean.
        init_std: Initial proposal standard deviation per parameter, or ``None`` for
            ``init_scale`` times the prior's.
        init_scale: Fraction of the prior standard deviation used when ``init_std`` is
            ``None``. A proposal as wide as a broad prior simulates far into the tails (e.g.
            Poisson rates up to e^5), where the critic's large values dominate the first
            updates; a quarter of it avoids that detour.
        batch_size: Simulations :math:`M \ge 2` of a proposal step (unless reused).
        critic_batch_size: Simulated and observed rows :math:`m \ge 2` of a critic step.
        n_critic: Critic steps per epoch (:math:`\ge 1`).
        critic_pool: Simulations drawn per epoch for the critic, its minibatches resampled
            from them; ``None``: ``n_critic * critic_batch_size``, fresh ones at every step
            (the paper). A pool lets the critic train longer per simulation.
        critic_warmup: Critic steps before the first epoch (:math:`\ge 0`).
        critic_hidden: Hidden widths of the leaky-ReLU critic.
        critic_slope: Negative slope of the leaky ReLU, in ``[0, 1)``.
        critic_lr: Adam step size of the critic.
        critic_betas: Adam decay rates of the critic.
        proposal_lr: Adam step size of the proposal.
        proposal_betas: Adam decay rates of the proposal.
        proposal_schedule: Step size of the proposal over the epochs: ``"constant"`` (the
            paper) or ``"cosine"`` (from ``proposal_lr`` to 0 at the last epoch, Loshchilov
            and Hutter, 2017, https://arxiv.org/abs/1608.03983). Near the optimum the
            score-function steps are mostly noise (64 simulations of a weakly informative
            critic); a decaying step anneals that random walk instead of stopping it mid-way.
        reset_critic_optimizer: Reset the critic's Adam moments every epoch (paper).
        reuse_simulations: Reuse the critic's simulations for the proposal step.
        standardize_x: Standardize data with the observed mean and standard deviation before
            the critic (the critic is then 1-Lipschitz in standardized units).
        epochs: Maximum number of epochs, or ``None``: as many as the budget allows.
        average: Decay in ``[0, 1)`` of an exponential moving average of :math:`\psi` whose
            proposal is returned (iterate averaging against the adversarial game's
            oscillation, Yazici et al., 2019, https://arxiv.org/abs/1806.04498); ``0``
            returns the last iterate, as the paper.
        num_samples: Number of :math:`\theta` samples returned from the final proposal.
    """

    critic_loss: str = "wgan-gp"
    penalty: float = 0.025
    gamma: float = 0.0
    baseline: str = "optimal"
    proposal: str = "auto"
    components: int = 8
    coordinates: str = "standardized"
    init_mean: tuple[float, ...] | None = None
    init_std: tuple[float, ...] | None = None
    init_scale: float = 0.25
    batch_size: int = 64
    critic_batch_size: int = 32
    n_critic: int = 20
    critic_warmup: int = 20
    critic_pool: int | None = 64
    critic_hidden: tuple[int, ...] = (10, 10)
    critic_slope: float = 0.1
    critic_lr: float = 0.01
    critic_betas: tuple[float, float] = (0.5, 0.5)
    proposal_lr: float = 0.02
    proposal_betas: tuple[float, float] = (0.9, 0.999)
    proposal_schedule: str = "constant"
    reset_critic_optimizer: bool = True
    reuse_simulations: bool = True
    standardize_x: bool = True
    epochs: int | None = None
    average: float = 0.95
    num_samples: int = 1000

    method: ClassVar[str] = "avo"

    def __post_init__(self):
        for field in _TUPLES:  # TOML / JSON give lists
            if isinstance(getattr(self, field), list):
                object.__setattr__(self, field, tuple(getattr(self, field)))
        for field, ok, valid in _RULES:
            value = getattr(self, field)
            if not ok(value):
                raise ValueError(f"{self.method}: {field} must be {valid}, got {value!r}")


def _choice(options: tuple[str, ...]) -> tuple:
    return (lambda v: v in options), f"one of {', '.join(map(repr, options))}"


def _integer(minimum: int) -> tuple:
    return (lambda v: _is_int(v, minimum)), f"an integer >= {minimum}"


def _reals(v: object) -> bool:
    return isinstance(v, tuple) and len(v) > 0 and all(_is_real(x, -math.inf) for x in v)


_TUPLES = ("init_mean", "init_std", "critic_hidden", "critic_betas", "proposal_betas")
_UNIT = (lambda v: _is_real(v, 0) and v < 1), "a number in [0, 1)"
_BETAS = (
    (lambda v: isinstance(v, tuple) and len(v) == 2 and all(_UNIT[0](b) for b in v)),
    "a pair of numbers in [0, 1)",
)
_RULES = [
    ("critic_loss", *_choice(CRITIC_LOSSES)),
    ("baseline", *_choice(BASELINES)),
    ("proposal", *_choice(PROPOSALS)),
    ("coordinates", *_choice(COORDINATES)),
    ("proposal_schedule", *_choice(SCHEDULES)),
    ("penalty", lambda v: _is_real(v, 0), "a finite number >= 0"),
    ("gamma", lambda v: _is_real(v, 0), "a finite number >= 0"),
    ("critic_lr", lambda v: _is_real(v, 0) and v > 0, "a finite number > 0"),
    ("proposal_lr", lambda v: _is_real(v, 0) and v > 0, "a finite number > 0"),
    ("batch_size", *_integer(2)),
    ("critic_batch_size", *_integer(2)),
    ("n_critic", *_integer(1)),
    ("critic_warmup", *_integer(0)),
    ("critic_pool", lambda v: v is None or _is_int(v, 2), "None or an integer >= 2"),
    ("components", *_integer(2)),
    ("num_samples", *_integer(1)),
    ("init_scale", lambda v: _is_real(v, 0) and v > 0, "a finite number > 0"),
    ("average", *_UNIT),
    ("epochs", lambda v: v is None or _is_int(v, 1), "None or an integer >= 1"),
    ("critic_slope", *_UNIT),
    ("critic_betas", *_BETAS),
    ("proposal_betas", *_BETAS),
    (
        "critic_hidden",
        lambda v: isinstance(v, tuple) and len(v) > 0 and all(_is_int(h, 1) for h in v),
        "a non-empty tuple of integers >= 1",
    ),
    ("init_mean", lambda v: v is None or _reals(v), "None or a tuple of finite numbers"),
    (
        "init_std",
        lambda v: v is None or (_reals(v) and all(x > 0 for x in v)),
        "None or a tuple of finite numbers > 0",
    ),
]


# training loop (shared with the reparameterized baseline) ---------------------------------


class Draw(NamedTuple):
    """Simulations from the proposal: ``psi`` (a leaf, with a graph to ``theta`` and ``x`` in
    pathwise mode), ``theta`` ``(n, d)``, mixture ``component`` ``(n,)`` and the critic's input
    ``x`` ``(n, features)`` (standardized)."""

    psi: Tensor
    theta: Tensor
    component: Tensor
    x: Tensor


def _epochs(budget: int, config: AVOConfig, name: str) -> tuple[int, int, int]:
    per_epoch = config.critic_pool or config.n_critic * config.critic_batch_size
    per_epoch += 0 if config.reuse_simulations else config.batch_size
    warmup = config.critic_pool or config.critic_warmup * config.critic_batch_size
    warmup = warmup if config.critic_warmup > 0 else 0
    if budget < warmup + per_epoch:
        raise ValueError(
            f"{name}: a budget of {budget} simulations is too small: the critic warm-up needs "
            f"{warmup} and each epoch {per_epoch}; increase the budget to >= {warmup + per_epoch}"
            " or lower critic_warmup, n_critic or critic_batch_size"
        )
    epochs = (budget - warmup) // per_epoch
    return (epochs if config.epochs is None else min(epochs, config.epochs)), per_epoch, warmup


def _step_size(config: AVOConfig, epoch: int, epochs: int) -> float:
    if config.proposal_schedule == "constant":
        return config.proposal_lr
    return config.proposal_lr * 0.5 * (1 + math.cos(math.pi * (epoch - 1) / epochs))


def _nan_guard(name: str, epoch: int, **values: Tensor) -> None:
    for what, value in values.items():
        if not bool(torch.isfinite(value).all()):
            raise FloatingPointError(f"{name}: NaN or inf in the {what} at iteration {epoch}")


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
    """
    device = torch.device(device)
    x_obs = torch.as_tensor(x_obs).to(device, torch.float32).flatten(1)
    epochs, per_epoch, warmup = _epochs(budget, config, name)
    proposal, psi = make_proposal(simulator, config, generator)
    psi = psi.to(device)
    loc, scale = x_obs.mean(0), x_obs.std(0) if x_obs.shape[0] > 1 else x_obs.new_ones(1)
    if not config.standardize_x:
        loc, scale = torch.zeros_like(loc), torch.ones_like(loc)
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    real_all = (x_obs - loc) / scale
    critic = MLPCritic(real_all.shape[1], config.critic_hidden, generator, config.critic_slope)
    critic_opt = FlatAdam(critic.params, config.critic_lr, config.critic_betas)
    psi_opt = FlatAdam(psi, config.proposal_lr, config.proposal_betas)
    m, pool = config.critic_batch_size, config.critic_pool

    def simulate(n: int, keep_graph: bool) -> Draw:
        with torch.set_grad_enabled(keep_graph):
            leaf = psi.detach().requires_grad_(keep_graph)
            theta, component = proposal.sample(leaf, n, generator)
            x = simulator.simulate(theta.float(), generator)
            return Draw(leaf, theta, component, (x.flatten(1) - loc) / scale)

    def critic_steps(steps: int) -> tuple[Draw, Tensor]:
        draw = simulate(pool or steps * m, pathwise and config.reuse_simulations)
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

    if config.critic_warmup > 0:
        critic_steps(config.critic_warmup)
    rows, psi_avg = [], psi.clone()
    for epoch in range(1, epochs + 1):
        if config.reset_critic_optimizer:
            critic_opt.reset()
        draw, stats = critic_steps(config.n_critic)
        with torch.no_grad():
            n = draw.x.shape[0]
            gap = critic(real_all[:n]).mean() - critic(draw.x.detach()).mean()
        if not config.reuse_simulations:
            draw = simulate(config.batch_size, pathwise)
        grad, diagnostics = grad_fn(proposal, draw, critic, config)
        _nan_guard(name, epoch, critic_loss=stats, critic=critic.params, gradient=grad)
        psi_opt.lr = _step_size(config, epoch, epochs)
        psi_opt.step(grad)
        psi_avg.lerp_(psi, 1.0 if epoch == 1 else 1 - config.average)
        _nan_guard(name, epoch, proposal=psi)
        rows.append(_row(epoch, simulator, proposal, psi, stats, gap, diagnostics))
        if epoch % max(1, epochs // 100) == 0 or epoch == epochs:
            report_progress(epoch, epochs, critic_loss=rows[-1]["critic_loss"])
    theta, _ = proposal.sample(psi_avg, config.num_samples, generator)
    history = pd.DataFrame(rows)
    extras = _extras(config, (epochs, per_epoch, warmup), proposal.summary(psi_avg), simulator)
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


def _extras(config, schedule, summary, simulator) -> dict[str, object]:
    # Settings actually used and the returned proposal's mean and std per parameter.
    extras: dict[str, object] = {
        "epochs": schedule[0],
        "simulations_per_epoch": schedule[1],
        "warmup_simulations": schedule[2],
    }
    for i, name in enumerate(simulator.parameter_names):
        extras[f"final_mean_{name}"] = float(summary[0][i])
        extras[f"final_std_{name}"] = float(summary[1][i])
    extras["config"] = repr(asdict(config))
    return extras


def _avo_grad(proposal: MixtureProposal, draw: Draw, critic: MLPCritic, config: AVOConfig):
    with torch.no_grad():
        losses = generator_loss(critic(draw.x), config.critic_loss)
    return score_function_grad(proposal, draw.psi, draw.theta.detach(), losses, config)


@register(
    "avo",
    config=AVOConfig,
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
