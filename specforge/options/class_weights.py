"""Keras' ``class_weight``: each training example's loss weighted by its class's weight (``Loss.weights``: the
batch's loss is ``sum(w_i * loss_i) / N``, Keras' sum-over-batch-size reduction); validation and test losses stay
unweighted.

``balanced`` is scikit-learn's: ``examples / (classes * examples of the class)``, over the training split.
A mapping names classes by index (``"3"``) or by ``data.class_names``; classes it leaves out weigh 1.
"""

from __future__ import annotations

import numpy as np


def class_weight_vector(
    setting: str | dict[str, float], labels: np.ndarray, classes: int, class_names: list[str] | tuple[str, ...] = ()
) -> np.ndarray:
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
