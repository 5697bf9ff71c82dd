"""Base class, priors and input validation shared by every simulator.

A simulator maps a batch of parameters ``theta`` of shape ``(n, d_theta)`` to a batch of
observations ``x`` of shape ``(n, *x_shape)``. It is vectorized over the batch, runs on the
device of ``theta`` and draws randomness only from the ``torch.Generator`` passed in.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import Tensor

__all__ = [
    "HOOKS",
    "MAX_N_OBS",
    "MAX_SET_VALUES",
    "BoxUniform",
    "DiagNormal",
    "Simulator",
    "check_choice",
    "check_positive_float",
    "check_positive_int",
]

KINDS = ("point", "population")

#: The largest observed set the benchmark scores: the JS bin edges are quantiles over
#: ``max(n_edges, n_obs)`` observed rows, and ``torch.quantile`` takes at most 2**24 values.
MAX_N_OBS = 2**24
#: The most values (``n_obs * prod(x_shape)``) of one observed set: a task holds the observed set
#: and an independent copy, and scoring simulates one more (2**27 float32 values are 512 MiB).
MAX_SET_VALUES = 2**27

#: The optional hooks a simulator may implement, with what each one offers. The base class
#: defines every one with a documented default; :meth:`Simulator.provides` says whether an
#: instance (with its options) implements one itself. Scoring and methods ask it, never
#: ``getattr``.
HOOKS: dict[str, str] = {
    "posterior": "posterior(x_obs): the exact posterior p(theta | x_obs), an object with "
    "sample(shape, generator=...); turns on the posterior-space scores (default: none)",
    "summarize": "summarize(x): a fixed-size summary (..., m, *x_shape) -> (..., k) of iid sets "
    "(default: mean and standard deviation of every coordinate)",
    "identified": "identified(theta): what the data identify, (n, d) -> (n, k), used for the "
    "distance to theta* (default: theta itself)",
    "features": "features(x): per-sample data-space features (n, *x_shape) -> (n, k) scored by "
    "W1 and JS (default: x flattened)",
    "observation": "observation(number): standard observation `number` in "
    "1..num_observations, (theta*, x_obs); the grid's seed k selects observation k + 1 "
    "(default: none, the observed data are drawn at true_parameters)",
}


def _as_vector(value: float | Sequence[float] | Tensor, dim: int) -> Tensor:
    vector = torch.as_tensor(value, dtype=torch.float64).flatten()
    if vector.numel() == 1:
        vector = vector.expand(dim)
    if vector.numel() != dim:
        raise ValueError(f"expected a scalar or {dim} values, got {vector.numel()}")
    return vector.clone()


def check_positive_int(name: str, field: str, value: object, minimum: int = 1) -> None:
    """Raises ``ValueError`` unless ``value`` is an ``int`` (not bool) ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name}: {field} must be an integer >= {minimum}, got {value!r}")


def check_choice(name: str, field: str, value: object, choices: Sequence) -> None:
    """Raises ``ValueError`` naming the valid choices unless ``value`` is one of ``choices``."""
    if (
        isinstance(value, bool) != any(isinstance(c, bool) for c in choices)
        or value not in choices
    ):
        raise ValueError(
            f"{name}: {field} must be one of {', '.join(map(repr, choices))}, got {value!r}"
        )


def check_positive_float(name: str, field: str, value: object, allow_zero: bool = False) -> None:
    """Raises ``ValueError`` unless ``value`` is a finite real ``> 0`` (``>= 0`` if allowed)."""
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name}: {field} must be a finite number {bound}, got {value!r}")


def _target(generator: torch.Generator | None, device: torch.device | str | None):
    if device is not None:
        return torch.device(device)
    return generator.device if generator is not None else torch.device("cpu")


