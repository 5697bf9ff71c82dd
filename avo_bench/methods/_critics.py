r"""Adversarial critics for AVO: a leaky-ReLU MLP with hand-derived loss gradients.

Three critic objectives (all minimised over the critic parameters :math:`\phi`):

- ``"wgan-gp"`` (Gulrajani et al., 2017; the AVO paper's version):
  :math:`L_d = E_q[d(\tilde x)] - E_r[d(x)] + \lambda E[(\|\nabla_{\hat x} d(\hat x)\| - 1)^2]`
  with :math:`\hat x = \epsilon x + (1 - \epsilon) \tilde x`, :math:`\epsilon \sim U[0, 1]`;
  the simulator side then minimises :math:`L_g(\tilde x) = -d(\tilde x)`.
- ``"wgan-lp"`` (Petzka et al., 2018): the same with the one-sided penalty
  :math:`\lambda E[\max(0, \|\nabla_{\hat x} d\| - 1)^2]`, which lets the critic flatten
  where the two samples agree instead of forcing unit slope everywhere.
- ``"bce-r1"`` (Mescheder et al., 2018; the later AVO implementation): the logistic loss
  :math:`L_d = E_q[\mathrm{softplus}(d(\tilde x))] + E_r[\mathrm{softplus}(-d(x))]
  + \frac{\lambda}{2} E_r[\|\nabla_x d(x)\|^2]` and the non-saturating simulator loss
  :math:`L_g(\tilde x) = -\log \sigma(d(\tilde x)) = \mathrm{softplus}(-d(\tilde x))`.

The critic is evaluated hundreds of thousands of times on batches of a few dozen rows, where
autograd's double backward costs several times the arithmetic. Because a leaky-ReLU network is
piecewise linear, :math:`\nabla_x d` is multilinear in the weights and the gradient of the
penalty has a closed form (below); :meth:`MLPCritic.loss_and_grad` implements it and
:meth:`MLPCritic.loss` is the autograd reference the tests compare it with (agreement within
3e-7, float32).

Why hand-written (issue 21; ``python benchmarks/speed_avo.py --numerics``, one thread, CPU ms
per WGAN-GP gradient of the (10, 10) critic, best of 3 blocks, two runs on a loaded 2-core
machine): at the critic batches AVO's schedules use (m = 8-32 simulated + as many observed
rows) the closed form takes 0.18-0.25 ms; autograd's double backward 1.19-1.35 ms (5.4-6.5x),
``torch.func`` (grad of grad) 3.3-3.7 ms, ``torch.func`` under ``torch.compile`` 0.30 ms
(1.2-1.6x) after 12-95 s of compilation per process and shape. The library wins only at
m = 256 under ``torch.compile`` (0.25-0.35 ms against 0.39-0.44 ms, 1.1-1.75x, compilation
5-66 s), which AVO's schedules never reach below a budget of 10^6; a whole fit's critic steps
cost 1-15 s, so compiling does not pay back. Compiling this closed form gains at most 1.5x at
m = 256 and nothing at m = 32.

References:
    | Improved Training of Wasserstein GANs (Gulrajani et al., 2017)
    | https://arxiv.org/abs/1704.00028
    | On the Regularization of Wasserstein GANs (Petzka, Fischer and Lukovnikov, 2018)
    | https://arxiv.org/abs/1709.08894
    | Which Training Methods for GANs do actually Converge? (Mescheder et al., 2018)
    | https://arxiv.org/abs/1801.04406
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import Tensor

from ._nn import linear_init

__all__ = ["CRITIC_LOSSES", "MLPCritic", "critic_epoch", "generator_loss"]

CRITIC_LOSSES = ("wgan-gp", "wgan-lp", "bce-r1")


def generator_loss(output: Tensor, loss: str) -> Tensor:
    """Per-sample simulator-side loss :math:`L_g` from critic outputs ``(n,)``."""
    return F.softplus(-output) if loss == "bce-r1" else -output


class MLPCritic:
    r"""Critic :math:`d(x; \phi)`: an MLP with leaky-ReLU hidden layers and a scalar output.

    The parameters live in one flat tensor :attr:`params` (layer by layer, weight then bias)
    so that one optimizer step updates them all.

    Arguments:
        features: Input dimension.
        hidden: Widths of the hidden layers (the AVO paper: ``(10, 10)``).
        generator: The only randomness source (PyTorch's default ``nn.Linear`` init bounds).
        slope: Negative slope of the leaky ReLU (the AVO reference code: 0.1).
    """

    def __init__(
        self,
        features: int,
        hidden: tuple[int, ...],
        generator: torch.Generator,
        slope: float = 0.1,
    ):
        widths = (features, *hidden, 1)
        pieces = []
        for fan_in, fan_out in itertools.pairwise(widths):
            weight, bias = linear_init(fan_in, fan_out, generator)
            pieces += [weight.reshape(-1), bias]
        self.params = torch.cat(pieces)
        self.widths = widths
        self.slope = slope
        self._slopes = (self.params.new_tensor(1.0), self.params.new_tensor(slope))
        self._delta: dict[int, Tensor] = {}
        self._bind(self.params)

    def _bind(self, params: Tensor) -> None:
        self.weights, self.biases = [], []
        offset = 0
        for fan_in, fan_out in itertools.pairwise(self.widths):
            self.weights.append(params[offset : offset + fan_in * fan_out].view(fan_out, fan_in))
            offset += fan_in * fan_out
            self.biases.append(params[offset : offset + fan_out])
            offset += fan_out

    def __call__(self, x: Tensor) -> Tensor:
        """Critic outputs ``(n,)`` for inputs ``(n, features)`` (differentiable in ``x``)."""
        return self._forward(x)[0]

    def _forward(self, x: Tensor) -> tuple[Tensor, list[Tensor], list[Tensor]]:
        hs, slopes = [x], []
        for weight, bias in zip(self.weights[:-1], self.biases[:-1], strict=True):
            pre = hs[-1] @ weight.T + bias  # faster than addmm for these tiny shapes
            slope = torch.where(pre > 0, *self._slopes)
            slopes.append(slope)
            hs.append(pre * slope)
        out = hs[-1] @ self.weights[-1].T + self.biases[-1]
        return out.squeeze(-1), hs, slopes

    # reference implementation (autograd) --------------------------------------------------

    def loss(self, fake: Tensor, real: Tensor, hat: Tensor, loss: str, penalty: float) -> Tensor:
        r"""The critic loss by autograd (double backward), differentiable in :attr:`params`.

        Arguments:
            fake: Simulated data ``(m, features)``.
            real: Observed data ``(m, features)``.
            hat: Penalty points ``(m, features)``: interpolates (WGAN-GP) or ``real`` (R1).
            loss: One of :data:`CRITIC_LOSSES`.
            penalty: Gradient penalty weight :math:`\lambda`.
        """
        hat = hat.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(self(hat).sum(), hat, create_graph=True)
        norm = grad.norm(dim=-1)
        if loss == "wgan-gp":
            return self(fake).mean() - self(real).mean() + penalty * ((norm - 1) ** 2).mean()
        if loss == "wgan-lp":
            return (
                self(fake).mean() - self(real).mean() + penalty * ((norm - 1).relu() ** 2).mean()
            )
        adversarial = F.softplus(self(fake)).mean() + F.softplus(-self(real)).mean()
        return adversarial + penalty / 2 * (norm**2).mean()

    # closed-form gradient -----------------------------------------------------------------

    def loss_and_grad(
        self, batch: Tensor, loss: str, penalty: float, stats: bool = True
    ) -> tuple[Tensor | None, Tensor]:
        r"""The critic loss and its gradient in :attr:`params`, without autograd.

        Arguments:
            batch: ``(3m, features)``: ``m`` simulated rows, ``m`` observed rows, then the
                ``m`` penalty points.
            loss: One of :data:`CRITIC_LOSSES`.
            penalty: Gradient penalty weight :math:`\lambda`.
            stats: Whether to also evaluate the loss (skipped in most steps, for speed).

        Returns:
            ``(stats, grad)``: ``stats`` holds the loss, the mean critic output on simulated
            and on observed rows (``None`` unless asked); ``grad`` has the shape of
            :attr:`params`.
        """
        m = batch.shape[0] // 3
        out, hs, slopes = self._forward(batch)
        d_fake, d_real = out[:m], out[m : 2 * m]
        delta = self._output_grad(d_fake, d_real, loss)  # zero on the penalty rows
        grads = self._backprop(delta, hs, slopes)
        norm = self._add_penalty_grad(grads, [s[2 * m :] for s in slopes], loss, penalty)
        grad = torch.cat([g.reshape(-1) for g in grads])
        if not stats:
            return None, grad
        if loss != "bce-r1":
            adversarial = d_fake.mean() - d_real.mean()
        else:
            adversarial = F.softplus(d_fake).mean() + F.softplus(-d_real).mean()
        value = adversarial + _penalty_value(norm, loss, penalty)
        return torch.stack([value, d_fake.mean(), d_real.mean()]), grad

    def _output_grad(self, d_fake: Tensor, d_real: Tensor, loss: str) -> Tensor:
        # d(loss)/d(output) for the simulated, observed and penalty rows, shape (3m, 1).
        m = d_fake.shape[0]
        if loss != "bce-r1":
            if m not in self._delta:  # constant: +1/m on simulated, -1/m on observed rows
                ones = torch.ones_like(d_fake) / m
                self._delta[m] = torch.cat([ones, -ones, 0 * ones]).unsqueeze(-1)
            return self._delta[m]
        zeros = torch.zeros_like(d_fake)
        delta = torch.cat([torch.sigmoid(d_fake), -torch.sigmoid(-d_real), zeros]) / m
        return delta.unsqueeze(-1)

    def _backprop(self, delta: Tensor, hs: list[Tensor], slopes: list[Tensor]) -> list[Tensor]:
        # Ordinary backpropagation of sum(delta * d(x)); returns [dW_1, db_1, ..., db_out].
        grads = [delta.T @ hs[-1], delta.sum(0)]
        back = delta @ self.weights[-1]
        for layer in range(len(slopes) - 1, -1, -1):
            back = back * slopes[layer]
            grads = [back.T @ hs[layer], back.sum(0), *grads]
            if layer > 0:
                back = back @ self.weights[layer]
        return grads

    def _add_penalty_grad(
        self, grads: list[Tensor], slopes: list[Tensor], loss: str, penalty: float
    ) -> Tensor:
        # Adds the penalty's gradient to grads in place; returns the gradient norms (m, 1).
        # With S_l = diag(slope_l), grad_x d = W_1^T S_1 W_2^T S_2 ... W_L^T S_L w_out^T.
        # Backward vectors r_L = S_L w_out, r_l = S_l W_{l+1}^T r_{l+1}; forward vectors
        # f_0 = v = dP/d(grad_x d), f_l = S_l W_l f_{l-1}. Then dP/dW_l = r_l f_{l-1}^T and
        # dP/dw_out = f_L^T (biases only move the piecewise-constant slopes: zero gradient).
        rs = [slopes[-1] * self.weights[-1]]
        for layer in range(len(slopes) - 2, -1, -1):
            rs.insert(0, slopes[layer] * (rs[0] @ self.weights[layer + 1]))
        grad_x = rs[0] @ self.weights[0]
        norm = torch.linalg.vector_norm(grad_x, dim=-1, keepdim=True)
        m = grad_x.shape[0]
        if loss != "bce-r1":
            excess = norm - 1 if loss == "wgan-gp" else (norm - 1).relu()
            f = grad_x * (2 * penalty / m * excess / norm.clamp_min(1e-12))
        else:
            f = grad_x * (penalty / m)
        for layer, r in enumerate(rs):
            grads[2 * layer] = grads[2 * layer] + r.T @ f
            f = slopes[layer] * (f @ self.weights[layer].T)
        grads[-2] = grads[-2] + f.sum(0, keepdim=True)
        return norm


def _penalty_value(norm: Tensor, loss: str, penalty: float) -> Tensor:
    if loss == "bce-r1":
        return penalty / 2 * (norm**2).mean()
    excess = norm - 1 if loss == "wgan-gp" else (norm - 1).relu()
    return penalty * (excess**2).mean()


def critic_epoch(
    critic: MLPCritic,
    optimizer,
    fake: Tensor,
    real: Tensor,
    loss: str,
    penalty: float,
    generator: torch.Generator,
) -> Tensor:
    r"""Takes one critic step per row block of ``fake`` and ``real``.

    Arguments:
        critic: The critic, updated in place.
        optimizer: Its :class:`~._nn.FlatAdam`.
        fake: Simulated data ``(steps, m, features)``.
        real: Observed data ``(steps, m, features)``.
        loss: One of :data:`CRITIC_LOSSES`.
        penalty: Gradient penalty weight :math:`\lambda`.
        generator: Draws the interpolation weights :math:`\epsilon \sim U[0, 1]` (WGAN-GP).

    Returns:
        The last step's ``(loss, mean d(fake), mean d(real))``.
    """
    if loss != "bce-r1":
        eps = torch.rand(
            *fake.shape[:2], 1, generator=generator, device=fake.device, dtype=fake.dtype
        )
        hat = eps * real + (1 - eps) * fake
    else:
        hat = real
    batches = torch.cat([fake, real, hat], dim=1)
    steps = batches.shape[0]
    for step in range(steps):
        stats, grad = critic.loss_and_grad(batches[step], loss, penalty, stats=step == steps - 1)
        optimizer.step(grad)
    return stats
