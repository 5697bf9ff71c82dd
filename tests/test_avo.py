"""Tests of the AVO method: critic gradients, proposals, the score-function estimator, fit.

References: autograd (double backward) for the hand-derived critic gradients, scipy's truncated
normal for the proposal, closed-form Gaussian expectations for the gradient estimator, the
analytic posteriors of the gaussian and poisson simulators for the fits.
"""

from __future__ import annotations

import math

import pytest
import torch
from scipy import stats
from scipy.spatial import distance

import avo_bench
from avo_bench.methods import NotApplicable, SimulatorError, get_method
from avo_bench.methods._avo_config import MIN_BUDGET, PAPER, resolve_schedule
from avo_bench.methods._critics import CRITIC_LOSSES, MLPCritic
from avo_bench.methods._nn import FlatAdam
from avo_bench.methods._proposals import MixtureProposal
from avo_bench.methods.avo import BASELINES, AVOConfig, score_function_grad
from simulators import get_simulator
from simulators.gaussian import Gaussian


def _fit(name, simulator, budget, seed=0, **options):
    x_obs = simulator.observe(generator=torch.Generator().manual_seed(1000 + seed))
    result = avo_bench.fit(name, simulator, x_obs, budget=budget, seed=seed, **options)
    return result, x_obs


# critic -------------------------------------------------------------------------------------


@pytest.mark.parametrize("loss", CRITIC_LOSSES)
@pytest.mark.parametrize("features, hidden", [(1, (10, 10)), (3, (16,)), (2, (8, 8, 8))])
def test_critic_gradient_matches_autograd(loss, features, hidden):
    g = torch.Generator().manual_seed(0)
    critic = MLPCritic(features, hidden, g, slope=0.1)
    fake = 2 * torch.randn(32, features, generator=g)
    real = torch.randn(32, features, generator=g)
    eps = torch.rand(32, 1, generator=g)
    hat = real if loss == "bce-r1" else eps * real + (1 - eps) * fake
    stats_, grad = critic.loss_and_grad(torch.cat([fake, real, hat]), loss, 0.7)
    params = critic.params.clone().requires_grad_(True)
    critic._bind(params)
    reference = critic.loss(fake, real, hat, loss, 0.7)
    (expected,) = torch.autograd.grad(reference, params)
    assert torch.allclose(grad, expected, atol=1e-6, rtol=1e-4)
    assert float(stats_[0]) == pytest.approx(float(reference.detach()), rel=1e-5, abs=1e-6)


def test_flat_adam_matches_torch_adam():
    g = torch.Generator().manual_seed(0)
    mine = torch.randn(50, generator=g)
    theirs = mine.clone().requires_grad_(True)
    flat = FlatAdam(mine, 0.01, (0.5, 0.7))
    reference = torch.optim.Adam([theirs], lr=0.01, betas=(0.5, 0.7))
    for _ in range(20):
        grad = torch.randn(50, generator=g)
        flat.step(grad)
        theirs.grad = grad.clone()
        reference.step()
    assert torch.allclose(mine, theirs.detach(), atol=1e-6)


# proposals ----------------------------------------------------------------------------------


def _weinberg_box():
    low, high = torch.tensor([40.0, 0.5]), torch.tensor([50.0, 1.5])
    return MixtureProposal(low, high - low, low, high, 1), low, high


@pytest.mark.parametrize("mean, std", [((45.0, 1.0), (1.0, 0.1)), ((49.5, 0.6), (3.0, 0.4))])
def test_truncated_gaussian_matches_scipy(mean, std):
    q, low, high = _weinberg_box()
    g = torch.Generator().manual_seed(0)
    psi = q.init_params(torch.tensor(mean), torch.tensor(std), g)
    theta, _ = q.sample(psi, 20000, g)
    assert bool(((theta >= low) & (theta <= high)).all())
    expected_logp = 0.0
    expected_entropy = 0.0
    for j in range(2):
        a, b = (low[j] - mean[j]) / std[j], (high[j] - mean[j]) / std[j]
        law = stats.truncnorm(float(a), float(b), loc=mean[j], scale=std[j])
        assert stats.kstest(theta[:, j].numpy(), law.cdf).pvalue > 1e-3
        expected_logp = expected_logp + law.logpdf(theta[:50, j].numpy())
        expected_entropy += law.entropy()
    assert torch.allclose(q.log_prob(theta[:50], psi), torch.as_tensor(expected_logp))
    assert float(q.entropy(psi)) == pytest.approx(float(expected_entropy), rel=1e-6)


