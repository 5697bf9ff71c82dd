r"""Proposal distributions :math:`q(\theta \mid \psi)` over simulator parameters.

One family covers both AVO proposals: a mixture of :math:`K` mean-field Gaussians, each
truncated to the prior's support. :math:`K = 1` is the paper's mean-field Gaussian
:math:`(\mu, \log \sigma)`; :math:`K > 1` is the flexible proposal for population tasks, whose
answer is a distribution rather than a point.

The prior support is respected exactly: every component is a product of truncated normals
(rejection sampling from the untruncated Gaussian gives the same law), sampled without rejection
by the inverse CDF and with the truncation constant :math:`Z(\psi)` inside :math:`\log q`, so the
score function :math:`\nabla_\psi \log q` stays unbiased. For unbounded priors it is an ordinary
Gaussian.

The parameters live in *working coordinates* :math:`u = (\theta - a) / s`: ``"standardized"``
maps a box prior to :math:`[0, 1]^d` (as the AVO reference code does for the Weinberg
experiment) and a Gaussian prior to z-scores, which makes step sizes comparable across
parameters; ``"raw"`` uses :math:`\theta` itself (the paper's Poisson experiment).

References:
    | Adversarial Variational Optimization of Non-Differentiable Simulators
    | (Louppe, Hermans and Cranmer, 2019) https://arxiv.org/abs/1707.07113
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["BASELINES", "COORDINATES", "MixtureProposal", "make_proposal", "score_function_grad"]

COORDINATES = ("standardized", "raw")
BASELINES = ("optimal", "mean", "none")

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)
_BIG = 1e30
_TAIL = 1e6  # clamp standardized bounds: finite gradients at infinite ones (no inf * 0)


def _log_mass(alpha: Tensor, beta: Tensor) -> Tensor:
    """:math:`\\log(\\Phi(\\beta) - \\Phi(\\alpha))`, stable in both tails."""
    alpha, beta = alpha.clamp(-_TAIL, _TAIL), beta.clamp(-_TAIL, _TAIL)
    flip = alpha > 0  # both bounds in the upper tail: use the mirror image
    a, b = torch.where(flip, -beta, alpha), torch.where(flip, -alpha, beta)
    log_b = torch.special.log_ndtr(b)
    return log_b + torch.log1p(-torch.exp(torch.special.log_ndtr(a) - log_b))


def _truncated_normal(mu: Tensor, sigma: Tensor, low: Tensor, high: Tensor, unif: Tensor):
    # Inverse-CDF draw of N(mu, sigma^2) truncated to [low, high], mirrored in the upper tail.
    alpha = ((low - mu) / sigma).clamp(-_TAIL, _TAIL)
    beta = ((high - mu) / sigma).clamp(-_TAIL, _TAIL)
    flip = alpha > 0
    a, b = torch.where(flip, -beta, alpha), torch.where(flip, -alpha, beta)
    # In log space: torch's ndtr underflows to 0 below about -8 sigma, log_ndtr does not.
    log_b = torch.special.log_ndtr(b)
    ratio = torch.exp(torch.special.log_ndtr(a) - log_b)
    cdf = torch.exp(log_b + torch.log(unif + (1 - unif) * ratio))
    z = torch.special.ndtri(cdf.clamp(1e-300, 1 - 1e-16))
    z = torch.where(flip, -z, z)
    return torch.minimum(torch.maximum(mu + sigma * z, low), high)


class MixtureProposal:
    r"""Mixture of :math:`K` mean-field Gaussians truncated to the box :math:`[low, high]`.

    :math:`q(\theta \mid \psi) = \sum_k w_k \prod_j \mathcal{TN}(u_j; \mu_{kj}, \sigma_{kj}^2,
    [l_j, h_j]) / s_j` with :math:`u = (\theta - a) / s`. The flat parameter vector is
    :math:`\psi = (\mu, \log \sigma)` (each ``(K, d)``), followed by the mixture logits
    ``(K,)`` when :math:`K > 1`.

    Arguments:
        shift: Offset :math:`a` of the working coordinates, shape ``(d,)``.
        scale: Scale :math:`s > 0` of the working coordinates, shape ``(d,)``.
        low: Lower prior bounds in parameter units (``-inf`` allowed), shape ``(d,)``.
        high: Upper prior bounds in parameter units (``inf`` allowed), shape ``(d,)``.
        components: Number of mixture components :math:`K`.
    """

    def __init__(self, shift: Tensor, scale: Tensor, low: Tensor, high: Tensor, components: int):
        self.shift, self.scale = shift.double(), scale.double()
        # Infinite bounds become huge finite ones: same values, but no inf * 0 = NaN in the
        # gradients of the truncation constant.
        low, high = low.double().clamp(min=-_BIG), high.double().clamp(max=_BIG)
        self.low, self.high = (low - self.shift) / self.scale, (high - self.shift) / self.scale
        self.components, self.dim = components, shift.numel()

    @property
    def num_params(self) -> int:
        k, d = self.components, self.dim
        return 2 * k * d + (k if k > 1 else 0)

    def init_params(self, mean: Tensor, std: Tensor, generator: torch.Generator) -> Tensor:
        """:math:`\\psi` for a proposal centred at ``mean`` with spread ``std`` (parameter units).

        With :math:`K > 1`, component means are drawn from that (truncated) Gaussian and each
        component gets half its spread, so the mixture starts roughly as wide.
        """
        mu = ((mean.double() - self.shift) / self.scale).to(generator.device)
        sigma = (std.double() / self.scale).to(generator.device)
        mus = mu.expand(self.components, self.dim)
        if self.components > 1:
            unif = torch.rand(mus.shape, generator=generator, device=mu.device, dtype=mu.dtype)
            low, high = self.low.to(mu.device), self.high.to(mu.device)
            mus = _truncated_normal(mu, sigma, low, high, unif)
            sigma = sigma / 2
        log_sigma = sigma.log().expand(self.components, self.dim)
        logits = torch.zeros(self.components if self.components > 1 else 0, dtype=mu.dtype)
        return torch.cat([mus.reshape(-1), log_sigma.reshape(-1), logits.to(mu.device)])

    def unpack(self, psi: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(mu, sigma, log_weights)`` in working coordinates from ``psi`` of shape ``(..., P)``.

        Shapes ``(..., K, d)``, ``(..., K, d)`` and ``(..., K)``; a batch of parameter vectors
        gives per-sample score functions in one backward pass.
        """
        k, d = self.components, self.dim
        batch = psi.shape[:-1]
        mu = psi[..., : k * d].reshape(*batch, k, d)
        sigma = psi[..., k * d : 2 * k * d].reshape(*batch, k, d).exp()
        logits = psi[..., 2 * k * d :] if k > 1 else psi.new_zeros(*batch, 1)
        return mu, sigma, torch.log_softmax(logits, dim=-1)

    def sample(self, psi: Tensor, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """``n`` draws, differentiable in ``psi`` given the components (pathwise gradients).

        Returns:
            ``(theta, component)``: parameters ``(n, d)`` in parameter units (``psi``'s dtype)
            and the component index of each draw ``(n,)``.
        """
        mu, sigma, log_w = self.unpack(psi.double())
        device = psi.device
        if self.components > 1:
            k = torch.multinomial(log_w.detach().exp(), n, replacement=True, generator=generator)
        else:
            k = torch.zeros(n, dtype=torch.long, device=device)
        unif = torch.rand(n, self.dim, generator=generator, device=device, dtype=torch.float64)
        low, high = self.low.to(device), self.high.to(device)
        u = _truncated_normal(mu[k], sigma[k], low, high, unif)
        return self._to_theta(u).to(psi.dtype), k

    def _to_theta(self, u: Tensor) -> Tensor:
        theta = self.shift.to(u.device) + self.scale.to(u.device) * u
        # Rounding must not push a draw out of the closed support the simulator checks.
        low = self.shift.to(u.device) + self.scale.to(u.device) * self.low.to(u.device)
        high = self.shift.to(u.device) + self.scale.to(u.device) * self.high.to(u.device)
        return torch.minimum(torch.maximum(theta, low), high)

    def log_prob(self, theta: Tensor, psi: Tensor) -> Tensor:
        """:math:`\\log q(\\theta \\mid \\psi)`, shape ``(n,)``, differentiable in ``psi``.

        Arguments:
            theta: Parameters ``(n, d)`` inside the support.
            psi: Proposal parameters ``(P,)``, or ``(n, P)``: one vector per row.
        """
        mu, sigma, log_w = self.unpack(psi)
        shift, scale = self.shift.to(psi), self.scale.to(psi)
        u = ((theta.to(psi) - shift) / scale).unsqueeze(-2)  # (n, 1, d)
        low, high = self.low.to(psi), self.high.to(psi)
        z = (u - mu) / sigma
        log_z = _log_mass((low - mu) / sigma, (high - mu) / sigma)
        per_dim = -0.5 * z**2 - sigma.log() - _LOG_SQRT_2PI - log_z  # (n, K, d)
        log_comp = per_dim.sum(-1) + log_w
        return torch.logsumexp(log_comp, dim=-1) - scale.log().sum()

    def entropy(self, psi: Tensor) -> Tensor | None:
        """Closed-form differential entropy (parameter units) for :math:`K = 1`, else ``None``.

        For a normal truncated to :math:`[\\alpha, \\beta]` (standardised bounds) with mass
        :math:`Z`: :math:`H = \\log(\\sqrt{2 \\pi e}\\, \\sigma Z)
        + (\\alpha \\varphi(\\alpha) - \\beta \\varphi(\\beta)) / (2 Z)`.
        """
        if self.components > 1:
            return None
        mu, sigma, _ = self.unpack(psi)
        alpha = ((self.low.to(psi) - mu) / sigma).clamp(-_TAIL, _TAIL)
        beta = ((self.high.to(psi) - mu) / sigma).clamp(-_TAIL, _TAIL)
        log_z = _log_mass(alpha, beta)

        def edge(t: Tensor) -> Tensor:  # t * phi(t) / Z, zero at infinite bounds
            value = t * torch.exp(-0.5 * t**2 - _LOG_SQRT_2PI - log_z)
            return torch.where(torch.isfinite(t), value, torch.zeros_like(value))

        per_dim = 0.5 + _LOG_SQRT_2PI + sigma.log() + log_z + (edge(alpha) - edge(beta)) / 2
        return per_dim.sum() + self.scale.to(psi).log().sum()

    def summary(self, psi: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and standard deviation per parameter (parameter units) of the untruncated mixture."""
        mu, sigma, log_w = self.unpack(psi.detach().double())
        w = log_w.exp().unsqueeze(-1)
        mean = (w * mu).sum(0)
        var = (w * (sigma**2 + mu**2)).sum(0) - mean**2
        scale = self.scale.to(psi.device)
        return self.shift.to(psi.device) + scale * mean, scale * var.clamp_min(0).sqrt()


def make_proposal(simulator, config, generator: torch.Generator) -> tuple[MixtureProposal, Tensor]:
    """The proposal family and initial parameters that an AVO ``config`` asks for.

    Arguments:
        simulator: Provides ``prior`` (``low``, ``high``, ``mean()``, ``stddev()``),
            ``theta_dim`` and ``kind``.
        config: Reads ``proposal``, ``components``, ``coordinates``, ``init_mean``,
            ``init_std``, ``init_scale`` and ``method`` (the name in error messages).
        generator: Draws the initial mixture component means.

    Returns:
        ``(proposal, psi)``.

    Raises:
        ValueError: For an initial mean outside the prior support or of the wrong length.
    """
    prior, d = simulator.prior, simulator.theta_dim
    if config.coordinates == "raw":
        shift, scale = torch.zeros(d, dtype=torch.float64), torch.ones(d, dtype=torch.float64)
    elif bool(torch.isfinite(prior.low).all() and torch.isfinite(prior.high).all()):
        shift, scale = prior.low.double(), (prior.high - prior.low).double()
    else:
        shift, scale = prior.mean().double(), prior.stddev().double()
    kind = config.proposal
    if kind == "auto":
        kind = "mixture" if simulator.kind == "population" else "gaussian"
    components = config.components if kind == "mixture" else 1
    proposal = MixtureProposal(shift, scale, prior.low, prior.high, components)
    mean = _vector(config.init_mean, "init_mean", d, prior.mean(), config.method)
    default_std = config.init_scale * prior.stddev().double()
    std = _vector(config.init_std, "init_std", d, default_std, config.method)
    if bool(((mean < prior.low) | (mean > prior.high)).any()):
        raise ValueError(
            f"{config.method}: init_mean must lie inside the prior support "
            f"[{prior.low.tolist()}, {prior.high.tolist()}], got {config.init_mean!r}"
        )
    return proposal, proposal.init_params(mean, std, generator)


def _vector(value, field: str, d: int, default: Tensor, method: str) -> Tensor:
    if value is None:
        return default.double()
    if len(value) not in (1, d):
        raise ValueError(f"{method}: {field} must have 1 or {d} values, got {value!r}")
    return torch.tensor(value, dtype=torch.float64).expand(d).clone()


# score-function gradient -------------------------------------------------------------------------


def _baseline(f: Tensor, scores: Tensor, kind: str) -> Tensor:
    # Leave-one-out estimates: the baseline of sample m never uses sample m, so the gradient
    # estimate stays unbiased.
    m = f.shape[0]
    if kind == "none":
        return torch.zeros_like(f).unsqueeze(-1)
    if kind == "mean":
        return ((f.sum() - f) / (m - 1)).unsqueeze(-1)
    weights = scores**2  # optimal per-parameter constant: E[f s_j^2] / E[s_j^2]
    numerator = (f.unsqueeze(-1) * weights).sum(0) - f.unsqueeze(-1) * weights
    denominator = weights.sum(0) - weights
    safe = denominator > 1e-12 * weights.sum(0).clamp_min(1e-300)
    return torch.where(safe, numerator / denominator.clamp_min(1e-300), 0.0)


def score_function_grad(
    proposal: MixtureProposal,
    psi: Tensor,
    theta: Tensor,
    losses: Tensor,
    config,
) -> tuple[Tensor, dict[str, float]]:
    r"""Score-function estimate of :math:`\nabla_\psi [U_g + \gamma H(q_\psi)]`.

    :math:`\hat g = \frac{1}{M} \sum_m (L_m - b_m) \nabla_\psi \log q(\theta_m \mid \psi)`.
    Baselines :math:`b_m` (all leave-one-out, hence unbiased): ``"none"`` (plain REINFORCE),
    ``"mean"`` (mean loss of the other samples) and ``"optimal"``, the default: per
    coordinate :math:`b_j = E[L s_j^2] / E[s_j^2]`, the constant minimising the variance of
    each gradient coordinate (Peters and Schaal, 2008), which matters as :math:`q` narrows and
    the scores of :math:`\log \sigma` grow. The entropy gradient is exact for the Gaussian and
    a score-function estimate (:math:`-\gamma \log q` added to the loss) for mixtures.

    Arguments:
        proposal: The proposal family.
        psi: Its parameters ``(P,)``.
        theta: Samples ``(M, d)`` drawn from :math:`q(\cdot \mid \psi)`.
        losses: Per-sample :math:`L_g` ``(M,)`` of their simulations.
        config: An AVO configuration (reads ``gamma`` and ``baseline``).

    Returns:
        The gradient ``(P,)`` and diagnostics: the mean loss and the summed variance of the
        gradient estimate.

    References:
        | Reinforcement Learning of Motor Skills with Policy Gradients (Peters and Schaal, 2008)
        | https://doi.org/10.1016/j.neunet.2008.02.003
        | Black Box Variational Inference (Ranganath et al., 2014) https://arxiv.org/abs/1401.0118
    """
    f = losses.detach().to(psi.dtype)
    batch = psi.detach().expand(theta.shape[0], -1).clone().requires_grad_(True)
    log_q = proposal.log_prob(theta, batch)
    (scores,) = torch.autograd.grad(log_q.sum(), batch)
    leaf = psi.detach().requires_grad_(True)
    entropy = proposal.entropy(leaf)
    if entropy is None and config.gamma > 0:
        f = f - config.gamma * log_q.detach()
    terms = (f.unsqueeze(-1) - _baseline(f, scores, config.baseline)) * scores
    grad = terms.mean(0)
    if entropy is not None and config.gamma > 0:
        grad = grad + config.gamma * torch.autograd.grad(entropy, leaf)[0]
    variance = terms.var(0).sum() / theta.shape[0]
    return grad, {"generator_loss": float(losses.mean()), "grad_var": float(variance)}
