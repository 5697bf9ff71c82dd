"""Registry of inference methods.

Every method module registers its ``fit`` function with :func:`register`; the runner, the CLI
and the tests read :data:`METHODS` and never list method names themselves. Run a method with
:func:`avo_bench.fit` (or :meth:`Method.run`), which owns the budget-counting wrapper.

Contributor helpers live here too (public, so that a method outside this package never imports
a private module): the summaries and set sizes shared by the summary-based methods
(:func:`simulate_summaries`, :func:`default_set_size`, :func:`observed_summary`,
:func:`point_task_only`, :func:`check_budget`, :func:`mad_scale`, :func:`distances`; see
``avo_bench/methods/_summaries.py``), and the option checks of :mod:`simulators`
(``simulators.check_positive_int`` and friends).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable

from simulators import Simulator

from ._base import (
    BudgetExceeded,
    CountingSimulator,
    Method,
    NotApplicable,
    Result,
    SimulatorError,
    check_inputs,
)
from ._summaries import (
    check_budget,
    default_set_size,
    distances,
    mad_scale,
    observed_summary,
    point_task_only,
    simulate_summaries,
)

__all__ = [
    "METHODS",
    "BudgetExceeded",
    "CountingSimulator",
    "Method",
    "NotApplicable",
    "Result",
    "SimulatorError",
    "check_budget",
    "check_inputs",
    "default_set_size",
    "distances",
    "get_method",
    "mad_scale",
    "observed_summary",
    "point_task_only",
    "register",
    "simulate_summaries",
]

METHODS: dict[str, Method] = {}


def register(
    name: str,
    *,
    config: type,
    applicable: Callable[[Simulator], str | None] | None = None,
    requires: str | None = None,
    install_hint: str = "",
    description: str = "",
) -> Callable[[Callable[..., Result]], Callable[..., Result]]:
    """Decorator registering a method's ``fit`` function under ``name``."""

    def decorator(fit: Callable[..., Result]) -> Callable[..., Result]:
        if name in METHODS:
            raise ValueError(f"method {name!r} is already registered; names: {sorted(METHODS)}")
        METHODS[name] = Method(
            name=name,
            fit=fit,
            config=config,
            applicable=applicable or (lambda simulator: None),
            requires=requires,
            install_hint=install_hint,
            description=description or (fit.__doc__ or "").strip().split("\n")[0],
        )
        return fit

    return decorator


def get_method(name: str) -> Method:
    """The registered method ``name``; ``ValueError`` listing the registry if unknown."""
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; choose from: {', '.join(sorted(METHODS))}")
    return METHODS[name]


def _import_modules() -> None:
    # Every public module of this package is a method; importing it registers it.
    for module in pkgutil.iter_modules(__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"{__name__}.{module.name}")


_import_modules()