def test_sampling_far_outside_the_box_stays_exact():
    # torch's ndtr underflows below -8 sigma; the sampler works in log space.
    q, _, _ = _weinberg_box()
    psi = torch.tensor([1.84, 0.5, math.log(0.08), math.log(0.1)], dtype=torch.float64)
    theta, _ = q.sample(psi, 20000, torch.Generator().manual_seed(0))
    u = (theta[:, 0] - 40) / 10
    law = stats.truncnorm((0 - 1.84) / 0.08, (1 - 1.84) / 0.08, loc=1.84, scale=0.08)
    assert stats.kstest(u.numpy(), law.cdf).pvalue > 1e-3


def test_mixture_density_integrates_to_one():
    q = MixtureProposal(
        torch.zeros(1), torch.ones(1), torch.tensor([-2.0]), torch.tensor([5.0]), 4
    )
    g = torch.Generator().manual_seed(0)
    psi = q.init_params(torch.tensor([1.0]), torch.tensor([2.0]), g)
    psi[-4:] = torch.tensor([0.3, -1.0, 0.5, 0.0], dtype=torch.float64)
    grid = torch.linspace(-2, 5, 20001, dtype=torch.float64).unsqueeze(-1)
    density = q.log_prob(grid, psi).exp()
    assert float(torch.trapezoid(density, grid.squeeze(-1))) == pytest.approx(1.0, abs=1e-4)
    theta, component = q.sample(psi, 40000, g)
    weights = torch.softmax(psi[-4:], 0)
    counts = torch.bincount(component, minlength=4) / 40000
    assert torch.allclose(counts.double(), weights, atol=0.01)
    assert bool(((theta >= -2) & (theta <= 5)).all())


# score-function gradient ----------------------------------------------------------------------


@pytest.mark.parametrize("baseline", BASELINES)
def test_score_function_gradient_is_unbiased(baseline):
    # f(theta) = theta^2 under N(mu, sigma^2): d/dmu E f = 2 mu, d/dlog(sigma) E f = 2 sigma^2.
    mu, sigma = 0.7, 0.5
    q = MixtureProposal(
        torch.zeros(1), torch.ones(1), torch.tensor([-math.inf]), torch.tensor([math.inf]), 1
    )
    psi = torch.tensor([mu, math.log(sigma)], dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    config = AVOConfig(baseline=baseline)
    grads = []
    for _ in range(400):
        theta, _ = q.sample(psi, 64, g)
        grad, _ = score_function_grad(q, psi, theta, theta[:, 0] ** 2, config)
        grads.append(grad)
    grads = torch.stack(grads)
    error = grads.std(0) / math.sqrt(grads.shape[0])
    expected = torch.tensor([2 * mu, 2 * sigma**2], dtype=torch.float64)
    assert bool(((grads.mean(0) - expected).abs() < 4 * error).all())


def test_baselines_reduce_gradient_variance():
    q = MixtureProposal(
        torch.zeros(1), torch.ones(1), torch.tensor([-math.inf]), torch.tensor([math.inf]), 1
    )
    psi = torch.tensor([3.0, math.log(0.2)], dtype=torch.float64)
    variance = {}
    for baseline in BASELINES:
        g = torch.Generator().manual_seed(0)
        grads = []
        for _ in range(200):
            theta, _ = q.sample(psi, 32, g)
            grads.append(
                score_function_grad(q, psi, theta, theta[:, 0], AVOConfig(baseline=baseline))[0]
            )
        variance[baseline] = float(torch.stack(grads).var(0).sum())
    assert variance["optimal"] < variance["none"] / 10
    assert variance["mean"] < variance["none"] / 10


def test_entropy_term_concentrates_the_proposal():
    # With a constant loss only the entropy acts: the gradient of +gamma H on log(sigma) is
    # +gamma, so descent shrinks sigma (the paper's sign).
    q = MixtureProposal(
        torch.zeros(2), torch.ones(2), torch.full((2,), -math.inf), torch.full((2,), math.inf), 1
    )
    psi = torch.tensor([0.0, 0.0, 0.0, 0.0], dtype=torch.float64)
    theta, _ = q.sample(psi, 16, torch.Generator().manual_seed(0))
    grad, _ = score_function_grad(q, psi, theta, torch.zeros(16), AVOConfig(gamma=5.0))
    assert torch.allclose(grad, torch.tensor([0.0, 0.0, 5.0, 5.0], dtype=torch.float64))


# config and fit -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field, value",
    [
        ("gamma", -1.0),
        ("penalty", -0.1),
        ("n_critic", 0),
        ("batch_size", 1),
        ("critic_loss", "hinge"),
        ("baseline", "median"),
        ("proposal", "flow"),
        ("critic_batch_size", 1),
        ("init_std", (0.0,)),
        ("critic_betas", (0.9, 1.0)),
        ("proposal_schedule", "linear"),
        ("schedule", "fast"),
        ("reuse_simulations", 1),
    ],
)
def test_invalid_config_names_the_field(field, value):
    with pytest.raises(ValueError, match=f"avo: {field} must be"):
        AVOConfig(**{field: value})


