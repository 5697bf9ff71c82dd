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

import copy
import dataclasses
import math
import time
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
    "SimulatorError",
    "check_inputs",
    "check_output",
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
        num_simulations: Simulations the method used. Set by the registry from the counting
            simulator's count (:meth:`Method.run`); what a method puts here is overwritten.
        history: Tidy per-iteration diagnostics, one row per iteration (losses, proposal
            parameters, ...), for plots. May be empty.
        extras: Other scalar diagnostics (e.g. the fraction of samples outside the prior).
        wall_time_s: Wall time of the fit in seconds, set by the registry.
        log_prob: For a method with a normalized density, ``log_prob(theta) -> Tensor``:
            ``log q(θ | x_obs)`` of the returned distribution at the observed data,
            ``(m, d_theta) -> (m,)`` (scored as ``nltp``); ``None``: samples only.
        sample_at: For an amortized posterior, ``sample_at(x, n, generator) -> Tensor``:
            ``n`` posterior samples ``(n, b, d_theta)`` at each of ``b`` other observed sets
            ``x`` of shape ``(b, n_set, *x_shape)`` (scored by expected coverage and SBC over
            test simulations, see :mod:`avo_bench.calibration`); ``None``: not amortized.
    """

    theta: Tensor
    num_simulations: int = 0
    history: pd.DataFrame = field(default_factory=pd.DataFrame)
    extras: dict[str, Any] = field(default_factory=dict)
    wall_time_s: float = math.nan
    log_prob: Callable[[Tensor], Tensor] | None = None
    sample_at: Callable[[Tensor, int, torch.Generator], Tensor] | None = None

    def __post_init__(self):
        if not isinstance(self.theta, Tensor) or self.theta.ndim != 2:
            raise ValueError(
                f"Result.theta must be a tensor of shape (n, d), got {self.theta!r:.80}"
            )
        if not torch.isfinite(self.theta).all():
            raise ValueError("Result.theta contains NaN or inf")


class SimulatorError(ValueError):
    """A simulator returned output of the wrong shape or with NaN/inf values."""


class CountingSimulator:
    """What a method sees of a simulator: the budget-counting view.

    Every row of ``theta`` passed to :meth:`simulate` is one simulation; a call that would
    exceed the budget raises :class:`BudgetExceeded`, and output of the wrong shape or with
    NaN/inf raises :class:`SimulatorError` naming the simulator and the parameters.

    The method-facing surface is exactly: ``simulate``, ``num_simulations``, ``budget``,
    ``remaining``; the description ``name``, ``kind``, ``description``, ``differentiable``,
    ``parameter_names``, ``theta_dim``, ``x_shape``, ``n_obs`` and ``options()``; a copy of
    the ``prior``; and the hooks a method may use, ``summarize``, ``identified``, ``features``
    and ``provides``. The answers (``true_parameters``, ``posterior``, ``observe``,
    ``observation``) and the wrapped simulator itself are not attributes of this object, and
    its attributes cannot be set (a method cannot reset the count or raise the budget).
    (This keeps honest methods honest; it is not a sandbox against deliberate introspection.)

    Arguments:
        simulator: The simulator to wrap.
        budget: Maximum number of simulations, ``>= 1``.
    """

    DESCRIPTION = ("name", "kind", "description", "differentiable", "parameter_names",
                   "theta_dim", "x_shape", "n_obs")  # fmt: skip
    HOOKS = ("summarize", "identified", "features")

    def __init__(self, simulator: Simulator, budget: int):
        if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
            raise ValueError(f"budget must be an integer >= 1, got {budget!r}")
        self.budget = budget
        self.num_simulations = 0
        for name in self.DESCRIPTION:
            setattr(self, name, copy.deepcopy(getattr(simulator, name)))
        self.prior = copy.deepcopy(simulator.prior)
        options = copy.deepcopy(simulator.options())
        self.options = lambda: copy.deepcopy(options)
        self.provides = lambda hook: (
            hook not in ("posterior", "observation") and (simulator.provides(hook))
        )
        for name in self.HOOKS:
            setattr(self, name, _forward(simulator, name))

        def simulate(theta: Tensor, generator: torch.Generator | None = None) -> Tensor:
            """Simulates one observation per row of ``theta``, counted against the budget."""
            n = int(theta.shape[0]) if isinstance(theta, Tensor) and theta.ndim > 0 else 1
            if n > self.remaining:
                raise BudgetExceeded(
                    f"{self.name}: {n} more simulations requested but only "
                    f"{self.remaining} of the budget of {self.budget} remain"
                )
            x = simulator.simulate(theta, generator)
            object.__setattr__(self, "num_simulations", self.num_simulations + n)
            check_output(simulator, theta, x)
            return x

        self.simulate = simulate
        self._sealed = True

    def __setattr__(self, name: str, value: object) -> None:
        if getattr(self, "_sealed", False):  # e.g. num_simulations = 0 or a larger budget
            raise AttributeError(f"the simulator view is read-only: cannot set {name!r}")
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"the simulator view is read-only: cannot delete {name!r}")

    @property
    def remaining(self) -> int:
        return self.budget - self.num_simulations

    def __repr__(self) -> str:
        return f"CountingSimulator({self.name!r}, used={self.num_simulations}/{self.budget})"


def _forward(simulator: Simulator, name: str) -> Callable:
    hook = getattr(simulator, name)

    def forward(*args, **kwargs):
        return hook(*args, **kwargs)

    forward.__doc__ = hook.__doc__
    return forward


def check_output(simulator: Simulator, theta: Tensor, x: object) -> None:
    """Raises :class:`SimulatorError` unless ``x`` has shape ``(len(theta), *x_shape)`` and is
    finite; the message names the simulator and (for NaN/inf) the first offending ``theta``."""
    expected = (int(theta.shape[0]), *simulator.x_shape)
    if not isinstance(x, Tensor) or tuple(x.shape) != expected:
        got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise SimulatorError(f"{simulator.name}: simulate returned {got}, expected {expected}")
    if x.is_floating_point():
        bad = ~torch.isfinite(x.reshape(len(x), -1)).all(dim=1)
        if bad.any():
            row = int(bad.nonzero()[0])
            raise SimulatorError(
                f"{simulator.name}: simulate returned NaN or inf for {int(bad.sum())} of "
                f"{len(x)} rows, e.g. theta = {theta[row].tolist()}"
            )


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

    def run(
        self,
        simulator: Simulator,
        x_obs: Tensor,
        *,
        budget: int,
        config: Any,
        generator: torch.Generator,
        device: torch.device | str = "cpu",
    ) -> Result:
        """Fits the method under ``budget``: the one way every caller runs a method.

        Validates the inputs, hands ``fit`` a :class:`CountingSimulator` and a copy of
        ``x_obs`` (on ``device``), and returns its :class:`Result` with ``num_simulations``
        (the wrapper's count) and ``wall_time_s`` (CUDA synchronized) filled in.

        Raises:
            ValueError: For a bad budget or ``x_obs``, or a config of another class.
            NotApplicable: If the method does not apply to ``simulator`` (the reason).
            BudgetExceeded, SimulatorError: From the wrapped simulator.
        """
        check_inputs(self.name, simulator, x_obs, budget)
        if not isinstance(config, self.config):
            raise ValueError(
                f"{self.name}: config must be a {self.config.__name__}, got {type(config).__name__}"
            )
        counting = CountingSimulator(simulator, budget)
        reason = self.applicable(counting)
        if reason:
            raise NotApplicable(reason)
        device = torch.device(device)
        x = x_obs.detach().to(device, copy=True)
        start = time.perf_counter()
        result = self.fit(counting, x, budget=budget, config=config, generator=generator,
                          device=device)  # fmt: skip
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        wall = time.perf_counter() - start
        if not isinstance(result, Result):
            raise TypeError(f"{self.name}: fit returned {type(result).__name__}, expected Result")
        return dataclasses.replace(
            result, num_simulations=counting.num_simulations, wall_time_s=wall
        )

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
