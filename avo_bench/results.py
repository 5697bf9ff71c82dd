"""Results directory: tidy rows, manifest, per-cell artifacts; every write atomic.

A run directory holds ``results.csv`` (and ``results.parquet`` when ``pyarrow`` is installed),
one row per (simulator, method, seed, budget, n_obs, space, metric); ``manifest.json``, the run's
identity (simulator options, method configs, seeds, budgets, preset, device, scoring); and
``cells/`` with each cell's samples and history for the report's plots. A directory may keep
its rows as ``results.csv.gz`` instead (the committed reference runs: their CSV is megabytes of
repeated configs, the gzip a tenth of it): it is read when ``results.csv`` is absent, and every
write refreshes it while it exists, so a resumed run keeps it current.

Every file is written to a temporary file in the same directory and moved into place with
``os.replace``, so a killed process (even ``SIGKILL``) leaves either the old or the new file,
never a torn one. A cell's artifacts are written before its rows, so a row implies its
artifacts exist. Files damaged outside the runner are handled without loss: a results file
cut inside its last row drops that row (and the runner re-runs its cell), an unreadable cell
artifact costs its plot with a :class:`ResultsWarning` naming it, a stale ``results.parquet``
is rewritten from the CSV (:func:`sync_parquet`), and a file the run would replace that is
read-only or of the wrong kind stops the run before any work (:func:`check_writable`).

Statuses: ``ok``; ``n/a`` (the method or score does not apply, with the reason); ``error``
(the method, the simulator or the cell's worker process failed, with the message); ``timeout``
(the cell ran past its wall-time limit, given in the message).
"""

from __future__ import annotations

import glob
import gzip
import io
import json
import os
import stat
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "CELL_KEY",
    "COLUMNS",
    "KEY",
    "ResultsError",
    "ResultsWarning",
    "atomic_write",
    "check_writable",
    "compare",
    "drop_artifacts",
    "has_artifacts",
    "has_results",
    "load_results",
    "read_artifacts",
    "sync_parquet",
    "write_artifacts",
    "write_results",
]

KEY = ["simulator", "method", "seed", "budget", "n_obs", "space", "metric"]
#: The columns that identify a cell (``n_obs``: the number of observations, an axis of the grid).
CELL_KEY = KEY[:5]
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
STATUSES = ("ok", "n/a", "error", "timeout")
FLOATS = ("value", "floor", "ideal", "wall_time_s")
RESULTS, PARQUET, MANIFEST = "results.csv", "results.parquet", "manifest.json"
COMPRESSED = RESULTS + ".gz"
# Floats must read back bitwise: pandas >= 3 parses round-trip by default, older needs asking.
_READ = {"na_values": {c: ["", "nan", "NaN"] for c in FLOATS}}
if int(pd.__version__.split(".")[0]) < 3:
    _READ["float_precision"] = "round_trip"


class ResultsError(ValueError):
    """A results directory is unreadable, corrupted or belongs to another configuration."""


class ResultsWarning(UserWarning):
    """A file of a run directory was torn or unreadable and was skipped (the warning names it)."""


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


def _results_path(run_dir: str | Path) -> Path:
    """``results.csv``, or ``results.csv.gz`` where only that exists."""
    csv = Path(run_dir) / RESULTS
    return (
        csv
        if csv.exists() or not (Path(run_dir) / COMPRESSED).exists()
        else csv.parent / COMPRESSED
    )


def has_results(run_dir: str | Path) -> bool:
    """Whether the directory holds a results file (plain or compressed)."""
    return _results_path(run_dir).exists()


def write_results(run_dir: Path, rows: pd.DataFrame) -> None:
    """Writes ``results.csv`` (and ``results.parquet`` if pyarrow is available) atomically, and
    ``results.csv.gz`` where the directory keeps one."""
    rows = rows.reindex(columns=COLUMNS)
    text = rows.to_csv(index=False).encode()
    atomic_write(Path(run_dir) / RESULTS, lambda f: f.write(text))
    if (Path(run_dir) / COMPRESSED).exists():
        atomic_write(Path(run_dir) / COMPRESSED,
                     lambda f: f.write(gzip.compress(text, mtime=0)))  # fmt: skip
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return
    atomic_write(Path(run_dir) / PARQUET, lambda f: rows.to_parquet(f, index=False))