def test_lists_from_config_files_become_tuples():
    config = get_method("avo").make_config(critic_hidden=[16, 16], proposal_betas=[0.5, 0.9])
    assert config.critic_hidden == (16, 16) and config.proposal_betas == (0.5, 0.9)


def test_initial_mean_outside_the_prior_is_rejected():
    with pytest.raises(ValueError, match=r"avo: init_mean must lie inside the prior support"):
        _fit("avo", get_simulator("weinberg", n_obs=100), 5000, init_mean=(60.0, 1.0))


def test_budget_counts_every_simulation():
    sim = get_simulator("gaussian", n_obs=200)
    options = dict(
        schedule="paper",  # fresh simulations for every critic step and the proposal step
        reuse_simulations=False,
        critic_pool=None,
        n_critic=3,
        critic_batch_size=8,
        batch_size=16,
        critic_warmup=2,
    )
    result, _ = _fit("avo", sim, 1000, **options)
    per_epoch, warmup = 3 * 8 + 16, 2 * 8
    epochs = (1000 - warmup) // per_epoch
    assert result.num_simulations == warmup + epochs * per_epoch
    assert len(result.history) == result.extras["epochs"] == epochs
    assert result.history["num_simulations"].iloc[-1] == result.num_simulations
    with pytest.raises(NotApplicable, match="budget of 20 simulations is below the minimum of"):
        _fit("avo", sim, 20, **options)


# schedule ------------------------------------------------------------------------------------

BUDGETS = (100, 300, 1_000, 10_000, 100_000, 1_000_000)


def test_budget_schedule_runs_longer_and_anneals_as_the_budget_grows():
    plans = [resolve_schedule(AVOConfig(), budget) for budget in BUDGETS]
    epochs = [plan.epochs for plan in plans]
    assert epochs == sorted(epochs) and epochs[0] >= 10
    for budget, plan in zip(BUDGETS, plans, strict=True):
        spent = plan.warmup_simulations + plan.epochs * plan.simulations_per_epoch
        assert budget - plan.simulations_per_epoch < spent <= budget  # the budget is used
        assert plan.proposal_schedule == "cosine" and plan.reuse_simulations


def test_explicit_values_win_over_the_schedule():
    config = AVOConfig(n_critic=7, proposal_lr=0.3, critic_pool=40, proposal_schedule="constant")
    plan = resolve_schedule(config, 10_000)
    assert (plan.n_critic, plan.proposal_lr, plan.critic_pool) == (7, 0.3, 40)
    assert plan.proposal_schedule == "constant" and plan.simulations_per_epoch == 40


