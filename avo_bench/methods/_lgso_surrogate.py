r"""The local generative surrogate of L-GSO: a conditional flow, its local data and its sampler.

:class:`Surrogate` is a conditional neural spline flow :math:`p_\phi(x \mid c)` (``zuko``'s NSF,
Durkan et al. 2019) of the standardized simulator output :math:`x` given *local* coordinates
:math:`c = (u - \mu) / r` of the parameters (:math:`u` the proposal's working coordinates,
:math:`\mu` the current proposal mean, :math:`r` the trust-region half-widths), trained by
maximum likelihood and warm-started across iterations. Its samples
:math:`\tilde x = T_\phi^{-1}(z; c)`, :math:`z \sim N(0, I)` drawn from our generator, are
differentiable in :math:`c`, hence in the proposal's parameters: the pathwise gradient that
replaces AVO's score-function estimate. The paper's surrogates are a GAN and FFJORD (a
continuous flow); a discrete flow is the light, likelihood-trained choice.

:class:`TrustRegion` is the box around the proposal mean where simulations are drawn and the
surrogate is trusted; :func:`latin_hypercube` draws its points (the paper's Latin hypercube
design) and :func:`simulate_region` simulates them; :class:`Replay` keeps every simulation for
reuse while its parameters stay in the trust region (the paper's experience replay);
:class:`LocalData` standardizes (and, for counts, dequantizes) what the flow and the critic see.

References:
    | Black-Box Optimization with Local Generative Surrogates (Shirobokov et al., NeurIPS 2020)
    | https://arxiv.org/abs/2002.04632
    | Neural Spline Flows (Durkan et al., NeurIPS 2019) https://arxiv.org/abs/1906.04032
    | zuko (Rozet et al.) https://github.com/probabilists/zuko
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["LocalData", "Replay", "Surrogate", "TrustRegion", "latin_hypercube", "simulate_region"]


def latin_hypercube(n: int, low: Tensor, high: Tensor, generator: torch.Generator) -> Tensor:
    """``n`` points ``(n, d)`` of a random Latin hypercube design of the box ``[low, high]``.

    Each coordinate has exactly one point in each of ``n`` equal strata (McKay et al., 1979).
    """
    shape = (n, low.shape[-1])
    device, dtype = low.device, low.dtype
    strata = torch.argsort(torch.rand(shape, generator=generator, device=device), dim=0)
    jitter = torch.rand(shape, generator=generator, device=device, dtype=dtype)
    return low + (high - low) * (strata.to(dtype) + jitter) / n


class Replay:
    """Every simulated ``(u, x)`` pair, and those whose ``u`` lies in a box (experience replay)."""

    def __init__(self):
        self.u: list[Tensor] = []
        self.x: list[Tensor] = []

    def add(self, u: Tensor, x: Tensor) -> None:
        self.u.append(u)
        self.x.append(x)

    def inside(self, low: Tensor, high: Tensor) -> tuple[Tensor, Tensor]:
        """The stored ``(u, x)`` rows with ``low <= u <= high`` in every coordinate."""
        u, x = torch.cat(self.u), torch.cat(self.x)
        keep = ((u >= low) & (u <= high)).all(dim=1)
        return u[keep], x[keep]


def _init_(module: nn.Module, generator: torch.Generator) -> nn.Module:
    """``zuko``'s default initialisation (uniform :math:`\\pm 1/\\sqrt{fan_{in}}` weights and
    biases), drawn from ``generator`` instead of the global RNG."""
    with torch.no_grad():
        for name, param in module.named_parameters():
            if not name.endswith(("weight", "bias")):
                raise ValueError(f"unexpected parameter {name!r} in the surrogate flow")
            fan_in = dict(module.named_parameters())[name.rsplit(".", 1)[0] + ".weight"]
            bound = 1 / math.sqrt(fan_in.shape[-1])
            u = torch.rand(param.shape, generator=generator, device=param.device)
            param.copy_((2 * u - 1) * bound)
    return module


class Surrogate:
    """Conditional NSF :math:`p_\\phi(x \\mid c)` of standardized data given local coordinates.

    Arguments:
        features: Dimension of the flattened simulator output.
        context: Dimension of :math:`\\theta`.
        transforms: Autoregressive spline transforms of the flow.
        hidden: Hidden widths of each transform's network.
        lr: Adam step size.
        generator: Initialises the weights; on the target device.
    """

    def __init__(
        self,
        features: int,
        context: int,
        transforms: int,
        hidden: tuple[int, ...],
        lr: float,
        generator: torch.Generator,
    ):
        import zuko

        devices = [generator.device] if generator.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):  # zuko's default init draws globally
            flow = zuko.flows.NSF(features, context, transforms=transforms, hidden_features=hidden)
        self.flow = _init_(flow.to(generator.device), generator)  # our draws replace them
        self.features = features
        self.optimizer = torch.optim.Adam(self.flow.parameters(), lr=lr)

    def fit(self, c: Tensor, x: Tensor, steps: int, batch: int, generator: torch.Generator):
        """``steps`` Adam steps of maximum likelihood on minibatches of ``(c, x)``; the last
        minibatch's mean negative log-likelihood (of ``x`` standardized by its mean and
        standard deviation, which keeps it inside the splines' domain)."""
        scale = x.std(0) if len(x) > 1 else torch.ones_like(x[0])
        self.loc, self.scale = x.mean(0), torch.where(scale > 0, scale, torch.ones_like(scale))
        x = (x - self.loc) / self.scale
        loss = torch.tensor(math.nan)
        for _ in range(steps):
            rows = torch.randint(len(x), (min(batch, len(x)),), generator=generator,
                                 device=x.device)  # fmt: skip
            loss = -self.flow(c[rows]).log_prob(x[rows]).mean()
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
        return float(loss.detach())

    def sample(self, c: Tensor, generator: torch.Generator) -> Tensor:
        """One sample ``(n, features)`` per context row ``(n, context)``, differentiable in ``c``."""
        z = torch.randn(len(c), self.features, generator=generator, device=c.device)
        return self.loc + self.scale * self.flow(c).transform.inv(z)


