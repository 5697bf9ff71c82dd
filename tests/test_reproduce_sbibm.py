"""scripts/reproduce_sbibm.py: a tiny end-to-end run, its outputs and the published table."""

from pathlib import Path

import pandas as pd
import pytest
import torch
from _scripts import load_module

from simulators import get_simulator

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "reproduce_sbibm.py"
TINY = ["--observations", "1", "--budgets", "300", "1000", "--samples", "200"]


script = load_module(SCRIPT, "reproduce_sbibm")


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    out = tmp_path_factory.mktemp("sbibm")
    argv = [*TINY, "--seed", "3", "--methods", "rejection_abc", "prior", "--out", str(out)]
    table = script.main(argv)
    return out, table


def best_accuracy(p, q, n=200_000, seed=0) -> float:
    """Bayes-optimal accuracy (1 + TV(p, q)) / 2 of two diagonal normals, by Monte Carlo."""
    g = torch.Generator().manual_seed(seed)

    def log_ratio(z):  # log p(z) - log q(z)
        lp = torch.distributions.Normal(p.mean(), p.stddev()).log_prob(z).sum(1)
        return lp - torch.distributions.Normal(q.mean(), q.stddev()).log_prob(z).sum(1)

    a, b = p.sample((n,), generator=g), q.sample((n,), generator=g)
    tv = (log_ratio(a) > 0).double().mean() - (log_ratio(b) > 0).double().mean()
    return float((1 + tv) / 2)


