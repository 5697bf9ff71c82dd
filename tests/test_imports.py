"""Public homes: no code outside a package imports another package's private module.

Library packages (``avo_bench``, ``simulators``), the scripts, the examples and the README's code
may import only public modules of a package they are not part of; a contributor never needs
``avo_bench.methods._summaries`` or ``simulators._base``. Tests and asv benchmarks are exempt:
they test and time internals on purpose.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHECKED = ["avo_bench", "simulators", "scripts", "examples"]


def _imports(tree: ast.AST) -> list[str]:
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


def _violations(module: str, importer_package: str) -> list[str]:
    """Private parts of ``module`` (``a.b._c``) whose package the importer is not inside."""
    parts = module.split(".")
    bad = []
    for i, part in enumerate(parts):
        if part.startswith("_") and not part.startswith("__"):
            owner = ".".join(parts[:i])
            if not (importer_package == owner or importer_package.startswith(owner + ".")):
                bad.append(module)
    return bad


def _package_of(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    return ".".join(rel.parts[:-1]) if rel.parts[0] in ("avo_bench", "simulators") else ""


@pytest.mark.parametrize("folder", CHECKED)
def test_no_foreign_private_imports(folder):
    found = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for module in _imports(tree):
            found += [
                f"{path.relative_to(ROOT)}: {m}" for m in _violations(module, _package_of(path))
            ]
    assert not found, "imports of another package's private module:\n" + "\n".join(found)


def test_readme_code_imports_only_public_modules():
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    found = [m for block in blocks for m in _imports(ast.parse(block)) if _violations(m, "")]
    assert not found, found


def test_the_check_catches_a_foreign_private_import():
    assert _violations("simulators._base", "avo_bench.methods") == ["simulators._base"]
    assert _violations("avo_bench.methods._summaries", "avo_bench.methods") == []
    assert _violations("avo_bench.methods._summaries", "") == ["avo_bench.methods._summaries"]
