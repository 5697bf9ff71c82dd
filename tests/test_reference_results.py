"""The committed reference results (results/reference/) load, cover the registry, and are what
the README shows.

A new simulator or method without reference rows fails here on purpose: re-run the reference
grid's command (in the run's manifest and report) on the same directory, which runs only the new
cells, so that the published table covers it. Pairs not run yet are listed, each with its reason,
in ``results/reference/PENDING.md``; the list must be exactly the uncovered pairs (a stale entry
fails too), so a gap is always stated, never silent.
"""

import json
import re
from itertools import product
from pathlib import Path

import pytest

from avo_bench import load_results
from avo_bench.methods import METHODS
from avo_bench.report import headline
from avo_bench.results import KEY
from avo_bench.runner import FAILED
from simulators import SIMULATORS

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "results" / "reference"
PENDING = REFERENCE / "PENDING.md"
README = ROOT / "README.md"
MIN_SEEDS = 3


@pytest.fixture(scope="module")
def rows():
    return load_results(REFERENCE)


def _pending() -> dict[tuple[str, str], str]:
    """``(simulator, method) -> reason`` from the table rows ``| simulator | method | reason |``
    of PENDING.md."""
    pending = {}
    for line in PENDING.read_text().splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0] in SIMULATORS and cells[1] in METHODS:
            pending[(cells[0], cells[1])] = cells[2]
    return pending


def test_reference_covers_every_registered_simulator_and_method(rows):
    cells = rows.drop_duplicates(KEY[:5])
    manifest = json.loads((REFERENCE / "manifest.json").read_text())
    budgets = set(manifest["identity"]["budgets"])
    # a cell that failed (error, timeout) does not cover its pair: PENDING.md says why
    done = cells[~cells.status.isin(FAILED)]
    missing = set()
    for simulator, method in product(SIMULATORS, METHODS):
        part = done[(done.simulator == simulator) & (done.method == method)]
        for budget in sorted(budgets):
            if len(set(part[part.budget == budget].seed)) < MIN_SEEDS:
                missing.add((simulator, method))
    pending = _pending()
    assert all(len(reason) > 10 for reason in pending.values()), "say why each pair is pending"
    unlisted = sorted(missing - set(pending))
    assert not unlisted, (
        "reference results do not cover the registry; re-run the command in "
        f"{REFERENCE / 'report.md'} with the new entries (only their cells run), or list them "
        f"in {PENDING} with the reason:\n" + "\n".join(map(str, unlisted))
    )
    stale = sorted(set(pending) - missing)
    assert not stale, f"covered now, remove from {PENDING}: {stale}"
    assert set(cells.budget) == budgets


def test_reference_rows_are_complete_and_honest(rows):
    cells = rows.drop_duplicates(KEY[:5])
    assert set(rows.status) <= {"ok", "n/a", "error", "timeout"}
    # n/a and error rows say why; ok cells report what they cost
    assert (rows[rows.status != "ok"].message.str.len() > 0).all()
    ok = cells[cells.status == "ok"]
    assert (ok.wall_time_s >= 0).all() and (ok.num_simulations <= ok.budget).all()
    # every row says which code made it (a run extended by new entries may span commits)
    assert (rows.git_commit.str.len() == 40).all() and (rows.version.str.len() > 0).all()


def test_reference_manifest_and_report_state_command_and_machine(rows):
    manifest = json.loads((REFERENCE / "manifest.json").read_text())
    commands = [inv["command"] for inv in manifest["invocations"]]
    assert commands and all("--out results/reference" in c for c in commands)
    assert manifest["machine"]["cores"] >= 1
    report = (REFERENCE / "report.md").read_text()
    assert all(f"`{c}`" in report for c in commands) and "- Machine: " in report
    assert rows.git_commit.iloc[0] in report


def test_readme_headline_is_the_committed_table(rows):
    text = README.read_text()
    assert headline(rows) in text, "README's results table differs from headline(reference rows)"
    for link in re.findall(r"\]\((results/[^)]+)\)", text):
        assert (ROOT / link).exists(), link


