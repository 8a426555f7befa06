"""Keras' exponential moving average of the weights (``use_ema``, ``ema_momentum``,
``ema_overwrite_frequency`` on the optimizer).

After every step each trainable weight's average moves: ``average = m * average + (1 - m) * weight``, with
``m = 0`` on the first step (the average starts at the weights) and ``ema_momentum`` after.  Every
``ema_overwrite_frequency`` steps the weights are overwritten with their averages, and at the end of training
they are in any case (Keras' ``finalize_variable_values``, before the callbacks' end: an EarlyStopping that
restores its best weights restores the raw ones, as in Keras), so the run's saved weights and its export are the
averages.  Validation runs on the averages too.  The averages are saved in every checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol

import numpy as np


class MovingAverage(Protocol):
    """What the training loop uses of a moving average of the weights, whichever backend keeps it."""

    #: the steps the average has moved
    steps: int

    def update(self) -> None: ...

    def overwrite(self) -> None: ...

    def applied(self) -> AbstractContextManager[None]: ...

    def arrays(self) -> dict[str, np.ndarray]: ...

    def load(self, steps: int, arrays: dict[str, np.ndarray]) -> None: ...


class WeightAverage:
    """The moving averages of ``weights`` (the model's trainable arrays, updated in place by training)."""

    def __init__(self, weights: list[np.ndarray], momentum: float, overwrite_frequency: int | None):
        self.weights = weights
        self.momentum = momentum
        self.overwrite_frequency = overwrite_frequency
        self.averages = [weight.copy() for weight in weights]
        self.steps = 0

    def update(self) -> None:
        """Move the averages after a training step; overwrite the weights when the frequency says."""
        momentum = self.momentum if self.steps else 0.0
        for average, weight in zip(self.averages, self.weights):
            average *= momentum
            average += (1 - momentum) * weight
        self.steps += 1
        if self.overwrite_frequency and self.steps % self.overwrite_frequency == 0:
            self.overwrite()

    def overwrite(self) -> None:
        """Copy the averages into the weights."""
        for average, weight in zip(self.averages, self.weights):
            np.copyto(weight, average)

    def applied(self) -> AbstractContextManager[None]:
        """The averages in the weights for the duration (validation), the weights restored after."""
        return swapped_in(self.weights, self.averages)

    def arrays(self) -> dict[str, np.ndarray]:
        """Copies of the averages, keyed by their index, for a checkpoint (with ``steps``)."""
        return {str(index): average.copy() for index, average in enumerate(self.averages)}

    def load(self, steps: int, arrays: dict[str, np.ndarray]) -> None:
        """Continue from a checkpoint's ``steps`` and ``arrays()``."""
        self.steps = int(steps)
        for index, average in enumerate(self.averages):
            np.copyto(average, arrays[str(index)])


@contextmanager
def swapped_in(weights: list[np.ndarray], values: Iterable[np.ndarray]) -> Iterator[None]:
    """``values`` copied into ``weights`` for the duration, the weights restored after."""
    saved = [weight.copy() for weight in weights]
    for weight, value in zip(weights, values, strict=True):
        np.copyto(weight, value)
    try:
        yield
    finally:
        for weight, value in zip(weights, saved):
            np.copyto(weight, value)
