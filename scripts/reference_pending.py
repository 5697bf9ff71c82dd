"""Writes results/reference/PENDING.md: the registered pairs the reference grid does not cover.

Run from the repository root after a reference run (``python scripts/reference_pending.py``);
each pending pair gets, for a method of the run's grid (the manifest's identity), "not
reached", and otherwise its method's reason (measured costs, below).
``tests/test_reference_results.py`` checks the file is exactly the uncovered pairs.
"""

import json
from itertools import product
from pathlib import Path

import avo_bench
from avo_bench.methods import METHODS
from avo_bench.runner import FAILED
from simulators import SIMULATORS

REF = Path("results/reference")
rows = avo_bench.load_results(REF)
cells = rows.drop_duplicates(["simulator", "method", "seed", "budget", "n_obs"])
manifest = json.loads((REF / "manifest.json").read_text())
budgets = set(manifest["identity"]["budgets"])
# The methods of the run's grid (its identity): a pending pair of one of them was not reached
# yet; a method outside it was never added (or was taken out again before any of its cells
# finished), for the reason below.
in_grid = set(manifest["identity"]["methods"])
REASONS = {
    "nle": "slice-sampling MCMC of 10,000 draws on the summed likelihood of every observation: minutes per cell at 10³ (NLE on gaussian, n_obs = 1000, ran over 8 min for one cell under load); about 2 CPU-hours for 45 cells; not run yet",
    "nre": "slice-sampling MCMC of 10,000 draws on the summed log-ratio (as nle): minutes per cell on the iid tasks; not run yet",
    "nre_c": "as nre (MCMC of 10,000 draws): 34 s CPU per fit at 10³ on gaussian_linear (n_obs = 1), minutes on the iid tasks; not run yet",
    "bnre": "as nre (MCMC of 10,000 draws): 31 s CPU per fit at 10³ on gaussian_linear (n_obs = 1), minutes on the iid tasks; not run yet",
    "npse": "42 s CPU per fit at 10³ (33 s of it reverse-SDE sampling of 10,000 draws); about 40 CPU-min for 45 cells; not run yet",
    "npe_ensemble": "30 s CPU per fit at 10³ (5 NPEs) plus the ensemble's calibration check; not run yet",
    "snpe": "registered 2026-11-30 (late): 57 s CPU per fit at 10³ on two_moons (10 rounds of 100 simulations); about 45 CPU-min for 45 cells; not run yet",
    "snle": "registered 2026-11-30 (late): 10 rounds, each sampling the current posterior by slice-sampling MCMC, plus 10,000 final draws: 139 s CPU per fit at 10³ on two_moons (n_obs = 1), more on the iid tasks; about 2 CPU-hours for 45 cells; not run yet",
    "snre": "registered 2026-11-30 (late): as snle with a classifier, 24 s CPU per fit at 10³ on two_moons (n_obs = 1), more on the iid tasks; not run yet",
}
DEFAULT = "in the reference command's method list, not reached when the run was stopped (compute); re-running the command runs it"
# a failed cell: what re-runs it (a re-run of the command alone keeps a failed cell as it is)
RETRY = "re-run the reference command with `--retry-errors` (and a larger `--cell-timeout` for a timeout)"
missing = []
for sim, method in product(sorted(SIMULATORS), sorted(METHODS)):
    part = cells[(cells.simulator == sim) & (cells.method == method)]
    done = part[~part.status.isin(FAILED)]  # a failed cell does not cover its pair
    if any(len(set(done[done.budget == b].seed)) < 3 for b in budgets):
        reason = DEFAULT if method in in_grid else REASONS.get(method, DEFAULT)
        failed = part[part.status.isin(FAILED)]
        if len(failed):  # a failed cell is the first thing to know about the pair
            seeds = ", ".join(str(s) for s in sorted(failed.seed))
            text = str(failed.message.iloc[0]).replace("|", "/").split(";")[0][:90]
            reason = f"seed(s) {seeds}: {failed.status.iloc[0]} ({text}); {RETRY}"
            if len(done):  # what a finished cell of the pair cost
                ok = ", ".join(f"{r.seed} in {r.wall_time_s:.0f} s" for r in done.itertuples())
                reason += f"; finished: seed {ok}"
        missing.append((sim, method, reason))
lines = [
    "# Reference pairs not run yet",
    "",
    "Registered simulator × method pairs without 3 seeds in `results/reference/`, each with the",
    "reason. Run them by re-running the reference command with the method added",
    "(`python -m avo_bench run --preset reference --methods <every method already in",
    "manifest.json> NAME --jobs 2 --out results/reference -q`): only the new cells run. Then",
    "delete the pair's line here (`tests/test_reference_results.py` checks that this list is",
    "exactly the uncovered pairs).",
    "",
    "| simulator | method | reason |",
    "|---|---|---|",
]
lines += [f"| `{s}` | `{m}` | {r} |" for s, m, r in missing]
(REF / "PENDING.md").write_text("\n".join(lines) + "\n")
print(len(missing), "pending pairs")
