"""Every documented option value of every simulator gives ``ok`` cells (contract test).

Each simulator lists representative accepted values in ``option_values``; a tiny grid runs with
each one (one option changed at a time). Cells must be ``ok`` where the method applies and
``n/a`` (with a reason) where it does not; scores that need what a configuration lacks (e.g. an
exact posterior with an Ising field) are not recorded rather than failing.
"""

from __future__ import annotations

import pytest
import torch

import avo_bench
from avo_bench.methods import METHODS
from simulators import SIMULATORS, get_simulator, simulator_options

CHEAP = ["prior", "rejection_abc"]


def _cases():
    for name, cls in sorted(SIMULATORS.items()):
        defaults = simulator_options(name)
        for option, values in cls.option_values.items():
            for value in values if option in defaults else ():
                if value != defaults[option]:
                    yield pytest.param(name, option, value, id=f"{name}.{option}={value!r}")


def _run(name, option, value, methods, tmp_path, method_options=None):
    rows = avo_bench.run([name], methods, preset="tiny", simulator_options={name: {option: value}},
                         method_options=method_options, out=tmp_path, report=False)  # fmt: skip
    failed = rows[rows.status == "error"][["method", "metric", "message"]]
    assert failed.empty, failed.to_string()
    reasons = rows[rows.status == "n/a"].message
    assert (reasons.str.len() > 0).all()
    return rows


@pytest.mark.parametrize("name, option, value", list(_cases()))
def test_documented_option_values_give_ok_cells(name, option, value, tmp_path):
    torch.set_num_threads(1)
    rows = _run(name, option, value, CHEAP, tmp_path)
    sim = get_simulator(name, **{option: value})
    has_posterior = (rows.space == "posterior").any()
    assert has_posterior == sim.provides("posterior")


#: The option that once turned every cell into an error (an extra parameter without an exact
#: posterior): the every-method test runs it (every method on all 35 documented values is hours
#: of CPU, about 5 min per value here; the cheap methods above cover every value, and
#: tests/test_runner.py runs every method on a single-observation, an iid count and a
#: population task).
STRUCTURAL = {"ising.field=True"}  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("name, option, value", [c for c in _cases() if c.id in STRUCTURAL])
def test_documented_option_values_with_every_method(
    name, option, value, tmp_path, cheap_method_options
):
    torch.set_num_threads(1)
    methods = [m for m in sorted(METHODS) if METHODS[m].available()]
    # conftest's CHEAP settings: fewer draws and shorter chains do not change what an option does
    _run(name, option, value, methods, tmp_path, method_options=cheap_method_options)


def test_option_values_are_accepted_and_named():
    for name, cls in SIMULATORS.items():
        for option, values in cls.option_values.items():
            assert option in simulator_options(name), f"{name}: unknown option {option!r}"
            for value in values:
                get_simulator(name, **{option: value})  # raises if the value is refused
