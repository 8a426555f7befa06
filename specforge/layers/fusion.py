"""Steps of a chain of layers: each node on its own, or a layer together with the activation after it.

The graph keeps a layer's ``activation`` option as a node of its own (so that the loss can take
the logits of a final softmax). Run separately, that activation costs a pass over the layer's
output in each direction, plus a new array. A layer that ``fuses_activation`` instead applies the
activation to its own fresh output in place, while that output is still in cache, and starts its
backward with the activation's gradient. Only activations whose gradient needs only their output
(``ActivationFunction.output_suffices``) fuse: the input is overwritten.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from specforge.activations import ActivationFunction
from specforge.layers.activation import ActivationLayer
from specforge.layers.base import Layer, Params


@dataclass(frozen=True)
class Step:
    """Node ``index`` (whose parameters and gradients it uses), run with the next node's ``activation``
    when it fuses one (the step then covers two nodes)."""

    index: int
    layer: Layer
    activation: ActivationFunction | None = None

    @property
    def nodes(self) -> int:
        return 1 if self.activation is None else 2

    def forward(self, params: Params, x: np.ndarray, training: bool = False,
                rng: np.random.Generator | None = None) -> tuple[np.ndarray, Any]:
        return self.layer.forward(params, x, training, rng, self.activation)

    def new_state(self, cache: Any) -> Params:
        return self.layer.new_state(cache)

    def backward(self, params: Params, cache: Any, dy: np.ndarray,
                 need_dx: bool = True) -> tuple[np.ndarray | None, Params]:
        return self.layer.backward(params, cache, dy, need_dx)


def plan_steps(layers: Sequence[Layer]) -> list[Step]:
    """``layers`` (a chain, in order) as steps, each fusing layer taking the activation after it."""
    steps: list[Step] = []
    index = 0
    while index < len(layers):
        layer = layers[index]
        follower = layers[index + 1] if index + 1 < len(layers) else None
        activation = follower.function() if isinstance(follower, ActivationLayer) else None
        if layer.fuses_activation and activation is not None and activation.output_suffices:
            steps.append(Step(index, layer, activation))
        else:
            steps.append(Step(index, layer))
        index += steps[-1].nodes
    return steps
