"""Without the optional extras (sbi, triton), as after the README's ``pip install -e ".[dev]"``,
the package, its registries and the CLI load, and the methods that need sbi say how to get it."""

import subprocess
import sys

BLOCK = "import sys; sys.modules['sbi'] = None; sys.modules['triton'] = None; "


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCK + code], capture_output=True, text=True,
                          timeout=300)  # fmt: skip


def test_registries_load_without_sbi():
    out = _python(
        "from avo_bench.methods import METHODS; from simulators import SIMULATORS; "
        "missing = sorted(n for n, m in METHODS.items() if not m.available()); "
        "print(len(SIMULATORS), missing)"
    )
    assert out.returncode == 0, out.stderr
    count, missing = out.stdout.split(" ", 1)
    assert int(count) >= 15
    for name in ("npe", "nle", "nre", "snpe", "snle", "snre", "fmpe", "npse", "npe_ensemble"):
        assert repr(name) in missing
    for name in ("avo", "rejection_abc", "abc_rf", "cmaes", "prior"):
        assert repr(name) not in missing


def test_cli_lists_methods_with_the_install_hint_without_sbi():
    out = _python("from avo_bench.cli import main; main(['list'])")
    assert out.returncode == 0, out.stderr
    assert "npe" in out.stdout and "avo-bench[sbi]" in out.stdout