def test_readme_rank_table_is_regenerated(rows):
    from scripts.readme_results import pending_methods, rank_table

    table = rank_table(rows, pending_methods(REFERENCE))
    assert table in README.read_text(), "run python scripts/readme_results.py"


IID = ROOT / "results" / "reference-iid"


def test_reference_iid_axis_loads_and_is_what_the_readme_shows():
    rows = load_results(IID)
    manifest = json.loads((IID / "manifest.json").read_text())
    assert manifest["identity"]["n_obs"] == [1, 10, 100, 1000]
    assert set(rows.status) <= {"ok", "n/a", "error", "timeout"}
    cells = rows.drop_duplicates(KEY[:5])
    assert set(cells.budget) == {10_000}
    # the README's figure: every task at every rung of the ladder, with 3 seeds per method
    for task in ("gaussian", "poisson", "weinberg"):
        part = cells[cells.simulator == task]
        assert set(part.n_obs) == {1, 10, 100, 1000}, task
        seeds = part.groupby(["method", "n_obs"]).seed.nunique()
        assert (seeds == 3).all(), task
        gaps = {(m, n) for m in set(part.method) for n in (1, 10, 100, 1000)} - set(seeds.index)
        assert not gaps, (task, gaps)
    assert "results/reference-iid/plots/scores_vs_n_obs.png" in README.read_text()
    assert (IID / "plots" / "scores_vs_n_obs.png").stat().st_size > 10_000


IID_MORE = ROOT / "results" / "reference-iid-more"


def test_reference_iid_more_covers_the_other_methods_on_the_axis():
    # results/README.md: the methods reference-iid does not hold, on gaussian and poisson, seed 0
    rows = load_results(IID_MORE)
    manifest = json.loads((IID_MORE / "manifest.json").read_text())
    assert manifest["identity"]["n_obs"] == [1, 10, 100, 1000]
    assert manifest["identity"]["seeds"] == [0]
    iid = set(load_results(IID).method)
    cells = rows.drop_duplicates(KEY[:5])
    assert set(cells.method).isdisjoint(iid)
    for task in ("gaussian", "poisson"):
        part = cells[cells.simulator == task]
        assert len(part) == 4 * len(set(cells.method)), task  # every method at every rung
    assert set(rows.status) <= {"ok", "n/a"}
    assert "reference-iid-more" in (ROOT / "results" / "README.md").read_text()


SBIBM_RUN = ROOT / "results" / "reference-sbibm"


def test_reference_sbibm_is_sbibms_protocol_beside_the_published_table():
    # results/README.md: the sbibm preset (fast C2ST standing in) on observation 1 of each task,
    # NPE/NLE/NRE/REJ-ABC/SMC-ABC at 10^3 and 10^4, each cell beside sbibm's published value
    from avo_bench.published import sbibm_published
    from avo_bench.summary import cells as summary_cells

    rows = load_results(SBIBM_RUN)
    identity = json.loads((SBIBM_RUN / "manifest.json").read_text())["identity"]
    assert identity["preset"] == "sbibm" and "c2st" not in identity["scoring"]  # fast
    assert identity["seeds"] == [0] and identity["budgets"] == [1000, 10_000]
    assert identity["scoring"]["n_param"] == 10_000
    methods = {"rejection_abc", "smc_abc", "npe", "nle", "nre"}
    assert (
        set(identity["methods"]) == methods and identity["methods"]["smc_abc"]["variant"] == "sbi"
    )
    cells = summary_cells(rows)
    assert set(cells.status) == {"ok"}
    c2st = rows[rows.metric == "c2st"]
    assert c2st.value.between(0.45, 1.0).all() and (c2st.sample_size == 10_000).all()
    for task, method, budget in c2st.groupby(["simulator", "method", "budget"]).groups:
        assert sbibm_published(task, method, budget) is not None, (task, method, budget)
    report = (SBIBM_RUN / "report.md").read_text()
    assert "## Published results (sbibm)" in report
    for task in set(rows.simulator):
        assert f"### {task}" in report
    assert "reference-sbibm" in (ROOT / "results" / "README.md").read_text()
