"""The contract every inference method follows.

A method is registered with :func:`avo_bench.methods.register` around its ``fit`` function::

    @register("my_method", config=MyConfig, applicable=my_applicable)
    def fit(simulator, x_obs, *, budget, config, generator, device) -> Result: ...

``simulator`` is a :class:`CountingSimulator`: every row passed to ``simulate`` counts against
``budget`` and a call that would exceed it raises :class:`BudgetExceeded`. ``config`` is an
instance of the method's frozen config dataclass (validated in ``__post_init__``).
``generator`` is a ``torch.Generator`` on ``device``, the only source of randomness.
A method that cannot handle a simulator raises :class:`NotApplicable` (or declares it up
front through ``applicable``); the runner records the cell as ``n/a`` with the reason.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import torch
from torch import Tensor

from simulators import Simulator

__all__ = [
    "BudgetExceeded",
    "CountingSimulator",
    "Method",
    "NotApplicable",
    "Result",
    "check_inputs",
]


class BudgetExceeded(RuntimeError):
    """A method asked for more simulations than its budget allows."""


class NotApplicable(Exception):
    """The method does not apply to this simulator; the message says why."""


@dataclass(frozen=True)
class Result:
    """What a method returns.

    Attributes:
        theta: Samples of the inferred distribution over parameters, shape ``(n, d_theta)``
            (posterior, fitted proposal or population), on any device.
        num_simulations: Simulations the method really used (the counting wrapper's count).
        history: Tidy per-iteration diagnostics, one row per iteration (losses, proposal
            parameters, ...), for plots. May be empty.
        extras: Other scalar diagnostics (e.g. the fraction of samples outside the prior).
    """

    theta: Tensor
    num_simulations: int
    history: pd.DataFrame = field(default_factory=pd.DataFrame)
    extras: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.theta, Tensor) or self.theta.ndim != 2:
            raise ValueError(
                f"Result.theta must be a tensor of shape (n, d), got {self.theta!r:.80}"
            )
        if not torch.isfinite(self.theta).all():
            raise ValueError("Result.theta contains NaN or inf")


class CountingSimulator:
    """Wraps a simulator so that a method cannot exceed its simulation budget.

    Every row of ``theta`` passed to :meth:`simulate` is one simulation. All other attributes
    (prior, parameter names, summaries, ...) are those of the wrapped simulator; ``observe`` is
    not available to methods (they receive the observed data).

    Arguments:
        simulator: The simulator to wrap.
        budget: Maximum number of simulations, ``>= 1``.
    """

    def __init__(self, simulator: Simulator, budget: int):
        if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
            raise ValueError(f"budget must be an integer >= 1, got {budget!r}")
        self.simulator = simulator
        self.budget = budget
        self.num_simulations = 0

    @property
    def remaining(self) -> int:
        return self.budget - self.num_simulations

    def simulate(self, theta: Tensor, generator: torch.Generator | None = None) -> Tensor:
        n = int(theta.shape[0]) if isinstance(theta, Tensor) and theta.ndim > 0 else 1
        if n > self.remaining:
            raise BudgetExceeded(
                f"{self.simulator.name}: {n} more simulations requested but only "
                f"{self.remaining} of the budget of {self.budget} remain"
            )
        x = self.simulator.simulate(theta, generator)
        self.num_simulations += n
        return x

    def observe(self, *args, **kwargs):
        raise AttributeError("methods receive x_obs; they may not draw observed data")

    def __getattr__(self, name: str):
        return getattr(self.simulator, name)

    def __repr__(self) -> str:
        return f"CountingSimulator({self.simulator!r}, used={self.num_simulations}/{self.budget})"


def check_inputs(name: str, simulator, x_obs: Tensor, budget: int) -> None:
    """Validates what every ``fit`` receives: ``ValueError`` naming the bad value.

    Arguments:
        name: The method's name (for messages).
        simulator: The (counting) simulator.
        x_obs: Observed data, expected shape ``(n >= 1, *x_shape)``, finite.
        budget: Simulation budget, an integer ``>= 1``.
    """
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise ValueError(f"{name}: budget must be an integer >= 1, got {budget!r}")
    if not isinstance(x_obs, Tensor):
        raise ValueError(f"{name}: x_obs must be a torch.Tensor, got {type(x_obs).__name__}")
    shape = tuple(simulator.x_shape)
    if x_obs.ndim != 1 + len(shape) or tuple(x_obs.shape[1:]) != shape or x_obs.shape[0] < 1:
        raise ValueError(
            f"{name}: x_obs must have shape (n >= 1, {', '.join(map(str, shape))}) for "
            f"simulator {simulator.name!r}, got {tuple(x_obs.shape)}"
        )
    if not torch.isfinite(x_obs).all():
        raise ValueError(f"{name}: x_obs contains NaN or inf")


@dataclass(frozen=True)
class Method:
    """A registered method: its ``fit`` function, config class and applicability rule.

    Attributes:
        name: Registry name.
        fit: ``fit(simulator, x_obs, *, budget, config, generator, device) -> Result``.
        config: Frozen dataclass of hyperparameters; ``config()`` gives working defaults.
        applicable: ``applicable(simulator) -> str | None``: ``None`` if the method applies,
            otherwise the reason it does not (the cell becomes ``n/a``).
        requires: Name of an optional package the method needs, or ``None``.
        install_hint: How to install it (shown when it is missing).
        description: One line for ``python -m avo_bench list``.
    """

    name: str
    fit: Callable[..., Result]
    config: type
    applicable: Callable[[Simulator], str | None] = lambda simulator: None
    requires: str | None = None
    install_hint: str = ""
    description: str = ""

    def available(self) -> bool:
        """Whether the optional package this method needs (if any) is importable."""
        if self.requires is None:
            return True
        import importlib.util

        return importlib.util.find_spec(self.requires) is not None

    def make_config(self, **overrides: Any):
        """The config with ``overrides``; unknown keys raise ``ValueError`` listing valid ones."""
        valid = [f.name for f in dataclasses.fields(self.config)]
        unknown = sorted(set(overrides) - set(valid))
        if unknown:
            raise ValueError(
                f"method {self.name!r} has no config key {', '.join(map(repr, unknown))}; "
                f"valid keys: {', '.join(valid)}"
            )
        return self.config(**overrides)
