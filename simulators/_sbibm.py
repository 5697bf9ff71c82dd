r"""What the ten sbibm tasks share: standard observations and stored reference posteriors.

Each task has ten *standard observations* :math:`(\theta^*_k, x_k)`, :math:`\theta^*_k` drawn
from the prior with sbibm's seed for observation :math:`k` (a fresh ``torch.Generator`` seeded
with it, :func:`draw_observation`) and :math:`x_k` simulated from it with the same generator.
The prior draw (:func:`sbibm_prior_sample`) and the simulators consume that stream as sbibm's
pyro code consumed torch's global one after ``torch.manual_seed(seed)``, so the observations
are sbibm's own: :math:`\theta^*_k` of all ten tasks equal sbibm's stored ``true_parameters``
(to float32 rounding), and so do the data of ``gaussian_linear``, ``gaussian_linear_uniform``,
``two_moons``, ``slcp`` and ``bernoulli_glm(_raw)`` (to the last digits of sbibm's CSV files)
and ``lotka_volterra`` (to 1e-6 relative, the two ODE solvers' difference). The data differ
where today's ``torch.multinomial`` and ``torch.binomial`` consume the stream differently from
the torch sbibm ran (``gaussian_mixture``, ``sir``) and for the distractors of
``slcp_distractors`` (drawn from the same distribution in another way).

``scripts/make_references.py`` drew them once and stored them in ``simulators/data/<task>.npz``
(float32), so they do not depend on the random streams of future torch versions; for the tasks
without an exact sampler the same file holds 20,000 reference posterior draws per observation
(:mod:`simulators._stored`), which ``posterior`` returns for a standard observation so that no
grid cell waits on MCMC. Any other observation gets a fresh sampler (:class:`MCMCPosterior`).

Checked against sbibm's own stored reference draws on sbibm's observations
(``scripts/compare_sbibm_references.py``; ``results/figures/sbibm/references_vs_sbibm.csv``):
C2ST 0.488-0.510 over all ten tasks on observation 1 (and ``gaussian_linear`` 1-10, ``sir``
1-3), on sbibm's x for the three tasks whose data differ.

References:
    Lueckmann, Boelts, Greenberg, Gonçalves, Macke, "Benchmarking Simulation-Based
    Inference", AISTATS 2021, https://arxiv.org/abs/2101.04653 (section 3 and appendix T)

    sbibm, https://github.com/sbi-benchmark/sbibm (commit f0bc440), ``sbibm/tasks/task.py``
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor

from ._base import BoxUniform, Simulator, _target
from ._distributions import LogNormal, MultivariateNormal
from ._mcmc import Draws, SamplerConfig, Target, sample_posterior
from ._stored import StoredPosterior, decode_samples, load_data

__all__ = [
    "DEFAULT_SEEDS",
    "MCMCPosterior",
    "StandardObservations",
    "StoredReference",
    "draw_observation",
    "make_target",
    "sbibm_prior_sample",
]

#: sbibm's default observation seeds (observation k: 1_000_000 + k - 1).
DEFAULT_SEEDS: tuple[int, ...] = tuple(1_000_000 + i for i in range(10))


def draw_observation(simulator: Simulator, seed: int) -> tuple[Tensor, Tensor]:
    """``(theta* (d,), x (1, *x_shape))`` float32 from a generator seeded with ``seed``.

    The prior draw (:func:`sbibm_prior_sample`) and the simulators consume the random stream
    as sbibm's pyro code consumes torch's global one after ``torch.manual_seed(seed)``, so
    for most tasks the observations are sbibm's own (see ``scripts/make_references.py``).
    """
    generator = torch.Generator().manual_seed(seed)
    theta = sbibm_prior_sample(simulator.prior, generator)
    return theta[0], simulator.simulate(theta, generator=generator)


def sbibm_prior_sample(prior, generator: torch.Generator) -> Tensor:
    """One float32 prior draw ``(1, d)`` computed as pyro computes it (sbibm's priors)."""
    d = prior.dim
    if isinstance(prior, BoxUniform):  # pyro Uniform: low + rand * (high - low)
        low, high = prior.low.float(), prior.high.float()
        return low + torch.rand(1, d, generator=generator) * (high - low)
    if isinstance(prior, LogNormal):  # pyro LogNormal: exp of a Normal draw
        loc, scale = prior.loc.float().expand(1, d), prior.scale.float().expand(1, d)
        return torch.exp(torch.normal(loc, scale, generator=generator))
    if isinstance(prior, MultivariateNormal):  # torch's MultivariateNormal(precision_matrix=)
        tril = _precision_to_scale_tril(prior.precision.float())
        eps = torch.normal(torch.zeros(1, d), torch.ones(1, d), generator=generator)
        return prior.loc.float() + (tril @ eps[..., None])[..., 0]
    return prior.sample((1,), generator=generator)


def _precision_to_scale_tril(precision: Tensor) -> Tensor:
    # As torch.distributions.multivariate_normal does it (a Cholesky of the flipped matrix).
    flipped = torch.linalg.cholesky(torch.flip(precision, (-2, -1)))
    inverse = torch.flip(flipped, (-2, -1)).transpose(-2, -1)
    eye = torch.eye(precision.shape[-1], dtype=precision.dtype)
    return torch.linalg.solve_triangular(inverse, eye, upper=False)


class StandardObservations:
    """Mixin of the sbibm tasks: ten stored observations; ``true_parameters`` is the first's θ*.

    ``observation_seeds`` document how the stored observations were drawn; ``data_name`` is
    the file holding them (default: the task's name).
    """

    num_observations: ClassVar[int] = 10
    observation_seeds: ClassVar[tuple[int, ...]] = DEFAULT_SEEDS
    data_name: ClassVar[str] = ""

    @property
    def true_parameters(self) -> Tensor:
        return self._observation(1)[0]

    def _data(self) -> dict[str, np.ndarray]:
        return load_data(self.data_name or self.name)

    def _observation(self, number: int) -> tuple[Tensor, Tensor]:
        data = self._data()  # copies: callers may modify what they get, never the cache
        theta, x = data["theta"][number - 1].copy(), data["x"][number - 1].copy()
        return torch.from_numpy(theta), torch.from_numpy(x)[None]

    def stored_number(self, x: Tensor) -> int | None:
        """The number of the standard observation equal to ``x (1, *x_shape)``, else ``None``."""
        stored = torch.from_numpy(self._data()["x"])
        hits = (stored == x.detach().cpu().float()).flatten(1).all(dim=1).nonzero()
        return int(hits[0]) + 1 if len(hits) else None

    def check_x_obs(self, x_obs: Tensor) -> Tensor:
        """``x_obs`` as float64 ``(1, *x_shape)``; ``ValueError`` naming the task otherwise."""
        x = torch.as_tensor(x_obs).detach().cpu().double()
        if tuple(x.shape) != (1, *self.x_shape):
            raise ValueError(
                f"{self.name}: x_obs must have shape (1, {', '.join(map(str, self.x_shape))}) "
                f"(sbibm's tasks have one observation), got {tuple(x.shape)}"
            )
        if not bool(torch.isfinite(x).all()):
            raise ValueError(f"{self.name}: x_obs must be finite, got {x.flatten().tolist()}")
        return x


class StoredReference(StandardObservations):
    """Mixin of the tasks whose reference posterior is MCMC: stored draws for the standard
    observations, a fresh :class:`MCMCPosterior` for any other.

    Subclasses set ``sampler`` (the stored references' sizes) and implement
    :meth:`reference_target`; ``samples_name`` names the file holding the draws (default: the
    observations' file), for tasks that share another task's posterior.
    """

    sampler: ClassVar[SamplerConfig] = SamplerConfig()
    samples_name: ClassVar[str] = ""

    def reference_target(self, x: Tensor) -> Target:
        """The posteriors of observations ``x (B, *x_shape)`` for :mod:`simulators._mcmc`."""
        raise NotImplementedError

    def posterior(self, x_obs: Tensor) -> StoredPosterior | MCMCPosterior:
        """The stored reference draws for a standard observation, else a fresh MCMC sampler."""
        x = self.check_x_obs(x_obs)
        number = self.stored_number(x)
        if number is None:
            return MCMCPosterior(self.reference_target(x), self.sampler, self.name)
        data = load_data(self.samples_name or self.data_name or self.name)
        return StoredPosterior(decode_samples(data, number), f"{self.name} observation {number}")


class MCMCPosterior:
    """The reference sampler (:mod:`simulators._mcmc`) for one observation, run on demand.

    Arguments:
        target: The posterior in unconstrained coordinates (a batch of one).
        config: Sampler sizes.
        label: Names the task in warnings and errors.
    """

    def __init__(self, target: Target, config: SamplerConfig, label: str):
        self.target, self.config, self.label = target, config, label
        self.draws: Draws | None = None  # the last run's draws and diagnostics

    def sample(
        self,
        shape: Sequence[int] = (),
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> Tensor:
        """``(*shape, d)`` draws from a fresh sampler run (warns on R-hat above 1.05)."""
        cpu = torch.Generator()
        if generator is not None:  # the sampler runs on the CPU; seed it from the generator
            seed = torch.randint(2**62, (1,), generator=generator, device=generator.device)
            cpu.manual_seed(int(seed))
        else:
            cpu.seed()
        self.draws = sample_posterior(self.target, 1, math.prod(shape), self.config, cpu)
        samples = self.draws.samples[0]
        if not bool(torch.isfinite(samples).all()):
            raise ValueError(f"{self.label}: the reference sampler produced non-finite draws")
        if float(self.draws.rhat.max()) > 1.05:
            warnings.warn(
                f"{self.label}: reference MCMC R-hat {float(self.draws.rhat.max()):.3f} > 1.05",
                RuntimeWarning,
                stacklevel=2,
            )
        return samples.reshape(*shape, samples.shape[-1]).to(_target(generator, device), dtype)


def make_target(
    prior: BoxUniform | MultivariateNormal | LogNormal,
    log_likelihood: Callable[[Tensor], Tensor],
    batch: int,
    **symmetries: Callable,
) -> Target:
    """The posterior ``prior x likelihood`` in the sampler's unconstrained coordinates ``u``.

    A box prior is sampled in ``u = logit((theta - low) / (high - low))`` (where it is the
    logistic density: posteriors piled against a side of the box become smooth tails), a
    log-normal prior in ``u = log theta`` (where it is Gaussian), a Gaussian prior in ``theta``.

    Arguments:
        prior: The task's prior.
        log_likelihood: ``theta (B, N, d) -> (B, N)`` for the ``batch`` observations.
        batch: Number of observations ``B``.
        symmetries: ``invariant`` and/or ``symmetrize`` (see :class:`~simulators._mcmc.Target`).
    """
    if isinstance(prior, BoxUniform):
        low, width = prior.low, prior.high - prior.low
        to_theta = lambda u: low + width * torch.sigmoid(u)  # noqa: E731
        from_theta = lambda theta: torch.logit((theta - low) / width, eps=1e-12)  # noqa: E731

        def log_prior(u: Tensor) -> Tensor:
            return -(torch.nn.functional.softplus(u) + torch.nn.functional.softplus(-u)).sum(-1)

    elif isinstance(prior, LogNormal):
        to_theta, from_theta = torch.exp, torch.log
        loc, scale = prior.loc, prior.scale
        norm = -torch.log(scale).sum() - 0.5 * len(loc) * math.log(2 * math.pi)

        def log_prior(u: Tensor) -> Tensor:
            return norm - 0.5 * (((u - loc) / scale) ** 2).sum(dim=-1)

    else:
        to_theta = from_theta = lambda u: u
        log_prior = prior.log_prob

    def sample(n: int, generator: torch.Generator) -> Tensor:
        return from_theta(prior.sample((batch, n), generator=generator, dtype=torch.float64))

    def likelihood(u: Tensor) -> Tensor:
        return log_likelihood(to_theta(u))

    return Target(log_prior, likelihood, sample, to_theta, **symmetries)
