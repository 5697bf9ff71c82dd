r"""Generates the sbibm tasks' standard observations and stored reference posteriors.

For each of sbibm's ten tasks (Lueckmann et al., "Benchmarking Simulation-Based Inference",
AISTATS 2021, https://arxiv.org/abs/2101.04653) writes ``simulators/data/<task>.npz``:

- ``theta`` ``(10, d)`` and ``x`` ``(10, *x_shape)`` float32: standard observation ``k`` is
  :func:`simulators._sbibm.draw_observation` with sbibm's seed for it (``seeds``), except
  ``bernoulli_glm`` (the summary of ``bernoulli_glm_raw``'s spike train ``k``) and
  ``slcp_distractors`` (``slcp``'s observation ``k`` with distractors drawn in turn from a
  generator seeded with 42, then permuted);
- for ``slcp``, ``bernoulli_glm``, ``sir`` and ``lotka_volterra`` (the tasks without an exact
  sampler) 20,000 reference posterior draws per observation from
  :func:`simulators._mcmc.sample_posterior` with the task's ``sampler`` sizes, all ten
  observations in one batched run seeded by ``crc32(task)``, stored as 16-bit fixed point
  (:func:`simulators._stored.encode_samples`);
- ``info``: a JSON string with the seeds, sampler sizes, R-hat, ESS, acceptance, number of
  distinct draws, CPU seconds and, after ``--verify``, the verification.

``--verify`` re-runs the sampler on observation 1 with another seed and reports the C2ST
(:func:`avo_bench.metrics.c2st`, 10,000 draws per side) between the two runs (0.5: the
runs agree).

Usage::

    python scripts/make_references.py [--tasks slcp sir ...] [--verify] [--out simulators/data]
"""

from __future__ import annotations

import argparse
import json
import time
import zlib
from pathlib import Path

import numpy as np
import torch

from simulators import (
    STORED_SAMPLES,
    decode_samples,
    draw_observation,
    encode_samples,
    get_simulator,
    sample_posterior,
)
from simulators.slcp_distractors import distractor_mixture, draw_distractors

TASKS = (
    "gaussian_linear",
    "gaussian_linear_uniform",
    "gaussian_mixture",
    "two_moons",
    "slcp",
    "slcp_distractors",
    "bernoulli_glm_raw",
    "bernoulli_glm",
    "sir",
    "lotka_volterra",
)
MCMC_TASKS = ("slcp", "bernoulli_glm", "sir", "lotka_volterra")
DISTRACTOR_SEED = 42  # sbibm's torch.manual_seed(42) before drawing the distractors


def observations(name: str, out: Path) -> dict[str, np.ndarray]:
    """The ten standard observations of ``name`` (see the module docstring)."""
    simulator = get_simulator(name)
    seeds = np.array(simulator.observation_seeds, dtype=np.int64)
    if name == "slcp_distractors":
        slcp = dict(np.load(out / "slcp.npz"))
        generator = torch.Generator().manual_seed(DISTRACTOR_SEED)
        noise = torch.cat([draw_distractors(1, generator, "cpu", torch.float32) for _ in seeds])
        permutation = distractor_mixture()[2]
        x = torch.cat([torch.from_numpy(slcp["x"]), noise], dim=1)[:, permutation]
        return {"theta": slcp["theta"], "x": x.numpy(), "seeds": slcp["seeds"]}
    if name == "bernoulli_glm":
        raw = dict(np.load(out / "bernoulli_glm_raw.npz"))
        x = simulator.summary(torch.from_numpy(raw["x"]))
        return {"theta": raw["theta"], "x": x.numpy(), "seeds": raw["seeds"]}
    pairs = [draw_observation(simulator, int(seed)) for seed in seeds]
    theta = torch.stack([theta for theta, _ in pairs]).numpy()
    x = torch.cat([x for _, x in pairs]).numpy()
    return {"theta": theta.astype(np.float32), "x": x.astype(np.float32), "seeds": seeds}


def references(name: str, x: np.ndarray, seed: int) -> tuple[np.ndarray, dict]:
    """20,000 draws per observation ``(B, 20000, d)`` and the run's diagnostics."""
    simulator = get_simulator(name)
    target = simulator.reference_target(torch.from_numpy(x).double())
    generator = torch.Generator().manual_seed(seed)
    start = time.process_time()
    draws = sample_posterior(target, len(x), STORED_SAMPLES, simulator.sampler, generator)
    samples = draws.samples.numpy()
    if not np.isfinite(samples).all():
        raise RuntimeError(f"{name}: non-finite reference draws")
    unique = [len(np.unique(s, axis=0)) for s in samples]
    info = {
        "sampler": vars(simulator.sampler),
        "reference_seed": seed,
        "rhat_max": draws.rhat.max(dim=1).values.tolist(),
        "ess_min": draws.ess.min(dim=1).values.tolist(),
        "acceptance": draws.acceptance.tolist(),
        "tempering_stages": draws.stages,
        "likelihood_evaluations_per_observation": draws.evaluations,
        "distinct_draws": unique,
        "cpu_seconds": time.process_time() - start,
    }
    return samples, info


def verify(name: str, data: dict[str, np.ndarray], seed: int) -> dict:
    """Re-runs observation 1 with another seed; C2ST against the stored draws."""
    from avo_bench.metrics import c2st

    fresh, info = references(name, data["x"][:1], seed)
    stored = decode_samples(data, 1).double().numpy()
    n = STORED_SAMPLES // 2
    score = c2st(stored[:n], fresh[0, :n], seed=0)
    return {"observation": 1, "seed": seed, "c2st": score, "rerun": info}


def make(name: str, out: Path, check: bool) -> None:
    arrays = observations(name, out)
    info = {
        "task": name,
        "observation_seeds": arrays["seeds"].tolist(),
        "torch": torch.__version__,
    }
    if name in MCMC_TASKS:
        seed = zlib.crc32(name.encode())
        samples, run = references(name, arrays["x"], seed)
        arrays.update(encode_samples(samples))
        info["reference"] = run
        if check:
            info["verification"] = verify(name, arrays, seed + 1)
    arrays["info"] = np.array(json.dumps(info))
    np.savez_compressed(out / f"{name}.npz", **arrays)
    print(json.dumps(_summary(info)), flush=True)


def _summary(info: dict) -> dict:
    run = info.get("reference", {})
    keep = ("rhat_max", "ess_min", "cpu_seconds", "distinct_draws", "tempering_stages")
    summary = {"task": info["task"], **{k: run[k] for k in keep if k in run}}
    if "verification" in info:
        summary["verification_c2st"] = info["verification"]["c2st"]
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS))
    parser.add_argument("--verify", action="store_true", help="re-run observation 1 and compare")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parents[1] / "simulators" / "data"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in TASKS:  # in dependency order, whatever the order given
        if name in args.tasks:
            make(name, args.out, args.verify)


if __name__ == "__main__":
    main()
