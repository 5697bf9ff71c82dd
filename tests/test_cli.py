"""Command line: help, option parsing, TOML config, exit statuses and messages for bad input."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import avo_bench
from avo_bench.cli import main
from avo_bench.methods import METHODS
from avo_bench.results import load_results
from simulators import SIMULATORS

ROOT = Path(avo_bench.__file__).parent.parent
TINY = ["--methods", "prior", "--preset", "tiny", "--no-report", "-q"]


def run_cli(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_run_help_documents_every_option(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["run", "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for flag in ["--config", "--simulators", "--methods", "--seeds", "--budgets", "--preset",
                 "--device", "--out", "--jobs", "--executor", "--scheduler", "--threads",
                 "--set", "--option", "--retry-errors", "--no-report", "--quiet",
                 "--cell-timeout", "tiny 600", "--replace-methods",
                 "tiny", "quick", "paper", "avo.gamma=5", "dask"]:  # fmt: skip
        assert flag in text, flag


def test_list_still_works(capsys):
    status, out, _ = run_cli(capsys, "list", "-v")
    assert status == 0
    for name in [*SIMULATORS, *METHODS]:
        assert name in out


def test_unknown_names_exit_2_listing_choices():
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    command = [sys.executable, "-m", "avo_bench", "run", "--simulators", "nope", "-q"]
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 2
    assert "unknown simulator 'nope'; choose from: " + ", ".join(sorted(SIMULATORS)) in done.stderr


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--methods", "nope"], "unknown method 'nope'; choose from: "),
        (["--budgets", "abc"], "bad budget 'abc': expected an integer"),
        (["--budgets", "0"], "budget must be an integer >= 1, got 0"),
        (["--budgets", "1.5"], "bad budget '1.5'"),
        (["--seeds", "0"], "seeds: a count must be >= 1, got 0"),
        (["--set", "prior.nope=1"], "method 'prior' has no config key 'nope'; valid keys: num_"),
        (["--set", "prior.num_samples=-3"], "num_samples must be an integer >= 1, got -3"),
        (["--set", "prior"], "--set expects NAME.KEY=VALUE, got 'prior'"),
        (["--set", "nope.x=1"], "options for unknown method 'nope'; choose from:"),
        (["--option", "gaussian.dim=0"], "dim must be an integer >= 1, got 0"),
        (["--option", "gaussian.nope=0"], "simulator 'gaussian' has no option 'nope'"),
        (["--jobs", "0"], "jobs must be an integer >= 1, got 0"),
        (["--scheduler", "tcp://h:1", "--executor", "processes"], "needs the dask executor"),
        (["--device", "gpu"], "device must be 'cpu' or 'cuda[:N]', got 'gpu'"),
        (["--cell-timeout", "-1"], "cell_timeout must be a number of seconds > 0 (0 for no "),
        (["--cell-timeout", "nan"], "cell_timeout must be a number of seconds"),
        (["--replace-methods", "avo"], "replace_methods: 'avo' not among this run's methods"),
        (["--seeds", "10,", "--simulators", "two_moons"], "its seeds are 0..9"),
        (["--option", "gaussian.n_obs=100000000"], "gaussian: n_obs must be <= 16777216"),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(capsys, tmp_path, argv, message):
    status, _, err = run_cli(capsys, "run", *TINY, "--out", str(tmp_path / "x"), *argv)
    assert status == 2
    assert message in err
    assert "Traceback" not in err
    assert not (tmp_path / "x").exists()


def test_bad_config_file(capsys, tmp_path):
    path = tmp_path / "run.toml"
    for text, message in [
        ("[run\n", "is not valid TOML"),
        ("[run]\nbudget = 3\n", "config [run]: unknown key(s) ['budget']"),
        ("[runs]\n", "unknown table(s) ['runs']"),
    ]:
        path.write_text(text)
        status, _, err = run_cli(capsys, "run", "--config", str(path), "--out", str(tmp_path))
        assert status == 2 and message in err
    status, _, err = run_cli(capsys, "run", "--config", str(tmp_path / "missing.toml"))
    assert status == 2 and "cannot read config file" in err


def test_corrupted_results_and_unwritable_directory(capsys, tmp_path):
    (tmp_path / "run").mkdir()
    garbage = b"simulator,method\n\x00\x01,\xff\n"
    (tmp_path / "run" / "results.csv").write_bytes(garbage)
    status, _, err = run_cli(capsys, "run", *TINY, "--out", str(tmp_path / "run"))
    assert status == 2 and "corrupted" in err and "left unchanged" in err
    assert (tmp_path / "run" / "results.csv").read_bytes() == garbage
    (tmp_path / "file").write_text("")
    status, _, err = run_cli(capsys, "run", *TINY, "--out", str(tmp_path / "file" / "run"))
    assert status == 2 and "cannot write to output directory" in err


def test_toml_config_equals_flags_and_flags_override(capsys, tmp_path):
    config = tmp_path / "run.toml"
    config.write_text(
        '[run]\nsimulators = ["gaussian", "rosenbrock"]\nmethods = ["prior"]\npreset = "tiny"\n'
        "seeds = [2]\nbudgets = [50]\nreport = false\nquiet = true\n"
        "[methods.prior]\nnum_samples = 120\n[simulators.gaussian]\ndim = 3\n"
    )
    flags = ["--simulators", "gaussian,rosenbrock", "--seeds", "2,", "--budgets", "50",
             "--set", "prior.num_samples=120", "--option", "gaussian.dim=3"]  # fmt: skip
    assert run_cli(capsys, "run", "--config", str(config), "--out", str(tmp_path / "a"))[0] == 0
    assert run_cli(capsys, "run", *TINY, *flags, "--out", str(tmp_path / "b"))[0] == 0
    manifests = [json.loads((tmp_path / d / "manifest.json").read_text()) for d in "ab"]
    assert manifests[0]["identity"] == manifests[1]["identity"]
    a, b = load_results(tmp_path / "a"), load_results(tmp_path / "b")
    assert a.value.equals(b.value)
    assert set(a.seed) == {2} and set(a.budget) == {50}
    assert all(json.loads(c) == {"num_samples": 120} for c in a.config)
    assert json.loads(a[a.simulator == "gaussian"].simulator_options.iloc[0])["dim"] == 3
    override = ["--config", str(config), "--budgets", "70", "--out", str(tmp_path / "c")]
    assert run_cli(capsys, "run", *override)[0] == 0
    assert set(load_results(tmp_path / "c").budget) == {70}


def test_run_prints_summary_and_refuses_mixing(capsys, tmp_path):
    out = str(tmp_path / "run")
    status, text, _ = run_cli(capsys, "run", *TINY, "--simulators", "gaussian", "--out", out)
    assert status == 0 and "1 cells (1 ok)" in text
    # seeds 5 alone drop seed 0 (adding seeds, e.g. --seeds 2, extends the run instead)
    status, _, err = run_cli(capsys, "run", *TINY, "--simulators", "gaussian", "--seeds", "5,",
                             "--out", out)  # fmt: skip
    assert status == 2 and "different configuration (differs in: seeds)" in err


def test_manifest_and_report_record_commands_and_machine(capsys, tmp_path):
    out = str(tmp_path / "run")
    args = ["run", *TINY, "--simulators", "gaussian", "--out", out]
    assert run_cli(capsys, *args, "--budgets", "50")[0] == 0
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["machine"]["cores"] >= 1 and "torch" in manifest["machine"]["packages"]
    (first,) = manifest["invocations"]
    assert first["command"] == "python -m avo_bench " + " ".join([*args, "--budgets", "50"])
    # nothing left to run: no new invocation; a different configuration is still refused
    assert run_cli(capsys, *args, "--budgets", "50")[0] == 0
    assert len(json.loads((tmp_path / "run" / "manifest.json").read_text())["invocations"]) == 1
    assert run_cli(capsys, "report", out)[0] == 0
    report = (tmp_path / "run" / "report.md").read_text()
    assert f"`{first['command']}`" in report and "- Machine: " in report
    assert "- Packages: " in report and "torch " in report and "Total fit wall time" in report
