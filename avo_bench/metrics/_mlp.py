r"""scikit-learn's ``MLPClassifier`` training, one network per cross-validation fold, batched.

This is the training of ``MLPClassifier(activation="relu", hidden_layer_sizes=(h, h),
solver="adam")`` with its defaults (``sklearn/neural_network/_multilayer_perceptron.py``,
``_stochastic_optimizers.py``, ``_base.py``), written as one tensor program that trains the
networks of all folds at once:

- initialization: weights and biases uniform in :math:`\pm\sqrt{6 / (\text{fan\_in} +
  \text{fan\_out})}` (Glorot with sklearn's bound for ReLU);
- epochs: the fold's training rows reshuffled, cut into minibatches of ``min(200, n)`` (the
  last one shorter), one Adam step per minibatch (learning rate 1e-3, betas 0.9 and 0.999,
  epsilon 1e-8, sklearn's bias correction folded into the step size);
- loss of a minibatch of size :math:`B`: mean log-loss (the probability clipped to machine
  epsilon as sklearn does) plus :math:`\alpha \lVert W \rVert^2 / (2 B)`, :math:`\alpha = 10^{-4}`,
  over the weights (not the biases), so the L2 gradient is :math:`\alpha W / B`;
- stopping, per fold: the epoch's training loss (the size-weighted mean of its minibatch losses)
  is compared with the best so far; after more than 10 consecutive epochs that do not improve
  on it by ``tol = 1e-4`` (or after 10,000 epochs) the fold stops and is scored on its test rows.

Finished folds leave the batch, so the cost is the sum of the folds' epochs, as in sklearn.
Differences from sklearn, none of which shows in the accuracies (``tests/test_c2st_agreement.py``
checks the arithmetic against sklearn's, ``benchmarks/c2st_agreement.py`` the values):

- the random numbers: torch's generator on the data's device, not numpy's ``RandomState``, so
  a fold's network is another draw of the same training, not the same network;
- float32 instead of float64;
- torch's fused Adam kernel (where it exists) adds epsilon to :math:`\sqrt{v_t / (1 -
  \beta_2^t)}` instead of :math:`\sqrt{v_t}`, a smaller epsilon by :math:`\sqrt{1 - \beta_2^t}`
  (it matters only for gradients near 1e-8);
- a row's margin is clamped at -60 (log-loss and gradient below 1e-26, negligible next to the
  L2 term), so that the backward pass does not produce subnormal floats, and CPU arithmetic
  treats subnormals as zero while training (x86 is many times slower on them).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["fold_accuracies"]

ALPHA = 1e-4
LEARNING_RATE = 1e-3
BETAS = (0.9, 0.999)
EPSILON = 1e-8
BATCH = 200
TOL = 1e-4
N_ITER_NO_CHANGE = 10
MAX_ITER = 10_000
_FUSED = hasattr(torch, "_fused_adam_")
# sklearn clips the predicted probability to [eps, 1 - eps] (float64 eps) in the loss, so a
# row's log-loss is at most MAX_LOSS; below the margin MIN_MARGIN a row's log-loss and gradient
# (< 1e-26) are negligible, and further down they reach subnormal floats (slow on CPUs).
MAX_LOSS = -math.log(np.finfo(np.float64).eps)
MIN_MARGIN = -60.0


def fold_accuracies(x: Tensor, y: Tensor, test: Tensor, generator: torch.Generator) -> Tensor:
    """Test accuracy of each fold's network, trained on the fold's other rows.

    Arguments:
        x: Inputs ``(n, d)``, float32.
        y: Labels ``(n,)`` in {0, 1}.
        test: Boolean mask ``(folds, n)`` of each fold's test rows.
        generator: Seeds the initialization and the minibatches (on ``x``'s device).

    Returns:
        Accuracies ``(folds,)``, float64 on the CPU.
    """
    with _flushing_subnormals(x.device):
        net = _Ensemble(len(test), x.shape[1], 10 * x.shape[1], generator)
        x = torch.cat([x, x.new_ones(len(x), 1)], dim=1)  # each layer's input has a 1 for bias
        sign = 1 - 2 * y.float()  # the log-loss of a logit z is softplus(sign * z)
        train = _TrainingRows(torch.cat([x, sign[:, None]], dim=1), test)
        accuracy = torch.zeros(len(test), dtype=torch.float64)
        active, stopping = np.arange(len(test)), _Stopping(len(test))
        while len(active):
            done = stopping.update(_epoch(net, train.shuffled(generator), train.plan))
            for row in np.flatnonzero(done):
                index = torch.nonzero(test[active[row]]).flatten()
                correct = (net.logits(x[index], row) > 0) == y[index].bool()
                accuracy[active[row]] = correct.double().mean().cpu()
            active = active[~done]
            if done.any() and len(active):
                for part in (net, train, stopping):
                    part.keep(~done)
    return accuracy


class _Stopping:
    """sklearn's rule on the training loss: stop after more than 10 epochs without improvement."""

    def __init__(self, folds: int):
        self.best = np.full(folds, np.inf)
        self.count = np.zeros(folds, dtype=int)
        self.epochs = 0

    def update(self, losses: np.ndarray) -> np.ndarray:
        """Records one epoch's losses of the remaining folds; returns which of them stop."""
        self.count = np.where(losses > self.best - TOL, self.count + 1, 0)
        self.best = np.minimum(self.best, losses)
        self.epochs += 1
        return (self.count > N_ITER_NO_CHANGE) | (self.epochs >= MAX_ITER)

    def keep(self, rows: np.ndarray) -> None:
        self.best, self.count = self.best[rows], self.count[rows]


class _Plan:
    """The minibatches of an epoch for folds of ``n_train`` rows (the same in every epoch).

    sklearn cuts a fold's shuffled rows into slices of ``min(200, n)``, the last one shorter.
    Folds differ by at most one row, so their minibatches coincide but for the last one or two:
    ``count[j]`` is the common size of minibatch ``j``, or 0 where the folds differ, and
    ``counts[j]`` each fold's number of rows in it (0 if it has none: no step then).
    """

    def __init__(self, n_train: np.ndarray):
        self.n_train = n_train
        self.batch = min(BATCH, int(n_train.max()))
        starts = np.arange(0, int(n_train.max()), self.batch)
        self.counts = np.minimum(np.maximum(n_train[None, :] - starts[:, None], 0), self.batch)
        uniform = (self.counts == self.counts[:, :1]).all(axis=1)
        self.count = np.where(uniform, self.counts[:, 0], 0).tolist()
        self.present = self.counts > 0


class _TrainingRows:
    """Each remaining fold's training rows ``(folds, n_max, d + 2)``: the inputs with their
    column of ones, then the sign ``1 - 2 y``. A fold with fewer rows is padded at the end."""

    def __init__(self, data: Tensor, test: Tensor):
        train = [torch.nonzero(~row).flatten() for row in test]
        n_train = np.array([len(index) for index in train])
        pad = int(n_train.max()) - n_train
        index = [torch.cat([t, t[:1].expand(p)]) for t, p in zip(train, pad, strict=True)]
        self.rows = data[torch.stack(index)]
        self.plan = _Plan(n_train)

    def keep(self, rows: np.ndarray) -> None:
        """Drops every fold but ``rows``, and the padding that none of them needs any more (the
        minibatches are cut from the width of the remaining folds' largest)."""
        self.plan = _Plan(self.plan.n_train[rows])
        index = torch.as_tensor(rows, device=self.rows.device)
        self.rows = self.rows[index, : int(self.plan.n_train.max())]

    def shuffled(self, generator: torch.Generator) -> Tensor:
        """The rows in a new random order per fold (sklearn reshuffles every epoch)."""
        device, n_train, n_max = self.rows.device, self.plan.n_train, self.rows.shape[1]
        perms = [torch.randperm(int(n), generator=generator, device=device) for n in n_train]
        if (n_train < n_max).any():  # the padding stays last
            perms = [torch.cat([p, torch.arange(len(p), n_max, device=device)]) for p in perms]
        order = torch.stack(perms).unsqueeze(-1).expand(-1, -1, self.rows.shape[2])
        return self.rows.gather(1, order)


def _epoch(net: _Ensemble, rows: Tensor, plan: _Plan) -> np.ndarray:
    """One epoch over shuffled training rows; returns each fold's epoch training loss.

    The loss is sklearn's: the size-weighted mean of the minibatch losses, each the mean
    log-loss plus the L2 term at the weights before the minibatch's step (float64).
    """
    x, sign = rows[..., :-1], rows[..., -1:]
    sums = x.new_empty(2, len(plan.count), len(x))  # summed log-loss, weights' norm
    batches = zip(x.split(plan.batch, 1), sign.split(plan.batch, 1), *sums, strict=True)
    coef = (sign / plan.batch).split(plan.batch, 1)
    for j, (inputs, signs, *out) in enumerate(batches):
        count = plan.count[j]
        if count:
            scaled = coef[j] if count == plan.batch else signs / count
            net.step(inputs, signs, scaled, ALPHA / count, out)
        else:
            net.ragged_step(inputs, signs, plan.counts[j], out)
    loss, norm = sums.double().cpu().numpy()
    return (loss.sum(axis=0) + 0.5 * ALPHA * (norm**2 * plan.present).sum(axis=0)) / plan.n_train


@contextmanager
def _flushing_subnormals(device: torch.device) -> Iterator[None]:
    """Subnormal floats (float32: |x| < 1.2e-38) read as zero on the CPU (this thread), then
    the previous mode back. Adam's first moment of a parameter without gradient (the bias of a
    dead ReLU unit) decays by 0.9 per step into that range, where x86 arithmetic is many times
    slower (training on memorized data took 20-30% longer)."""
    if device.type != "cpu":
        yield
        return
    before = bool((torch.tensor([1e-310], dtype=torch.float64) * 1.0)[0] == 0)
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(before)


class _Ensemble:
    r"""One ReLU MLP with two hidden layers per fold, trained together by Adam.

    The parameters of fold ``k`` are row ``k`` of one buffer ``(folds, P)``, seen per layer as
    batched augmented matrices ``(folds, fan_in + 1, fan_out)`` whose last row is the bias: a
    layer is one batched matmul of its input with a column of ones appended, and one matmul gives
    the gradient of weights and bias together. Gradients are written by hand: one step costs
    1.7-3.5x less CPU than autograd with ``torch.optim.Adam`` (fused or foreach; 1.9-3.5x less
    than foreach, 4-4.8x less than a ``torch.compile``d loss) at d = 2, 5, 10 (``python
    benchmarks/speed_metrics.py --sections c2st-numerics --compile``; gradients equal within
    1.5e-8). Inputs carry their column of ones.
    """

    def __init__(self, folds: int, d: int, hidden: int, generator: torch.Generator):
        self.shapes = [(d + 1, hidden), (hidden + 1, hidden), (hidden + 1, 1)]
        self.sizes = [fi * fo for fi, fo in self.shapes]
        device, blocks, masks = generator.device, [], []
        for fan_in, fan_out in self.shapes:
            bound = math.sqrt(6.0 / (fan_in - 1 + fan_out))  # weights and bias alike
            uniform = torch.rand(folds, fan_in * fan_out, generator=generator, device=device)
            blocks.append((2 * uniform - 1) * bound)
            mask = torch.ones(fan_in, fan_out, device=device)
            masks.append(mask.index_fill_(0, torch.tensor([fan_in - 1], device=device), 0))
        self.theta = torch.cat(blocks, dim=1)
        self.weight_mask = torch.cat([m.flatten() for m in masks])  # 0 on the biases (no L2)
        self.moment1, self.moment2 = torch.zeros_like(self.theta), torch.zeros_like(self.theta)
        self.steps = torch.zeros(len(self.theta), device=device)
        self._views()

    def _views(self) -> None:
        self.grad = torch.zeros_like(self.theta)
        self.params, self.grads = (
            [b.view(len(t), *s) for b, s in zip(t.split(self.sizes, 1), self.shapes, strict=True)]
            for t in (self.theta, self.grad)
        )
        tensors = (self.theta, self.grad, self.moment1, self.moment2, self.steps.view(-1, 1))
        self.rows = [list(t.unbind(0)) for t in tensors]
        # the weights (without bias row) that carry the gradient back, transposed
        self.back = [w[:, :-1].transpose(1, 2) for w in self.params[1:]]
        self.hidden = {}  # activation buffers with their column of ones, by minibatch size

    def keep(self, rows: np.ndarray) -> None:
        """Drops every fold but ``rows`` (finished folds leave the batch)."""
        index = torch.as_tensor(np.flatnonzero(rows), device=self.theta.device)
        self.theta, self.moment1, self.moment2, self.steps = (
            t.index_select(0, index) for t in (self.theta, self.moment1, self.moment2, self.steps)
        )
        self._views()

    def logits(self, x: Tensor, row: int) -> Tensor:
        """Logits ``(n,)`` of fold ``row`` at ``x`` ``(n, d + 1)``."""
        w1, w2, w3 = (p[row] for p in self.params)
        ones = x[:, -1:]
        h1 = torch.cat([torch.mm(x, w1).relu_(), ones], dim=1)
        h2 = torch.cat([torch.mm(h1, w2).relu_(), ones], dim=1)
        return torch.mm(h2, w3).squeeze(-1)

    def _forward(self, x: Tensor) -> tuple[list[Tensor], Tensor]:
        """Hidden activations of ``x`` (buffers and views, see ``_hidden``) and logits."""
        hidden = self.hidden.get(x.shape[1]) or self._hidden(x)
        h1, h2, relu1, relu2 = hidden[:4]
        w1, w2, w3 = self.params
        torch.clamp(torch.bmm(x, w1), min=0, out=relu1)
        torch.clamp(torch.bmm(h1, w2), min=0, out=relu2)
        return hidden, torch.bmm(h2, w3)

    def _hidden(self, x: Tensor) -> list[Tensor]:
        """Activation buffers ``(folds, B, hidden + 1)`` whose last column holds ones, their
        ReLU part and their transposes, kept per minibatch size."""
        shape = (len(self.theta), x.shape[1], self.shapes[1][0])
        h1, h2 = x.new_ones(shape), x.new_ones(shape)
        views = [h1, h2, h1[..., :-1], h2[..., :-1], h1.transpose(1, 2), h2.transpose(1, 2)]
        self.hidden[x.shape[1]] = views
        return views

    def step(
        self, x: Tensor, sign: Tensor, coef: Tensor, l2: float, out: tuple[Tensor, Tensor]
    ) -> None:
        """One Adam step of every fold on a full minibatch ``x`` ``(folds, B, d + 1)``.

        ``sign`` is ``1 - 2 y`` and ``coef`` is ``sign / B``, both ``(folds, B, 1)``; ``l2`` is
        ``alpha / B``. Writes the minibatch's summed log-loss and the weights' norm (before the
        step) into ``out``, ``(folds,)`` each.
        """
        loss = self._backward(x, sign, coef, l2, out[1])
        torch.sum(loss, dim=(1, 2), out=out[0])
        self._adam()

    def ragged_step(
        self, x: Tensor, sign: Tensor, counts: np.ndarray, out: tuple[Tensor, Tensor]
    ) -> None:
        """A last minibatch that holds ``counts[k]`` rows of fold ``k`` (the rest is padding)."""
        count = torch.as_tensor(counts, dtype=x.dtype, device=x.device)
        weight = (torch.arange(x.shape[1], device=x.device) < count[:, None]).unsqueeze(-1)
        scale = 1 / count.clamp(min=1)
        loss = self._backward(
            x, sign, sign * weight * scale[:, None, None], ALPHA * scale[:, None], out[1]
        )
        torch.sum(loss.mul_(weight), dim=(1, 2), out=out[0])
        self._adam(np.flatnonzero(counts > 0))

    def _backward(
        self, x: Tensor, sign: Tensor, coef: Tensor, l2: float | Tensor, norm: Tensor
    ) -> Tensor:
        """Gradients into ``self.grad``, the weights' norm into ``norm``; returns the log-losses."""
        (_, _, relu1, relu2, h1t, h2t), u = self._forward(x)
        u.mul_(sign).clamp_(min=MIN_MARGIN, max=MAX_LOSS)  # the log-loss is softplus(u)
        w2t, w3t = self.back
        g1, g2, g3 = self.grads
        weights = self.theta * self.weight_mask
        torch.linalg.vector_norm(weights, dim=1, out=norm)
        delta = torch.sigmoid(u).mul_(coef)  # d loss / d logit = (sigmoid(logit) - y) / B
        torch.bmm(h2t, delta, out=g3)
        delta = _relu_backward(delta * w3t, relu2)
        torch.bmm(h1t, delta, out=g2)
        delta = _relu_backward(torch.bmm(delta, w2t), relu1)
        torch.bmm(x.transpose(1, 2), delta, out=g1)
        if isinstance(l2, Tensor):
            self.grad.addcmul_(weights, l2)
        else:
            self.grad.add_(weights, alpha=l2)
        return F.softplus(u)

    def _adam(self, rows: np.ndarray | None = None) -> None:
        """An Adam step of the folds ``rows`` (default all), each with its own step count."""
        if rows is None:
            self.steps += 1
            _adam(*self.rows)
        else:
            self.steps[torch.as_tensor(rows, device=self.steps.device)] += 1
            _adam(*([t[r] for r in rows] for t in self.rows))


def _relu_backward(grad: Tensor, activation: Tensor) -> Tensor:
    """``grad`` where the ReLU's output ``activation`` is positive, else 0 (one fused op)."""
    return torch.ops.aten.threshold_backward(grad, activation, 0)


def _adam(
    params: list[Tensor],
    grads: list[Tensor],
    moment1: list[Tensor],
    moment2: list[Tensor],
    steps: list[Tensor],
) -> None:
    """Adam (Kingma & Ba 2015, https://arxiv.org/abs/1412.6980) with sklearn's constants.

    ``steps`` holds each tensor's step count, already incremented for this step.

    torch's fused kernel where it exists (one pass over the parameters) and sklearn's update
    otherwise. The two differ only in where epsilon enters: sklearn adds it to
    :math:`\\sqrt{v_t}`, torch to :math:`\\sqrt{v_t / (1 - \\beta_2^t)}`, an epsilon smaller by
    :math:`\\sqrt{1 - \\beta_2^t}` (<= 1) in torch's.
    """
    beta1, beta2 = BETAS
    if _FUSED:
        torch._fused_adam_(
            params, grads, moment1, moment2, [], steps, lr=LEARNING_RATE, beta1=beta1,
            beta2=beta2, weight_decay=0.0, eps=EPSILON, amsgrad=False, maximize=False,
        )  # fmt: skip
        return
    for theta, grad, m, v, t in zip(params, grads, moment1, moment2, steps, strict=True):
        size = LEARNING_RATE * math.sqrt(1 - beta2 ** t.item()) / (1 - beta1 ** t.item())
        m.lerp_(grad, 1 - beta1)
        v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        theta.addcdiv_(m, v.sqrt().add_(EPSILON), value=-size)