def test_paper_schedule_is_the_papers():
    plan = resolve_schedule(AVOConfig(schedule="paper"), 1_000_000)
    assert {name: getattr(plan, name) for name in PAPER} == PAPER
    assert plan.simulations_per_epoch == 100 * 32 + 64  # fresh for every critic step
    assert plan.warmup_simulations == 100 * 32


def test_budget_below_the_minimum_is_not_applicable_and_names_it():
    sim = get_simulator("gaussian", n_obs=200)
    with pytest.raises(NotApplicable, match=f"below the minimum of {MIN_BUDGET}"):
        _fit("avo", sim, MIN_BUDGET - 1)
    assert _fit("avo", sim, MIN_BUDGET)[0].num_simulations <= MIN_BUDGET


@pytest.mark.parametrize("method", ["avo", "reparam"])
def test_a_single_observation_is_not_applicable(method):
    sim = get_simulator("gaussian", n_obs=1)
    reason = get_method(method).applicable(sim)
    assert "n_obs = 1" in reason and "point mass" in reason
    with pytest.raises(NotApplicable, match="n_obs = 1"):
        _fit(method, sim, 10_000)
    many = get_simulator("gaussian", n_obs=100)  # x_obs of one row for a simulator of many
    with pytest.raises(NotApplicable, match="point mass"):
        avo_bench.fit(method, many, many.observe(1, generator=torch.Generator()), budget=1000)


@pytest.mark.parametrize("name", ["gaussian", "poisson", "weinberg", "ising", "rosenbrock"])
def test_the_tiny_budget_beats_the_prior(name):
    # The tiny preset (budget 300, n_obs <= 200): the adapted schedule (8 simulations per
    # epoch, 36 epochs) must beat the prior row's data-space W1 on every task.
    task = avo_bench.task(name, seed=0, preset="tiny", n_obs=200)
    g = torch.Generator().manual_seed(1)
    result = avo_bench.fit("avo", task.simulator, task.x_obs, budget=300, generator=g)
    prior = task.simulator.prior.sample((1000,), generator=g)
    w1 = {}
    for label, theta in (("avo", result.theta), ("prior", prior)):
        rows = avo_bench.score(task, theta, seed=2, preset="tiny").set_index(["space", "metric"])
        w1[label] = rows.loc[("data", "wasserstein1"), "value"]
    assert w1["avo"] < w1["prior"]


def test_same_seed_same_result():
    sim = get_simulator("gaussian", n_obs=200)
    a, _ = _fit("avo", sim, 2000, seed=3)
    b, _ = _fit("avo", sim, 2000, seed=3)
    c, _ = _fit("avo", sim, 2000, seed=4)
    assert torch.equal(a.theta, b.theta)
    assert a.history.equals(b.history)
    assert not torch.equal(a.theta, c.theta)


def test_average_zero_returns_the_last_iterate():
    sim = get_simulator("gaussian", n_obs=200)
    last, _ = _fit("avo", sim, 2000, average=0.0)
    averaged, _ = _fit("avo", sim, 2000, average=0.9)
    for name in ("theta1", "theta2"):
        final = last.history[f"mean_{name}"].iloc[-1]
        assert last.extras[f"final_mean_{name}"] == pytest.approx(final, rel=1e-12)
        assert averaged.extras[f"final_mean_{name}"] != pytest.approx(final, rel=1e-6)


