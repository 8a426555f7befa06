"""An activation function over a batch and its gradient, the batch split across the cores when it is
large enough to pay for the hand-off (:mod:`specforge.ops.parallel`)."""

from __future__ import annotations

import numpy as np

from specforge.ops import costs, parallel
from specforge.ops.epilogue import ActivationFunction


def activate(function: ActivationFunction, x: np.ndarray) -> np.ndarray:
    """``function`` applied to ``x``, a new array."""
    y = np.empty(x.shape, x.dtype)
    parallel.run(lambda part: function.forward_into(x[part], y[part]), _parts(x))
    return y


def activate_gradient(function: ActivationFunction, x: np.ndarray, y: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """The gradient of ``function``'s input from its input ``x``, its output ``y`` and the gradient ``dy`` of
    its output."""
    dx = np.empty(dy.shape, np.result_type(x, dy))
    parallel.run(lambda part: function.backward_into(x[part], y[part], dy[part], dx[part]), _parts(x))
    return dx


def _parts(x: np.ndarray) -> list[slice]:
    return costs.shards(len(x), costs.Work.passes(x[0].size, costs.ACTIVATION_PASSES, x.itemsize))
