"""The iid ("sum") route of NLE, NRE and factorized NPE: compression, binning, the potential
against ``sbi``'s own, route and estimator choice, and accuracy against exact posteriors."""

from __future__ import annotations

import importlib.util
import math

import pytest
import torch

import avo_bench
from avo_bench.methods import get_method
from simulators import get_simulator
from simulators.weinberg import cross_section_density

HAS_SBI = importlib.util.find_spec("sbi") is not None
needs_sbi = pytest.mark.skipif(
    not HAS_SBI, reason="sbi not installed (pip install 'avo-bench[sbi]')"
)
TINY = {"max_num_epochs": 3, "num_samples": 100, "num_chains": 5, "warmup_steps": 5,
        "init_candidates": 200}  # fmt: skip


def observe(sim, seed=1):
    return sim.observe(generator=torch.Generator().manual_seed(seed))


def errors(theta, posterior):
    """Largest |error of the mean| in exact sds, and the sd ratios (exact moments)."""
    mean, sd = posterior.mean().double(), posterior.stddev().double()
    return float(((theta.double().mean(0) - mean) / sd).abs().max()), theta.double().std(0) / sd


# compression ------------------------------------------------------------------------------


@needs_sbi
def test_counts_compress_exactly():
    from avo_bench.methods._sbi_iid import compress

    x = observe(get_simulator("poisson", n_obs=20_000))
    observed = compress(x, max_points=256)
    assert not observed.binned and observed.count == 20_000
    assert len(observed.points) < 40 and observed.weights.sum() == 20_000
    assert (observed.weights * observed.points[:, 0]).sum() == x.sum()


@needs_sbi
def test_large_1d_sets_are_binned_into_equal_count_group_means():
    from avo_bench.methods._sbi_iid import compress

    x = observe(get_simulator("weinberg", n_obs=50_000))
    observed = compress(x, max_points=256)
    assert observed.binned and observed.points.shape == (256, 1)
    assert (
        observed.weights.sum() == 50_000 and observed.weights.max() - observed.weights.min() <= 1
    )
    assert (observed.points[1:] > observed.points[:-1]).all()
    assert (observed.weights * observed.points[:, 0]).sum().item() == pytest.approx(
        x.double().sum().item(), abs=0.5
    )  # group means keep the sum (float32 rounding aside)
    two_d = torch.randn(5000, 2)
    assert not compress(two_d, 256).binned  # multi-dimensional sets are never binned


@needs_sbi
def test_binning_error_on_weinbergs_exact_likelihood():
    """The approximation, measured where the likelihood is exact: the posterior of the
    asymmetry c (flat prior) from 50,000 events, exact vs 256 group means."""
    from avo_bench.methods._sbi_iid import compress

    x = observe(get_simulator("weinberg", n_obs=50_000), seed=0).double()
    c = torch.linspace(-1.3, -0.8, 2001, dtype=torch.float64)

    def moments(points, weights):
        log_lik = (weights[:, None] * torch.log(cross_section_density(points, c[None]))).sum(0)
        w = torch.exp(log_lik - log_lik.max())
        w = w / w.sum()
        mean = (w * c).sum()
        return mean, (w * (c - mean) ** 2).sum().sqrt()

    mean, sd = moments(x, torch.ones(len(x), dtype=torch.float64))
    observed = compress(x.float(), max_points=256)
    binned_mean, binned_sd = moments(observed.points.double(), observed.weights.double())
    assert abs(binned_mean - mean) / sd < 1e-3  # measured 5.1e-4 (128 groups: 2.0e-3)
    assert abs(binned_sd / sd - 1) < 1e-4  # measured 3.6e-6


# the potential is sbi's, batched and compressed -----------------------------------------------


@needs_sbi
@pytest.mark.parametrize("name", ["nle", "nre"])
def test_compressed_potential_equals_sbis_iid_potential(name):
    from sbi.inference import NLE, NRE
    from sbi.inference.potentials import (
        likelihood_estimator_based_potential,
        ratio_estimator_based_potential,
    )

    from avo_bench.methods._sbi import quiet
    from avo_bench.methods._sbi_iid import IIDPotential, compress, terms

    sim = get_simulator("poisson", n_obs=500)
    x_obs = observe(sim)
    prior = sim.prior.to_torch()
    theta = sim.prior.sample((300,), generator=torch.Generator().manual_seed(0))
    x = sim.simulate(theta, torch.Generator().manual_seed(1))
    trainer = (NLE if name == "nle" else NRE)(prior=prior, show_progress_bars=False)
    with quiet():
        estimator = trainer.append_simulations(theta, x).train(max_num_epochs=2)
    build = likelihood_estimator_based_potential if name == "nle" else (
        ratio_estimator_based_potential)  # fmt: skip
    reference, _ = build(estimator, prior, x_obs)
    kind = "likelihood" if name == "nle" else "ratio"
    potential = IIDPotential(terms(kind, estimator), compress(x_obs, 256), prior, 1.0, "cpu")
    at = torch.tensor([[0.5], [1.9], [2.1], [4.0]])
    with torch.no_grad():
        torch.testing.assert_close(potential(at), reference(at), rtol=1e-5, atol=1e-2)
    outside = torch.tensor([[-3.0]])  # below the prior box
    assert potential(outside).item() == -math.inf


