r"""The calibration fields of a :class:`~avo_bench.methods.Result` for an ``sbi`` direct
posterior (NPE): its normalized density at the observed data and its amortized sampler.

``sbi``'s ``DirectPosterior`` is amortized: one trained flow :math:`q(\theta \mid s)` gives a
posterior at any summary :math:`s`. :func:`direct_posterior_fields` exposes it through the
:class:`~avo_bench.methods.Result` contract: ``log_prob(theta)`` at the observed summary
(``sbi``'s ``log_prob``, renormalized for the mass outside the prior support by its leakage
correction) and ``sample_at(x, n, generator)`` at the summaries of other observed sets
(``sample_batched``). ``sbi`` draws from the global torch RNG (its rejection of samples outside
the prior and the leakage correction), so both run in a forked RNG state seeded from the
caller's generator or a fixed seed: reproducible, and the caller's global state is unchanged.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["direct_posterior_fields", "set_summaries"]


def set_summaries(simulator, x: Tensor) -> Tensor:
    """The summaries ``(b, k)`` of ``b`` observed sets ``x`` ``(b, n_set, *x_shape)``, as the
    ``sbi`` methods condition on them: the flattened observation for a set of one, else the
    simulator's ``summarize``."""
    if x.shape[1] == 1:
        return x[:, 0].reshape(len(x), -1).float()
    return simulator.summarize(x).reshape(len(x), -1).float()


def direct_posterior_fields(
    posterior, observed: Tensor, condition: Callable[[Tensor], Tensor], device: torch.device
) -> dict:
    """``log_prob`` and ``sample_at`` for :class:`~avo_bench.methods.Result`.

    Arguments:
        posterior: A trained ``sbi`` ``DirectPosterior``.
        observed: The observed summary ``(k,)`` the method conditioned on.
        condition: Maps observed sets ``(b, n_set, *x_shape)`` to summaries ``(b, k)``.
        device: The posterior's device.
    """
    device = torch.device(device)

    def log_prob(theta: Tensor) -> Tensor:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(0)  # the leakage correction's rejection sampling
            out = posterior.log_prob(theta.to(device, torch.float32), x=observed[None])
        return out.detach().double().cpu()

    def sample_at(x: Tensor, n: int, generator: torch.Generator) -> Tensor:
        seed = int(torch.randint(2**62, (1,), generator=generator))
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(seed)
            summaries = condition(x.to(device)).to(device)
            with warnings.catch_warnings():  # sbi caps its batch size to bound memory
                warnings.filterwarnings("ignore", message="Capping max_sampling_batch_size")
                samples = posterior.sample_batched((n,), x=summaries, show_progress_bars=False)
        return samples.detach().reshape(n, len(x), -1)

    return {"log_prob": log_prob, "sample_at": sample_at}
