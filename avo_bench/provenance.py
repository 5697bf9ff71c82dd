"""What ran a run: package versions, git commit, machine, and the invocation's settings.

Recorded in the run directory's manifest and printed in the report, so that results can be
traced to code and wall times read in context.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import platform
import subprocess
import sys
from pathlib import Path

__all__ = ["invocation", "machine", "versions"]


#: The code whose changes make a run's results differ: a checkout with uncommitted changes here
#: records its commit with :data:`DIRTY` appended, so rows that cannot be reproduced from the
#: recorded commit say so (results, README and docs may change freely).
CODE_PATHS = ("avo_bench", "simulators", "pyproject.toml")
DIRTY = "-dirty"


def _git(root: Path, *args: str) -> str | None:
    try:
        # no optional locks: a status next to a user's own git command must not take the index
        out = subprocess.run(["git", "--no-optional-locks", "-C", str(root), *args],
                             capture_output=True, text=True, timeout=10, check=True)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout


def _git_commit(root: Path | None = None) -> str:
    """HEAD of the checkout at ``root`` (this package's by default), plus :data:`DIRTY` when
    :data:`CODE_PATHS` have uncommitted changes (untracked files included); ``""`` outside a
    git checkout."""
    root = Path(__file__).resolve().parent.parent if root is None else Path(root)
    head = _git(root, "rev-parse", "HEAD")
    if head is None:
        return ""
    changes = _git(root, "status", "--porcelain", "--", *CODE_PATHS)
    return head.strip() + (DIRTY if changes else "")


def versions() -> dict:
    """``version`` (of avo_bench), ``git_commit`` (of this checkout, ``-dirty`` appended when its
    code has uncommitted changes, or ``""``), ``torch``."""
    import torch

    from avo_bench import __version__

    return {"version": __version__, "git_commit": _git_commit(), "torch": torch.__version__}


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as file:
            for line in file:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(device: str = "cpu") -> dict:
    """What ran a run: CPU, cores, memory, load, OS, Python and package versions, GPU.

    Recorded in the manifest and printed in the report, so that wall times can be read in
    context (the load average at the start says whether the cores were shared).
    """
    from importlib import metadata

    import torch

    info = {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }
    with contextlib.suppress(ValueError, OSError, AttributeError):
        info["memory_gib"] = round(
            os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1
        )
    with contextlib.suppress(OSError, AttributeError):
        info["load_average"] = [round(x, 2) for x in os.getloadavg()]
    packages = {}
    for name in ("torch", "numpy", "scipy", "pandas", "pot", "scikit-learn", "numba", "sbi"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            packages[name] = metadata.version(name)
    info["packages"] = packages
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def invocation(command: str | None, **settings: object) -> dict:
    """One manifest entry for an invocation that runs cells: the command line (the CLI's, else
    ``avo_bench.run(...)`` and the script), its start time and ``settings`` (executor, jobs,
    threads, cell time limit, replaced methods)."""
    if command is None:
        command = f"avo_bench.run(...) from {Path(sys.argv[0]).name or 'python'}"
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    return {"command": command, "started": started, **settings}
