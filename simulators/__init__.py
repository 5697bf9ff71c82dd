"""Registry of benchmark simulators.

Each simulator lives in its own module and registers itself with :func:`register`;
:func:`get_simulator` builds one by name with validated keyword options::

    >>> from simulators import get_simulator
    >>> sim = get_simulator("gaussian", dim=3)
    >>> x = sim.simulate(sim.prior.sample((5,)))   # shape (5, 3)

Tools for building stored reference posteriors (``scripts/make_references.py``) are public here
too: :func:`sample_posterior` (batched tempered SMC + MCMC), :func:`draw_observation` (sbibm's
standard observations) and the stored-sample codec (:func:`encode_samples`,
:func:`decode_samples`, :data:`STORED_SAMPLES`).

This package does not depend on ``avo_bench``.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable

from ._base import (
    HOOKS,
    BoxUniform,
    DiagNormal,
    Simulator,
    check_choice,
    check_positive_float,
    check_positive_int,
)
from ._mcmc import sample_posterior
from ._sbibm import draw_observation
from ._stored import STORED_SAMPLES, decode_samples, encode_samples

__all__ = [
    "HOOKS",
    "SIMULATORS",
    "STORED_SAMPLES",
    "BoxUniform",
    "DiagNormal",
    "Simulator",
    "check_choice",
    "check_positive_float",
    "check_positive_int",
    "decode_samples",
    "draw_observation",
    "encode_samples",
    "get_simulator",
    "register",
    "sample_posterior",
    "simulator_options",
]

SIMULATORS: dict[str, type[Simulator]] = {}


def register(name: str) -> Callable[[type[Simulator]], type[Simulator]]:
    """Class decorator adding a :class:`Simulator` subclass to :data:`SIMULATORS`."""

    def decorator(cls: type[Simulator]) -> type[Simulator]:
        if name in SIMULATORS:
            raise ValueError(
                f"simulator {name!r} is already registered; names: {sorted(SIMULATORS)}"
            )
        if cls.kind not in ("point", "population"):
            raise ValueError(f"simulator {name!r}: kind must be 'point' or 'population'")
        cls.name = name
        SIMULATORS[name] = cls
        return cls

    return decorator


def simulator_options(name: str) -> dict[str, object]:
    """The keyword options of simulator ``name`` with their defaults."""
    cls = _lookup(name)
    parameters = inspect.signature(cls.__init__).parameters.values()
    return {p.name: p.default for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY}


def get_simulator(name: str, **options: object) -> Simulator:
    """Builds the simulator ``name`` with the given options.

    Raises:
        ValueError: For an unknown name or option (the message lists the valid choices), or an
            option value out of range.
    """
    valid = simulator_options(name)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(
            f"simulator {name!r} has no option {', '.join(map(repr, unknown))}; "
            f"valid options: {', '.join(valid) or 'none'}"
        )
    simulator = SIMULATORS[name](**options)
    simulator._options = {**valid, **options}
    return simulator


def _lookup(name: str) -> type[Simulator]:
    if name not in SIMULATORS:
        raise ValueError(
            f"unknown simulator {name!r}; choose from: {', '.join(sorted(SIMULATORS))}"
        )
    return SIMULATORS[name]


def _import_modules() -> None:
    # Every public module of this package is a simulator; importing it registers it.
    for module in pkgutil.iter_modules(__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"{__name__}.{module.name}")


_import_modules()
