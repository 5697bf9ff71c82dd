"""Report (tables, plots) and compare, on synthetic rows with known statistics and a real run."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest

import avo_bench
from avo_bench.cli import main
from avo_bench.methods import METHODS, Method, Result
from avo_bench.methods.prior import PriorConfig
from avo_bench.report import headline, not_run, score_table, write_report
from avo_bench.results import COLUMNS, compare, load_results, write_results
from avo_bench.summary import summarize

PNG = b"\x89PNG\r\n\x1a\n"


def synthetic(values: dict) -> pd.DataFrame:
    """Rows of one metric: ``values[(method, simulator)] = [(value, status), ...]`` per seed."""
    rows = []
    for (method, sim), seeds in values.items():
        for seed, (value, status) in enumerate(seeds):
            rows.append(dict.fromkeys(COLUMNS, "") | {
                "simulator": sim, "method": method, "seed": seed, "budget": 100,
                "space": "data", "metric": "wasserstein1", "value": value, "floor": 0.25,
                "direction": "lower", "ideal": 0.0, "status": status, "wall_time_s": 1.0,
                "num_simulations": 100, "cell_seed": seed, "version": "0.1.0", "n_obs": 1,
                "sample_size": 0, "reference_size": 0,
            })  # fmt: skip
    return pd.DataFrame(rows, columns=COLUMNS)


def test_score_table_entries_marks_and_statuses():
    rows = synthetic({
        ("a", "s1"): [(1.0, "ok"), (2.0, "ok"), (4.0, "ok")],
        ("c", "s1"): [(5.0, "ok"), (6.0, "ok"), (7.0, "ok")],
        ("a", "s2"): [(0.2, "ok"), (np.nan, "error"), (0.3, "ok")],
        ("b", "s1"): [(np.nan, "n/a")] * 3,
        ("b", "s2"): [(np.nan, "error")] * 3,
    })  # fmt: skip
    table = summarize(rows)
    out = score_table(table, rows, ("data", "wasserstein1"), 100)
    a = table[(table.task == "s1") & (table.method == "a")].iloc[0]
    assert (a["mean"], a.n, a.cells) == (7 / 3, 3, 3) and a.low < 7 / 3 < a.high
    assert out.loc["a", "s1"] == f"**{7 / 3:.3g} [{a.low:.3g}, {a.high:.3g}]**★"
    # c is worse on 3 seeds: p = 1/8, not significant with 3 seeds, so bold (tied) too
    assert out.loc["c", "s1"].startswith("**6 [") and "★" not in out.loc["c", "s1"]
    assert out.loc["a", "s2"].endswith("★ᶠ (2/3)")  # 0.25 is at the floor 0.25
    assert out.loc["b", "s1"] == "n/a" and out.loc["b", "s2"] == "error"
    assert list(out.loc["*floor*"]) == ["0.25 [0.25, 0.25]", "0.25 [0.25, 0.25]"]
    assert table.at_floor[(table.method == "a") & (table.task == "s2")].all()


def test_report_of_a_real_run(tmp_path, monkeypatch):
    def with_history(simulator, x_obs, *, budget, config, generator, device):
        theta = simulator.prior.sample((50,), generator=generator)
        history = pd.DataFrame({"step": range(10), "loss": np.linspace(1, 0, 10)})
        return Result(theta, 0, history=history)

    monkeypatch.setitem(METHODS, "curvy", Method("curvy", with_history, PriorConfig))
    rows = avo_bench.run(["gaussian"], ["prior", "curvy"], seeds=2,
                         budgets=[10, 20], preset="tiny", out=tmp_path)  # fmt: skip
    text = (tmp_path / "report.md").read_text()
    sections = ["## Headline", "## Who wins", "## Ranks across tasks", "## Calibration",
                "## Cost", "## Cells not ok", "## The floor", "## Every score"]  # fmt: skip
    assert [text.index(s) for s in sections] == sorted(text.index(s) for s in sections)
    scored = rows[rows.status == "ok"][["space", "metric", "direction"]].drop_duplicates()
    for space, metric, direction in scored.itertuples(index=False):
        assert f"### {space} {metric} (budget 10, {direction} is better)" in text
    assert headline(rows) in text and "Parameter space (budget 20)" in headline(rows)
    assert "| gaussian (c2st) |" in headline(rows, 10)
    with pytest.raises(ValueError, match=r"budget 30 is not in the run; its budgets: \[10, 20\]"):
        headline(rows, 30)
    assert "| gaussian | posterior c2st | 20 |" in text  # who wins
    assert "Mean rank in parameter space" in text and "θ* inside" in text
    # prior and curvy return samples only: nltp is n/a with the reason, listed once
    assert "| calibration | nltp | curvy | n/a | 0@10, 0@20, 1@10, 1@20 |" in text
    plots = ["scores_gaussian.png", "wall_time.png", "calibration.png"]
    for name in plots:
        assert (tmp_path / "plots" / name).read_bytes().startswith(PNG), name
        assert f"](plots/{name})" in text
    assert not (tmp_path / "plots" / "cells").exists()  # per-cell figures are optional
    write_report(tmp_path, cell_plots=True)
    for name in [f"cells/gaussian__{m}__0__{b}.png" for m in ("prior", "curvy") for b in (10, 20)]:
        assert (tmp_path / "plots" / name).read_bytes().startswith(PNG), name
    assert not (tmp_path / "plots" / "cells" / "gaussian__prior__1__10.png").exists()


def test_report_lists_failed_cells(tmp_path):
    rows = synthetic({("a", "s1"): [(np.nan, "error")], ("b", "s1"): [(1.0, "ok")]})
    rows.loc[0, "message"] = "RuntimeError: boom | here"
    write_results(tmp_path, rows)
    text = write_report(tmp_path).read_text()
    assert "| s1 | a | error | 0@100 | RuntimeError: boom \\| here |" in text


def test_report_lists_the_cells_a_stopped_run_has_not_reached(tmp_path):
    avo_bench.run(["gaussian"], ["prior"], preset="tiny", seeds=1, out=tmp_path, report=False)
    assert "not run yet" not in write_report(tmp_path).read_text()
    # the same directory as if its run had been planned for seeds 0-2 and stopped after seed 0
    path = tmp_path / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["identity"]["seeds"] = [0, 1, 2]
    path.write_text(json.dumps(manifest))
    missing = not_run(tmp_path, load_results(tmp_path))
    assert missing[["seed", "budget"]].values.tolist() == [[1, 300], [2, 300]]
    text = write_report(tmp_path).read_text()
    assert "1 cells (1 ok; 2 cells of its grid not run yet)" in text
    assert "| gaussian | prior | 1@300, 2@300 |" in text


def test_compare_runs(tmp_path, capsys):
    rows = synthetic({("a", "s1"): [(1.0, "ok"), (2.0, "ok")], ("b", "s1"): [(3.0, "ok")]})
    for name in "abc":
        (tmp_path / name).mkdir()
    write_results(tmp_path / "a", rows)
    write_results(tmp_path / "b", rows)
    changed = rows.copy()
    changed.loc[0, "value"] = 1.0 + 1e-12
    changed.loc[2, ["value", "status"]] = [np.nan, "error"]
    write_results(tmp_path / "c", changed.iloc[[0, 2]])
    assert (compare(tmp_path / "a", tmp_path / "b").change == "same").all()
    diff = compare(tmp_path / "a", tmp_path / "c").set_index(["method", "seed"])
    assert diff.loc[("a", 0), "change"] == "changed"
    assert diff.loc[("a", 0), "diff"] == pytest.approx(1e-12)
    assert diff.loc[("a", 1), "change"] == "only_a"
    assert diff.loc[("b", 0), "change"] == "status"
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "c")]) == 1
    assert "3 rows compared: 3 differ" in capsys.readouterr().out
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "c"), "--rtol", "1e-6"]) == 1
    assert "3 rows compared: 2 differ" in capsys.readouterr().out


def test_report_and_compare_cli_errors(tmp_path, capsys):
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "no results file" in capsys.readouterr().err
    assert main(["compare", str(tmp_path), str(tmp_path / "missing")]) == 2


def test_report_cli_matches_run_report(tmp_path):
    avo_bench.run(["rosenbrock"], ["prior"], preset="tiny", out=tmp_path / "a")
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    (tmp_path / "b" / "report.md").unlink()
    assert main(["report", str(tmp_path / "b")]) == 0
    assert (tmp_path / "b" / "report.md").read_text().replace("# avo_bench report: b", "") == (
        (tmp_path / "a" / "report.md").read_text().replace("# avo_bench report: a", "")
    )
    assert load_results(tmp_path / "b").equals(load_results(tmp_path / "a"))


def test_a_copy_without_stored_arrays_keeps_the_figures_drawn_from_them(tmp_path):
    # calibration.png draws exact-posterior levels from cells/ (not committed with the
    # reference runs); a report of a copy without cells/ must not redraw it from θ* alone
    avo_bench.run(["gaussian"], ["prior"], seeds=2, preset="tiny", out=tmp_path / "a")
    figure = (tmp_path / "a" / "plots" / "calibration.png").read_bytes()
    shutil.copytree(tmp_path / "a", tmp_path / "b", ignore=shutil.ignore_patterns("cells"))
    assert main(["report", str(tmp_path / "b")]) == 0
    assert (tmp_path / "b" / "plots" / "calibration.png").read_bytes() == figure
    assert "](plots/calibration.png)" in (tmp_path / "b" / "report.md").read_text()
    # some arrays missing (a resumed copy): redrawing would mix exact levels with θ* levels
    shutil.copytree(tmp_path / "a", tmp_path / "c")
    next((tmp_path / "c" / "cells").glob("*.npz")).unlink()
    (tmp_path / "c" / "plots" / "calibration.png").write_bytes(figure[:-1] + b"x")  # a marker
    assert main(["report", str(tmp_path / "c")]) == 0
    assert (tmp_path / "c" / "plots" / "calibration.png").read_bytes() == figure[:-1] + b"x"
    # with neither the arrays nor the figure, the report draws what the rows hold (θ* levels)
    (tmp_path / "b" / "plots" / "calibration.png").unlink()
    assert main(["report", str(tmp_path / "b")]) == 0
    redrawn = (tmp_path / "b" / "plots" / "calibration.png").read_bytes()
    assert redrawn.startswith(PNG) and redrawn != figure
