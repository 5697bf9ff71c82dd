"""The asv benchmarks run and compute what they claim; ``asv check`` accepts the suite.

Every benchmark class runs its set-up and each ``time_`` / ``track_`` / ``peakmem_`` function
once on the CPU at its smallest parameters; CUDA parameters must skip (``NotImplementedError``)
without a GPU. The kernels are checked against independent references: autograd + torch's Adam
for the critic step, scipy for W1 (1-D formula, assignment problem), JS, MMD, the ABC distances
and the SMC kernel density. No timing is asserted: a ``track_`` rate is only checked against the
work done and an interval measured around it (which contains the benchmark's own interval).
"""

from __future__ import annotations

import importlib
import math
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import optimize, spatial, stats

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODULES = ["bench_avo", "bench_methods", "bench_metrics", "bench_simulators"]
PREFIXES = ("time_", "track_", "peakmem_")


def _classes():
    for name in MODULES:
        module = importlib.import_module(f"benchmarks.{name}")
        for cls in vars(module).values():
            if (
                isinstance(cls, type)
                and cls.__module__ == module.__name__
                and hasattr(cls, "params")
            ):
                yield pytest.param(cls, id=f"{name}.{cls.__name__}")


def _smallest_cpu(cls) -> list:
    return [
        "cpu" if "device" == n else values[0]
        for n, values in zip(cls.param_names, cls.params, strict=True)
    ]


def _setup(cls, **changes):
    args = _smallest_cpu(cls)
    for key, value in changes.items():
        args[cls.param_names.index(key)] = value
    bench = cls()
    bench.setup(*args)
    return bench, args


def _benchmarks(bench) -> list[str]:
    return sorted(name for name in dir(bench) if name.startswith(PREFIXES))


@pytest.mark.parametrize("cls", _classes())
def test_every_benchmark_runs_on_cpu(cls):
    assert len(cls.params) == len(cls.param_names)
    assert "device" in cls.param_names, "every benchmark is parametrized by device"
    bench, args = _setup(cls)
    assert _benchmarks(bench), f"{cls.__name__} has no benchmark function"
    for name in _benchmarks(bench):
        value = getattr(bench, name)(*args)
        if name.startswith("track_"):
            assert math.isfinite(value) and value > 0
        else:
            assert value is None


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA present: nothing to skip")
@pytest.mark.parametrize("cls", _classes())
def test_cuda_parameters_skip_without_cuda(cls):
    assert "cuda" in cls.params[cls.param_names.index("device")]
    with pytest.raises(NotImplementedError, match="CUDA"):
        _setup(cls, device="cuda")
    assert torch.get_num_threads() == 1  # setup pins the thread pool


def _rate_bounds(track, work: float) -> tuple[float, float]:
    """The rate a track_ function returns, and the lower bound ``work / outer interval``."""
    start = time.perf_counter()
    rate = track()
    return rate, work / (time.perf_counter() - start)


# AVO ----------------------------------------------------------------------------------------


def test_critic_step_is_one_adam_step_on_the_wgan_gp_gradient():
    from avo_bench.methods._critics import MLPCritic
    from benchmarks.bench_avo import CriticStep

    bench, _ = _setup(CriticStep)
    bench.optimizer.reset()
    before = bench.critic.params.clone()
    # reference: the WGAN-GP loss by autograd's double backward, then torch.optim.Adam
    reference = MLPCritic(1, (10, 10), torch.Generator().manual_seed(0))
    reference.params = before.clone().requires_grad_(True)
    reference._bind(reference.params)
    m = len(bench.batch) // 3
    fake, real, hat = bench.batch.split(m)
    reference.loss(fake, real, hat, "wgan-gp", bench.penalty).backward()
    grad = reference.params.grad.clone()
    torch.optim.Adam([reference.params], lr=0.01, betas=(0.9, 0.999)).step()
    bench.time_critic_step("cpu", m)
    assert not torch.equal(bench.critic.params, before)
    # Adam's first step is lr * sign(g): compare where g is well above float32 rounding
    clear = grad.abs() > 1e-4
    assert clear.float().mean() > 0.9
    torch.testing.assert_close(
        bench.critic.params[clear], reference.params.detach()[clear], atol=1e-6, rtol=0
    )