# routes and estimators ------------------------------------------------------------------------


@needs_sbi
def test_routes_and_estimators_chosen_by_data():
    poisson = get_simulator("poisson", n_obs=200)
    result = avo_bench.fit("nle", poisson, observe(poisson), budget=400, **TINY)
    assert result.extras["iid"] == "sum" and result.extras["estimator"] == "categorical"
    assert result.num_simulations == 400 and result.extras["set_size"] == 1
    gaussian = get_simulator("gaussian", dim=2, n_obs=30)
    x = observe(gaussian)
    result = avo_bench.fit("nle", gaussian, x, budget=400, **TINY)
    assert result.extras["estimator"] == "maf" and result.extras["observed_points"] == 30
    result = avo_bench.fit("npe", gaussian, x, budget=400, **TINY)
    assert result.extras["iid"] == "summary" and result.extras["set_size"] == 2
    assert result.log_prob is not None  # direct posterior: a normalized density
    result = avo_bench.fit("npe", poisson, observe(poisson), budget=400, iid="sum", **TINY)
    assert result.extras["iid"] == "sum" and result.log_prob is None
    result = avo_bench.fit("nre", gaussian, x, budget=400, iid="summary", set_size=10, **TINY)
    assert result.extras["iid"] == "summary" and result.num_simulations == 400


@pytest.mark.parametrize(
    "name, field, value",
    [("nle", "iid", "mean"), ("npe", "max_points", 0), ("nle", "estimator", "resnet"),
     ("nre", "init_candidates", 0), ("npe", "estimator", "categorical")],
)  # fmt: skip
def test_bad_iid_config_names_field(name, field, value):
    with pytest.raises(ValueError, match=field):
        get_method(name).make_config(**{field: value})


@needs_sbi
def test_categorical_estimator_needs_counts():
    sim = get_simulator("gaussian", dim=1, n_obs=20)
    with pytest.raises(ValueError, match="estimator 'categorical' needs count data"):
        avo_bench.fit("nle", sim, observe(sim), budget=100, estimator="categorical", **TINY)


@needs_sbi
def test_auto_estimator_is_categorical_only_for_few_values():
    from avo_bench.methods._sbi import AUTO_CATEGORIES, MAX_CATEGORIES, likelihood_estimator

    counts = torch.tensor([[0.0, 3.0], [1.0, 4.0], [2.0, 0.0]])
    label, built = likelihood_estimator("auto", counts, counts[:1])
    assert label == "categorical" and built.num_categories == 5
    assert likelihood_estimator("auto", counts, counts[:1], headroom=2)[1].num_categories == 10
    large = counts.clone()
    large[0, 0] = AUTO_CATEGORIES  # sir-like counts: a flow, unless asked for
    label, built = likelihood_estimator("auto", large, counts[:1])
    assert (label, built.model) == ("maf", "maf")
    label, built = likelihood_estimator("categorical", large, counts[:1], headroom=8)
    assert label == "categorical" and built.num_categories == MAX_CATEGORIES
    label, built = likelihood_estimator("auto", counts + 0.5, counts[:1])
    assert (label, built.model) == ("maf", "maf")
    angles = counts[:, :1] + 0.5  # one-dimensional: sbi's MAF would be a Gaussian
    label, built = likelihood_estimator("auto", angles, angles[:1])
    assert (label, built.model) == ("nsf", "nsf")


def test_unit_scale_constants_spreads_only_constant_columns():
    from avo_bench.methods._sbi import unit_scale_constants

    x = torch.tensor([[0.0, 1.0, 7.0], [0.0, 2.0, 7.0], [0.0, 4.0, 7.0]])
    spread = unit_scale_constants(x)
    assert torch.equal(spread[:, 1], x[:, 1])
    assert torch.equal(spread[:, [0, 2]], torch.tensor([[1.0, 8.0], [-1.0, 6.0], [0.0, 7.0]]))
    assert torch.allclose(spread.mean(0), x.mean(0)) and torch.allclose(spread.std(0)[[0, 2]],
                                                                        torch.ones(2))  # fmt: skip
    assert torch.equal(unit_scale_constants(x[:, 1:2]), x[:, 1:2])
    assert torch.equal(unit_scale_constants(x[:1]), x[:1])  # one row: nothing to z-score