class BoxUniform:
    r"""Uniform prior on the box :math:`[low, high]` (a product of intervals).

    Unlike ``torch.distributions.Uniform`` its ``sample`` takes a ``torch.Generator``.

    Arguments:
        low: Lower corner, shape ``(d,)``.
        high: Upper corner, shape ``(d,)``.
    """

    def __init__(self, low: Sequence[float] | Tensor, high: Sequence[float] | Tensor):
        self.low = torch.as_tensor(low, dtype=torch.float64).flatten()
        self.high = torch.as_tensor(high, dtype=torch.float64).flatten()
        if self.low.shape != self.high.shape or not bool((self.low < self.high).all()):
            raise ValueError(f"need low < high elementwise, got {self.low} and {self.high}")

    @property
    def dim(self) -> int:
        return self.low.numel()

    def sample(
        self,
        shape: Sequence[int] = (),
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> Tensor:
        """Samples of shape ``(*shape, d)`` on ``device`` (default: the generator's)."""
        device = _target(generator, device)
        u = torch.rand(*shape, self.dim, generator=generator, device=device, dtype=torch.float64)
        low, high = self.low.to(device), self.high.to(device)
        return (low + (high - low) * u).to(dtype)

    def log_prob(self, theta: Tensor) -> Tensor:
        """Log density of ``theta`` of shape ``(..., d)``; ``-inf`` outside the box."""
        low = self.low.to(theta.device, theta.dtype)
        high = self.high.to(theta.device, theta.dtype)
        inside = ((theta >= low) & (theta <= high)).all(dim=-1)
        value = -torch.log(high - low).sum()
        return torch.where(inside, value, torch.full_like(value, -math.inf))

    def mean(self) -> Tensor:
        return (self.low + self.high) / 2

    def stddev(self) -> Tensor:
        return (self.high - self.low) / math.sqrt(12.0)

    def to_torch(self, device: torch.device | str = "cpu") -> torch.distributions.Distribution:
        """The same prior as a ``torch.distributions`` object (e.g. for ``sbi``)."""
        low = self.low.to(device, torch.float32)
        high = self.high.to(device, torch.float32)
        return torch.distributions.Independent(torch.distributions.Uniform(low, high), 1)

    def __repr__(self) -> str:
        return f"BoxUniform(low={self.low.tolist()}, high={self.high.tolist()})"


class DiagNormal:
    r"""Gaussian with diagonal covariance, :math:`\mathcal{N}(loc, \mathrm{diag}(scale^2))`.

    Arguments:
        loc: Mean, shape ``(d,)``.
        scale: Standard deviations, shape ``(d,)``, positive.
    """

    def __init__(self, loc: Sequence[float] | Tensor, scale: Sequence[float] | Tensor):
        self.loc = torch.as_tensor(loc, dtype=torch.float64).flatten()
        self.scale = torch.as_tensor(scale, dtype=torch.float64).flatten()
        if self.loc.shape != self.scale.shape or not bool((self.scale > 0).all()):
            raise ValueError(f"need positive scales matching loc, got {self.loc}, {self.scale}")
        self.low = torch.full_like(self.loc, -math.inf)
        self.high = torch.full_like(self.loc, math.inf)

    @property
    def dim(self) -> int:
        return self.loc.numel()

    def sample(
        self,
        shape: Sequence[int] = (),
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> Tensor:
        """Samples of shape ``(*shape, d)`` on ``device`` (default: the generator's)."""
        device = _target(generator, device)
        z = torch.randn(*shape, self.dim, generator=generator, device=device, dtype=torch.float64)
        return (self.loc.to(device) + self.scale.to(device) * z).to(dtype)

    def log_prob(self, theta: Tensor) -> Tensor:
        """Log density of ``theta`` of shape ``(..., d)``."""
        loc = self.loc.to(theta.device, theta.dtype)
        scale = self.scale.to(theta.device, theta.dtype)
        z = (theta - loc) / scale
        return (-0.5 * z**2 - torch.log(scale) - 0.5 * math.log(2 * math.pi)).sum(dim=-1)

    def mean(self) -> Tensor:
        return self.loc.clone()

    def stddev(self) -> Tensor:
        return self.scale.clone()

    def to_torch(self, device: torch.device | str = "cpu") -> torch.distributions.Distribution:
        """The same distribution as a ``torch.distributions`` object (e.g. for ``sbi``)."""
        loc = self.loc.to(device, torch.float32)
        scale = self.scale.to(device, torch.float32)
        return torch.distributions.Independent(torch.distributions.Normal(loc, scale), 1)

    def __repr__(self) -> str:
        return f"DiagNormal(loc={self.loc.tolist()}, scale={self.scale.tolist()})"


class Simulator:
    """Base class of every registered simulator.

    Subclasses set the class attributes below, build ``self.prior`` and
    ``self.true_parameters`` in ``__init__`` (keyword-only options with defaults) and
    implement ``_simulate(theta, generator)`` for an already validated ``theta``.

    ``true_parameters`` is ``None`` for population tasks, whose observed data does not come
    from a single parameter; those simulators override ``observe``.

    Optional hooks (:data:`HOOKS`: ``posterior``, ``summarize``, ``identified``, ``features``,
    ``observation``) have defaults here; a subclass implements one by overriding it, and
    :meth:`provides` tells whether an instance implements it for its options (override
    :meth:`provides` when a hook exists only for some option values, e.g. an exact posterior
    without a field but not with one).

    Tasks with *standard observations* (sbibm's ten per task) set ``num_observations`` and
    implement ``observation(number)``; their :math:`\theta^*` differs per observation, so
    scoring reads it from there, never from ``true_parameters`` (which then holds observation
    1's).
    """

    num_observations: ClassVar[int] = 0
    #: Representative accepted values of options, ``{option: (value, ...)}``: the contract test
    #: runs a small grid with each one (every accepted value must give ``ok`` cells).
    option_values: ClassVar[dict[str, tuple]] = {}

    name: ClassVar[str] = ""
    kind: ClassVar[str] = "point"
    description: ClassVar[str] = ""
    differentiable: ClassVar[bool] = False
    parameter_names: tuple[str, ...] = ()
    x_shape: tuple[int, ...] = ()
    n_obs: int = 1
    prior: BoxUniform | DiagNormal
    true_parameters: Tensor | None = None

    @property
    def theta_dim(self) -> int:
        return len(self.parameter_names)

    def options(self) -> dict:
        """The options this instance was built with (``get_simulator(name, **options)``)."""
        return dict(getattr(self, "_options", {}))

    def simulate(self, theta: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Simulates one observation per parameter row.

        Arguments:
            theta: Parameters, shape ``(n, d_theta)``, floating point, inside the prior support.
            generator: The only source of randomness (on ``theta``'s device).

        Returns:
            Observations of shape ``(n, *x_shape)``, ``theta``'s dtype and device.
        """
        self.check_theta(theta)
        x = self._simulate(theta, generator)
        self.check_output(len(theta), x)
        return x

    def observe(self, n: int | None = None, generator: torch.Generator | None = None) -> Tensor:
        """The benchmark's observed data: ``n`` (default ``n_obs``) draws at ``true_parameters``.

        Returned on the generator's device (CPU without one), as ``float32``.
        """
        n = self.check_count(n)
        device = _target(generator, None)
        theta = self.true_parameters.to(device, torch.float32).expand(n, self.theta_dim)
        x = self._simulate(theta.contiguous(), generator)
        self.check_output(n, x)
        return x

    def _simulate(self, theta: Tensor, generator: torch.Generator | None) -> Tensor:
        raise NotImplementedError

    # optional hooks ----------------------------------------------------------------------

    def provides(self, hook: str) -> bool:
        """Whether this instance implements the optional ``hook`` (see :data:`HOOKS`) itself.

        Raises:
            ValueError: For a name that is not a hook (the message lists them).
        """
        if hook not in HOOKS:
            raise ValueError(f"unknown simulator hook {hook!r}; hooks: {', '.join(HOOKS)}")
        if hook == "observation":
            return self.num_observations > 0
        return getattr(type(self), hook) is not getattr(Simulator, hook)

    def posterior(self, x_obs: Tensor):
        r"""The exact posterior :math:`p(\theta \mid x_{obs})`: an object with
        ``sample(shape, generator=...)`` (and ``log_prob`` where it has one).

        The default has none: check :meth:`provides` ``("posterior")`` first.
        """
        raise NotImplementedError(
            f"{self.name}: no exact posterior for options {self.options()} "
            "(check simulator.provides('posterior') first)"
        )

    def features(self, x: Tensor) -> Tensor:
        """Per-sample data-space features ``(n, *x_shape) -> (n, k)``, compared by W1 and JS.

        The default flattens each sample; a simulator with large samples (e.g. Ising lattices)
        returns a few statistics of each instead.
        """
        return x.reshape(x.shape[0], -1)

    def observation(self, number: int) -> tuple[Tensor, Tensor]:
        """Standard observation ``number`` (``1..num_observations``): ``(theta*, x_obs)``.

        ``theta*`` has shape ``(d_theta,)``, ``x_obs`` shape ``(n_obs, *x_shape)``. The default
        has none (``num_observations == 0``).

        Raises:
            ValueError: For a number outside ``1..num_observations``.
        """
        if self.num_observations == 0:
            raise ValueError(
                f"{self.name} has no standard observations; its observed data are drawn at "
                "true_parameters"
            )
        check_positive_int(self.name, "observation number", number)
        if number > self.num_observations:
            raise ValueError(
                f"{self.name}: unknown observation {number!r}; valid numbers: "
                f"1..{self.num_observations}"
            )
        return self._observation(number)

    def _observation(self, number: int) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def identified(self, theta: Tensor) -> Tensor:
        """The function of ``theta`` that the data identify, ``(n, d_theta) -> (n, k)``.

        Parameter-space distances to ``true_parameters`` are measured on it. The default is
        ``theta`` itself; a simulator whose likelihood depends on ``theta`` only through a
        lower-dimensional function (e.g. ``weinberg``: the asymmetry ``c``) returns that.
        """
        return theta

    def summarize(self, x: Tensor) -> Tensor:
        """Fixed-size summary of iid observed sets, for methods that condition on a whole set.

        Arguments:
            x: Sets of observations, shape ``(..., m, *x_shape)`` (``m >= 2``).

        Returns:
            Summaries of shape ``(..., k)``. The default is the mean and standard deviation of
            every feature over the set; simulators override it with better (e.g. sufficient)
            statistics and document them.
        """
        flat = x.flatten(start_dim=x.ndim - len(self.x_shape))
        return torch.cat([flat.mean(dim=-2), flat.std(dim=-2)], dim=-1)

    # validation ---------------------------------------------------------------------------

    @property
    def max_n_obs(self) -> int:
        """The largest ``n_obs`` the benchmark can score for this simulator (see
        :data:`MAX_N_OBS` and :data:`MAX_SET_VALUES`)."""
        return max(1, min(MAX_N_OBS, MAX_SET_VALUES // max(1, math.prod(self.x_shape))))

    def check_n_obs(self) -> None:
        """Raises ``ValueError`` if ``n_obs`` is above :attr:`max_n_obs` (before any work)."""
        if self.n_obs > self.max_n_obs:
            raise ValueError(
                f"{self.name}: n_obs must be <= {self.max_n_obs} (the largest observed set the "
                f"benchmark can score for x_shape {self.x_shape}), got {self.n_obs}"
            )

    def check_output(self, n: int, x: object) -> None:
        """Raises ``ValueError`` naming the simulator unless ``x`` is a tensor of shape
        ``(n, *x_shape)`` without NaN or inf (a simulator bug, never data)."""
        expected = (n, *self.x_shape)
        if not isinstance(x, Tensor) or tuple(x.shape) != expected:
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"{self.name}: simulate returned {got}, expected {expected}")
        if x.is_floating_point() and not bool(torch.isfinite(x).all()):
            bad = int((~torch.isfinite(x.reshape(n, -1))).any(dim=1).sum())
            raise ValueError(f"{self.name}: simulate returned NaN or inf in {bad} of {n} rows")

    def check_count(self, n: int | None) -> int:
        n = self.n_obs if n is None else n
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"{self.name}: the number of observations must be >= 1, got {n!r}")
        return n

    def check_theta(self, theta: Tensor) -> None:
        """Raises ``ValueError`` naming the simulator and the bad value for invalid ``theta``."""
        if not isinstance(theta, Tensor):
            raise ValueError(f"{self.name}: theta must be a torch.Tensor, got {type(theta)}")
        if not theta.is_floating_point():
            raise ValueError(f"{self.name}: theta must be floating point, got {theta.dtype}")
        if theta.ndim != 2 or theta.shape[1] != self.theta_dim:
            raise ValueError(
                f"{self.name}: theta must have shape (n, {self.theta_dim}) "
                f"for parameters {self.parameter_names}, got {tuple(theta.shape)}"
            )
        bad = ~torch.isfinite(theta)
        if bad.any():
            row = int(bad.any(dim=1).nonzero()[0])
            raise ValueError(
                f"{self.name}: theta must be finite, row {row} is {theta[row].tolist()}"
            )
        low = self.prior.low.to(theta.device, theta.dtype)
        high = self.prior.high.to(theta.device, theta.dtype)
        outside = (theta < low) | (theta > high)
        if outside.any():
            row, col = (int(i) for i in outside.nonzero()[0])
            raise ValueError(
                f"{self.name}: {self.parameter_names[col]} = {float(theta[row, col])} (row {row}) "
                f"is outside the prior support [{float(low[col])}, {float(high[col])}]"
            )

    def __repr__(self) -> str:
        options = ", ".join(f"{k}={v!r}" for k, v in self.options().items())
        return f"{type(self).__name__}({options})"