def test_critic_epoch_takes_its_steps_and_reports_their_rate():
    from benchmarks.bench_avo import CriticEpoch

    bench, args = _setup(CriticEpoch)
    before, t0 = bench.critic.params.clone(), bench.optimizer.t
    rate, lower = _rate_bounds(lambda: bench.track_critic_steps_per_second(*args), bench.steps)
    assert bench.optimizer.t - t0 == bench.steps == 100  # the paper's n_critic
    assert not torch.equal(bench.critic.params, before)
    assert rate >= lower > 0


def test_proposal_step_moves_the_proposal_along_the_score_function_gradient():
    from benchmarks.bench_avo import ProposalStep

    bench, args = _setup(ProposalStep)
    assert bench.config.batch_size == args[1] == 64  # the paper's proposal batch
    before = bench.psi.clone()
    diagnostics = bench.step()
    assert not torch.equal(bench.psi, before)
    assert math.isfinite(diagnostics["generator_loss"]) and diagnostics["grad_var"] >= 0


def test_iteration_is_one_paper_sized_avo_epoch():
    from benchmarks.bench_avo import Iteration

    bench, _ = _setup(Iteration)
    config = bench.config  # the paper's: 100 critic steps of 32 + 32 rows, 64 proposal rows
    assert (config.n_critic, config.critic_batch_size, config.batch_size) == (100, 32, 64)
    assert config.critic_pool is None and not config.reuse_simulations
    result = bench.iterate()
    assert result.extras["epochs"] == 1 and len(result.history) == 1
    assert result.num_simulations == 100 * 32 + 64  # n_critic x critic batch + proposal batch


# cGAN and ABC -------------------------------------------------------------------------------


def test_cgan_step_updates_both_networks():
    from benchmarks.bench_methods import CGANTrainingStep

    bench, _ = _setup(CGANTrainingStep)
    g_before = [p.clone() for p in bench.g_net.parameters()]
    d_before = [p.clone() for p in bench.critic.parameters()]
    d_loss, g_loss, d_real, d_fake = bench.step().tolist()
    assert math.isfinite(d_loss) and math.isfinite(g_loss) and 0 < d_real < 1 and 0 < d_fake < 1
    for before, now in (
        (g_before, bench.g_net.parameters()),
        (d_before, bench.critic.parameters()),
    ):
        assert any(not torch.equal(b, p) for b, p in zip(before, now, strict=True))


def test_rejection_abc_accepts_the_closest_draws_in_mad_scaled_distance():
    from benchmarks.bench_methods import RejectionABCDistances

    bench, args = _setup(RejectionABCDistances)
    s, obs = bench.summaries.double().numpy(), bench.observed.double().numpy()
    scale = stats.median_abs_deviation(s, axis=0, scale="normal")
    d = np.sqrt((((s - obs) / scale) ** 2).sum(1))
    expected = np.argsort(d, kind="stable")[: round(math.sqrt(args[1]))]
    accepted = bench.accept().numpy()
    assert len(accepted) == 100
    np.testing.assert_allclose(np.sort(d[accepted]), d[expected], rtol=1e-5)


def test_smc_weights_match_the_gaussian_kernel_mixture_density():
    from benchmarks.bench_methods import SMCABCWeights

    bench, _ = _setup(SMCABCWeights)
    old, new = bench.old.double().numpy(), bench.new.double().numpy()
    w = torch.softmax(bench.log_weight, 0).numpy()
    cov = 2.0 * np.cov(old.T, aweights=w)  # unbiased weighted covariance, as Beaumont et al.
    log_k = np.stack([stats.multivariate_normal(o, cov).logpdf(new) for o in old], axis=1)
    log_q = np.logaddexp.reduce(np.log(w)[None, :] + log_k, axis=1)
    log_prior = bench.prior.log_prob(bench.new.double()).numpy()
    np.testing.assert_allclose(bench.weights().numpy(), log_prior - log_q, rtol=1e-6, atol=1e-6)


# metrics ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["closed_form_1d", "exact_emd", "quantized"])
def test_wasserstein1_takes_its_path_and_matches_the_exact_value(path):
    from benchmarks.bench_metrics import Wasserstein1

    bench, _ = _setup(Wasserstein1, path=path)
    estimate = bench.estimate()
    assert estimate.path.startswith(path)
    a, b = bench.a.double().numpy(), bench.b.double().numpy()
    if path == "closed_form_1d":
        exact = stats.wasserstein_distance(a[:, 0], b[:, 0])
    else:  # equal uniform weights: optimal transport is an optimal assignment
        cost = spatial.distance.cdist(a, b)
        rows, cols = optimize.linear_sum_assignment(cost)
        exact = cost[rows, cols].mean()
    assert abs(estimate.value - exact) <= estimate.error_bound + 1e-5