def test_cosine_schedule_anneals_the_proposal_step():
    sim = get_simulator("gaussian", n_obs=200)
    options = dict(epochs=40, average=0.0, proposal_lr=0.05)
    constant, _ = _fit("avo", sim, 10_000, proposal_schedule="constant", **options)
    cosine, _ = _fit("avo", sim, 10_000, proposal_schedule="cosine", **options)
    epoch = torch.arange(40, dtype=torch.float64)
    expected = 0.05 * (1 + torch.cos(math.pi * epoch / 40)) / 2
    assert torch.allclose(torch.tensor(cosine.history["step_size"].to_numpy()), expected)
    assert (constant.history["step_size"] == 0.05).all()
    moves = {}
    for name, result in (("constant", constant), ("cosine", cosine)):
        means = result.history[["mean_theta1", "mean_theta2"]].to_numpy()
        moves[name] = abs(means[1:] - means[:-1]).sum(1)[-5:].mean()
    assert moves["cosine"] < moves["constant"] / 4  # measured 8.5x; step sizes differ 26x


class _Broken(Gaussian):
    # Observed data is fine (observe uses _simulate); simulations for the method are NaN.
    def simulate(self, theta, generator=None):
        self.check_theta(theta)
        return torch.full_like(theta, math.nan)


def test_nan_simulations_stop_the_fit_naming_the_simulator():
    sim = _Broken(n_obs=100)
    sim.name = "broken"
    with pytest.raises(SimulatorError, match=r"broken: simulate returned NaN or inf for \d+ of"):
        _fit("avo", sim, 2000)


@pytest.mark.parametrize("critic_loss", CRITIC_LOSSES)
def test_gaussian_moves_toward_the_posterior_mean(critic_loss):
    sim = get_simulator("gaussian", n_obs=500)
    result, x_obs = _fit("avo", sim, 10_000, critic_loss=critic_loss)
    target = sim.posterior(x_obs).mean().float()
    assert float((result.theta.mean(0) - target).norm()) < 0.35  # from 0.71 at the prior
    assert result.theta.shape == (10_000, 2)  # the default num_samples
    columns = {"iteration", "critic_loss", "critic_gap", "grad_var", "mean_theta1", "std_theta2"}
    assert columns <= set(result.history.columns)


def test_rosenbrock_mixture_improves_the_predictive():
    sim = get_simulator("rosenbrock", n_obs=1000)
    result, x_obs = _fit("avo", sim, 10_000)
    assert result.extras["config"].count("'proposal': 'auto'") == 1
    g = torch.Generator().manual_seed(7)
    fitted = sim.simulate(result.theta, g).squeeze(-1).numpy()
    prior = sim.simulate(sim.prior.sample((1000,), generator=g), g).squeeze(-1).numpy()
    observed = x_obs.squeeze(-1).numpy()
    w_fit = stats.wasserstein_distance(fitted, observed)
    w_prior = stats.wasserstein_distance(prior, observed)
    assert w_fit < w_prior / 2


# paper reproductions (slow) ------------------------------------------------------------------

POISSON_PAPER = dict(
    schedule="paper",
    coordinates="raw",
    init_mean=(math.log(5.0),),
    init_std=(1.0,),
    penalty=0.025,
    batch_size=64,
    critic_batch_size=32,
    n_critic=100,
    critic_pool=None,
    critic_warmup=100,
    reuse_simulations=False,
    standardize_x=False,
    critic_lr=0.01,
    critic_betas=(0.5, 0.5),
    proposal_lr=0.01,
    proposal_betas=(0.5, 0.5),
    epochs=300,
    average=0.0,
)


@pytest.mark.slow
def test_poisson_paper_settings():
    sim = get_simulator("poisson")
    std = {}
    for gamma in (0.0, 5.0):
        result, _ = _fit("avo", sim, 1_100_000, gamma=gamma, **POISSON_PAPER)
        assert result.extras["final_mean_log_rate"] == pytest.approx(math.log(7.0), abs=0.1)
        std[gamma] = result.extras["final_std_log_rate"]
    assert std[5.0] < std[0.0]


@pytest.mark.slow
def test_gaussian_converges_with_a_large_budget():
    sim = get_simulator("gaussian", n_obs=1000)
    result, x_obs = _fit("avo", sim, 100_000, seed=1)
    target = sim.posterior(x_obs).mean().float()
    assert float((result.theta.mean(0) - target).norm()) < 0.15


