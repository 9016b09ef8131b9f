"""Loss functions Q with sample weights: MSE, binary cross-entropy, cross-entropy.

Every loss is the *weighted mean* of the per-example losses L_i:

    Q = Σ_i w_i L_i / Σ_i w_i          (w_i = 1 gives the plain mean (1/N) Σ_i L_i)

so that rescaling all weights (e.g. normalising signal and background to equal sums) leaves
the gradient step unchanged. The torch and Keras adapters reduce in exactly this way
(``reduction="none"`` then the same weighted mean).

Classification losses take *logits* z (the output before σ / softmax), as
``torch.nn.BCEWithLogitsLoss`` and ``CrossEntropyLoss`` do: log σ(z) computed from z never
overflows, while log(σ(z)) from a rounded probability can give log 0.
"""

from __future__ import annotations

import numpy as np

from ..errors import DataError
from .autograd import Tensor

__all__ = ["weighted_mean", "mse", "binary_cross_entropy", "cross_entropy", "LOSSES"]


def weighted_mean(per_example: Tensor, sample_weight=None) -> Tensor:
    """Q = Σ w_i L_i / Σ w_i over the first axis (other axes, e.g. outputs, are averaged first)."""
    if per_example.ndim > 1:
        per_example = per_example.mean(axis=tuple(range(1, per_example.ndim)))
    if sample_weight is None:
        return per_example.mean()
    xp = per_example.xp
    w = xp.asarray(sample_weight, dtype=per_example.dtype).reshape(-1)
    if w.shape[0] != per_example.shape[0]:
        raise DataError(
            f"sample_weight has {w.shape[0]} entries for {per_example.shape[0]} examples",
            "pass one weight per example",
        )
    total = float(w.sum())
    if not total > 0:
        raise DataError(f"the sample weights sum to {total}", "use non-negative weights with a positive sum")
    return (per_example * Tensor(w, requires_grad=False)).sum() * (1.0 / total)


def mse(prediction: Tensor, target, sample_weight=None) -> Tensor:
    """Mean squared error, L_i = (a(x_i) − y_i)² (averaged over outputs for several)."""
    target = prediction.xp.asarray(target, dtype=prediction.dtype).reshape(prediction.shape)
    diff = prediction - Tensor(target, requires_grad=False)
    return weighted_mean(diff * diff, sample_weight)


def binary_cross_entropy(logits: Tensor, target, sample_weight=None) -> Tensor:
    """L_i = −[y_i log σ(z_i) + (1 − y_i) log(1 − σ(z_i))] with y_i ∈ {0, 1} (or in [0, 1])."""
    target = logits.xp.asarray(target, dtype=logits.dtype).reshape(logits.shape)
    return weighted_mean(logits.bce_with_logits(target), sample_weight)


def cross_entropy(logits: Tensor, target, sample_weight=None) -> Tensor:
    """L_i = −log softmax(z_i)_{y_i} for class indices y_i (or −Σ_c y_ic log softmax(z_i)_c)."""
    target = logits.xp.asarray(target)
    if target.ndim == 1 and target.dtype.kind == "f":
        if not bool((target == logits.xp.round(target)).all()):
            raise DataError("cross_entropy received non-integer class indices", "pass integer labels 0..C-1 or one-hot rows")
        target = target.astype(np.int64)
    return weighted_mean(logits.cross_entropy_with_logits(target), sample_weight)


LOSSES = {"mse": mse, "binary_cross_entropy": binary_cross_entropy, "cross_entropy": cross_entropy}
