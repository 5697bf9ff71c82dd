r"""Local generative surrogate optimization (L-GSO) of AVO's objective.

L-GSO (Shirobokov et al. 2020) optimizes a non-differentiable simulator through a *local*
generative surrogate: at the current parameters it simulates in a small neighbourhood (the trust
region), fits a conditional generative model of the simulator there, and takes gradient steps of
the objective *through the surrogate*. Here the objective and the returned distribution are
AVO's (:mod:`avo_bench.methods.avo`), so the two compare directly: the proposal
:math:`q(\theta \mid \psi)` is a mean-field Gaussian truncated to the prior box
(:mod:`._proposals`), a critic :math:`d` (:mod:`._critics`) tells simulated from observed data,
and :math:`\psi` minimizes :math:`U_g + \gamma H(q_\psi)`,
:math:`U_g = E_{\theta \sim q_\psi}[L_g(\tilde x)]`. Only the gradient changes: AVO's
score-function estimate on real simulations becomes the pathwise gradient through the
surrogate, :math:`\tilde x = T_\phi^{-1}(z; \theta)`, :math:`\theta = T_\psi(\epsilon)`.

Each **iteration** (all in the proposal's working coordinates :math:`u`, the prior box mapped to
:math:`[0, 1]^d`):

1. Trust region :math:`R = [\mu - r, \mu + r] \cap` prior box, :math:`\mu` the proposal mean and
   :math:`r = \max(\text{trust\_radius}, 2\sigma)` per coordinate (the paper's box around
   :math:`\psi`, widened so that it holds the proposal's mass).
2. ``points`` parameters by Latin hypercube in :math:`R`, plus :math:`\mu`; ``M`` simulations at
   each (all counted); stored for reuse.
3. The flow surrogate (:mod:`._lgso_surrogate`) is trained, warm-started, on every stored
   simulation whose parameters lie in :math:`R` (experience replay).
4. ``steps_per_surrogate`` proposal steps: the critic takes ``n_critic`` steps on surrogate draws
   from :math:`q` against observed rows (no simulation), then Adam steps :math:`\psi` along the
   pathwise gradient of :math:`U_g + \gamma H` on ``batch_size`` surrogate draws.

Integer-valued data (counts) are dequantized with uniform noise on :math:`[-1/2, 1/2)`, observed
and simulated alike, so that the flow has a density (Theis et al. 2016).

Defaults follow the paper's code (``shir994/L-GSO``: :math:`2d` Latin hypercube points plus the
centre, one Adam step per surrogate, surrogate warm start as its ``reuse_model`` option) with the
critic, proposal and step sizes of AVO; they differ where our budgets are 10-1000 times smaller:
the paper simulates 3,000 times per point, here ``M`` follows the budget (about 100 iterations,
at most 100 simulations per point); the trust radius is 0.1 of the prior range (the paper: 0.1-0.5
in its parameters' units), and the proposal mean is projected back into the trust region after
each step (the paper's box constraint option). As AVO, the returned proposal is the moving
average of :math:`\psi` (``average = 0.95``).

References:
    | Black-Box Optimization with Local Generative Surrogates (Shirobokov, Belavin, Kagan,
    | Ustyuzhanin and Baydin, NeurIPS 2020) https://arxiv.org/abs/2002.04632
    | Adversarial Variational Optimization of Non-Differentiable Simulators
    | (Louppe, Hermans and Cranmer, AISTATS 2019) https://arxiv.org/abs/1707.07113
    | A note on the evaluation of generative models (Theis, van den Oord and Bethge, ICLR 2016)
    | https://arxiv.org/abs/1511.01844
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import pandas as pd
import torch
from torch import Tensor

from simulators import check_choice, check_positive_float, check_positive_int

from ..progress import report_progress
from . import register
from ._base import CountingSimulator, Result
from ._critics import CRITIC_LOSSES, MLPCritic, critic_epoch, generator_loss
from ._lgso_surrogate import LocalData, Replay, Surrogate, TrustRegion, simulate_region
from ._nn import FlatAdam
from ._proposals import make_proposal
from ._summaries import check_budget

__all__ = ["LGSOConfig", "fit"]

INSTALL_HINT = "pip install zuko  (a dependency of avo-bench)"
MIN_ITERATIONS = 100  # the budget-dependent M aims at this many iterations
MAX_PER_POINT = 100


@dataclass(frozen=True)
class LGSOConfig:
    """Hyperparameters of L-GSO (surrogate and trust region) and of AVO's objective.

    Attributes:
        points: Latin hypercube points per iteration besides the centre; ``None``: :math:`2d`.
        simulations_per_point: Simulations ``M`` at each point; ``None``: the budget over
            ``100 (points + 1)``, between 2 and 100.
        trust_radius: Smallest half-width of the trust region in working coordinates (> 0).
        steps_per_surrogate: Proposal steps per surrogate fit (the paper: 1).
        batch_size: Surrogate draws of a proposal step (free: no simulation).
        flow_transforms: Spline transforms of the surrogate flow.
        flow_hidden: Hidden widths of each transform's network.
        surrogate_steps: Adam steps of the surrogate per iteration (warm-started).
        surrogate_batch: Minibatch size of the surrogate's training.
        surrogate_lr: Adam step size of the surrogate.
        critic_loss, penalty, gamma, critic_hidden, critic_slope, critic_lr, critic_betas,
        critic_batch_size, n_critic: AVO's critic and objective (see
            :class:`~avo_bench.methods.avo.AVOConfig`); ``n_critic`` steps per proposal step.
        critic_warmup: Critic steps on surrogate draws before the first proposal step.
        coordinates, init_mean, init_std, init_scale: AVO's proposal and its initialisation.
        proposal_lr: Adam step size of the proposal.
        proposal_betas: Adam decay rates of the proposal.
        average: Decay in ``[0, 1)`` of the moving average of :math:`\\psi` that is returned.
        num_samples: Number of :math:`\\theta` samples returned from the final proposal.
    """

    points: int | None = None
    simulations_per_point: int | None = None
    trust_radius: float = 0.1
    steps_per_surrogate: int = 1
    batch_size: int = 256
    flow_transforms: int = 2
    flow_hidden: tuple[int, ...] = (32, 32)
    surrogate_steps: int = 50
    surrogate_batch: int = 256
    surrogate_lr: float = 1e-3
    critic_loss: str = "wgan-gp"
    penalty: float = 0.025
    gamma: float = 0.0
    critic_hidden: tuple[int, ...] = (10, 10)
    critic_slope: float = 0.1
    critic_lr: float = 0.01
    critic_betas: tuple[float, float] = (0.5, 0.5)
    critic_batch_size: int = 32
    n_critic: int = 20
    critic_warmup: int = 100
    coordinates: str = "standardized"
    init_mean: tuple[float, ...] | None = None
    init_std: tuple[float, ...] | None = None
    init_scale: float = 0.25
    proposal_lr: float = 0.02
    proposal_betas: tuple[float, float] = (0.9, 0.999)
    average: float = 0.95
    num_samples: int = 1000

    method: ClassVar[str] = "lgso"  # read by make_proposal, with the two below
    proposal: ClassVar[str] = "gaussian"
    components: ClassVar[int] = 1

    def __post_init__(self):
        for field in ("flow_hidden", "critic_hidden", "critic_betas", "proposal_betas",
                      "init_mean", "init_std"):  # fmt: skip
            if isinstance(getattr(self, field), list):  # TOML / JSON give lists
                object.__setattr__(self, field, tuple(getattr(self, field)))
        _validate(self)


def _validate(config: LGSOConfig) -> None:
    name = "lgso"
    for field in ("points", "simulations_per_point"):
        if getattr(config, field) is not None:
            check_positive_int(name, field, getattr(config, field), 1 if field == "points" else 2)
    for field in ("steps_per_surrogate", "batch_size", "flow_transforms", "surrogate_steps",
                  "surrogate_batch", "critic_batch_size", "n_critic", "num_samples"):  # fmt: skip
        check_positive_int(name, field, getattr(config, field), 2 if "batch" in field else 1)
    check_positive_int(name, "critic_warmup", config.critic_warmup, 0)
    for field in ("trust_radius", "surrogate_lr", "critic_lr", "proposal_lr", "init_scale"):
        check_positive_float(name, field, getattr(config, field))
    check_positive_float(name, "penalty", config.penalty, allow_zero=True)
    check_positive_float(name, "gamma", config.gamma, allow_zero=True)
    check_choice(name, "critic_loss", config.critic_loss, CRITIC_LOSSES)
    check_choice(name, "coordinates", config.coordinates, ("standardized", "raw"))
    for field in ("critic_slope", "average"):
        value = getattr(config, field)
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not (ok and 0 <= value < 1):
            raise ValueError(f"{name}: {field} must be a number in [0, 1), got {value!r}")
    for field in ("flow_hidden", "critic_hidden"):
        value = getattr(config, field)
        if not (isinstance(value, tuple) and value and all(_is_int(h) for h in value)):
            raise ValueError(f"{name}: {field} must be a non-empty tuple of integers >= 1, "
                             f"got {value!r}")  # fmt: skip
    for field in ("critic_betas", "proposal_betas"):
        value = getattr(config, field)
        if not (isinstance(value, tuple) and len(value) == 2 and all(_unit(b) for b in value)):
            raise ValueError(f"{name}: {field} must be a pair of numbers in [0, 1), got {value!r}")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _unit(value: object) -> bool:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    return ok and 0 <= value < 1


# the loop ------------------------------------------------------------------------------------


def _schedule(config: LGSOConfig, budget: object, d: int) -> tuple[int, int, int]:
    points = config.points if config.points is not None else 2 * d
    valid = isinstance(budget, int) and not isinstance(budget, bool) and budget > 0
    m = config.simulations_per_point
    if m is None:
        m = max(2, min(MAX_PER_POINT, (budget if valid else 0) // (MIN_ITERATIONS * (points + 1))))
    per_iteration = (points + 1) * m
    why = f"one iteration: {points} trust-region points and the centre, {m} simulations each"
    check_budget("lgso", budget, per_iteration, why)
    return points, m, budget // per_iteration


def _critic_steps(critic, optimizer, surrogate, proposal, psi, region, data, steps, config, g):
    """``steps`` critic steps on surrogate draws from ``q`` against observed rows."""
    m = config.critic_batch_size
    with torch.no_grad():
        theta, _ = proposal.sample(psi, steps * m, g)
        fake = surrogate.sample(region.local(theta), g).view(steps, m, -1)
    real = data.real[torch.randint(len(data.real), (steps, m), generator=g, device=g.device)]
    optimizer.reset()  # as AVO: fresh Adam moments for each round of critic steps
    return critic_epoch(critic, optimizer, fake, real, config.critic_loss, config.penalty, g)


def _pathwise_grad(critic, surrogate, proposal, psi, region, config, g) -> tuple[Tensor, float]:
    """Gradient of :math:`U_g + \\gamma H(q_\\psi)` through the proposal's and the surrogate's
    sampling paths, on ``batch_size`` surrogate draws."""
    leaf = psi.detach().requires_grad_(True)
    theta, _ = proposal.sample(leaf, config.batch_size, g)
    losses = generator_loss(critic(surrogate.sample(region.local(theta), g)), config.critic_loss)
    objective = losses.mean()
    if config.gamma > 0:
        objective = objective + config.gamma * proposal.entropy(leaf)
    (grad,) = torch.autograd.grad(objective, leaf)
    if not bool(torch.isfinite(grad).all()):
        raise FloatingPointError("lgso: NaN or inf in the proposal gradient")
    return grad, float(losses.detach().mean())


def applicable(simulator) -> str | None:
    """``None`` for a point task with an iid observed set, else the reason L-GSO does not
    apply."""
    if simulator.kind != "point":
        return (
            f"lgso optimizes around a single θ* (a local surrogate in a trust region), but "
            f"{simulator.name} is a {simulator.kind} task (each observation has its own θ)"
        )
    if simulator.n_obs == 1:  # as AVO (same objective): see avo_bench.methods.avo
        return (
            "n_obs = 1: L-GSO's critic (AVO's objective) compares simulations with a single "
            "observed point, whose optimum is a point estimate, not a distribution"
        )
    return None


@register(
    "lgso",
    config=LGSOConfig,
    applicable=applicable,
    requires="zuko",
    install_hint=INSTALL_HINT,
    description="L-GSO: AVO's objective with gradients through a local flow surrogate",
)
def fit(
    simulator: CountingSimulator,
    x_obs: Tensor,
    *,
    budget: int,
    config: LGSOConfig,
    generator: torch.Generator,
    device: torch.device | str,
) -> Result:
    """L-GSO (Shirobokov et al. 2020) of AVO's proposal objective (Louppe et al. 2019).

    Arguments:
        simulator: The counting simulator (a point task).
        x_obs: Observed data ``(n_obs, *x_shape)``.
        budget: Simulation budget: at least one iteration, ``(points + 1) * M`` simulations.
        config: An :class:`LGSOConfig`.
        generator: The only randomness source, on ``device``.
        device: Where the surrogate, the critic and the proposal live.

    Returns:
        ``num_samples`` draws of the final proposal, one history row per iteration (proposal
        mean and std, surrogate NLL, critic and generator losses) and the schedule in
        ``extras``.
    """
    device = torch.device(device)
    points, m, iterations = _schedule(config, budget, simulator.theta_dim)
    data = LocalData(x_obs.to(device), generator)
    proposal, psi = make_proposal(simulator, config, generator)
    psi = psi.to(device)
    features = data.real.shape[1]
    surrogate = Surrogate(features, simulator.theta_dim, config.flow_transforms,
                          config.flow_hidden, config.surrogate_lr, generator)  # fmt: skip
    critic = MLPCritic(features, config.critic_hidden, generator, config.critic_slope)
    critic_opt = FlatAdam(critic.params, config.critic_lr, config.critic_betas)
    psi_opt, psi_avg = FlatAdam(psi, config.proposal_lr, config.proposal_betas), psi.clone()
    replay, rows = Replay(), []
    for iteration in range(1, iterations + 1):
        region = TrustRegion(proposal, psi, config.trust_radius)
        replay.add(*simulate_region(simulator, region, points, m, data, generator))
        u, x = replay.inside(region.low, region.high)
        c = ((u - region.mu) / region.half).float()
        nll = surrogate.fit(c, x, config.surrogate_steps, config.surrogate_batch, generator)
        for step in range(config.steps_per_surrogate):
            first = iteration == 1 and step == 0
            steps = config.n_critic + (config.critic_warmup if first else 0)
            args = (surrogate, proposal, psi, region)
            stats = _critic_steps(critic, critic_opt, *args, data, steps, config, generator)
            grad, loss = _pathwise_grad(critic, *args, config, generator)
            psi_opt.step(grad)
            region.project_(psi)
            psi_avg.lerp_(psi, 1.0 if len(rows) + step == 0 else 1 - config.average)
        rows.append(_row(iteration, simulator, proposal, psi, nll, stats, loss, len(x)))
        report_progress(iteration, iterations, surrogate_nll=nll, generator_loss=loss)
    theta, _ = proposal.sample(psi_avg, config.num_samples, generator)
    extras = {"iterations": iterations, "points": points, "simulations_per_point": m}
    mean, std = proposal.summary(psi_avg)
    for i, name in enumerate(simulator.parameter_names):
        extras[f"final_mean_{name}"], extras[f"final_std_{name}"] = float(mean[i]), float(std[i])
    return Result(theta.float(), simulator.num_simulations, pd.DataFrame(rows), extras)


def _row(iteration, simulator, proposal, psi, nll, stats, loss, rows) -> dict[str, float]:
    mean, std = proposal.summary(psi)
    row = {
        "iteration": iteration,
        "num_simulations": simulator.num_simulations,
        "surrogate_nll": nll,
        "critic_loss": float(stats[0]),
        "generator_loss": loss,
        "training_rows": rows,
    }
    for i, name in enumerate(simulator.parameter_names):
        row[f"mean_{name}"], row[f"std_{name}"] = float(mean[i]), float(std[i])
    return row
