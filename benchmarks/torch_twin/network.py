"""A specforge model's graph as one PyTorch module: the twin."""

from __future__ import annotations

from collections import Counter

import numpy as np
import torch
from torch import nn

from benchmarks.torch_twin.layers import Augmentation, Dense, Dropout, Flatten, twin_layer
from specforge.graph.dag import INPUT_NODE, Graph
from specforge.graph.model import Model


class TorchTwin(nn.Module):
    """``model``'s graph in PyTorch, node for node, starting from its current weights.

    It takes and returns tensors in the twin's channels-first layout (benchmarks.torch_twin.layout).
    A Flatten whose users are all Dense layers flattens in PyTorch's own order and those layers take
    their kernel rows in that order, as a PyTorch user would write the model.
    """

    def __init__(self, model: Model):
        super().__init__()
        graph = model.graph
        torch_ordered = _flattens_feeding_dense(graph)
        layers = []
        for index, (node, params) in enumerate(zip(graph.nodes, model.params)):
            source = next((flatten for flatten in node.inputs if flatten in torch_ordered), None)
            if index in torch_ordered:
                layers.append(Flatten(node, params, keeps_torch_order=True))
            elif source is not None:
                layers.append(Dense(node, params, flattened_from=graph.nodes[source].input_shape))
            else:
                layers.append(twin_layer(node, params))
        self.layers = nn.ModuleList(layers)
        self.inputs = [node.inputs for node in graph.nodes]
        self.merges = [node.layer.merges for node in graph.nodes]
        self.graph = graph

    def forward(self, x: torch.Tensor, until: int | None = None) -> torch.Tensor:
        """The output of the first ``until`` nodes (all by default); each value is let go when its last
        user has it, as a chain of modules would."""
        count = len(self.layers) if until is None else until
        users = Counter(index for inputs in self.inputs[:count] for index in inputs)
        values = {INPUT_NODE: x}
        for index in range(count):
            taken = [values[source] for source in self.inputs[index]]
            for source in self.inputs[index]:
                users[source] -= 1
                if not users[source]:
                    del values[source]
            values[index] = self.layers[index](taken if self.merges[index] else taken[0])
        return values[count - 1]

    def specforge_params(self) -> list[dict[str, np.ndarray]]:
        """The weights (moving statistics included) in specforge's layout, one dict per node."""
        return [layer.specforge_params() for layer in self.layers]

    def specforge_gradients(self) -> list[dict[str, np.ndarray]]:
        """The trainable weights' gradients after a backward pass, in specforge's layout, one dict per node."""
        return [layer.specforge_gradients() for layer in self.layers]

    def numpy_masks(self, rng: np.random.Generator | None) -> TorchTwin:
        """Dropout draws its masks, and augmentation its transforms, as specforge does, from ``rng`` (None:
        PyTorch's dropout). Only for comparing with specforge: the masks of a step then agree."""
        for layer in self.layers:
            if isinstance(layer, (Dropout, Augmentation)):
                layer.numpy_masks(rng)
        return self


def _flattens_feeding_dense(graph: Graph) -> set[int]:
    """The Flatten nodes of an image or sequence whose users are all Dense layers (and which are not the
    model's output)."""
    users: dict[int, list[int]] = {}
    for index, node in enumerate(graph.nodes):
        for source in node.inputs:
            users.setdefault(source, []).append(index)
    return {index for index, node in enumerate(graph.nodes)
            if node.layer.type == "Flatten" and len(node.input_shape) > 1 and index in users
            and all(graph.nodes[user].layer.type == "Dense" for user in users[index])}

