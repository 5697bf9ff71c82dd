"""Loading a script or example file of the repository as a module, for its tests."""

import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def load_module(path: Path, name: str) -> ModuleType:
    """The file at ``path`` imported as module ``name`` (registered in ``sys.modules``:
    dataclasses resolve their annotations through it)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
