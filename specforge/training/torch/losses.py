"""specforge's losses in PyTorch, on the PyTorch outputs (logits where specforge fuses the final activation).

Cross-entropy takes class indices where the labels are classes (what a PyTorch user passes), or the
targets' probabilities; either way it is the same value. The class axis of the PyTorch outputs is
axis 1, as ``F.cross_entropy`` wants. Each loss is computed term by term (``reduction="none"``) and then
reduced as specforge's ``Loss.value_and_grad`` does: the mean, or with example weights (Keras' sample and
class weights) ``sum(w_i * loss_i) / N``, ``loss_i`` the mean of example ``i``'s terms.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
import torch.nn.functional as F

from specforge.options.losses import EPSILON, Huber, Loss

#: ``(outputs, targets) -> the loss's terms``: one per example, or per example and position (and class)
Terms = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
#: ``(outputs, targets, weights or None) -> the batch's loss``
BatchLoss = Callable[..., torch.Tensor]

_cross_entropy = functools.partial(F.cross_entropy, reduction="none")


def _kl_divergence(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    y = y.clamp(EPSILON, 1)
    return (y * y.log()).sum(dim=1) + _cross_entropy(logits, y)


def _binary_crossentropy(outputs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    clipped = outputs.clamp(EPSILON, 1 - EPSILON)
    return -(y * clipped.log() + (1 - y) * torch.log1p(-clipped))


#: (loss name, whether it takes logits) -> the terms of a batch's loss
_LOSSES: dict[tuple[str, bool], Terms] = {
    ("categorical_crossentropy", True): _cross_entropy,
    ("sparse_categorical_crossentropy", True): _cross_entropy,
    ("kl_divergence", True): _kl_divergence,
    ("binary_crossentropy", True): functools.partial(F.binary_cross_entropy_with_logits, reduction="none"),
    ("binary_crossentropy", False): _binary_crossentropy,
    ("mean_squared_error", False): functools.partial(F.mse_loss, reduction="none"),
    ("mean_absolute_error", False): functools.partial(F.l1_loss, reduction="none"),
}


def _terms(loss: Loss, from_logits: bool) -> Terms:
    """The terms of ``loss`` on outputs (``from_logits``: the final activation's input)."""
    if isinstance(loss, Huber):
        delta = loss.delta
        return lambda outputs, y: F.huber_loss(outputs, y, delta=delta, reduction="none")
    function = _LOSSES.get((loss.name, from_logits))
    if function is None:
        what = "logits" if from_logits else "probabilities"
        raise ValueError(f"the PyTorch backend has no {loss.name} loss on {what}")
    smoothing = getattr(loss, "label_smoothing", 0.0)
    if not smoothing:
        return function
    if function is _cross_entropy:
        return lambda outputs, y: F.cross_entropy(outputs, y, label_smoothing=smoothing, reduction="none")
    return lambda outputs, y: function(outputs, y * (1 - smoothing) + 0.5 * smoothing)


def torch_loss(loss: Loss, from_logits: bool) -> BatchLoss:
    """The PyTorch function of ``loss`` on outputs (``from_logits``: the final activation's input):
    ``(outputs, targets, weights=None) -> the batch's loss``, ``weights`` one per example."""
    terms = _terms(loss, from_logits)

    def batch_loss(outputs: torch.Tensor, y: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        each = terms(outputs, y)
        if weights is None:
            return each.mean()
        rows = len(each)
        return (weights.to(each.dtype) * each.reshape(rows, -1).mean(dim=1)).sum() / rows

    return batch_loss


def takes_classes(loss: Loss, from_logits: bool) -> bool:
    """Whether the PyTorch loss takes class indices (else the targets specforge's loss takes)."""
    return from_logits and loss.name in ("categorical_crossentropy", "sparse_categorical_crossentropy")
