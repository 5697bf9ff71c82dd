"""asv benchmarks of AVO's kernels: one critic step, one proposal step, one full iteration, and
the hand-written numerics against the library's.

The first four call the library's own code paths (:mod:`avo_bench.methods._critics`,
:mod:`avo_bench.methods._proposals`, :func:`avo_bench.methods.avo.fit`) on the Weinberg
simulator at the paper's settings: a (10, 10) leaky-ReLU critic, critic batches of 32 simulated
and 32 observed rows, proposal steps on 64 simulations, 100 critic steps per iteration
(Louppe, Hermans and Cranmer, AISTATS 2019, https://arxiv.org/abs/1707.07113). The training
loop keeps its steps inside one function, so the benchmarks compose them from the same calls
the loop makes, in the same order (see each method's docstring).

:class:`CriticGradient` and :class:`AdamStep` time the hand-written WGAN-GP gradient
(:meth:`~avo_bench.methods._critics.MLPCritic.loss_and_grad`) and
:class:`~avo_bench.methods._nn.FlatAdam` against autograd's double backward, ``torch.func`` and
``torch.optim.Adam``, eager and ``torch.compile``-d (:data:`GRADIENTS`, :data:`OPTIMIZERS`);
``benchmarks/speed_avo.py`` prints the ratios.
"""

from __future__ import annotations

import itertools
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from avo_bench.methods import CountingSimulator, get_method
from avo_bench.methods._critics import MLPCritic, critic_epoch, generator_loss
from avo_bench.methods._nn import FlatAdam
from avo_bench.methods._proposals import make_proposal, score_function_grad
from avo_bench.methods.avo import AVOConfig
from simulators import get_simulator

from ._common import DEVICES, setup_device, sync

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from reproduce_avo import WEINBERG_PAPER  # the paper's settings, one source

N_OBS = 5_000  # observed events, the pool of the critic's observed minibatches


def paper_config(**changes) -> AVOConfig:
    """The paper's Weinberg configuration with ``changes`` applied."""
    return AVOConfig(**{**WEINBERG_PAPER, **changes})


# hand-written numerics and their library counterparts --------------------------------------


