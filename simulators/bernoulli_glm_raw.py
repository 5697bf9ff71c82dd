r"""sbibm's ``bernoulli_glm_raw``: the Bernoulli GLM observed through its raw spike train.

The model of :mod:`simulators.bernoulli_glm` with :math:`x = y \in \{0, 1\}^{100}` itself. Its
standard observation :math:`k` is the spike train behind ``bernoulli_glm``'s observation
:math:`k` (same :math:`\theta^*_k`, as in sbibm), and since :math:`X^\top y` is sufficient the two
tasks share their reference posteriors (stored once, in ``bernoulli_glm.npz``).

References:
    Lueckmann et al., "Benchmarking Simulation-Based Inference", AISTATS 2021,
    https://arxiv.org/abs/2101.04653 (appendix T.6, Bernoulli GLM Raw)

    sbibm (commit f0bc440), ``sbibm/tasks/bernoulli_glm/task.py`` (``summary="raw"``)
"""

from __future__ import annotations

from torch import Tensor

from . import register
from .bernoulli_glm import STEPS, BernoulliGLM

__all__ = ["BernoulliGLMRaw"]


@register("bernoulli_glm_raw")
class BernoulliGLMRaw(BernoulliGLM):
    r"""sbibm's Bernoulli GLM Raw task: the 100 binary spikes of the GLM neuron."""

    description = "sbibm bernoulli_glm_raw: Bernoulli GLM neuron, raw spike train of 100 steps"
    x_shape = (STEPS,)
    raw = True
    samples_name = "bernoulli_glm"

    def check_x_obs(self, x_obs: Tensor) -> Tensor:
        """As the base class, and the spikes must be 0 or 1."""
        x = super().check_x_obs(x_obs)
        if not bool(((x == 0) | (x == 1)).all()):
            raise ValueError(f"{self.name}: x_obs must be spikes (0 or 1)")
        return x
