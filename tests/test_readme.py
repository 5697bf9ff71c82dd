"""Every Python code block of the README runs as written, and no grid cell it runs fails.

Each block runs in a fresh interpreter in a temporary directory (its ``results/...`` outputs
land there), with :class:`avo_bench.runner.CellErrors` turned into an error: a block whose run
ends with ``error`` cells fails the test, not only one that raises.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
PREAMBLE = (
    "import warnings, torch, avo_bench.runner\n"
    "torch.set_num_threads(1)\n"
    "warnings.simplefilter('error', avo_bench.runner.CellErrors)\n"
)


def test_the_readme_has_python_blocks():
    assert len(BLOCKS) >= 4


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_block_runs(index, tmp_path):
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    done = subprocess.run([sys.executable, "-c", PREAMBLE + BLOCKS[index]], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, f"block {index}:\n{BLOCKS[index]}\n{done.stderr[-3000:]}"
