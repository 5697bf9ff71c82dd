"""Provenance: the recorded commit says when the code had uncommitted changes."""

import shutil
import subprocess

import pytest

from avo_bench.provenance import DIRTY, _git_commit

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def _git(root, *args):
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)


@pytest.fixture
def checkout(tmp_path):
    (tmp_path / "avo_bench").mkdir()
    (tmp_path / "avo_bench" / "code.py").write_text("x = 1\n")
    (tmp_path / "README.md").write_text("text\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "c")
    return tmp_path


def test_clean_checkout_records_its_commit(checkout):
    assert len(_git_commit(checkout)) == 40


def test_changed_code_is_marked_dirty(checkout):
    (checkout / "avo_bench" / "code.py").write_text("x = 2\n")
    commit = _git_commit(checkout)
    assert commit.endswith(DIRTY) and len(commit) == 40 + len(DIRTY)


def test_untracked_module_is_marked_dirty(checkout):
    (checkout / "avo_bench" / "new.py").write_text("y = 1\n")
    assert _git_commit(checkout).endswith(DIRTY)


def test_changes_outside_the_code_are_not(checkout):
    (checkout / "README.md").write_text("other text\n")
    (checkout / "results.csv").write_text("a,b\n")
    assert len(_git_commit(checkout)) == 40


def test_outside_a_checkout_records_nothing(tmp_path):
    assert _git_commit(tmp_path / "missing") == ""
