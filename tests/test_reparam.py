"""Tests of the reparameterized-gradient baseline (pathwise gradients through the simulator)."""

from __future__ import annotations

import math

import pytest
import torch

import avo_bench
from avo_bench.methods import NotApplicable
from avo_bench.methods._critics import MLPCritic
from avo_bench.methods._proposals import MixtureProposal
from avo_bench.methods.avo import Draw
from avo_bench.methods.reparam import ReparamConfig, applicable, pathwise_grad
from simulators import SIMULATORS, get_simulator
from simulators.gaussian import Gaussian


def _fit(simulator, budget, seed=0, **options):
    x_obs = simulator.observe(generator=torch.Generator().manual_seed(1000 + seed))
    result = avo_bench.fit("reparam", simulator, x_obs, budget=budget, seed=seed, **options)
    return result, x_obs


@pytest.mark.parametrize("name", sorted(SIMULATORS))
def test_applicable_follows_differentiability_and_the_observed_set(name):
    simulator = SIMULATORS[name]()
    reason = applicable(simulator)
    assert (reason is None) == (simulator.differentiable and simulator.n_obs >= 2)
    x_obs = torch.zeros(simulator.n_obs, *simulator.x_shape)  # refused before any use
    if not simulator.differentiable:
        assert name in reason and "differentiable" in reason
        with pytest.raises(NotApplicable, match="not differentiable"):
            avo_bench.fit("reparam", simulator, x_obs, budget=10_000)
    elif reason is not None:  # one observation: as for avo
        assert name in reason and "n_obs = 1" in reason
        with pytest.raises(NotApplicable, match="n_obs = 1"):
            avo_bench.fit("reparam", simulator, x_obs, budget=10_000)


def test_pathwise_gradient_uses_the_simulator_gradient():
    # A linear critic d(x) = a.x + b and x = theta + noise give L_g = -d(x), so the pathwise
    # gradient in mu is exactly -a for every draw: no variance, unlike any score-function one.
    g = torch.Generator().manual_seed(0)
    sim = get_simulator("gaussian", dim=2)
    critic = MLPCritic(2, (3,), g, slope=1.0)
    a = (critic.weights[1] @ critic.weights[0]).squeeze(0).double()
    q = MixtureProposal(torch.zeros(2), torch.ones(2), sim.prior.low, sim.prior.high, 1)
    psi = torch.tensor([0.3, -0.2, math.log(0.5), math.log(0.7)], dtype=torch.float64)
    leaf = psi.clone().requires_grad_(True)
    theta, component = q.sample(leaf, 8, g)
    x = sim.simulate(theta.float(), g)
    grad, _ = pathwise_grad(q, Draw(leaf, theta, component, x), critic, ReparamConfig())
    assert torch.allclose(grad[:2], -a, atol=1e-5)


class _Spy(Gaussian):
    saw_gradient = False

    def _simulate(self, theta, generator):
        _Spy.saw_gradient |= theta.requires_grad
        return super()._simulate(theta, generator)


def test_fit_differentiates_through_the_simulator():
    sim = _Spy(n_obs=200)
    sim.name = "spy"
    result, _ = _fit(sim, 2000)
    assert _Spy.saw_gradient
    assert result.num_simulations <= 2000


def test_same_seed_same_result():
    sim = get_simulator("gaussian", n_obs=200)
    a, _ = _fit(sim, 2000, seed=5)
    b, _ = _fit(sim, 2000, seed=5)
    assert torch.equal(a.theta, b.theta)


def test_gaussian_moves_toward_the_posterior_mean():
    sim = get_simulator("gaussian", n_obs=500)
    result, x_obs = _fit(sim, 10_000)
    target = sim.posterior(x_obs).mean().float()
    assert float((result.theta.mean(0) - target).norm()) < 0.3  # from 0.71 at the prior


def test_invalid_config_names_the_method():
    with pytest.raises(ValueError, match="reparam: gamma must be a finite number >= 0"):
        ReparamConfig(gamma=-1.0)


@pytest.mark.slow
def test_gaussian_converges_with_a_large_budget():
    sim = get_simulator("gaussian", n_obs=1000)
    result, x_obs = _fit(sim, 100_000, seed=1)
    target = sim.posterior(x_obs).mean().float()
    assert float((result.theta.mean(0) - target).norm()) < 0.15