def _split(batch: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    m = batch.shape[0] // 3
    return batch[:m], batch[m : 2 * m], batch[2 * m :]


def _hand(critic: MLPCritic, penalty: float) -> Callable[[Tensor], Tensor]:
    # the library's path: closed-form gradient of the WGAN-GP loss
    return lambda batch: critic.loss_and_grad(batch, "wgan-gp", penalty, stats=False)[1]


def _autograd(critic: MLPCritic, penalty: float) -> Callable[[Tensor], Tensor]:
    # autograd's double backward through MLPCritic.loss (the tests' reference)
    def gradient(batch: Tensor) -> Tensor:
        leaf = critic.params.detach().requires_grad_(True)
        critic._bind(leaf)
        try:
            loss = critic.loss(*_split(batch), "wgan-gp", penalty)
            (grad,) = torch.autograd.grad(loss, leaf)
        finally:
            critic._bind(critic.params)
        return grad

    return gradient


def _func(critic: MLPCritic, penalty: float) -> Callable[[Tensor], Tensor]:
    # torch.func: the input gradient of the penalty by an inner grad, the loss by an outer one
    layers = list(itertools.pairwise(critic.widths))

    def forward(params: Tensor, x: Tensor) -> Tensor:
        offset = 0
        for i, (fan_in, fan_out) in enumerate(layers):
            weight = params[offset : offset + fan_in * fan_out].view(fan_out, fan_in)
            offset += fan_in * fan_out
            x = F.linear(x, weight, params[offset : offset + fan_out])
            offset += fan_out
            x = F.leaky_relu(x, critic.slope) if i < len(layers) - 1 else x
        return x.squeeze(-1)

    def loss(params: Tensor, batch: Tensor) -> Tensor:
        fake, real, hat = _split(batch)
        grad_x = torch.func.grad(lambda x: forward(params, x).sum())(hat)
        norm = torch.linalg.vector_norm(grad_x, dim=-1)
        adversarial = forward(params, fake).mean() - forward(params, real).mean()
        return adversarial + penalty * ((norm - 1) ** 2).mean()

    grad = torch.func.grad(loss)
    return lambda batch: grad(critic.params, batch)


def _compiled(make: Callable) -> Callable:
    def build(critic: MLPCritic, penalty: float) -> Callable[[Tensor], Tensor]:
        return torch.compile(make(critic, penalty), dynamic=False)

    return build


GRADIENTS = {
    "hand": _hand,
    "hand-compiled": _compiled(_hand),
    "autograd": _autograd,
    "func": _func,
    "func-compiled": _compiled(_func),
}
"""Ways to compute the WGAN-GP critic gradient: ``GRADIENTS[name](critic, penalty)(batch)``
with ``batch`` the ``(3m, features)`` rows of :meth:`MLPCritic.loss_and_grad`. Autograd's
double backward does not compile (``torch.compile`` graph-breaks on ``create_graph``)."""


def _flat_adam(params: Tensor, lr: float, betas: tuple[float, float]) -> Callable:
    return FlatAdam(params, lr, betas).step


def _torch_adam(compiled: bool = False, **options) -> Callable:
    def build(params: Tensor, lr: float, betas: tuple[float, float]) -> Callable:
        leaf = params.requires_grad_(True)  # the flat tensor itself, updated in place
        lr = torch.tensor(lr) if compiled else lr  # a tensor lr avoids recompiles on change
        optimizer = torch.optim.Adam([leaf], lr=lr, betas=betas, **options)
        step = torch.compile(optimizer.step) if compiled else optimizer.step

        def update(grad: Tensor) -> None:
            leaf.grad = grad
            step()

        return update

    return build


OPTIMIZERS = {
    "flat": _flat_adam,
    "torch": _torch_adam(foreach=False),
    "torch-foreach": _torch_adam(foreach=True),
    "torch-fused": _torch_adam(fused=True),
    "torch-compiled": _torch_adam(compiled=True),
}
"""Adam on one flat parameter tensor: ``OPTIMIZERS[name](params, lr, betas)(grad)``."""


class CriticGradient:
    """The WGAN-GP critic gradient of one step, per implementation of :data:`GRADIENTS` (the
    compiled ones compile in ``setup``)."""

    params = (DEVICES, list(GRADIENTS), [32, 256])
    param_names = ["device", "implementation", "critic_batch"]
    timeout = 600

    def setup(self, device, implementation, m):
        self.device = setup_device(device)
        g = torch.Generator(self.device).manual_seed(0)
        self.critic = MLPCritic(1, (10, 10), g)
        fake = torch.randn(m, 1, generator=g, device=self.device) + 1.0
        real = torch.randn(m, 1, generator=g, device=self.device)
        eps = torch.rand(m, 1, generator=g, device=self.device)
        self.batch = torch.cat([fake, real, eps * real + (1 - eps) * fake])
        self.gradient = GRADIENTS[implementation](self.critic, WEINBERG_PAPER["penalty"])
        self.gradient(self.batch)  # warm-up (and compilation)

    def time_critic_gradient(self, device, implementation, m):
        self.gradient(self.batch)
        sync(self.device)


class AdamStep:
    """One Adam step on the paper critic's 141 flat parameters, per :data:`OPTIMIZERS`."""

    params = (DEVICES, list(OPTIMIZERS))
    param_names = ["device", "implementation"]
    timeout = 600

    def setup(self, device, implementation):
        self.device = setup_device(device)
        g = torch.Generator(self.device).manual_seed(0)
        params = MLPCritic(1, (10, 10), g).params
        self.grad = torch.randn(params.shape, generator=g, device=self.device)
        self.step = OPTIMIZERS[implementation](params, 0.01, (0.9, 0.999))
        self.step(self.grad)  # warm-up (and compilation)

    def time_adam_step(self, device, implementation):
        self.step(self.grad)
        sync(self.device)


class CriticStep:
    """One WGAN-GP critic step: ``MLPCritic.loss_and_grad`` then ``FlatAdam.step``, as
    ``critic_epoch`` takes it for every minibatch of ``m`` simulated and ``m`` observed rows."""

    params = (DEVICES, [32, 1024])
    param_names = ["device", "critic_batch"]

    def setup(self, device, m):
        self.device = setup_device(device)
        g = torch.Generator(self.device).manual_seed(0)
        self.critic = MLPCritic(1, (10, 10), g)
        self.optimizer = FlatAdam(self.critic.params, 0.01, (0.9, 0.999))
        fake = torch.randn(m, 1, generator=g, device=self.device) + 1.0
        real = torch.randn(m, 1, generator=g, device=self.device)
        eps = torch.rand(m, 1, generator=g, device=self.device)
        self.batch = torch.cat([fake, real, eps * real + (1 - eps) * fake])
        self.penalty = WEINBERG_PAPER["penalty"]
        self.step()  # warm-up

    def step(self) -> None:
        _, grad = self.critic.loss_and_grad(self.batch, "wgan-gp", self.penalty, stats=False)
        self.optimizer.step(grad)

    def time_critic_step(self, device, m):
        self.step()
        sync(self.device)


class CriticEpoch:
    """``critic_epoch``: the paper's 100 critic steps of an iteration on fixed data."""

    params = (DEVICES, [32, 1024])
    param_names = ["device", "critic_batch"]
    steps = 100

    def setup(self, device, m):
        self.device = setup_device(device)
        self.generator = torch.Generator(self.device).manual_seed(0)
        self.critic = MLPCritic(1, (10, 10), self.generator)
        self.optimizer = FlatAdam(self.critic.params, 0.01, (0.9, 0.999))
        shape = (self.steps, m, 1)
        self.fake = torch.randn(shape, generator=self.generator, device=self.device) + 1.0
        self.real = torch.randn(shape, generator=self.generator, device=self.device)
        self.run(2)  # warm-up

    def run(self, steps: int) -> torch.Tensor:
        return critic_epoch(
            self.critic, self.optimizer, self.fake[:steps], self.real[:steps], "wgan-gp",
            WEINBERG_PAPER["penalty"], self.generator,
        )  # fmt: skip

    def time_critic_epoch(self, device, m):
        self.run(self.steps)
        sync(self.device)

    def track_critic_steps_per_second(self, device, m):
        sync(self.device)
        start = time.perf_counter()
        self.run(self.steps)
        sync(self.device)
        return self.steps / (time.perf_counter() - start)

    track_critic_steps_per_second.unit = "steps/s"


class ProposalStep:
    """One proposal step as ``avo.train`` takes it: draw ``M`` parameters from the proposal,
    simulate them (Weinberg), score them with the critic, the score-function gradient
    (``score_function_grad``, optimal baseline) and one Adam step on the proposal."""

    params = (DEVICES, [64, 4096])
    param_names = ["device", "batch"]

    def setup(self, device, batch):
        self.device = setup_device(device)
        self.generator = torch.Generator(self.device).manual_seed(0)
        self.simulator = get_simulator("weinberg")
        self.config = paper_config(batch_size=batch)
        self.proposal, psi = make_proposal(self.simulator, self.config, self.generator)
        self.psi = psi.to(self.device)
        self.optimizer = FlatAdam(self.psi, self.config.proposal_lr, self.config.proposal_betas)
        self.critic = MLPCritic(1, (10, 10), self.generator)
        self.step()  # warm-up

    def step(self) -> dict[str, float]:
        theta, _ = self.proposal.sample(self.psi, self.config.batch_size, self.generator)
        x = self.simulator.simulate(theta.float(), self.generator).flatten(1)
        with torch.no_grad():
            losses = generator_loss(self.critic(x), self.config.critic_loss)
        grad, diagnostics = score_function_grad(
            self.proposal, self.psi, theta.detach(), losses, self.config
        )
        self.optimizer.step(grad)
        return diagnostics

    def time_proposal_step(self, device, batch):
        self.step()
        sync(self.device)


class Iteration:
    """One full AVO iteration at the paper's batch sizes through ``avo.fit`` itself.

    ``fit`` with ``epochs=1`` and no critic warm-up: 100 critic steps on 3,200 fresh
    simulations, one proposal step on 64 more. It includes ``fit``'s set-up (proposal and critic
    initialization, the history row, ``num_samples=1`` final draw), a few per cent of the step.
    """

    params = (DEVICES,)
    param_names = ["device"]
    timeout = 120

    def setup(self, device):
        self.device = setup_device(device)
        self.simulator = get_simulator("weinberg")
        g = torch.Generator(self.device).manual_seed(0)
        self.x_obs = self.simulator.observe(N_OBS, generator=g)
        self.method = get_method("avo")
        self.config = paper_config(epochs=1, critic_warmup=0, num_samples=1)
        self.iterate()  # warm-up

    def iterate(self):
        config = self.config
        per_iteration = config.n_critic * config.critic_batch_size + config.batch_size
        g = torch.Generator(self.device).manual_seed(1)
        simulator = CountingSimulator(self.simulator, per_iteration)
        return self.method.fit(
            simulator, self.x_obs, budget=per_iteration, config=config, generator=g,
            device=self.device,
        )  # fmt: skip

    def time_iteration(self, device):
        self.iterate()
        sync(self.device)

    def peakmem_iteration(self, device):
        self.iterate()