class LocalData:
    """Observed rows, standardized (and dequantized if integer-valued), and the same map for
    simulations: what the flow and the critic see."""

    def __init__(self, x_obs: Tensor, generator: torch.Generator):
        x = x_obs.float().flatten(1)
        self.integer = bool(torch.equal(x, x.round()))
        x = self._dequantize(x, generator)
        scale = x.std(0) if len(x) > 1 else torch.ones_like(x[0])
        self.loc, self.scale = x.mean(0), torch.where(scale > 0, scale, torch.ones_like(scale))
        self.real = (x - self.loc) / self.scale

    def _dequantize(self, x: Tensor, generator: torch.Generator) -> Tensor:
        if not self.integer:
            return x
        return x + torch.rand(x.shape, generator=generator, device=x.device) - 0.5

    def __call__(self, x: Tensor, generator: torch.Generator) -> Tensor:
        return (self._dequantize(x.float().flatten(1), generator) - self.loc) / self.scale


class TrustRegion:
    """The trust region around the proposal mean, in working coordinates, and its local map."""

    def __init__(self, proposal, psi: Tensor, radius: float):
        mu, sigma, _ = proposal.unpack(psi.detach())
        self.mu, self.half = mu[0], torch.clamp(2 * sigma[0], min=radius)
        self.low = torch.maximum(self.mu - self.half, proposal.low.to(psi.device))
        self.high = torch.minimum(self.mu + self.half, proposal.high.to(psi.device))
        self.shift, self.scale = proposal.shift.to(psi.device), proposal.scale.to(psi.device)

    def project_(self, psi: Tensor) -> None:
        """Keeps the proposal mean (the first ``d`` entries of ``psi``) in the region."""
        d = len(self.mu)
        psi[:d] = torch.minimum(torch.maximum(psi[:d], self.low), self.high)

    def u(self, theta: Tensor) -> Tensor:
        return (theta - self.shift) / self.scale

    def theta(self, u: Tensor) -> Tensor:
        return self.shift + self.scale * torch.minimum(torch.maximum(u, self.low), self.high)

    def local(self, theta: Tensor) -> Tensor:
        return ((self.u(theta) - self.mu) / self.half).float()


def simulate_region(
    simulator, region: TrustRegion, points: int, m: int, data: LocalData, generator
):
    """``m`` simulations at the centre and at ``points`` Latin hypercube points of the region:
    their working coordinates ``(n, d)`` and standardized data ``(n, features)``."""
    u = latin_hypercube(points, region.low, region.high, generator)
    u = torch.cat([u, region.mu[None]]).repeat_interleave(m, dim=0)
    theta = region.theta(u)
    x = simulator.simulate(theta.to(data.real.device, torch.float32), generator)
    return region.u(theta), data(x, generator)
