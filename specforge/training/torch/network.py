"""A specforge graph lowered to one PyTorch module, node for node: each node's module is its kind's
``to_torch``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import cast

import numpy as np
import torch
from torch import nn

from specforge.graph.dag import Graph, input_node, input_position
from specforge.layers.base import Params
from specforge.layers.torch.modules import Augmentation, Dense, Dropout, Flatten, LayerModule, MultiHeadAttention


class TorchNetwork(nn.Module):
    """``graph`` in PyTorch, starting from ``params`` (one dict per node, specforge's layout).

    It takes one tensor per model input and gives one per model output, channels-first
    (specforge.layers.torch.layout). A Flatten whose users are all Dense layers flattens in PyTorch's own
    order and those layers take their kernel rows in that order, as a PyTorch user would write the model;
    the weights it hands back are in specforge's order.
    """

    def __init__(self, graph: Graph, params: list[Params]):
        super().__init__()
        torch_ordered = _flattens_feeding_dense(graph)
        layers: list[LayerModule] = []
        for index, (node, node_params) in enumerate(zip(graph.nodes, params)):
            source = next((flatten for flatten in node.inputs if flatten in torch_ordered), None)
            if index in torch_ordered:
                layers.append(Flatten(node, node_params, keeps_torch_order=True))
            elif source is not None:
                layers.append(Dense(node, node_params, flattened_from=graph.nodes[source].input_shape))
            else:
                layers.append(node.layer.to_torch(node, node_params))
        self.layers = nn.ModuleList(layers)
        self.inputs = [node.inputs for node in graph.nodes]
        self.merges = [node.layer.merges for node in graph.nodes]
        #: the masks each node takes (Graph.taken_masks): None, or per input the model inputs whose ids make one
        self.masks = [graph.taken_masks(index) for index in range(len(graph.nodes))]
        self.graph = graph

    def forward(
        self, x: torch.Tensor | Sequence[torch.Tensor], skipped: tuple[int, ...] = ()
    ) -> torch.Tensor | list[torch.Tensor]:
        """The model's outputs for ``x`` (one tensor per model input, or the only input's): a tensor for a model
        of one output, a list for several. An output node in ``skipped`` (``graph.model.fused_outputs``; a tuple,
        which torch.jit traces) is not computed and gives its input, the logits its loss takes. Each value is
        let go when its last user has it, as a chain of modules would."""
        inputs = [x] if isinstance(x, torch.Tensor) else list(x)
        values: dict[int, torch.Tensor] = {input_node(position): each for position, each in enumerate(inputs)}
        wanted = [self.inputs[index][0] if index in skipped else index for index in self.graph.output_nodes]
        order = [index for index in range(len(self.layers)) if index not in skipped]
        users = Counter(source for index in order for source in self.inputs[index])
        for index in order:
            taken = [values[source] for source in self.inputs[index]]
            for source in self.inputs[index]:
                users[source] -= 1
                if not users[source] and source not in wanted:
                    del values[source]
            masks = self.masks[index]
            if masks is None:
                values[index] = self.layers[index](taken if self.merges[index] else taken[0])
            else:  # a kind that takes masks: the steps whose ids (of the model inputs named) are not 0
                kept = [self._mask_of(sources, inputs) if sources else None for sources in masks]
                values[index] = self.layers[index](
                    taken if self.merges[index] else taken[0], mask=kept if self.merges[index] else kept[0]
                )
        outputs = [values[index] for index in wanted]
        return outputs if len(outputs) > 1 else outputs[0]

    @staticmethod
    def _mask_of(sources: tuple[int, ...], inputs: list[torch.Tensor]) -> torch.Tensor:
        """The steps kept where every model input in ``sources`` has a non-zero id (as numpy's ``_mask_of``)."""
        kept = inputs[input_position(sources[0])] != 0
        for source in sources[1:]:
            kept = kept & (inputs[input_position(source)] != 0)
        return kept

    def nodes(self) -> list[LayerModule]:
        """The nodes' modules, in the graph's order."""
        return [cast(LayerModule, layer) for layer in self.layers]

    def specforge_params(self) -> list[Params]:
        """The weights (moving statistics included) in specforge's layout, one dict per node."""
        return [layer.specforge_params() for layer in self.nodes()]

    def specforge_gradients(self) -> list[Params]:
        """The trainable weights' gradients after a backward pass, in specforge's layout, one dict per node."""
        return [layer.specforge_gradients() for layer in self.nodes()]

    def load_specforge_params(self, params: list[Params]) -> None:
        """Copy weights in specforge's layout (one dict per node) into the modules, in place."""
        with torch.no_grad():
            for layer, node_params in zip(self.nodes(), params):
                for name, value in node_params.items():
                    target = getattr(layer, name)
                    target.copy_(torch.from_numpy(np.ascontiguousarray(layer.to_torch_param(name, value))))

    def numpy_masks(self, rng: np.random.Generator | None) -> TorchNetwork:
        """Dropout (and attention's) draws its masks, and augmentation its transforms, as specforge does, from ``rng`` (None:
        PyTorch's dropout). Only for comparing with the numpy backend: the masks of a step then agree."""
        for layer in self.layers:
            if isinstance(layer, (Dropout, Augmentation, MultiHeadAttention)):
                layer.numpy_masks(rng)
        return self


def _flattens_feeding_dense(graph: Graph) -> set[int]:
    """The Flatten nodes of an image or sequence whose users are all Dense layers (and which are not the
    model's output)."""
    users: dict[int, list[int]] = {}
    for index, node in enumerate(graph.nodes):
        for source in node.inputs:
            users.setdefault(source, []).append(index)
    return {
        index
        for index, node in enumerate(graph.nodes)
        if node.layer.type == "Flatten"
        and len(node.input_shape) > 1
        and index in users
        and index not in graph.output_nodes
        and all(graph.nodes[user].layer.type == "Dense" for user in users[index])
    }