def test_writes_rows_report_and_figure(outputs):
    out, _ = outputs
    rows = pd.read_csv(out / "c2st.csv")
    cells = set(zip(rows["method"], rows["budget"], strict=True))
    assert cells == {("rejection_abc", 300), ("rejection_abc", 1000), ("prior", 0)}
    assert (rows["observation"] == 1).all() and (rows["samples_per_side"] == 200).all()
    abc = rows[rows["method"] == "rejection_abc"]
    assert (abc["num_simulations"] == abc["budget"]).all()
    # round(sqrt(N)) accepted draws, resampled: the repeats that the report's departures name
    assert abc["unique_samples"].tolist() == [17, 32]
    assert rows["c2st"].between(0.5, 1.0).all()
    assert (out / "c2st.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_table_next_to_published(outputs):
    out, table = outputs
    report = (out / "report.md").read_text()
    rows = pd.read_csv(out / "c2st.csv")
    ours = rows.set_index(["method", "budget"])["c2st"]
    # 10^3 has a published value, 300 has none; the prior is one score shown at every budget
    assert (
        f"| rejection_abc | 1000 | {ours['rejection_abc', 1000]:.3f} (1) | 0.9135 ± 0.0262 (10) |"
        in report
    )
    assert f"| rejection_abc | 300 | {ours['rejection_abc', 300]:.3f} (1) | - |" in report
    for budget in (300, 1000):
        assert f"| prior | {budget} | {ours['prior', 0]:.3f} (1) | - | - |" in report
    assert script.SOURCE in report and "2a49a5797d7ac6b1c8873f8ee01671713616656b" in report
    assert "## Departures from sbibm" in report and "KDE" in report
    assert list(table["method"]) == ["rejection_abc"] * 2 + ["prior"] * 2


def test_prior_scores_its_bayes_optimal_accuracy(outputs):
    out, _ = outputs
    sim = get_simulator("gaussian", **script.TASK)
    posterior = sim.posterior(script.observation(sim, 3, 0))
    best = best_accuracy(posterior, sim.prior)
    rows = pd.read_csv(out / "c2st.csv")
    prior = float(rows.loc[rows["method"] == "prior", "c2st"].iloc[0])
    assert best > 0.85  # prior and posterior are far apart on gaussian_linear
    assert abs(prior - best) < 0.08, (prior, best)  # 200 per side: sd about 0.02


def test_same_seed_same_scores(outputs, tmp_path):
    out, _ = outputs
    argv = [*TINY, "--seed", "3", "--methods", "rejection_abc", "prior", "--out", str(tmp_path)]
    script.main(argv)
    first, again = pd.read_csv(out / "c2st.csv"), pd.read_csv(tmp_path / "c2st.csv")
    pd.testing.assert_series_equal(first["c2st"], again["c2st"])


def test_observations_are_prior_draws_per_seed():
    sim = get_simulator("gaussian", **script.TASK)
    a, b = script.observation(sim, 0, 0), script.observation(sim, 0, 1)
    assert a.shape == (1, 10) and not torch.equal(a, b)
    assert torch.equal(a, script.observation(sim, 0, 0))
    assert not torch.equal(a, script.observation(sim, 1, 0))


def test_published_table_matches_cited_source():
    # sbi-benchmark/results @ 2a49a57, benchmarking_sbi/results/*.csv, C2ST over observations
    # 1-10 (mean, sample sd): NPE-NSF, NLE-MAF, NRE-RES, REJ-ABC, SMC-ABC on gaussian_linear.
    assert script.PUBLISHED["npe", 1_000] == (0.6945, 0.0438, 10)
    assert script.PUBLISHED["npe", 10_000] == (0.5522, 0.0316, 10)
    assert script.PUBLISHED["nle", 1_000] == (0.6504, 0.0842, 10)
    assert script.PUBLISHED["nre", 10_000] == (0.5603, 0.0197, 10)
    assert script.PUBLISHED["rejection_abc", 1_000] == (0.9135, 0.0262, 10)
    assert script.PUBLISHED["smc_abc", 10_000] == (0.8287, 0.0489, 10)
    methods = set(script.METHOD_NAMES) - {"prior", *script.KDE_ROWS}
    # (a superset: avo_bench.published also holds methods the script does not run, e.g. abc_rf)
    assert set(script.PUBLISHED) >= {(m, b) for m in methods for b in (10**3, 10**4, 10**5)}
    assert set(script.PUBLISHED_LABELS) >= methods | set(script.KDE_ROWS)


@pytest.mark.parametrize(
    "argv, match",
    [
        (["--observations", "0"], "--observations"),
        (["--samples", "2"], "--samples"),
        (["--budgets", "1000", "0"], "--budgets"),
    ],
)
def test_bad_arguments_name_the_value(argv, match):
    with pytest.raises(ValueError, match=match):
        script.main(argv)


def test_unknown_method_lists_choices(capsys):
    with pytest.raises(SystemExit):
        script.main(["--methods", "mcmc"])
    error = capsys.readouterr().err
    assert "invalid choice: 'mcmc'" in error and "'nre'" in error


def test_kde_is_a_seeded_smoothing_of_its_points():
    from avo_bench.methods._kde import fit_kde

    g = torch.Generator().manual_seed(4)
    points = torch.randn(100, 3, generator=g) + 3.0  # isotropic: the KDE's bandwidth is too
    kde = fit_kde(points)
    sample = lambda seed: kde.sample(20_000, torch.Generator().manual_seed(seed))  # noqa: E731
    draws = sample(9)
    assert draws.shape == (20_000, 3) and torch.equal(draws, sample(9))
    assert not torch.equal(draws, sample(10))
    # a Gaussian KDE keeps the points' mean and adds the bandwidth's variance h**2, with h in
    # sbibm's search range [0.1, 0.5] x std of the points (up to the sampling noise of 20,000)
    assert torch.allclose(draws.double().mean(0), points.double().mean(0), atol=0.05)
    added = draws.double().var(0) - points.double().var(0, correction=0)
    scale = points.double().std()
    assert ((added > (0.05 * scale) ** 2) & (added < (0.55 * scale) ** 2)).all(), added
    assert len(torch.unique(draws, dim=0)) == 20_000  # no repeated points, unlike resampling


def test_kde_row_is_sbibms_rej_abc(tmp_path):
    argv = [*TINY, "--methods", "rejection_abc_kde", "--out", str(tmp_path)]
    table = script.main(argv)
    rows = pd.read_csv(tmp_path / "c2st.csv")
    assert (rows["num_simulations"] == rows["budget"]).all()
    assert (rows["unique_samples"] == 200).all()  # smoothed: no repeats
    assert table.loc[table["budget"] == 1000, "published_mean"].item() == 0.9135
    assert "REJ-ABC 100 KDE" in (tmp_path / "report.md").read_text()


def test_rerunning_resumes_without_recomputing(outputs, monkeypatch):
    out, table = outputs
    before = pd.read_csv(out / "c2st.csv")

    def must_not_run(*args, **kwargs):
        raise AssertionError("a cell already in c2st.csv was computed again")

    monkeypatch.setattr(script, "score", must_not_run)
    argv = [*TINY, "--seed", "3", "--methods", "rejection_abc", "prior", "--out", str(out)]
    again = script.main(argv)
    pd.testing.assert_frame_equal(pd.read_csv(out / "c2st.csv"), before)
    pd.testing.assert_frame_equal(again.reset_index(drop=True), table.reset_index(drop=True))
    # another seed is another run: its cells are computed (and fail here, by the patch)
    with pytest.raises(AssertionError, match="computed again"):
        script.main([*TINY, "--seed", "4", "--methods", "prior", "--out", str(out)])
