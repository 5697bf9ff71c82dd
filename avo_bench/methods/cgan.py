r"""Conditional-GAN inverse method: learn :math:`\theta \sim G(z \mid y)` from simulated pairs.

A conditional GAN is trained on pairs :math:`(\theta_j \sim q_\theta, y_j)`, :math:`q_\theta` the
prior and :math:`y_j` the simulated output (population tasks) or a fixed-size summary of a
simulated iid set (point tasks). Its discriminator :math:`D(\theta, y)` and generator
:math:`G(z, y)` play the cross-entropy minimax game of the seed notes,

.. math:: \min_G \max_D \; \mathbb{E}_{(\theta, y)}[\log D(\theta, y)]
          + \mathbb{E}_{z, y}[\log(1 - D(G(z, y), y))],

whose optimum has :math:`G(z, y) \sim p(\theta \mid y)`, the posterior under the training prior.
Observed conditions are then fed through :math:`G`:

- *population* tasks (Rosenbrock): one sample :math:`G(z, y_i)` per observed :math:`y_i`, so
  the result is the inferred population :math:`P_\theta`; it is scored by pushing it back
  through the model and comparing with :math:`P_Y` (figure 6 of the seed).
- *point* tasks: every sample is :math:`G(z, s_{obs})` with :math:`s_{obs}` the summary of the
  whole observed set (an amortized posterior estimate). Each training pair costs ``m`` rows of
  the budget (a set of ``m`` observations at one :math:`\theta_j`); by default
  ``m = budget // min_pairs`` clipped to ``[2, n_obs]``. When ``m < n_obs`` the training
  summaries are noisier than the observed one: the cGAN then estimates
  :math:`p(\theta \mid s_m = s_{obs})`, which is wider than the true posterior (by about
  ``sqrt(n_obs / m)`` for set-mean summaries, recorded as ``summary_width_ratio``). The method
  is honest about it rather than rescaling summaries it knows nothing about; the gap closes
  as the budget grows.

Generated parameters lie in the prior support by construction (a bijection onto the box, see
:class:`SupportMap`); ``theta`` and ``y`` are standardized with training-set statistics.
Training alternates one Adam step of ``D`` and one of ``G`` on minibatches of pairs, with
cosine decay of both learning rates to zero; the number of steps grows with the number of
pairs (``epochs`` passes, at least ``min_steps``), so larger budgets train longer. A high
initial rate with the decay gave the sharpest Rosenbrock level sets in our runs; averaging the
generator's weights (EMA) blurred them and is not used.

References:
    Parikh, Kozloski, Gurev, "Integration of AI and mechanistic modeling in generative
    adversarial networks for stochastic inverse problems", 2020,
    https://arxiv.org/abs/2009.08267

    Mirza, Osindero, "Conditional Generative Adversarial Nets", 2014,
    https://arxiv.org/abs/1411.1784

    Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014,
    https://arxiv.org/abs/1406.2661
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
import torch
from torch import Tensor, nn
from torch.nn.functional import softplus

from avo_bench.progress import report_progress

from . import NotApplicable, Result, register
from ._cgan_data import (
    Pairs,
    Standardizer,
    SupportMap,
    check_observed,
    choose_set_size,
    observed_features,
    outside_fraction,
    simulate_pairs,
    summary_width_ratio,
)
from ._cgan_nn import mlp

__all__ = ["CGANConfig", "fit"]

GENERATOR_LOSSES = ("nonsaturating", "minimax", "logit")
MIN_PAIRS = 64  # fewer training pairs than this cannot train a conditional GAN


def _check_int(field: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"cgan: {field} must be an integer >= {minimum}, got {value!r}")


def _check_rate(field: str, value: object) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not 0 < value <= 1:
        raise ValueError(f"cgan: {field} must be a number in (0, 1], got {value!r}")


@dataclass(frozen=True)
class CGANConfig:
    """Hyperparameters of the conditional GAN.

    Attributes:
        num_samples: Number of parameter samples returned.
        latent_dim: Dimension of the generator's Gaussian noise ``z``.
        hidden_features: Width of the hidden layers of ``G`` and ``D``.
        hidden_layers: Number of hidden layers of ``G`` and ``D``.
        batch_size: Training pairs per step.
        steps: Generator updates (one discriminator update each); ``0`` derives them from the
            number of training pairs (at least ``min_steps``, ``epochs_per_pair`` passes).
        min_steps: Floor of the derived number of steps.
        epochs: Passes over the training pairs used to derive ``steps`` when ``steps = 0``.
        lr_generator: Adam learning rate of ``G``.
        lr_discriminator: Adam learning rate of ``D``.
        generator_loss: ``"nonsaturating"`` (minimize ``-log D(G)``, Goodfellow et al. sec. 3)
            ``"minimax"`` (minimize ``log(1 - D(G))``, the seed's objective verbatim) or
            ``"logit"`` (minimize ``log(1 - D(G)) - log D(G)``, the logit of ``D``, whose
            gradient saturates on neither side; used by Parikh et al.'s implementation).
        set_size: Point tasks: observations per training set ``m``; ``0`` chooses it from the
            budget (see the module docstring).
        min_pairs: Point tasks: training pairs to keep when choosing ``m`` from the budget.
    """

    num_samples: int = 10_000
    latent_dim: int = 4
    hidden_features: int = 64
    hidden_layers: int = 3
    batch_size: int = 256
    steps: int = 0
    min_steps: int = 3000
    epochs: int = 40
    lr_generator: float = 8e-3
    lr_discriminator: float = 8e-3
    generator_loss: str = "nonsaturating"
    set_size: int = 0
    min_pairs: int = 1000

    def __post_init__(self):
        for field in ("num_samples", "latent_dim", "hidden_features", "hidden_layers"):
            _check_int(field, getattr(self, field), 1)
        _check_int("batch_size", self.batch_size, 2)
        for field in ("steps", "set_size"):
            _check_int(field, getattr(self, field), 0)
        for field in ("min_steps", "epochs"):
            _check_int(field, getattr(self, field), 1)
        _check_int("min_pairs", self.min_pairs, MIN_PAIRS)
        _check_rate("lr_generator", self.lr_generator)
        _check_rate("lr_discriminator", self.lr_discriminator)
        if self.generator_loss not in GENERATOR_LOSSES:
            raise ValueError(
                f"cgan: generator_loss must be one of {GENERATOR_LOSSES}, "
                f"got {self.generator_loss!r}"
            )


class _Generator(nn.Module):
    """``G(z, y) -> theta`` in the prior support, then standardized for the discriminator."""

    def __init__(self, net: nn.Module, support: SupportMap, theta_norm: Standardizer):
        super().__init__()
        self.net, self.support, self.theta_norm = net, support, theta_norm

    def forward(self, z: Tensor, y: Tensor) -> Tensor:
        return self.theta_norm(self.support(self.net(torch.cat([z, y], dim=1))))

    @torch.no_grad()
    def sample(self, z: Tensor, y: Tensor) -> Tensor:
        # float64 before the cast: rounding to float32 is monotone, so the support holds exactly.
        u = self.net(torch.cat([z, y], dim=1)).double()
        return self.support(u).float()


def _discriminator_loss(real: Tensor, fake: Tensor) -> Tensor:
    # -log D(real) - log(1 - D(fake)) with D = sigmoid(logit).
    return softplus(-real).mean() + softplus(fake).mean()


def _generator_loss(fake: Tensor, kind: str) -> Tensor:
    if kind == "logit":
        return -fake.mean()
    return softplus(-fake).mean() if kind == "nonsaturating" else -softplus(fake).mean()


def _num_steps(config: CGANConfig, n_pairs: int) -> int:
    if config.steps:
        return config.steps
    return max(config.min_steps, math.ceil(config.epochs * n_pairs / config.batch_size))


def _train(
    generator_net: _Generator,
    critic: nn.Module,
    theta: Tensor,
    y: Tensor,
    config: CGANConfig,
    rng: torch.Generator,
) -> pd.DataFrame:
    """Alternating Adam updates of ``D`` and ``G``; returns one history row per epoch."""
    n, steps = theta.shape[0], _num_steps(config, theta.shape[0])
    betas = (0.5, 0.999)  # Radford et al. (DCGAN), https://arxiv.org/abs/1511.06434
    opt_g = torch.optim.Adam(generator_net.parameters(), lr=config.lr_generator, betas=betas)
    opt_d = torch.optim.Adam(critic.parameters(), lr=config.lr_discriminator, betas=betas)
    # Cosine decay of both rates to zero refines the generator's final precision.
    schedules = [torch.optim.lr_scheduler.CosineAnnealingLR(o, steps) for o in (opt_g, opt_d)]
    rows, step, epoch = [], 0, 0
    while step < steps:
        sums = torch.zeros(4, device=theta.device)
        batches = torch.randperm(n, generator=rng, device=theta.device).split(config.batch_size)
        batches = batches[: steps - step]
        for index in batches:
            z = torch.randn(len(index), config.latent_dim, generator=rng, device=theta.device)
            sums += _step(generator_net, critic, theta[index], y[index], z, opt_g, opt_d, config)
            for schedule in schedules:
                schedule.step()
        step, epoch = step + len(batches), epoch + 1
        rows.append(_history_row(epoch, step, sums / len(batches)))
        report_progress(step, steps, **{k: rows[-1][k] for k in ("d_loss", "g_loss")})
    return pd.DataFrame(rows)


def _step(g_net, critic, theta, y, z, opt_g, opt_d, config) -> Tensor:
    fake = g_net(z, y)
    real_logit = critic(torch.cat([theta, y], dim=1))
    fake_logit = critic(torch.cat([fake.detach(), y], dim=1))
    d_loss = _discriminator_loss(real_logit, fake_logit)
    opt_d.zero_grad(set_to_none=True)
    d_loss.backward()
    opt_d.step()
    g_loss = _generator_loss(critic(torch.cat([fake, y], dim=1)), config.generator_loss)
    opt_g.zero_grad(set_to_none=True)
    g_loss.backward()
    opt_g.step()
    probs = torch.stack([torch.sigmoid(real_logit).mean(), torch.sigmoid(fake_logit).mean()])
    return torch.cat([torch.stack([d_loss, g_loss]), probs]).detach()


def _history_row(epoch: int, step: int, means: Tensor) -> dict[str, float]:
    d_loss, g_loss, d_real, d_fake = means.tolist()
    if not math.isfinite(d_loss) or not math.isfinite(g_loss):
        raise FloatingPointError(
            f"cgan: NaN discriminator/generator loss ({d_loss}, {g_loss}) at epoch {epoch}"
        )
    return dict(epoch=epoch, step=step, d_loss=d_loss, g_loss=g_loss, d_real=d_real, d_fake=d_fake)


def _set_size(simulator, x_obs: Tensor, budget: int, config: CGANConfig) -> int:
    if simulator.kind == "population":
        return 1
    m = choose_set_size(x_obs.shape[0], budget, config.min_pairs, config.set_size)
    if budget // m < MIN_PAIRS:
        raise NotApplicable(
            f"cgan: a budget of {budget} gives {budget // m} training sets of {m}; "
            f"at least {MIN_PAIRS * m} simulations are needed"
        )
    return m


def _conditions(simulator, x_obs, m, num_samples, rng) -> Tensor:
    observed = observed_features(simulator, x_obs, m)
    # Population: every observed y_i in turn (shuffled), so the samples follow P_Y.
    order = torch.randperm(observed.shape[0], generator=rng, device=observed.device)
    return observed[order[torch.arange(num_samples, device=observed.device) % len(order)]]


@register(
    "cgan",
    config=CGANConfig,
    description="conditional GAN inverse: G(z|y) trained on prior pairs (Parikh et al. 2020)",
)
def fit(
    simulator,
    x_obs: Tensor,
    *,
    budget: int,
    config: CGANConfig,
    generator: torch.Generator,
    device: torch.device | str,
) -> Result:
    """Trains the conditional GAN on prior pairs and samples it at the observed conditions.

    Arguments:
        simulator: Budget-counting simulator (population or point task).
        x_obs: Observed data, shape ``(n_obs, *x_shape)``.
        budget: Simulation budget (all of it goes to training pairs).
        config: Hyperparameters.
        generator: The only source of randomness, on ``device``.
        device: Where training runs.

    Returns:
        ``num_samples`` parameters; ``history`` has one row per epoch (losses and mean
        discriminator outputs on real and generated pairs); ``extras`` the set size, the
        number of pairs and steps, the fraction of generated parameters outside the prior
        support and the fraction of observed conditions outside the training range.
    """
    x_obs = check_observed(simulator, x_obs).to(device, torch.float32)
    m = _set_size(simulator, x_obs, budget, config)
    pairs: Pairs = simulate_pairs(simulator, m=m, generator=generator, device=device)
    theta_norm, y_norm = Standardizer(pairs.theta), Standardizer(pairs.y)
    support = SupportMap(simulator.prior, device)
    d_theta, d_y = pairs.theta.shape[1], pairs.y.shape[1]
    width = (config.hidden_features, config.hidden_layers)
    g_net = _Generator(
        mlp(config.latent_dim + d_y, d_theta, *width, generator=generator, device=device),
        support,
        theta_norm,
    )
    critic = mlp(d_theta + d_y, 1, *width, generator=generator, device=device)
    history = _train(g_net, critic, theta_norm(pairs.theta), y_norm(pairs.y), config, generator)
    conditions = _conditions(simulator, x_obs, m, config.num_samples, generator)
    z = torch.randn(len(conditions), config.latent_dim, generator=generator, device=device)
    theta = g_net.sample(z, y_norm(conditions))
    extras = _extras(simulator, theta, pairs, conditions, history, x_obs.shape[0])
    return Result(theta, simulator.num_simulations, history, extras)


def _extras(simulator, theta, pairs, conditions, history, n_obs) -> dict[str, float]:
    outside_prior = torch.isinf(simulator.prior.log_prob(theta.double()))
    last = history.iloc[-1]
    return {
        "set_size": pairs.set_size,
        "num_pairs": pairs.theta.shape[0],
        "steps": int(last["step"]),
        "epochs": int(last["epoch"]),
        "final_d_loss": float(last["d_loss"]),
        "final_g_loss": float(last["g_loss"]),
        "fraction_outside_prior": float(outside_prior.float().mean()),
        "fraction_obs_outside_training_range": outside_fraction(conditions, pairs.y),
        "summary_width_ratio": summary_width_ratio(n_obs, pairs.set_size)
        if simulator.kind == "point"
        else 1.0,
    }
