"""Keras' ``class_weight``: each training example's loss weighted by its class's weight, the batch's loss
``sum(w_i * loss_i) / N`` (Keras' sum-over-batch-size reduction); validation and test losses stay unweighted.

``balanced`` is scikit-learn's: ``examples / (classes * examples of the class)``, over the training split.
A mapping names classes by index (``"3"``) or by ``data.class_names``; classes it leaves out weigh 1.
"""

from __future__ import annotations

import numpy as np

from specforge.options.losses import Loss


def class_weight_vector(setting: str | dict[str, float], labels: np.ndarray, classes: int,
                        class_names: list[str] | tuple[str, ...] = ()) -> np.ndarray:
    """One weight per class (float64) for ``fit.class_weight`` and the training split's integer ``labels``."""
    if isinstance(setting, str):  # balanced
        counts = np.bincount(labels, minlength=classes).astype(np.float64)
        return np.where(counts > 0, len(labels) / (classes * np.maximum(counts, 1)), 1.0)
    weights = np.ones(classes)
    for key, value in setting.items():
        weights[class_index(key, classes, class_names)] = value
    return weights


def class_index(key: str, classes: int, class_names: list[str] | tuple[str, ...] = ()) -> int | None:
    """The class a ``class_weight`` key names (an index or a class name), or None when it names none."""
    if key in class_names:
        return list(class_names).index(key)
    if key.isdigit() and int(key) < classes:
        return int(key)
    return None


class WeightedLoss(Loss):
    """``loss`` whose training value and gradient weight each example by ``weights`` (set per batch); what the
    training step reads besides (the fused activation, the label encoding) is the loss's own."""

    def __init__(self, loss: Loss):
        self.loss = loss
        self.name = loss.name
        self.fused_activation = loss.fused_activation
        self.label_encoding = loss.label_encoding
        self.weights: np.ndarray | None = None

    def value_and_grad(self, outputs: np.ndarray, y_true: np.ndarray,
                       from_logits: bool = False) -> tuple[float, np.ndarray]:
        value, grad = self.loss.value_and_grad(outputs, y_true, from_logits)
        if self.weights is None:
            return value, grad
        grad *= self.weights.astype(grad.dtype).reshape(-1, *([1] * (grad.ndim - 1)))
        each = [self.loss.value(outputs[i:i + 1], y_true[i:i + 1], from_logits) for i in range(len(outputs))]
        return float(np.dot(self.weights, each)) / len(outputs), grad