WEINBERG_ANNEALED = dict(
    schedule="paper", init_mean=(45.0, 1.0), init_std=(1.0, 0.1), penalty=0.0025, batch_size=64,
    critic_batch_size=32, n_critic=100, critic_pool=None, critic_warmup=1000,
    reuse_simulations=False, standardize_x=False, critic_lr=0.01, critic_betas=(0.9, 0.999),
    proposal_lr=0.01, proposal_betas=(0.9, 0.999), epochs=300, num_samples=50_000,
    proposal_schedule="cosine", average=0.95,
)  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("gamma", [0.0, 5.0])
def test_weinberg_paper_settings_predictive(gamma):
    # Paper settings with an annealed proposal step and EMA (scripts/reproduce_avo.py). Only
    # c(E_beam, G_f) is identified and the density is linear in c, so the predictive fixes
    # E_q[c]: measured within 0.025 of c* on seeds 0-11, both gammas. c of the proposal mean:
    # within 0.027 at gamma = 5; at gamma = 0, where q stays as wide as it starts along E_beam,
    # below c* by Jensen's gap, -0.02 to -0.08. Predictive: 50,000 events, floor W1 ~ 0.003,
    # JS ~ 1e-4 bits on 15 bins. The test's seed 12 (data seed 1012) was not used to tune.
    from simulators.weinberg import asymmetry

    sim = get_simulator("weinberg")
    result, x_obs = _fit("avo", sim, 1_100_000, seed=12, gamma=gamma, **WEINBERG_ANNEALED)
    simulated = sim.simulate(result.theta, torch.Generator().manual_seed(5)).squeeze(-1)
    observed = x_obs.squeeze(-1)
    assert stats.wasserstein_distance(simulated.numpy(), observed.numpy()) < 0.02
    edges = torch.linspace(-1, 1, 16)
    p = torch.histogram(simulated, edges).hist
    q = torch.histogram(observed, edges).hist
    js = float(distance.jensenshannon(p.numpy(), q.numpy(), base=2) ** 2)
    assert js < 1e-3
    c_star = float(asymmetry(sim.true_parameters[None]))
    mean = torch.tensor([[result.extras["final_mean_E_beam"], result.extras["final_mean_G_f"]]])
    assert float(asymmetry(result.theta.double()).mean()) == pytest.approx(c_star, abs=0.05)
    assert float(asymmetry(mean)) == pytest.approx(c_star, abs=0.05 if gamma > 0 else 0.1)


# the budget-aware schedule on grid tasks (slow) ----------------------------------------------


FRESH_SEED = 7  # the schedule was tuned on seeds 0-6 (the budget curves use 0-4)


def _grid_scores(name: str, seed: int, budget: int):
    # A grid cell of the paper preset (its task and scores), on a run seed the schedule was
    # not tuned on.
    task = avo_bench.task(name, seed=seed, preset="paper")
    result = avo_bench.fit("avo", task.simulator, task.x_obs, budget=budget, seed=seed)
    rows = avo_bench.score(task, result.theta, seed=seed, preset="paper")
    return rows.set_index(["space", "metric"])["value"]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["poisson", "rosenbrock"])
def test_predictive_improves_from_1e4_to_1e5(name):
    # The mean over three run seeds the schedule was not chosen on, since single seeds spread
    # (Rosenbrock on seeds 7-10: 4.00, 3.81, 3.16, 3.21 at 10^4 against 1.60, 3.01, 1.53,
    # 3.32 at 10^5; see _avo_config.AVOConfig).
    seeds = (FRESH_SEED, FRESH_SEED + 1, FRESH_SEED + 2)
    w1 = {
        b: sum(_grid_scores(name, s, b)[("data", "wasserstein1")] for s in seeds) / len(seeds)
        for b in (10_000, 100_000)
    }
    assert w1[100_000] <= w1[10_000]


@pytest.mark.slow
def test_weinberg_asymmetry_at_1e5():
    # Only c(E_beam, G_f) is identified: the distance to theta* is |E_q[c] - c*|.
    assert _grid_scores("weinberg", FRESH_SEED, 100_000)[("truth", "distance_to_truth")] <= 0.05
