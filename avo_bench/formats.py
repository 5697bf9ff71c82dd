"""File formats of run configuration: TOML run files and JSON-safe values."""

from __future__ import annotations

import dataclasses
import json
import sys
from typing import Any

import torch

__all__ = ["jsonable", "load_toml", "toml"]


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON types (tuples -> lists, tensors -> lists, others -> str)."""
    return json.loads(json.dumps(value, default=_to_json))


def _to_json(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    return str(value)


def toml():
    """The TOML parser module: ``tomllib`` (Python >= 3.11) or ``tomli``."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    return tomllib


def load_toml(path: str) -> dict:
    """Reads a run config file (``[run]``, ``[methods.NAME]``, ``[simulators.NAME]`` tables)."""
    tomllib = toml()
    try:
        with open(path, "rb") as file:
            data = tomllib.load(file)
    except OSError as error:
        raise ValueError(f"cannot read config file {path!r}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"config file {path!r} is not valid TOML: {error}") from None
    unknown = sorted(set(data) - {"run", "methods", "simulators"})
    if unknown:
        raise ValueError(
            f"config file {path!r}: unknown table(s) {unknown}; "
            "valid tables: [run], [methods.NAME], [simulators.NAME]"
        )
    return data
