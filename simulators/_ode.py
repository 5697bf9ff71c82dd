r"""Batched adaptive Runge-Kutta solver for the ODE tasks (``sir``, ``lotka_volterra``).

Each row of the batch is its own initial value problem with its own step size: Dormand-Prince
5(4) steps (Dormand & Prince, 1980) are taken for every active row at once, accepted or
rejected per row by the embedded error estimate, and a row that has reached its last output
time leaves the batch, so the cost follows the sum, not the maximum, of the steps the rows
need. Steps are clipped to land exactly on the output times (no interpolation).

A trial step whose error estimate is not finite (it overflowed) is rejected and shrunk by the
largest factor, like any step with too large an error; until 2026-12-02 it turned the step size
into NaN and failed the row (``sir`` at contact rates 15-25, far in the prior's tail, which
SNLE's MCMC proposed). The solver never raises: rows that produce non-finite accepted values,
need more than ``max_steps`` steps or a step below ``1e-12`` of the time span are returned as
``failed`` (their outputs NaN); the simulators turn that into a ``ValueError`` naming the task
and the parameters, the likelihoods into zero likelihood.

References:
    Dormand, Prince, "A family of embedded Runge-Kutta formulae", Journal of Computational and
    Applied Mathematics 6(1), 1980.

    Hairer, Nørsett, Wanner, *Solving Ordinary Differential Equations I*, 2nd ed., 1993,
    section II.4 (step size control).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

__all__ = ["solve"]

# Dormand-Prince 5(4): stage coefficients, and the 5th-order minus 4th-order weights (the
# 5th-order solution is the last stage's point, first-same-as-last).
_A = (
    (),
    (1 / 5,),
    (3 / 40, 9 / 40),
    (44 / 45, -56 / 15, 32 / 9),
    (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
    (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
    (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84),
)
_E = (71 / 57600, 0.0, -71 / 16695, 71 / 1920, -17253 / 339200, 22 / 525, -1 / 40)

Rhs = Callable[[Tensor, tuple[Tensor, ...]], Tensor]


def _step(rhs: Rhs, y: Tensor, f: Tensor, params: tuple, h: Tensor) -> tuple[Tensor, ...]:
    """One Dormand-Prince step of size ``h`` (n, 1): the new point, its slope, the error."""
    slopes = [f]
    for row in _A[1:]:
        point = y
        for a, k in zip(row, slopes, strict=False):
            if a:
                point = point + (h * a) * k
        slopes.append(rhs(point, params))
    error = sum((h * e) * k for e, k in zip(_E, slopes, strict=True) if e)
    return point, slopes[-1], error


def solve(
    rhs: Rhs,
    y0: Tensor,
    params: tuple[Tensor, ...],
    times: Sequence[float],
    *,
    atol: float = 1e-8,
    max_steps: int = 20_000,
) -> tuple[Tensor, Tensor]:
    r"""Solves :math:`\dot y = f(y; p)` for a batch of rows from ``times[0]`` to ``times[-1]``.

    Arguments:
        rhs: The vector field, ``rhs(y (n, m), params) -> (n, m)``, rowwise in ``params``.
        y0: Initial states ``(n, m)`` at ``times[0]``.
        params: Per-row parameters, each of leading dimension ``n``.
        times: Increasing output times, the first the initial time.
        atol: Bound on the local error estimate of every component per step (the states are
            log-populations in our tasks, so this is a relative error).
        max_steps: Most accepted-or-rejected steps a row may take.

    Returns:
        The states ``(n, len(times), m)`` in float64 (NaN in failed rows) and the ``failed``
        mask ``(n,)``.
    """
    y = y0.double()
    params = tuple(p.double() for p in params)
    n, m = y.shape
    times_t = torch.as_tensor(times, dtype=torch.float64, device=y.device)
    out = torch.full((n, len(times), m), float("nan"), dtype=torch.float64, device=y.device)
    out[:, 0] = y
    failed = torch.zeros(n, dtype=torch.bool, device=y.device)
    rows = torch.arange(n, device=y.device)
    t = torch.full((n,), float(times[0]), dtype=torch.float64, device=y.device)
    k = torch.ones(n, dtype=torch.long, device=y.device)  # index of the next output time
    h = torch.full_like(t, (times[-1] - times[0]) / (10 * (len(times) - 1)))
    count = torch.zeros(n, dtype=torch.long, device=y.device)
    min_step = 1e-12 * (times[-1] - times[0])
    f = rhs(y, params)
    state = (rows, t, k, h, count, y, f, *params)
    while state[0].numel():
        state, landed = _advance(rhs, state, times_t, atol)
        state = _record(state, landed, out, failed, len(times), max_steps, min_step)
    return out, failed


def _advance(rhs: Rhs, state: tuple, times: Tensor, atol: float) -> tuple[tuple, Tensor]:
    """Tries one step in every active row; accepted rows move on, rejected rows shrink ``h``.

    Returns the new state and which rows landed on their next output time.
    """
    rows, t, k, h, count, y, f, *params = state
    target = times[k]
    land = h >= target - t
    step = torch.where(land, target - t, h)
    point, slope, error = _step(rhs, y, f, tuple(params), step[:, None])
    # a trial step that overflows (exp of a log state far past its range: sir at beta ~15-25,
    # whose first trial step multiplies I by e^34) is rejected and shrunk by the largest factor,
    # instead of its NaN error estimate turning the step size into NaN and failing the row
    err = torch.nan_to_num(error.detach().abs().amax(dim=-1) / atol, nan=math.inf)
    ok = err <= 1
    y = torch.where(ok[:, None], point, y)
    f = torch.where(ok[:, None], slope, f)
    t = torch.where(ok, torch.where(land, target, t + step), t)
    # Standard controller (Hairer et al. II.4): safety 0.9, change limited to [0.2, 5]; a step
    # shortened to land on an output time does not shrink the next one.
    factor = (0.9 * err.clamp_min(1e-10) ** -0.2).clamp(0.2, 5.0)
    h = torch.where(ok & land, torch.maximum(h, step * factor), step * factor)
    landed = ok & land
    return (rows, t, k + landed.long(), h, count + 1, y, f, *params), landed


def _record(
    state: tuple,
    landed: Tensor,
    out: Tensor,
    failed: Tensor,
    n_times: int,
    max_steps: int,
    min_step: float,
) -> tuple:
    """Writes the rows that landed on an output time; drops finished and failed rows."""
    rows, _, k, h, count, y, *_ = state
    bad = ~torch.isfinite(y).all(dim=-1) | ~(h >= min_step) | (count > max_steps)
    write = landed & ~bad
    if bool(write.any()):
        out[rows[write], k[write] - 1] = y[write]
    if bool(bad.any()):
        failed[rows[bad]] = True
        out[rows[bad]] = float("nan")
    keep = (k < n_times) & ~bad
    if bool(keep.all()):
        return state
    return tuple(v[keep] for v in state)