@needs_sbi
def test_nle_flow_scores_a_value_off_a_column_constant_in_training():
    """sbi floors a constant column's scale at 1e-14, so a later value 1 away from the
    constant lands at 1e14 (SNLE on sir: a NaN loss); the flow here z-scores it by unit
    scale."""
    from sbi.inference import NLE
    from sbi.utils import BoxUniform

    from avo_bench.methods._sbi import likelihood_estimator, seeded_global_rngs

    generator = torch.Generator().manual_seed(0)
    theta = torch.rand(200, 1, generator=generator)
    x = torch.cat([torch.zeros(200, 1), theta + 0.1 * torch.randn(200, 1, generator=generator)],
                  dim=1)  # fmt: skip
    label, built = likelihood_estimator("auto", x, x[:1])
    with seeded_global_rngs(0, torch.device("cpu")):
        inference = NLE(prior=BoxUniform(torch.zeros(1), torch.ones(1)),
                        density_estimator=built, show_progress_bars=False)  # fmt: skip
        inference.append_simulations(theta, x).train(max_num_epochs=5)
        later = x.clone()
        later[:50, 0] = 1.0  # a later round's values
        inference.append_simulations(theta, later).train(max_num_epochs=5)
        log_prob = inference._neural_net.log_prob(later[None, :50], theta[:50])
    # sbi's own builder: about -2e26 at these points, and a training loss of 3e25 (measured)
    assert label == "maf" and bool((log_prob > -100).all())
    assert max(inference._summary["training_loss"]) < 100


@needs_sbi
def test_snle_names_a_round_beyond_its_categorical_range():
    from sbi.utils import BoxUniform

    from avo_bench.methods._sbi_iid import Observed
    from avo_bench.methods.sequential import SNLEConfig, _Rounds

    config = SNLEConfig(max_num_epochs=1, num_samples=10)
    prior = BoxUniform(torch.zeros(1), torch.ones(1))
    x_o = torch.tensor([[2.0]])
    rounds = _Rounds(config, prior, Observed(x_o, torch.ones(1), 1, False), torch.device("cpu"))
    theta = torch.rand(40, 1, generator=torch.Generator().manual_seed(0))
    rounds.train(theta, (theta * 4).round(), batch_cap=40)  # counts 0..4: categories 0..9
    assert rounds.label == "categorical" and rounds.categories == 10
    with pytest.raises(ValueError, match=r"simulated the count 12, beyond .* values 0\.\.9"):
        rounds.train(theta, torch.full((40, 1), 12.0), batch_cap=40)


# accuracy against the exact posterior (slow) ----------------------------------------------------


@needs_sbi
@pytest.mark.slow
@pytest.mark.parametrize("name", ["nle", "nre"])
@pytest.mark.parametrize("seed", [11, 12])
def test_gaussian_iid_c2st(name, seed):
    """dim=2, n_obs=100, budget 10^4; the summary route measured C2ST 0.875 (NLE) and 0.859
    (NRE) here. The route is under test, so NLE's flow is pinned to the NSF that learns this
    likelihood: the default MAF (``sbi``'s) gets stuck on seed 11 (C2ST 0.896, measured
    2026-12-02; documented in avo_bench/methods/neural.py)."""
    from avo_bench.metrics import c2st

    sim = get_simulator("gaussian", dim=2, n_obs=100)
    x_obs = observe(sim, seed=seed)
    flow = {"estimator": "nsf"} if name == "nle" else {}
    result = avo_bench.fit(name, sim, x_obs, budget=10_000, seed=seed, num_samples=2000, **flow)
    reference = sim.posterior(x_obs).sample((2000,), generator=torch.Generator().manual_seed(5))
    accuracy = c2st(reference, result.theta)
    assert accuracy <= 0.65, accuracy


@needs_sbi
@pytest.mark.slow
@pytest.mark.parametrize("name", ["nle", "nre"])
def test_poisson_20000_counts_posterior_mean(name):
    """Every count conditions the posterior: its sd is near the exact one (0.0027 in log-rate),
    not the summary route's (0.13, 50 times wider). Its mean is not within a few exact sds:
    10^4 single simulations over the prior [-2, 5] do not pin the learned likelihood's rate to
    0.3 %, and 20,000 summed terms turn that bias into 5-20 exact sds (measured on seeds 21-23,
    |mean error| in log-rate: NLE 0.013-0.040, NRE 0.030-0.053; sd ratio NLE 0.96-1.09, NRE
    0.32-0.53, overconfident)."""
    sim = get_simulator("poisson")  # n_obs = 20,000, theta* = log 7
    x_obs = observe(sim, seed=21)
    result = avo_bench.fit(name, sim, x_obs, budget=10_000, seed=21, num_samples=2000)
    exact = sim.posterior(x_obs)
    error = float((result.theta.double().mean(0) - exact.mean()).abs().max())
    ratio = float(result.theta.double().std(0).max() / exact.stddev().max())
    assert error < 0.1, error
    assert 0.2 < ratio < 2.0, ratio
