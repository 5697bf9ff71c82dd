"""The run directory's manifest: what a run is (to resume it), what ran it, what replaced what.

``manifest.json`` holds the run's ``identity`` (simulator options, method configs, seeds,
budgets, preset, device, scoring sizes: what must match to resume), ``about`` (versions,
machine) from the first invocation, and ``invocations``: one entry per invocation that ran cells
(command, start time, executor, jobs, threads, cell time limit and, for a replacement, the
replaced methods' previous configs), so a resumed or amended run shows every command that made
it.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from pathlib import Path

from .formats import jsonable
from .results import MANIFEST, RESULTS, ResultsError, atomic_write, has_results

__all__ = [
    "EXTENSIBLE",
    "EXTENSIBLE_LISTS",
    "check_compatible",
    "check_manifest",
    "read_manifest",
    "replaced_configs",
]

#: Identity entries a later invocation may extend: new simulators or methods (dicts of their
#: options and configs), new seeds or budgets (lists).
EXTENSIBLE = ("methods", "simulators")
EXTENSIBLE_LISTS = ("seeds", "budgets")


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
        data["identity"].items()
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise ResultsError(f"manifest {path} is unreadable or corrupted: {error}") from None
    return data


def check_manifest(
    run_dir: Path,
    identity: dict,
    about: dict,
    invocation: dict | None = None,
    replace: Collection[str] = (),
) -> None:
    """Writes the manifest of a new run, or checks that ``identity`` matches the existing one.

    A run may be extended by new simulators, methods, seeds or budgets (see
    :func:`_not_extended`), and the configs of the methods in ``replace`` may change (their
    rows are re-run by the caller).

    Raises:
        ResultsError: If the directory holds a run of a different configuration (the message
            names the differing entries) or an unreadable manifest.
    """
    path = Path(run_dir) / MANIFEST
    if path.exists():
        data = check_compatible(run_dir, identity, replace)
        old = data["identity"]
        if invocation is None and old == identity:
            return
        data["identity"] = identity  # the same run, with new entries or replaced methods
        if invocation is not None:
            data["invocations"] = [*data.get("invocations", []), invocation]
    else:
        if has_results(run_dir):
            raise ResultsError(
                f"{run_dir} has {RESULTS} but no {MANIFEST}; refusing to mix results"
            )
        data = {"identity": identity, **about}
        data["invocations"] = [invocation] if invocation is not None else []
    text = json.dumps(data, indent=2, sort_keys=True)
    atomic_write(path, lambda f: f.write(text.encode()))


def check_compatible(run_dir: Path, identity: dict, replace: Collection[str] = ()) -> dict:
    """The manifest (``{}`` if none) if a run of ``identity`` may resume the directory, else
    :class:`ResultsError` naming what differs; writes nothing."""
    path = Path(run_dir) / MANIFEST
    if not path.exists():
        return {}
    data = _read(path)
    differ = _not_extended(data["identity"], identity, replace)
    if differ:
        raise ResultsError(
            f"{run_dir} holds a run with a different configuration (differs in: "
            f"{', '.join(differ)}); refusing to mix results. Use another --out, or the "
            "same options as that run (see its manifest.json); adding simulators, methods, "
            "seeds or budgets to it is allowed, and --replace-methods NAME re-runs a method "
            "whose config changed."
        )
    return data


def replaced_configs(run_dir: Path, methods: Collection[str]) -> dict:
    """The configs the manifest records for ``methods`` (those it has), before a replacement."""
    path = Path(run_dir) / MANIFEST
    if not path.exists():
        return {}
    old = _read(path)["identity"].get("methods", {})
    return {name: old[name] for name in methods if name in old}


def _not_extended(old: dict, new: dict, replace: Collection[str] = ()) -> list[str]:
    """Identity entries where ``new`` is neither ``old`` nor ``old`` plus new simulators,
    methods, seeds or budgets (or other configs of the methods in ``replace``): those keep
    every other entry unchanged, so the finished cells stay valid (cell seeds and observed data
    do not depend on the rest of the grid) and only new or replaced cells run."""
    differ = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if key in EXTENSIBLE and isinstance(a, dict) and isinstance(b, dict):
            keep = set(replace) if key == "methods" else set()
            filled = _with_new_defaults if key == "methods" else lambda name, value: value
            if any(name not in b or (filled(name, value) != b[name] and name not in keep)
                   for name, value in a.items()):  # fmt: skip
                differ.append(key)
        elif key in EXTENSIBLE_LISTS and isinstance(a, list) and isinstance(b, list):
            if not set(a) <= set(b):
                differ.append(key)
        elif a != b:
            differ.append(key)
    return differ


def _with_new_defaults(name: str, config: object) -> object:
    """A recorded method config with the config keys added since it was recorded set to their
    defaults: a key is added with the default that keeps the method's former behaviour, so a
    run made before it is the same run (a preset that tunes the new key away from its default
    still differs, and its method needs ``--replace-methods``)."""
    import dataclasses

    from avo_bench.methods import METHODS

    method = METHODS.get(name)
    if method is None or not isinstance(config, dict):
        return config
    defaults = {
        f.name: f.default
        for f in dataclasses.fields(method.config)
        if f.name not in config and f.default is not dataclasses.MISSING
    }
    return {**jsonable(defaults), **config}


def read_manifest(run_dir: Path) -> dict:
    """The run directory's manifest (an empty dict if it has none or it is unreadable)."""
    try:
        return json.loads((Path(run_dir) / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}
