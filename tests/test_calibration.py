"""Calibration: credibility levels, coverage and SBC of exact and overconfident posteriors, the
calibration scores of a cell, and NPE's density and amortized sampler."""

import math

import numpy as np
import pytest
import torch

import avo_bench
from avo_bench.calibration import (
    amortized_check,
    coverage_area,
    credibility_level,
    sbc_ks,
    sbc_ranks,
)
from avo_bench.methods import Result
from avo_bench.scoring import Scored, evaluate
from avo_bench.stats import coverage_curve
from simulators import get_simulator

ALPHAS = np.array([0.1, 0.3, 0.5, 0.7, 0.9])


def exact_sampler(simulator, scale: float = 1.0):
    """``sample_at`` of the exact posterior of the Gaussian location model, its spread
    multiplied by ``scale`` (< 1: overconfident)."""

    def sample_at(x, n, generator):
        draws = []
        for data in x:  # one posterior per observed set (a test helper, not a hot path)
            posterior = simulator.posterior(data)
            noise = torch.randn(n, simulator.dim, generator=generator, dtype=torch.float64)
            draws.append(posterior.loc + scale * posterior.scale * noise)
        return torch.stack(draws, dim=1)

    return sample_at


@pytest.fixture(scope="module")
def gaussian():
    return get_simulator("gaussian", n_obs=20)


@pytest.mark.parametrize("scale", [1.0, 0.5, 2.0])
def test_expected_coverage_of_exact_overconfident_and_conservative_posteriors(gaussian, scale):
    g = torch.Generator().manual_seed(0)
    check = amortized_check(gaussian, exact_sampler(gaussian, scale), n_set=20, num_tests=300,
                            num_samples=500, generator=g)  # fmt: skip
    assert check.levels.shape == (300,) and check.ranks.shape == (300, 2)
    assert check.num_test_simulations == 300 * 20
    coverage = coverage_curve(check.levels.numpy(), ALPHAS)
    area = coverage_area(check.levels)
    sd = math.sqrt(1 / 12 / 300)  # of the mean of 300 uniform levels
    if scale == 1.0:  # calibrated: coverage at the nominal level, ranks uniform
        assert np.abs(coverage - ALPHAS).max() < 0.1
        assert abs(area) < 3 * sd
        assert sbc_ks(check.ranks) < 0.12
    elif scale < 1:  # too narrow: the truth falls outside the central regions too often
        assert (coverage < ALPHAS).all() and area < -0.15
        assert sbc_ks(check.ranks) > 0.15
    else:  # too wide
        assert (coverage > ALPHAS).all() and area > 0.15


def test_credibility_level_of_draws_of_the_same_distribution_is_uniform():
    g = torch.Generator().manual_seed(1)
    samples = torch.randn(4000, 3, generator=g) * torch.tensor([1.0, 10.0, 0.1]) + 5.0
    points = torch.randn(3000, 3, generator=g) * torch.tensor([1.0, 10.0, 0.1]) + 5.0
    levels = credibility_level(samples, points)
    assert np.abs(coverage_curve(levels.numpy(), ALPHAS) - ALPHAS).max() < 0.04
    assert credibility_level(samples, samples.mean(0, keepdim=True)).item() == 0.0
    assert credibility_level(samples, torch.full((1, 3), 1e3)).item() == 1.0
    with pytest.raises(ValueError, match="same d"):
        credibility_level(samples, torch.zeros(2, 2))


def test_sbc_ranks_and_ks():
    g = torch.Generator().manual_seed(2)
    samples = torch.randn(1000, 400, 2, generator=g, dtype=torch.float64)
    theta = torch.randn(400, 2, generator=g, dtype=torch.float64)
    assert sbc_ks(sbc_ranks(samples, theta)) < 0.1
    assert sbc_ks(sbc_ranks(samples * 0.3, theta)) > 0.25
    with pytest.raises(ValueError, match="ranks must have shape"):
        sbc_ks(torch.zeros(0, 2))


