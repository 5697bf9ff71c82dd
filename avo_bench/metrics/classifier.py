r"""Classifier two-sample test (C2ST): cross-validated accuracy of a classifier telling a from b.

0.5 means the classifier cannot tell the sets apart; 1 means it always can. For equal sizes the
best possible accuracy is :math:`(1 + \mathrm{TV}(P, Q)) / 2`, e.g. :math:`\Phi(\Delta / 2)`
for two Gaussians with a common covariance and Mahalanobis distance :math:`\Delta` between means.

Two variants, sharing the preprocessing and the folds:

- ``"sbibm"``: exactly the protocol of sbibm (``sbibm/metrics/c2st.py``; Lueckmann et al. 2021),
  for comparability with published tables: z-score both sets with the mean and (unbiased)
  standard deviation of ``a``; scikit-learn ``MLPClassifier(activation="relu",
  hidden_layer_sizes=(10 d, 10 d), max_iter=10000, solver="adam", random_state=seed)``;
  ``KFold(n_splits=5, shuffle=True, random_state=seed)`` (not stratified); mean test accuracy
  over the folds. sbibm's default seed is 1; pass ``seed=1`` to match its settings.
- ``"fast"`` (default): the same network, loss (log-loss), initialization (uniform Glorot with
  sklearn's ReLU gain), optimizer (Adam with sklearn's constants), minibatch size (200) and the
  same folds, but the five fold models are trained at once as one batched tensor program with
  hand-written gradients, in float32 on the inputs' device, for a fixed 5 epochs but at least
  250 Adam steps, at a learning rate of 3e-3 (three times sklearn's: with 1e-3, 250 steps
  underfit a scale change in 1-D, where the layers have only 10 units). sbibm instead trains
  until the training loss stops improving by 1e-4 for 10 epochs: 20-50 epochs in d <= 2 (the
  fast variant's saving at 10,000 samples), but in d = 10 at a few thousand samples its
  100-unit layers keep memorizing for thousands of epochs. sklearn's L2 term (``alpha=1e-4``
  over the batch size) is left out.

Agreement, measured on Gaussian pairs in d <= 2 (equal; mean shift; scale x1.5 and x3; well
separated) on fresh seeds: at 1,000 and 10,000 samples per side the two variants agree within
0.02, mostly within 0.005 (the largest gaps on equal distributions, where both are noise around
0.5); at 200 per side within 0.03, the size of either value's own sampling noise. The fast
one is 5-13x cheaper in CPU time at 1,000 per side and 11-26x at 10,000
(``benchmarks/speed_metrics.py``).

In d = 10 both classifiers overfit, so the value depends on how long each one trains and on its
seed. sbibm's own value on one data set moves with its seed: 0.508, 0.557, 0.543 for seeds
1, 2, 3 (300 per side, mean shift, best accuracy 0.599), and its run time from 4 s to 113 s;
the fast variant gives 0.528-0.565 on seeds 1-5. Agreement at seed 1 on fresh float64 data
(variant fast minus sbibm, 10 dims, shift per dimension, b's scale):

=====  =====  =====  ======  ======  ======
n      shift  scale  fast    sbibm   diff
=====  =====  =====  ======  ======  ======
300    0.32   1.2    0.6517  0.6517  0.000
300    0      1      0.4917  0.4867  +0.005
300    0.16   1      0.5167  0.5200  -0.003
1000   0      1      0.5045  0.4985  +0.006
1000   0.32   1.2    0.6990  0.6550  +0.044
=====  =====  =====  ======  ======  ======

There the fast variant took 0.35-0.48 s, sbibm 3.4-164 s (10-340x). At 1,000 per side the
fast variant is *not* comparable with sbibm on separated sets (+0.044 above; an earlier case,
best accuracy 0.682: sbibm 0.612 after 950 s, fast 0.643): its 250 steps overfit less than
sbibm's training to the stopping rule, so it sits nearer the best accuracy. A variant copying
sklearn's training (learning rate 1e-3, L2 1e-4, each fold stopping when its epoch training
loss has not improved by 1e-4 for 10 epochs) gave 0.658 on the +0.044 case (9.7 s, 17x
cheaper than sbibm), but at 300 per side it was no closer (+0.033, -0.005, +0.022 against the
fast variant's +0.020, -0.007, +0.013 on float32 data: mean shift 0.5 / sqrt(10), equal,
shift 1 / sqrt(10) with scale 1.2) and it is untested in d <= 2, so it is not adopted yet.
In d = 10, use ``variant="sbibm"`` (and several seeds) where comparison with published tables
is the point; sbibm's own seed spread, ~0.05 at 300 per side, bounds any such comparison.
At 10,000 per side in d = 10 the fast variant gives 0.593 for a best of 0.599.

Unequal sizes: the larger set is first subsampled, without replacement (seeded by ``seed``), to
the size of the smaller one. Without it the classifier learns the class prior, and chance is the
majority fraction instead of 0.5 (0.909 for 10,000 reference samples against 1,000 returned).
sbibm always compares equal sizes (10,000 each), where the two protocols coincide.

Both variants first sort the rows of each set lexicographically, so that the folds, hence the
value, do not depend on the order of the samples (sbibm assigns folds in input order: the same
protocol on a fixed permutation of the data).

References:
    Lopez-Paz & Oquab, "Revisiting Classifier Two-Sample Tests", ICLR 2017,
    https://arxiv.org/abs/1610.06545
    Lueckmann et al., "Benchmarking Simulation-Based Inference", AISTATS 2021,
    https://arxiv.org/abs/2101.04653
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch
from torch import Tensor

from ._checks import as_pair, canonical_order

__all__ = ["C2ST_VARIANTS", "c2st"]

C2ST_VARIANTS = ("fast", "sbibm")
FAST_BATCH = 200
FAST_LR = 3e-3
FAST_MIN_EPOCHS = 5
FAST_MIN_STEPS = 250


def c2st(
    a: Tensor | np.ndarray,
    b: Tensor | np.ndarray,
    *,
    variant: str = "fast",
    seed: int = 0,
    n_folds: int = 5,
) -> float:
    """Classifier two-sample test accuracy between ``a`` and ``b``.

    Arguments:
        a: Samples, shape ``(n, d)`` or ``(n,)``; their mean and standard deviation z-score
            both sets (sbibm passes the reference posterior samples here; a point mass, with
            zero spread, cannot be z-scored and raises ``ValueError``).
        b: Samples, shape ``(m, d)`` or ``(m,)``. If ``m != n`` the larger set is subsampled
            to the smaller size (see the module's docstring), so that chance is 0.5.
        variant: ``"fast"`` or ``"sbibm"`` (see the module's docstring).
        seed: Seeds the folds and the classifiers' initialization and minibatches.
        n_folds: Number of cross-validation folds, ``>= 2`` and at most the number of samples.

    Returns:
        The mean held-out accuracy over the folds, in ``[0, 1]`` (0.5 is ideal).
    """
    if variant not in C2ST_VARIANTS:
        raise ValueError(f"c2st: variant must be one of {C2ST_VARIANTS}, got {variant!r}")
    if not isinstance(n_folds, int) or n_folds < 2:
        raise ValueError(f"c2st: n_folds must be an integer >= 2, got {n_folds!r}")
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"c2st: seed must be an integer >= 0, got {seed!r}")
    a, b = as_pair(a, b, min_n=2)
    a, b = canonical_order(a), canonical_order(b)  # folds must not depend on the row order
    a, b = _balanced(a, b, seed)
    if len(a) + len(b) < n_folds:
        raise ValueError(
            f"c2st: n_folds={n_folds} exceeds the {len(a) + len(b)} samples (after subsampling "
            "the larger set to the smaller size)"
        )
    x, y = _zscored_data(a, b)
    folds = _test_folds(len(x), n_folds, seed)
    if variant == "sbibm":
        return _sbibm_accuracy(x, y, folds, seed)
    return _fast_accuracy(x, y, folds, seed)


def _balanced(a: Tensor, b: Tensor, seed: int) -> tuple[Tensor, Tensor]:
    """``a`` and ``b`` with the larger one subsampled (seeded, order kept) to the smaller size."""
    n = min(len(a), len(b))
    g = torch.Generator().manual_seed(seed)
    if len(a) > n:
        a = a[torch.randperm(len(a), generator=g)[:n].sort().values.to(a.device)]
    if len(b) > n:
        b = b[torch.randperm(len(b), generator=g)[:n].sort().values.to(b.device)]
    return a, b


def _zscored_data(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """Pooled samples z-scored with ``a``'s statistics, and labels (0 for a, 1 for b)."""
    std = a.std(dim=0)
    if (std == 0).any():
        dims = torch.nonzero(std == 0).flatten().tolist()
        raise ValueError(f"c2st: a has zero variance in dimensions {dims}; cannot z-score")
    x = (torch.cat([a, b]) - a.mean(dim=0)) / std
    y = torch.cat([a.new_zeros(len(a)), a.new_ones(len(b))])
    return x, y


def _test_folds(n: int, n_folds: int, seed: int) -> list[np.ndarray]:
    """Test indices of sklearn's shuffled ``KFold``, as sbibm uses them."""
    from sklearn.model_selection import KFold

    kfold = KFold(n_splits=n_folds, shuffle=True, random_state=seed)
    return [test for _, test in kfold.split(np.zeros((n, 1)))]


def _sbibm_accuracy(x: Tensor, y: Tensor, folds: list[np.ndarray], seed: int) -> float:
    """sbibm's classifier on each fold (as ``cross_val_score`` would run it)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    x, y = x.cpu().numpy(), y.cpu().numpy()
    hidden = 10 * x.shape[1]
    scores = []
    for test in folds:
        train = np.setdiff1d(np.arange(len(x)), test)
        classifier = MLPClassifier(
            activation="relu",
            hidden_layer_sizes=(hidden, hidden),
            max_iter=10000,
            solver="adam",
            random_state=seed,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            classifier.fit(x[train], y[train])
        scores.append(np.mean(classifier.predict(x[test]) == y[test]))
    return float(np.mean(scores))


def _fast_accuracy(x: Tensor, y: Tensor, folds: list[np.ndarray], seed: int) -> float:
    """The same classifiers, one per fold, trained together (see the module's docstring)."""
    n, d = x.shape
    test = torch.zeros(len(folds), n, dtype=torch.bool, device=x.device)
    for i, index in enumerate(folds):
        test[i, torch.as_tensor(index, device=x.device)] = True
    generator = torch.Generator(x.device).manual_seed(seed)
    net = _Ensemble(len(folds), d, 10 * d, generator)
    n_train = int((~test).sum(dim=1).min())
    x, y = x.float(), y.float()
    per_epoch = math.ceil(n_train / FAST_BATCH)
    epochs = max(FAST_MIN_EPOCHS, math.ceil(FAST_MIN_STEPS / per_epoch))
    for _ in range(epochs):
        # A random order of each fold's training rows (test rows sort last and are cut).
        keys = torch.rand(test.shape, generator=generator, device=x.device).masked_fill_(test, 2)
        for index in keys.argsort(dim=1)[:, :n_train].split(FAST_BATCH, dim=1):
            net.step(x[index], y[index], FAST_LR)
    correct = (net.logits(x.expand(len(folds), -1, -1)) > 0) == y.bool()
    return float(((correct & test).sum(dim=1) / test.sum(dim=1)).mean())


class _Ensemble:
    r"""One ReLU MLP with two hidden layers per fold, trained together by Adam.

    Parameters live in one flat buffer (so Adam is three in-place operations) seen as batched
    weights ``(folds, fan_in, fan_out)``; gradients are written by hand, which costs a fraction
    of autograd's overhead at these small sizes. Initialization as sklearn's ``MLPClassifier``:
    weights and biases uniform in :math:`\pm\sqrt{6 / (\text{fan\_in} + \text{fan\_out})}`.
    """

    def __init__(self, folds: int, d: int, hidden: int, generator: torch.Generator):
        fans = [(d, hidden), (hidden, hidden), (hidden, 1)]
        shapes = [s for fi, fo in fans for s in ((folds, fi, fo), (folds, 1, fo))]
        bounds = [math.sqrt(6.0 / (fi + fo)) for fi, fo in fans for _ in range(2)]
        sizes = [math.prod(s) for s in shapes]
        device = generator.device
        self.theta = torch.cat(
            [
                (2 * torch.rand(size, generator=generator, device=device) - 1) * bound
                for size, bound in zip(sizes, bounds, strict=True)
            ]
        )
        self.grad = torch.zeros_like(self.theta)
        self.moment1, self.moment2 = torch.zeros_like(self.theta), torch.zeros_like(self.theta)
        self.steps = 0
        self.params = [t.view(s) for t, s in zip(self.theta.split(sizes), shapes, strict=True)]
        self.grads = [t.view(s) for t, s in zip(self.grad.split(sizes), shapes, strict=True)]

    def logits(self, x: Tensor) -> Tensor:
        """Logits ``(folds, n)`` of inputs ``x`` of shape ``(folds, n, d)``."""
        w1, b1, w2, b2, w3, b3 = self.params
        h1 = torch.baddbmm(b1, x, w1).clamp_(min=0)
        h2 = torch.baddbmm(b2, h1, w2).clamp_(min=0)
        return torch.baddbmm(b3, h2, w3).squeeze(-1)

    def step(self, x: Tensor, y: Tensor, lr: float) -> None:
        """One Adam step on the mean log-loss of each fold's batch ``x`` (folds, B, d), ``y``."""
        self._backward(x, y)
        self._adam(lr)

    def _backward(self, x: Tensor, y: Tensor) -> None:
        w1, b1, w2, b2, w3, b3 = self.params
        g1, gb1, g2, gb2, g3, gb3 = self.grads
        z1 = torch.baddbmm(b1, x, w1)
        h1 = z1.clamp(min=0)
        z2 = torch.baddbmm(b2, h1, w2)
        h2 = z2.clamp(min=0)
        logits = torch.baddbmm(b3, h2, w3).squeeze(-1)
        delta3 = (torch.sigmoid(logits) - y).div_(y.shape[1]).unsqueeze(-1)
        torch.bmm(h2.transpose(1, 2), delta3, out=g3)
        torch.sum(delta3, dim=1, keepdim=True, out=gb3)
        delta2 = torch.bmm(delta3, w3.transpose(1, 2)).mul_(z2 > 0)
        torch.bmm(h1.transpose(1, 2), delta2, out=g2)
        torch.sum(delta2, dim=1, keepdim=True, out=gb2)
        delta1 = torch.bmm(delta2, w2.transpose(1, 2)).mul_(z1 > 0)
        torch.bmm(x.transpose(1, 2), delta1, out=g1)
        torch.sum(delta1, dim=1, keepdim=True, out=gb1)

    def _adam(self, lr: float, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        """Adam (Kingma & Ba 2015, https://arxiv.org/abs/1412.6980) with sklearn's constants."""
        self.steps += 1
        self.moment1.mul_(beta1).add_(self.grad, alpha=1 - beta1)
        self.moment2.mul_(beta2).addcmul_(self.grad, self.grad, value=1 - beta2)
        size = lr * math.sqrt(1 - beta2**self.steps) / (1 - beta1**self.steps)
        self.theta.addcdiv_(self.moment1, self.moment2.sqrt().add_(eps), value=-size)
