r"""Our reference posteriors against sbibm's stored ones, on sbibm's own observations.

For each task and observation, reads sbibm's ``observation.csv`` (``observation_raw.csv`` for
``bernoulli_glm_raw``, ``observation_distractors.csv`` for ``slcp_distractors``) and its
10,000 ``reference_posterior_samples`` from a checkout of sbibm
(https://github.com/sbi-benchmark/sbibm, commit f0bc440), draws 10,000 samples from our
reference posterior at that observation (``simulator.posterior``: our stored draws where
sbibm's x equals our standard observation to 1e-4, which is the case for all but
``gaussian_mixture``, ``sir`` and ``slcp_distractors``; otherwise the closed form or a fresh
MCMC run on sbibm's x) and prints the C2ST between the two sets (:func:`avo_bench.metrics.c2st`, fast
variant; 0.5: indistinguishable) with the largest difference of the marginal means in
sbibm's posterior standard deviations. This checks our simulators' likelihoods, samplers and
stored draws against sbibm's independently computed references (sbibm: slice MCMC, a flow
proposal and rejection sampling). sbibm's two_moons references are wrong where
:math:`x_1 > 0.25` (``tests/test_sbibm_references.py``); none of its ten observations is there.

Usage::

    git clone https://github.com/sbi-benchmark/sbibm /tmp/sbibm
    python scripts/compare_sbibm_references.py /tmp/sbibm [--tasks sir ...] [--observations 1 2]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
import torch

from avo_bench.metrics import c2st
from avo_bench.presets import SBIBM_TASKS
from simulators import get_simulator

# task -> (sbibm's folder, observation file)
FILES = {
    "slcp_distractors": ("slcp", "observation_distractors.csv"),
    "bernoulli_glm_raw": ("bernoulli_glm", "observation_raw.csv"),
}


def sbibm_files(root: Path, task: str, number: int) -> tuple[torch.Tensor, torch.Tensor]:
    """sbibm's observation ``(1, *x_shape)`` and reference samples ``(10000, d)``."""
    folder, name = FILES.get(task, (task, "observation.csv"))
    base = root / "sbibm" / "tasks" / folder / "files" / f"num_observation_{number}"
    if not base.is_dir():
        raise SystemExit(f"no sbibm files at {base}: give the root of an sbibm checkout")
    x = torch.tensor(pd.read_csv(base / name).to_numpy(), dtype=torch.float32)
    samples = pd.read_csv(base / "reference_posterior_samples.csv.bz2").to_numpy()
    return x, torch.tensor(samples, dtype=torch.float64)


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sbibm", type=Path, help="root of an sbibm checkout")
    parser.add_argument("--tasks", nargs="+", default=list(SBIBM_TASKS), choices=SBIBM_TASKS)
    parser.add_argument("--observations", nargs="+", type=int, default=[1])
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    print("task,observation,same_x,c2st,max_mean_diff_sd,seconds", flush=True)
    rows = []
    for task in args.tasks:
        sim = get_simulator(task)
        for number in args.observations:
            x, theirs = sbibm_files(args.sbibm, task, number)
            start = time.perf_counter()
            stored = sim._observation(number)[1]
            same = bool(torch.allclose(stored, x, rtol=1e-4, atol=1e-4))
            at = stored if same else x  # the same data: our stored draws; else sbibm's x
            ours = sim.posterior(at).sample((len(theirs),), torch.Generator().manual_seed(number))
            ours = ours.double()
            accuracy = c2st(theirs, ours)
            diff = ((ours.mean(0) - theirs.mean(0)).abs() / theirs.std(0)).max()
            seconds = time.perf_counter() - start
            print(f"{task},{number},{same},{accuracy:.4f},{float(diff):.3f},{seconds:.0f}",
                  flush=True)  # fmt: skip
            rows.append({"task": task, "observation": number, "same_x": same, "c2st": accuracy,
                         "max_mean_diff_sd": float(diff), "seconds": seconds})  # fmt: skip
    return pd.DataFrame(rows)


if __name__ == "__main__":
    main()
