"""asv benchmarks of the baselines' kernels: a cGAN training step and ABC distance computations.

- cGAN (Parikh et al. 2020, https://arxiv.org/abs/2009.08267): one alternating Adam step of the
  discriminator and the generator (``cgan._step``, what ``cgan._train`` runs per minibatch) at
  the default widths on Rosenbrock training pairs, set up exactly as ``cgan.fit`` does.
- Rejection ABC (Pritchard et al. 1999): the scaled distances of ``N`` simulated summaries to the
  observed one (``mad_scale`` + ``distances``) and the choice of the closest ``sqrt(N)``.
- SMC-ABC (Beaumont et al. 2009, https://arxiv.org/abs/0805.2256): the importance weights of a
  round, whose ``(N, N)`` Gaussian-kernel matrix (``smc_abc._log_kernel``) is the cost that grows
  fastest with the population size.
"""

from __future__ import annotations

import math

import torch

from avo_bench.methods import CountingSimulator, distances, mad_scale, simulate_summaries
from avo_bench.methods._cgan_data import Standardizer, SupportMap, simulate_pairs
from avo_bench.methods._cgan_nn import mlp
from avo_bench.methods.cgan import CGANConfig, _Generator, _step
from avo_bench.methods.rejection_abc import _closest
from avo_bench.methods.smc_abc import _log_kernel, _weighted_kernel
from simulators import get_simulator

from ._common import DEVICES, setup_device, sync

PAIRS = 10_000  # Rosenbrock training pairs (the grid's budget)


class CGANTrainingStep:
    """One discriminator + generator Adam step of the cGAN on a minibatch of pairs."""

    params = (DEVICES, [256, 4096])
    param_names = ["device", "batch"]

    def setup(self, device, batch):
        self.device = setup_device(device)
        g = torch.Generator(self.device).manual_seed(0)
        self.config = CGANConfig(batch_size=batch)
        simulator = CountingSimulator(get_simulator("rosenbrock"), PAIRS)
        pairs = simulate_pairs(simulator, m=1, generator=g, device=self.device)
        theta_norm, y_norm = Standardizer(pairs.theta), Standardizer(pairs.y)
        width = (self.config.hidden_features, self.config.hidden_layers)
        d_theta, d_y, latent = pairs.theta.shape[1], pairs.y.shape[1], self.config.latent_dim
        net = mlp(latent + d_y, d_theta, *width, generator=g, device=self.device)
        self.g_net = _Generator(net, SupportMap(simulator.prior, self.device), theta_norm)
        self.critic = mlp(d_theta + d_y, 1, *width, generator=g, device=self.device)
        betas = (0.5, 0.999)  # as cgan._train
        self.opt_g = torch.optim.Adam(self.g_net.parameters(), self.config.lr_generator, betas)
        self.opt_d = torch.optim.Adam(
            self.critic.parameters(), self.config.lr_discriminator, betas
        )
        index = torch.randperm(PAIRS, generator=g, device=self.device)[:batch]
        self.theta, self.y = theta_norm(pairs.theta)[index], y_norm(pairs.y)[index]
        self.z = torch.randn(batch, latent, generator=g, device=self.device)
        self.step()  # warm-up

    def step(self) -> torch.Tensor:
        """``(d_loss, g_loss, mean D(real), mean D(fake))`` of one step."""
        return _step(
            self.g_net, self.critic, self.theta, self.y, self.z, self.opt_g, self.opt_d,
            self.config,
        )  # fmt: skip

    def time_training_step(self, device, batch):
        self.step()
        sync(self.device)


class RejectionABCDistances:
    """Rejection ABC's acceptance on ``N`` Gaussian (d = 10) summaries: MAD scale, distances,
    the ``round(sqrt(N))`` closest."""

    params = (DEVICES, [10_000, 1_000_000])
    param_names = ["device", "draws"]

    def setup(self, device, draws):
        self.device = setup_device(device)
        g = torch.Generator(self.device).manual_seed(0)
        simulator = get_simulator("gaussian", dim=10, n_obs=1)
        theta = simulator.prior.sample((draws,), generator=g, device=self.device)
        counting = CountingSimulator(simulator, draws)
        self.summaries = simulate_summaries(counting, theta, 1, 1, g)
        self.observed = simulator.observe(generator=g).flatten().float().to(self.device)
        self.k = max(1, round(math.sqrt(draws)))

    def accept(self) -> torch.Tensor:
        d = distances(self.summaries, self.observed, mad_scale(self.summaries))
        return _closest(d, self.k)

    def time_distances(self, device, draws):
        self.accept()
        sync(self.device)

    def peakmem_distances(self, device, draws):
        self.accept()


class SMCABCWeights:
    """SMC-ABC importance weights of ``N`` new particles against a population of ``N``
    (``alpha = 0.5``): weighted-covariance kernel, ``(N, N)`` kernel log densities, logsumexp."""

    params = (DEVICES, [100, 1_000])  # smc_abc caps the default population at 1,000
    param_names = ["device", "population"]

    def setup(self, device, population):
        self.device = setup_device(device)
        g = torch.Generator(self.device).manual_seed(0)
        self.prior = get_simulator("gaussian", dim=10).prior
        self.old = self.prior.sample((population,), generator=g, device=self.device)
        self.new = self.prior.sample((population,), generator=g, device=self.device)
        log_weight = torch.randn(population, generator=g, device=self.device, dtype=torch.float64)
        self.log_weight = log_weight

    def weights(self) -> torch.Tensor:
        """Log importance weights ``(N,)`` as ``smc_abc._step`` computes them."""
        chol = _weighted_kernel(self.old, torch.softmax(self.log_weight, 0), 2.0)
        mixture = torch.log_softmax(self.log_weight, dim=0)[None, :]
        log_q = torch.logsumexp(mixture + _log_kernel(self.new, self.old, chol), dim=1)
        return self.prior.log_prob(self.new.double()) - log_q

    def time_importance_weights(self, device, population):
        self.weights()
        sync(self.device)

    def peakmem_importance_weights(self, device, population):
        self.weights()