@pytest.mark.parametrize("dim", [1, 2])
def test_jensen_shannon_matches_scipy_on_the_same_bins(dim):
    from benchmarks.bench_metrics import JensenShannon

    bench, _ = _setup(JensenShannon, dim=dim)
    a, b = bench.a.double().numpy(), bench.b.double().numpy()
    low, high = min(a.min(), b.min()) - 1, max(a.max(), b.max()) + 1
    # the open-ended outer bins, made finite beyond the data; numpy bins are [e_i, e_i+1) too
    bins = [np.clip(e.numpy(), low, high) for e in bench.edges]
    hist = [np.histogramdd(x, bins=bins)[0].ravel() for x in (a, b)]
    expected = spatial.distance.jensenshannon(hist[0], hist[1], base=2) ** 2
    assert bench.divergence() == pytest.approx(expected, abs=1e-9)


def test_mmd_matches_the_unbiased_estimate_with_the_median_bandwidth():
    from benchmarks.bench_metrics import MMD

    bench, _ = _setup(MMD)
    a, b = bench.a.double().numpy(), bench.b.double().numpy()
    sigma = np.median(spatial.distance.pdist(np.concatenate([a, b])))
    k = lambda x, y: np.exp(-spatial.distance.cdist(x, y, "sqeuclidean") / (2 * sigma**2))  # noqa: E731
    n, m = len(a), len(b)
    expected = (
        (k(a, a).sum() - n) / (n * (n - 1))
        + (k(b, b).sum() - m) / (m * (m - 1))
        - 2 * k(a, b).mean()
    )
    assert bench.value() == pytest.approx(expected, rel=1e-3, abs=1e-6)


@pytest.mark.parametrize("variant", ["fast", "sbibm"])
def test_c2st_tells_the_shifted_gaussians_apart(variant):
    from benchmarks.bench_metrics import C2ST

    bench, _ = _setup(C2ST, variant=variant)
    best = stats.norm.cdf(0.5 * math.sqrt(2) / 2)  # Bayes accuracy Phi(Delta / 2) = 0.638
    assert 0.5 < bench.accuracy(variant) < best + 0.1


# simulators ---------------------------------------------------------------------------------


def test_weinberg_events_per_second_counts_the_events_simulated():
    from benchmarks.bench_simulators import WeinbergEvents

    bench, args = _setup(WeinbergEvents)
    x = bench.simulate()
    assert x.shape == (args[2], 1) and bool((x.abs() <= 1).all())
    rate, lower = _rate_bounds(lambda: bench.track_events_per_second(*args), args[2])
    assert rate >= lower > 0


def test_ising_spin_updates_per_ns_counts_every_sweep_of_every_chain():
    from benchmarks.bench_simulators import IsingSweeps

    bench, args = _setup(IsingSweeps)
    size = args[1]
    assert bench.simulator.sweeps == bench.sweeps
    assert bench.spin_updates() == bench.chains * size**2 * bench.sweeps
    rate, lower = _rate_bounds(
        lambda: bench.track_spin_updates_per_ns(*args), bench.spin_updates()
    )
    assert rate * 1e9 >= lower > 0


def test_simulator_throughput_covers_the_registry():
    from benchmarks.bench_simulators import SimulatorThroughput
    from simulators import SIMULATORS

    assert SimulatorThroughput.params[0] == sorted(SIMULATORS)


# scaling script -----------------------------------------------------------------------------


def test_loglog_slope_recovers_a_power_law():
    from benchmarks.scaling import loglog_slope

    sizes = np.array([10.0, 100.0, 1000.0, 5000.0])
    assert loglog_slope(sizes, 3e-7 * sizes**2.5) == pytest.approx(2.5)


def test_scaling_builds_every_kernel_at_its_smallest_size():
    from benchmarks.scaling import KERNELS, measure_scaling

    for name, scaling in KERNELS.items():
        assert list(scaling.sizes) == sorted(scaling.sizes) and len(scaling.sizes) >= 3, name
        scaling.build(scaling.sizes[0], "cpu")()
    row = measure_scaling("gaussian", "cpu", quick=True)
    assert row["sizes"] == "1,000-100,000" and math.isfinite(row["slope"])


# asv ----------------------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("asv") is None, reason="asv is not installed")
def test_asv_check_accepts_the_suite():
    done = subprocess.run(
        ["asv", "check", "--python=same"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
