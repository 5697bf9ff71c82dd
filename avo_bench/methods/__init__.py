"""Registry of inference methods.

Every method module registers its ``fit`` function with :func:`register`; the runner, the CLI
and the tests read :data:`METHODS` and never list method names themselves.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from collections.abc import Callable

from simulators import Simulator

from ._base import BudgetExceeded, CountingSimulator, Method, NotApplicable, Result, check_inputs

__all__ = [
    "METHODS",
    "BudgetExceeded",
    "CountingSimulator",
    "Method",
    "NotApplicable",
    "Result",
    "get_method",
    "register",
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
        @functools.wraps(fit)
        def checked(simulator, x_obs, *, budget, config, generator, device) -> Result:
            # One place validates what every method receives, before any work.
            check_inputs(name, simulator, x_obs, budget)
            return fit(
                simulator, x_obs, budget=budget, config=config, generator=generator, device=device
            )

        if name in METHODS:
            raise ValueError(f"method {name!r} is already registered; names: {sorted(METHODS)}")
        METHODS[name] = Method(
            name=name,
            fit=checked,
            config=config,
            applicable=applicable or (lambda simulator: None),
            requires=requires,
            install_hint=install_hint,
            description=description or (fit.__doc__ or "").strip().split("\n")[0],
        )
        return checked

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