def sync_parquet(run_dir: Path) -> bool:
    """Rewrites ``results.parquet`` from ``results.csv`` if it is missing, older, unreadable or
    of another length (a run killed between the two replacements); ``True`` if it did."""
    try:
        import pyarrow
        import pyarrow.parquet as pq
    except ImportError:
        return False
    csv, parquet = _results_path(run_dir), Path(run_dir) / PARQUET
    if not csv.exists():
        return False
    rows = load_results(run_dir)
    try:
        fresh = parquet.stat().st_mtime_ns >= csv.stat().st_mtime_ns
        fresh = fresh and pq.read_metadata(parquet).num_rows == len(rows)
    except (OSError, pyarrow.ArrowException):
        fresh = False
    if not fresh:
        atomic_write(parquet, lambda f: rows.to_parquet(f, index=False))
    return not fresh


def check_writable(run_dir: Path) -> None:
    """Raises :class:`ResultsError` before any work if a file or folder the run would replace
    or write into is not writable (a read-only ``results.csv`` is the user's: never replaced)."""
    for name in (RESULTS, COMPRESSED, PARQUET, MANIFEST, "report.md", "cells", "plots"):
        path = Path(run_dir) / name
        if not path.exists():
            continue
        folder = name in ("cells", "plots")
        if path.is_dir() != folder:
            kind = "a folder" if folder else "a file"
            raise ResultsError(f"{path} must be {kind}: move it away or choose another --out")
        # the mode bits as well as access(): root may write anything, but a file made read-only
        # says "keep this"
        writable = os.access(path, os.W_OK | (os.X_OK if folder else 0))
        if not writable or not path.stat().st_mode & stat.S_IWUSR:
            raise ResultsError(
                f"{path} is read-only and the run would write to it: make it writable or "
                "choose another --out"
            )


def load_results(run_dir: str | Path) -> pd.DataFrame:
    """The results table of a run directory (``results.csv``, else ``results.csv.gz``),
    validated.

    Raises:
        ResultsError: If the directory or file is missing, unreadable or corrupted. The file
            is never modified.
    """
    path = Path(run_dir) if Path(run_dir).is_file() else _results_path(run_dir)
    if not path.exists():
        raise ResultsError(f"no results file at {path} (run `python -m avo_bench run` first)")
    try:
        data = path.read_bytes()
        data = gzip.decompress(data) if path.suffix == ".gz" else data
        rows = pd.read_csv(io.BytesIO(data), keep_default_na=False, **_READ)
    except (OSError, EOFError, UnicodeDecodeError, pd.errors.ParserError,
            pd.errors.EmptyDataError) as e:  # fmt: skip
        raise ResultsError(
            f"results file {path} is unreadable or corrupted ({e}); it was left unchanged: "
            "move it away or choose another --out"
        ) from None
    if data and not data.endswith(b"\n") and len(rows):
        # every write ends with a newline: the last row was cut (truncated by hand or a full
        # disk); a cut inside its last field would otherwise read as a valid, wrong value
        warnings.warn(f"results file {path} ends inside a row (truncated?): its last row is "
                      "ignored (a run re-runs that cell)", ResultsWarning, stacklevel=2)  # fmt: skip
        rows = rows.iloc[:-1].reset_index(drop=True)
    return _validated(rows, path)


