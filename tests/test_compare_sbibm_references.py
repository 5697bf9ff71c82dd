"""scripts/compare_sbibm_references.py on a fake sbibm checkout (sbibm's file layout)."""

from pathlib import Path

import pandas as pd
import torch
from _scripts import load_module

from simulators import get_simulator

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "compare_sbibm_references.py"


def _write(root: Path, number: int, x: torch.Tensor, samples: torch.Tensor) -> None:
    base = root / "sbibm" / "tasks" / "two_moons" / "files" / f"num_observation_{number}"
    base.mkdir(parents=True)
    names = [f"data_{i + 1}" for i in range(x.shape[1])]
    pd.DataFrame(x.numpy(), columns=names).to_csv(base / "observation.csv", index=False)
    frame = pd.DataFrame(samples.numpy(), columns=["parameter_1", "parameter_2"])
    frame.to_csv(base / "reference_posterior_samples.csv.bz2", index=False)


def test_agreeing_and_shifted_references(tmp_path):
    script = load_module(SCRIPT, "compare_sbibm_references")
    sim = get_simulator("two_moons")
    x = sim._observation(1)[1]
    exact = sim.posterior(x).sample((2000,), torch.Generator().manual_seed(7)).double()
    _write(tmp_path, 1, x, exact)  # sbibm's x and an independent set of exact draws
    _write(tmp_path, 2, x + 0.3, exact + 0.2)  # other data, and draws shifted off them
    rows = script.main([str(tmp_path), "--tasks", "two_moons", "--observations", "1", "2"])
    assert rows["same_x"].tolist() == [True, False]
    assert abs(rows["c2st"][0] - 0.5) < 0.05 and rows["max_mean_diff_sd"][0] < 0.2
    assert rows["c2st"][1] > 0.6
