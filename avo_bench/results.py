"""Results directory: tidy rows, manifest, per-cell artifacts; every write atomic.

A run directory holds ``results.csv`` (and ``results.parquet`` when ``pyarrow`` is installed),
one row per (simulator, method, seed, budget, space, metric); ``manifest.json``, the run's
identity (simulator options, method configs, seeds, budgets, preset, device, scoring); and
``cells/`` with each cell's samples and history for the report's plots.

Every file is written to a temporary file in the same directory and moved into place with
``os.replace``, so a killed process (even ``SIGKILL``) leaves either the old or the new file,
never a torn one. A cell's artifacts are written before its rows, so a row implies its
artifacts exist.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "COLUMNS",
    "KEY",
    "ResultsError",
    "atomic_write",
    "check_manifest",
    "compare",
    "load_results",
    "read_artifacts",
    "read_manifest",
    "write_artifacts",
    "write_results",
]

KEY = ["simulator", "method", "seed", "budget", "space", "metric"]
COLUMNS = [
    *KEY,
    "value",
    "floor",
    "direction",
    "ideal",
    "variant",
    "sample_size",
    "reference_size",
    "status",
    "message",
    "wall_time_s",
    "num_simulations",
    "device",
    "cell_seed",
    "config",
    "simulator_options",
    "version",
    "git_commit",
]
STATUSES = ("ok", "n/a", "error")
FLOATS = ("value", "floor", "ideal", "wall_time_s")
RESULTS, MANIFEST = "results.csv", "manifest.json"
# Floats must read back bitwise: pandas >= 3 parses round-trip by default, older needs asking.
_READ = {"na_values": {c: ["", "nan", "NaN"] for c in FLOATS}}
if int(pd.__version__.split(".")[0]) < 3:
    _READ["float_precision"] = "round_trip"


class ResultsError(ValueError):
    """A results directory is unreadable, corrupted or belongs to another configuration."""


def atomic_write(path: Path, write: Callable[[io.BufferedWriter], None]) -> None:
    """Writes ``path`` through ``write(file)`` on a temporary sibling, then ``os.replace``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_results(run_dir: Path, rows: pd.DataFrame) -> None:
    """Writes ``results.csv`` (and ``results.parquet`` if pyarrow is available) atomically."""
    rows = rows.reindex(columns=COLUMNS)
    atomic_write(Path(run_dir) / RESULTS, lambda f: f.write(rows.to_csv(index=False).encode()))
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return
    atomic_write(Path(run_dir) / "results.parquet", lambda f: rows.to_parquet(f, index=False))


def load_results(run_dir: str | Path) -> pd.DataFrame:
    """The results table of a run directory (``results.csv``), validated.

    Raises:
        ResultsError: If the directory or file is missing, unreadable or corrupted. The file
            is never modified.
    """
    path = Path(run_dir) / RESULTS
    if Path(run_dir).is_file():
        path = Path(run_dir)
    if not path.exists():
        raise ResultsError(f"no results file at {path} (run `python -m avo_bench run` first)")
    try:
        rows = pd.read_csv(path, keep_default_na=False, **_READ)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise ResultsError(
            f"results file {path} is unreadable or corrupted ({e}); it was left unchanged: "
            "move it away or choose another --out"
        ) from None
    return _validated(rows, path)


def _validated(rows: pd.DataFrame, path: Path) -> pd.DataFrame:
    missing = [c for c in COLUMNS if c not in rows.columns]
    if missing:
        raise ResultsError(
            f"results file {path} is corrupted (missing columns {missing}); it was left "
            "unchanged: move it away or choose another --out"
        )
    try:
        for column in ("seed", "budget", "num_simulations", "cell_seed", "sample_size",
                       "reference_size"):  # fmt: skip
            rows[column] = pd.to_numeric(rows[column], errors="raise").astype("int64")
        for column in FLOATS:
            rows[column] = pd.to_numeric(rows[column], errors="raise").astype("float64")
    except (ValueError, TypeError) as error:
        raise ResultsError(
            f"results file {path} is corrupted ({error}); it was left unchanged: "
            "move it away or choose another --out"
        ) from None
    bad = sorted(set(rows["status"]) - set(STATUSES))
    if bad:
        raise ResultsError(f"results file {path} is corrupted: unknown status {bad}")
    return rows[COLUMNS]