def _validated(rows: pd.DataFrame, path: Path) -> pd.DataFrame:
    if "n_obs" not in rows.columns and "simulator_options" in rows.columns:
        rows = _with_n_obs(rows, path)
    missing = [c for c in COLUMNS if c not in rows.columns]
    if missing:
        raise ResultsError(
            f"results file {path} is corrupted (missing columns {missing}); it was left "
            "unchanged: move it away or choose another --out"
        )
    try:
        for column in ("seed", "budget", "n_obs", "num_simulations", "cell_seed", "sample_size",
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


def _with_n_obs(rows: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Rows of a run from before the ``n_obs`` column: the cell's ``n_obs`` is its simulator
    option (1 for a simulator without one), as the grid had no ``n_obs`` axis then."""
    try:
        options = [json.loads(text) if text else {} for text in rows["simulator_options"]]
    except (TypeError, ValueError) as error:
        raise ResultsError(
            f"results file {path} has no n_obs column and unreadable simulator_options "
            f"({error}); it was left unchanged: move it away or choose another --out"
        ) from None
    n_obs = [o.get("n_obs", 1) if isinstance(o, dict) else 1 for o in options]
    return rows.assign(n_obs=n_obs)


def _cell_stem(simulator: str, method: str, seed: int, budget: int, n_obs: int | None = None):
    stem = f"{simulator}__{method}__seed{seed}__budget{budget}"
    return stem if n_obs is None else f"{stem}__nobs{n_obs}"


def _stored_stem(run_dir: Path, key: tuple) -> Path:
    """The stem of a cell's stored artifacts: ``key`` is a cell key (:data:`CELL_KEY`); runs
    from before the ``n_obs`` axis stored stems without it, and a 4-part key (no ``n_obs``)
    finds the cell's artifacts when one ``n_obs`` of it is stored."""
    cells = Path(run_dir) / "cells"
    stem = cells / _cell_stem(*key)
    if stem.with_suffix(".npz").exists() or len(key) not in (4, 5):
        return stem
    if len(key) == 5:
        return cells / _cell_stem(*key[:4])
    found = sorted(cells.glob(f"{glob.escape(stem.name)}__nobs*.npz"))
    return found[0].with_suffix("") if len(found) == 1 else stem


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


def drop_artifacts(run_dir: Path, keys: list[tuple]) -> None:
    """Deletes the stored arrays and histories of the cells ``keys`` (a replaced method's)."""
    for key in keys:
        stem = _stored_stem(run_dir, key)
        for path in (stem.with_suffix(".npz"), stem.with_name(stem.name + ".history.csv")):
            path.unlink(missing_ok=True)


def has_artifacts(run_dir: Path, key: tuple) -> bool:
    """Whether the cell ``key`` (:data:`CELL_KEY`) has its arrays stored in ``run_dir``."""
    return _stored_stem(run_dir, key).with_suffix(".npz").exists()


def read_artifacts(run_dir: Path, key: tuple) -> tuple[dict, pd.DataFrame]:
    """The arrays and history of a cell (empty if it stored none).

    A file that cannot be read is skipped, and arrays of the cell's plot that are not what a
    cell writes (NaN or inf, shapes that do not match) are left out, each with a
    :class:`ResultsWarning` naming the file: a plot is lost, never the report.
    """
    stem = _stored_stem(run_dir, key)
    path = stem.with_suffix(".npz")
    arrays = {}
    if path.exists():
        try:
            with np.load(path) as data:  # allow_pickle=False: arrays only, never code
                arrays = _plottable({k: data[k] for k in data.files}, path)
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as error:
            _skipped(path, error)
    history = pd.DataFrame()
    path = stem.with_name(stem.name + ".history.csv")
    if path.exists() and path.stat().st_size:
        try:
            history = pd.read_csv(path)
        except (OSError, ValueError) as error:  # parser, decoding and empty-file errors
            _skipped(path, error)
    return arrays, history


PLOT = ("theta", "x_obs", "parameter_names")  # a cell's plot needs all three
CHECKED = (*PLOT, "x_sim", "posterior", "theta_star")


def _plottable(arrays: dict, path: Path) -> dict:
    for name in CHECKED:
        values = arrays.get(name)
        if values is not None and values.dtype.kind == "f" and not np.isfinite(values).all():
            _skipped(path, ValueError(f"array {name!r} contains NaN or inf"))
            del arrays[name]
    if any(name in arrays for name in PLOT):
        theta, x_obs, names = (arrays.get(name) for name in PLOT)
        if (theta is None or x_obs is None or names is None or theta.ndim != 2
                or x_obs.ndim != 2 or names.shape != (theta.shape[1],)):  # fmt: skip
            _skipped(path, ValueError("theta, x_obs and parameter_names do not match"))
            arrays = {k: v for k, v in arrays.items() if k not in CHECKED}
    return arrays


def _skipped(path: Path, error: Exception) -> None:
    warnings.warn(f"skipping unreadable cell artifact {path}: {type(error).__name__}: {error}",
                  ResultsWarning, stacklevel=4)  # fmt: skip


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


def __getattr__(name: str) -> object:
    # The manifest has its own module (it writes through atomic_write above); its functions
    # stay importable from here.
    if name in ("check_manifest", "read_manifest"):
        from . import manifest

        return getattr(manifest, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