def scores_of(task, result):
    scored = Scored(task, result.theta, 0, result)
    return {s.metric: s for s in evaluate(scored) if s.space == "calibration"}, scored


def test_calibration_scores_of_a_cell():
    task = avo_bench.task("gaussian", seed=0, preset="tiny", n_obs=50)
    posterior = task.simulator.posterior(task.x_obs)
    g = torch.Generator().manual_seed(3)
    exact = Result(posterior.sample((4000,), generator=g).float(), log_prob=posterior.log_prob,
                   sample_at=exact_sampler(task.simulator))  # fmt: skip
    scores, scored = scores_of(task, exact)
    assert all(s.status == "ok" for s in scores.values()), scores
    assert 0 <= scores["truth_level"].value <= 1
    assert abs(scores["posterior_coverage"].value) < 0.06
    assert scores["nltp"].value == pytest.approx(scores["nltp"].floor)  # the exact density
    assert abs(scores["expected_coverage"].value) < 0.07 and scores["sbc_ks"].value < 0.15
    assert {"posterior_levels", "amortized_levels", "amortized_ranks"} <= set(scored.artifacts)
    narrow = posterior.loc + 0.3 * posterior.scale * torch.randn(4000, 2, generator=g)
    scores, _ = scores_of(task, Result(narrow.float()))
    assert scores["posterior_coverage"].value < -0.2  # overconfident
    for metric in ("nltp", "expected_coverage", "sbc_ks"):  # samples only: n/a with the reason
        assert scores[metric].status == "n/a" and scores[metric].message


def test_npe_provides_a_density_and_an_amortized_sampler():
    pytest.importorskip("sbi")
    task = avo_bench.task("gaussian", seed=0, preset="tiny", n_obs=1)
    result = avo_bench.fit("npe", task.simulator, task.x_obs, budget=500, seed=0,
                           num_samples=200, max_num_epochs=3)  # fmt: skip
    log_prob = result.log_prob(result.theta[:5])
    assert log_prob.shape == (5,) and torch.isfinite(log_prob).all()
    assert torch.equal(log_prob, result.log_prob(result.theta[:5]))  # reproducible
    x = task.simulator.simulate(task.simulator.prior.sample((3,)), torch.Generator())[:, None]
    g = torch.Generator().manual_seed(0)
    samples = result.sample_at(x, 7, g)
    assert samples.shape == (7, 3, 2)
    assert torch.equal(samples, result.sample_at(x, 7, torch.Generator().manual_seed(0)))
    assert avo_bench.fit("nle", task.simulator, task.x_obs, budget=500, max_num_epochs=1,
                         num_samples=20, warmup_steps=2).log_prob is None  # fmt: skip


def test_leakage_correction_agrees_with_sbi_and_is_bounded():
    pytest.importorskip("sbi")
    from sbi.inference import NPE
    from sbi.utils import BoxUniform

    from avo_bench.methods._amortized import log_mass_inside_prior

    torch.manual_seed(0)
    prior = BoxUniform(-torch.ones(2), torch.ones(2))
    theta = prior.sample((300,))
    x = theta + 0.5 * torch.randn_like(theta)
    inference = NPE(prior, show_progress_bars=False)
    estimator = inference.append_simulations(theta, x).train(
        max_num_epochs=3, show_train_summary=False
    )
    posterior = inference.build_posterior(estimator)
    x_o = torch.tensor([[0.9, 0.9]])  # near a corner: an untrained flow leaks
    ours = log_mass_inside_prior(posterior, x_o)
    theirs = math.log(float(posterior.leakage_correction(x_o)))
    assert -3.0 < ours < -0.05 and ours == pytest.approx(theirs, abs=0.05)
    # a support the flow (almost) never reaches: sbi would draw without end; here the draws
    # stop at max_draws, and with none inside the error says so
    posterior.prior = BoxUniform(torch.full((2,), 40.0), torch.full((2,), 40.001))
    with pytest.raises(ValueError, match="no draw of 20,000 inside the prior's support"):
        log_mass_inside_prior(posterior, x_o, max_draws=20_000)