def check_manifest(run_dir: Path, identity: dict, about: dict, invocation: dict | None = None):
    """Writes the manifest of a new run, or checks that ``identity`` matches the existing one.

    The manifest holds the run's ``identity`` (what must match to resume; a run may be extended
    by new simulators or methods, see :func:`_not_extended`), ``about`` (versions,
    machine) from the first invocation, and ``invocations``: one entry (command, start time,
    executor) per invocation that ran cells, so a resumed run shows every command that made it.

    Raises:
        ResultsError: If the directory holds a run of a different configuration (the message
            names the differing entries) or an unreadable manifest.
    """
    path = Path(run_dir) / MANIFEST
    if path.exists():
        try:
            data = json.loads(path.read_text())
            old = data["identity"]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ResultsError(f"manifest {path} is unreadable or corrupted: {error}") from None
        differ = _not_extended(old, identity)
        if differ:
            raise ResultsError(
                f"{run_dir} holds a run with a different configuration (differs in: "
                f"{', '.join(differ)}); refusing to mix results. Use another --out, or the "
                "same options as that run (see its manifest.json); adding simulators or "
                "methods to it is allowed."
            )
        if invocation is None and old == identity:
            return
        data["identity"] = identity  # the same run, or the same run with new entries
        if invocation is not None:
            data["invocations"] = [*data.get("invocations", []), invocation]
    else:
        if (Path(run_dir) / RESULTS).exists():
            raise ResultsError(
                f"{run_dir} has {RESULTS} but no {MANIFEST}; refusing to mix results"
            )
        data = {"identity": identity, **about}
        data["invocations"] = [invocation] if invocation is not None else []
    text = json.dumps(data, indent=2, sort_keys=True)
    atomic_write(path, lambda f: f.write(text.encode()))


EXTENSIBLE = ("methods", "simulators")


def _not_extended(old: dict, new: dict) -> list[str]:
    """Identity entries where ``new`` is neither ``old`` nor ``old`` plus new simulators or
    methods: those keep every existing entry unchanged, so the finished cells stay valid (cell
    seeds and observed data do not depend on the rest of the grid) and only new cells run."""
    differ = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if key in EXTENSIBLE and isinstance(a, dict) and isinstance(b, dict):
            if any(name not in b or b[name] != value for name, value in a.items()):
                differ.append(key)
        elif a != b:
            differ.append(key)
    return differ


def read_manifest(run_dir: Path) -> dict:
    """The run directory's manifest (an empty dict if it has none or it is unreadable)."""
    try:
        return json.loads((Path(run_dir) / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}


def _cell_stem(simulator: str, method: str, seed: int, budget: int) -> str:
    return f"{simulator}__{method}__seed{seed}__budget{budget}"


def write_artifacts(run_dir: Path, key: tuple, arrays: dict, history: pd.DataFrame) -> None:
    """Stores a cell's arrays (``.npz``) and history (``.history.csv``) under ``cells/``."""
    cells = Path(run_dir) / "cells"
    cells.mkdir(exist_ok=True)
    stem = _cell_stem(*key)

    def save(file):
        np.savez_compressed(file, **{k: np.asarray(v) for k, v in arrays.items()})

    atomic_write(cells / f"{stem}.npz", save)
    text = history.to_csv(index=False).encode() if len(history.columns) else b""
    atomic_write(cells / f"{stem}.history.csv", lambda f: f.write(text))


def read_artifacts(run_dir: Path, key: tuple) -> tuple[dict, pd.DataFrame]:
    """The arrays and history of a cell (empty if it stored none)."""
    stem = Path(run_dir) / "cells" / _cell_stem(*key)
    arrays = {}
    if stem.with_suffix(".npz").exists():
        with np.load(stem.with_suffix(".npz")) as data:
            arrays = {k: data[k] for k in data.files}
    history = pd.DataFrame()
    hist = stem.with_name(stem.name + ".history.csv")
    if hist.exists() and hist.stat().st_size:
        history = pd.read_csv(hist)
    return arrays, history


def compare(dir_a: str | Path, dir_b: str | Path) -> pd.DataFrame:
    """Differences between two runs: one row per metric row present in either run.

    Returns:
        Columns ``KEY``, ``value_a``, ``value_b``, ``diff`` (b - a), ``rel_diff``,
        ``status_a``, ``status_b`` and ``change`` (``same``, ``changed``, ``status``,
        ``only_a``, ``only_b``); ``changed`` means the values are not bitwise equal.
    """
    a, b = load_results(dir_a), load_results(dir_b)
    keep = [*KEY, "value", "status"]
    both = a[keep].merge(b[keep], on=KEY, how="outer", suffixes=("_a", "_b"), indicator=True)
    both["diff"] = both["value_b"] - both["value_a"]
    both["rel_diff"] = both["diff"] / both["value_a"].abs().where(both["value_a"] != 0)
    same = (both["value_a"] == both["value_b"]) | (both["value_a"].isna() & both["value_b"].isna())
    change = np.select(
        [
            both["_merge"] == "left_only",
            both["_merge"] == "right_only",
            both["status_a"] != both["status_b"],
            ~same,
        ],
        ["only_a", "only_b", "status", "changed"],
        default="same",
    )
    both["change"] = change
    return both.drop(columns="_merge").reset_index(drop=True)
