"""scripts/reproduce_ising.py: end to end at tiny sizes, its tables against exact references."""

import math
from pathlib import Path

import pandas as pd
import pytest
import torch
from _scripts import load_module

from simulators.ising import GridPosterior, kaufman_energy, onsager_magnetization

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "reproduce_ising.py"
METHODS = ["avo", "rejection_abc", "smc_abc", "prior", "reparam"]  # reparam: n/a on ising


script = load_module(SCRIPT, "reproduce_ising")


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    out = tmp_path_factory.mktemp("ising")
    script.main(["--quick", "--seed", "3", "--out", str(out), "--methods", *METHODS])
    return out


def test_writes_every_file(outputs):
    for name in ("energy_magnetization.png", "inferred_temperature.png"):
        assert (outputs / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for name in ("curves.csv", "inference.csv", "summary.md"):
        assert (outputs / name).stat().st_size > 0


def test_energies_match_kaufman(outputs):
    curves = pd.read_csv(outputs / "curves.csv")
    assert len(curves) == len(script.QUICK.temperatures) * len(script.QUICK.lattices)
    for row in curves.itertuples():
        assert row.kaufman == pytest.approx(kaufman_energy(row.size, row.T), abs=1e-9)
        assert row.yang == pytest.approx(onsager_magnetization(row.T), abs=1e-12)
        assert row.energy_se > 0 and 0 <= row.abs_m <= 1
        z = (row.energy - row.kaufman) / row.energy_se
        assert row.energy_z == pytest.approx(z, rel=1e-6)
        assert abs(z) < 5  # generous: 5 temperatures, independent chains


def test_inference_table(outputs):
    table = pd.read_csv(outputs / "inference.csv", keep_default_na=False, na_values=[""])
    quick = script.QUICK
    assert len(table) == len(quick.true_temperatures) * quick.replicates * len(METHODS)
    assert set(table["method"]) == set(METHODS)
    skipped = table[table["method"] == "reparam"]
    assert (skipped["status"] == "n/a").all() and skipped["message"].str.len().min() > 0
    ok = table[table["method"] != "reparam"]
    assert (ok["status"] == "ok").all()
    assert ok["mean"].between(1.5, 3.5).all() and (ok["sd"] > 0).all()
    assert (ok["low"] <= ok["mean"]).all() and (ok["mean"] <= ok["high"]).all()
    assert (table["num_simulations"] <= quick.budget).all()
    assert (table.loc[table["method"].isin(["prior", "reparam"]), "num_simulations"] == 0).all()
    # The exact posterior sits at the truth (5 sd: generous for 3 data sets).
    assert ((ok["exact_mean"] - ok["T_star"]).abs() < 5 * ok["exact_sd"]).all()
    summary = (outputs / "summary.md").read_text()
    assert "reparam: n/a" in summary and "| exact posterior |" in summary


def test_exact_summary_of_a_uniform_grid():
    cells = 1000
    posterior = GridPosterior(torch.linspace(0, 1, cells + 1), torch.zeros(cells))
    exact = script.exact_summary(posterior)
    assert exact["exact_mean"] == pytest.approx(0.5)
    assert exact["exact_sd"] == pytest.approx(math.sqrt((1 - cells**-2) / 12))  # midpoints
    assert exact["exact_low"] == pytest.approx(0.025)
    assert exact["exact_high"] == pytest.approx(0.975)


def test_inference_summary_counts_coverage_and_failures():
    base = {"exact_mean": 2.0, "exact_sd": 0.1, "exact_low": 1.8, "exact_high": 2.2}
    rows = [
        {
            "method": "a",
            "T_star": 2.0,
            "replicate": 0,
            "status": "ok",
            "mean": 2.1,
            "sd": 0.2,
            "low": 1.9,
            "high": 2.3,
            "seconds": 1.0,
        },
        {
            "method": "a",
            "T_star": 3.0,
            "replicate": 0,
            "status": "ok",
            "mean": 2.7,
            "sd": 0.4,
            "low": 2.5,
            "high": 2.9,
            "seconds": 3.0,
        },
        {"method": "b", "T_star": 2.0, "replicate": 0, "status": "error", "message": "boom"},
    ]
    summary = script.inference_summary(pd.DataFrame([base | row for row in rows]))
    a, b, exact = summary.to_dict("records")
    assert a["ok"] == "2/2" and a["coverage"] == 0.5
    assert a["mean_abs_error"] == pytest.approx((0.1 + 0.7) / 2)
    assert a["mean_abs_error_vs_T_star"] == pytest.approx((0.1 + 0.3) / 2)
    assert a["median_sd_ratio"] == pytest.approx(3.0)
    assert b["ok"] == "0/1" and math.isnan(b["coverage"])
    assert exact["method"] == "exact posterior" and exact["coverage"] == 0.5
    assert exact["mean_abs_error_vs_T_star"] == pytest.approx((0.0 + 1.0) / 2)


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["--budget", "0"], "--budget must be an integer >= 1, got 0"),
        (["--replicates", "-1"], "--replicates"),
        (["--methods", "avo", "nope"], "unknown method 'nope'; choose from"),
    ],
)
def test_bad_arguments_raise_before_any_work(argv, match, tmp_path):
    with pytest.raises(ValueError, match=match):
        script.main([*argv, "--out", str(tmp_path / "never")])
    assert not (tmp_path / "never").exists()
