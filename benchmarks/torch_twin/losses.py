"""specforge's losses in PyTorch, on the twin's outputs (logits where specforge fuses the final activation).

Cross-entropy takes class indices where the labels are classes (what a PyTorch user passes), or the
targets' probabilities; either way it is the same value. The class axis of the twin's outputs is
axis 1, as ``F.cross_entropy`` wants.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from specforge.options.losses import EPSILON, Loss


def _kl_divergence(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    y = y.clamp(EPSILON, 1)
    rows = y.numel() // y.shape[1]
    return (y * y.log()).sum() / rows + F.cross_entropy(logits, y)


def _binary_crossentropy(outputs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    clipped = outputs.clamp(EPSILON, 1 - EPSILON)
    return -(y * clipped.log() + (1 - y) * torch.log1p(-clipped)).mean()


#: (loss name, whether it takes logits) -> the loss of a batch
_LOSSES: dict[tuple[str, bool], Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    ("categorical_crossentropy", True): F.cross_entropy,
    ("sparse_categorical_crossentropy", True): F.cross_entropy,
    ("kl_divergence", True): _kl_divergence,
    ("binary_crossentropy", True): F.binary_cross_entropy_with_logits,
    ("binary_crossentropy", False): _binary_crossentropy,
    ("mean_squared_error", False): F.mse_loss,
    ("mean_absolute_error", False): F.l1_loss,
}


def twin_loss(loss: Loss, from_logits: bool) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The PyTorch function of ``loss`` on outputs (``from_logits``: the final activation's input)."""
    if loss.name == "huber":
        return lambda outputs, y: F.huber_loss(outputs, y, delta=loss.delta)
    function = _LOSSES.get((loss.name, from_logits))
    if function is None:
        what = "logits" if from_logits else "probabilities"
        raise ValueError(f"the PyTorch twin has no {loss.name} loss on {what}")
    smoothing = getattr(loss, "label_smoothing", 0.0)
    if not smoothing:
        return function
    if function is F.cross_entropy:
        return lambda outputs, y: F.cross_entropy(outputs, y, label_smoothing=smoothing)
    return lambda outputs, y: function(outputs, y * (1 - smoothing) + 0.5 * smoothing)


def takes_classes(loss: Loss, from_logits: bool) -> bool:
    """Whether the twin's loss takes class indices (else the targets specforge's loss takes)."""
    return from_logits and loss.name in ("categorical_crossentropy", "sparse_categorical_crossentropy")
