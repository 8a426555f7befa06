"""Steps of a chain of layers: each node on its own, or a layer together with the activation after it.

The graph keeps a layer's ``activation`` option as a node of its own (so that the loss can take
the logits of a final softmax). Run separately, that activation costs a pass over the layer's
output in each direction, plus a new array. A layer that ``fuses_activation`` instead applies the
activation to its own fresh output in place, while that output is still in cache, and starts its
backward with the activation's gradient. Only activations whose gradient needs only their output
(``ActivationFunction.output_suffices``) fuse: the input is overwritten.

The planner sits in the ops layer, below the layer kinds: it knows a layer by the contract's step
methods (``StepLayer``, which ``specforge.layers.base.Layer`` has) and an activation node by the
function it applies (``ActivationNode``, as ``specforge.layers.activation.ActivationLayer``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, cast, runtime_checkable

import numpy as np

from specforge.options.activations import ActivationFunction

Params = dict[str, np.ndarray]


class StepLayer(Protocol):
    """What the planner runs of a layer: the layer contract's forward, new state and backward."""

    fuses_activation: ClassVar[bool]
    merges: ClassVar[bool]

    def forward(
        self,
        params: Params,
        x: Any,
        training: bool = False,
        rng: np.random.Generator | None = None,
        activation: ActivationFunction | None = None,
    ) -> tuple[np.ndarray, Any]: ...

    def new_state(self, cache: Any) -> Params: ...

    def backward(self, params: Params, cache: Any, dy: np.ndarray, need_dx: bool = True) -> tuple[Any, Params]: ...


class MaskTaker(Protocol):
    """A layer that takes the mask of its input's steps (``Layer.masking`` ``"take"``): its forward takes the
    keyword ``mask``."""

    def forward(
        self,
        params: Params,
        x: Any,
        training: bool = False,
        rng: np.random.Generator | None = None,
        activation: ActivationFunction | None = None,
        *,
        mask: Any = None,
    ) -> tuple[np.ndarray, Any]: ...


@runtime_checkable
class ActivationNode(Protocol):
    """A node that applies one activation function and nothing else."""

    def function(self) -> ActivationFunction: ...


#: the index standing for the model's (first) input among a step's inputs (as specforge.graph.dag.INPUT_NODE);
#: every negative index is a model input
MODEL_INPUT = -1


@dataclass(frozen=True)
class Step:
    """Node ``index`` (whose parameters and gradients it uses), taking the outputs of nodes ``inputs``, run
    with the next node's ``activation`` when it fuses one (the step then covers two nodes)."""

    index: int
    layer: StepLayer
    inputs: tuple[int, ...] = (MODEL_INPUT,)
    activation: ActivationFunction | None = None

    @property
    def nodes(self) -> int:
        return 1 if self.activation is None else 2

    @property
    def output(self) -> int:
        """The node whose output the step makes."""
        return self.index + self.nodes - 1

    @property
    def needs_dx(self) -> bool:
        """Whether any input comes from a node (the model's inputs need no gradient)."""
        return any(index >= 0 for index in self.inputs)

    def forward(
        self,
        params: Params,
        x: np.ndarray | list[np.ndarray],
        training: bool = False,
        rng: np.random.Generator | None = None,
        mask: np.ndarray | list[np.ndarray | None] | None = None,
    ) -> tuple[np.ndarray, Any]:
        """The step's output and cache; ``mask`` (the mask of its input, for a kind that takes masks and that one
        reaches) is handed to the layer only when there is one, so that a model without masks runs as before."""
        if mask is None:
            return self.layer.forward(params, x, training, rng, self.activation)
        return cast(MaskTaker, self.layer).forward(params, x, training, rng, self.activation, mask=mask)

    def new_state(self, cache: Any) -> Params:
        return self.layer.new_state(cache)

    def backward(
        self, params: Params, cache: Any, dy: np.ndarray, need_dx: bool = True
    ) -> tuple[np.ndarray | list[np.ndarray] | None, Params]:
        return self.layer.backward(params, cache, dy, need_dx)


def plan_steps(
    layers: Sequence[StepLayer], inputs: Sequence[tuple[int, ...]] | None = None, unfused: frozenset[int] = frozenset()
) -> list[Step]:
    """``layers`` (nodes in topological order, taking the outputs of ``inputs``; a chain when None) as
    steps, each fusing layer taking the activation that is the only user of its output, unless that
    activation's node is in ``unfused`` (one the loss takes the logits of, left out by the caller)."""
    if inputs is None:
        inputs = [(index - 1,) for index in range(len(layers))]
    users = Counter(index for node_inputs in inputs for index in node_inputs)
    steps: list[Step] = []
    index = 0
    while index < len(layers):
        layer = layers[index]
        follower = layers[index + 1] if index + 1 < len(layers) else None
        sole_user = (
            follower is not None and inputs[index + 1] == (index,) and users[index] == 1 and index + 1 not in unfused
        )
        activation = follower.function() if sole_user and isinstance(follower, ActivationNode) else None
        if layer.fuses_activation and activation is not None and activation.output_suffices:
            steps.append(Step(index, layer, tuple(inputs[index]), activation))
        else:
            steps.append(Step(index, layer, tuple(inputs[index])))
        index += steps[-1].nodes
    return steps
