"""validated spec -> graph: the ordered layers with every shape, parameter count and FLOP count known.

Each spec layer becomes one node, plus an ``Activation`` node when the layer
names a non-linear ``activation``: keeping activations separate lets the loss
take the logits of a final softmax (fused, stable cross-entropy) and lets each
layer's math stay about one thing.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import numpy as np

from specforge.errors import Location, SpecforgeError
from specforge.layers import REGISTRY, Layer
from specforge.layers.base import Params, Shape


@dataclass
class Node:
    layer: Layer
    input_shape: Shape
    output_shape: Shape
    #: index of the spec layer this node comes from (``model.layers[i]``)
    spec_index: int

    @property
    def param_count(self) -> int:
        return self.layer.count_params(self.input_shape)

    @property
    def flops(self) -> int:
        return self.layer.flops(self.input_shape)


@dataclass
class SummaryRow:
    name: str
    type: str
    output_shape: Shape
    params: int
    flops: int


@dataclass
class Graph:
    input_shape: Shape
    nodes: list[Node] = field(default_factory=list)

    def __repr__(self) -> str:
        return (f"Graph({len(self.nodes)} nodes, input {tuple(self.input_shape)} -> output {self.output_shape}, "
                f"{self.total_params:,} params)")

    @classmethod
    def chain(cls, input_shape: Shape, layers: Sequence[Layer]) -> Graph:
        """The graph of ``layers`` one after the other, every shape inferred (ShapeError when one does not fit)."""
        graph, shape = cls(tuple(input_shape)), tuple(input_shape)
        for index, layer in enumerate(layers):
            out = tuple(layer.output_shape(shape))
            graph.nodes.append(Node(layer, shape, out, index))
            shape = out
        return graph

    def prefix(self, until: int | None) -> Graph:
        """The graph of the first ``until`` nodes (all of them for None)."""
        return Graph(self.input_shape, self.nodes[:until])

    @property
    def output_shape(self) -> Shape:
        return self.nodes[-1].output_shape if self.nodes else self.input_shape

    @property
    def final_activation(self) -> str:
        """The activation of the model's output ('linear' when the last node is not an activation)."""
        layer = self.nodes[-1].layer
        if layer.type in ("Activation", "Softmax"):
            return layer.config.get("activation", "softmax")
        return "linear"

    def summary(self) -> list[SummaryRow]:
        """One row per spec layer (its activation node folded in)."""
        rows: dict[int, SummaryRow] = {}
        for node in self.nodes:
            row = rows.get(node.spec_index)
            if row is None:
                rows[node.spec_index] = SummaryRow(node.layer.name, node.layer.type, node.output_shape,
                                                   node.param_count, node.flops)
            else:
                row.output_shape = node.output_shape
                row.params += node.param_count
                row.flops += node.flops
        return list(rows.values())

    @property
    def total_params(self) -> int:
        return sum(node.param_count for node in self.nodes)

    @property
    def trainable_params(self) -> int:
        total = 0
        for node in self.nodes:
            shapes = node.layer.param_shapes(node.input_shape)
            total += sum(int(np.prod(s)) for n, s in shapes.items() if n not in node.layer.non_trainable)
        return total

    @property
    def total_flops(self) -> int:
        return sum(node.flops for node in self.nodes)

    def init_params(self, rng: np.random.Generator) -> list[Params]:
        """Fresh parameters for every node, drawn in order from ``rng``."""
        return [node.layer.init_params(node.input_shape, rng) for node in self.nodes]


def _snake(kind: str) -> str:
    """Keras' snake case of a class name: Conv2DTranspose -> conv2d_transpose, ReLU -> re_lu."""
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", kind)).lower()


@contextmanager
def _located(location: Location) -> Iterator[None]:
    """Re-raise a layer's unlocated error (ShapeError, SpecError) at the layer's place in the spec."""
    try:
        yield
    except SpecforgeError as error:
        raise type(error)(error.problems[0].message, file=location.file, line=location.line,
                          column=location.column, path=location.path) from None


def _auto_name(kind: str, counters: dict[str, int]) -> str:
    """Keras' naming: conv2d, conv2d_1, ... counting only the layers the user did not name."""
    base = _snake(kind)
    count = counters.get(base, 0)
    counters[base] = count + 1
    return base if count == 0 else f"{base}_{count}"


def build_graph(spec) -> Graph:
    """Infer every shape of ``spec``'s model; a layer that cannot work raises ShapeError located at it."""
    model = spec.config["model"]
    graph = Graph(input_shape=tuple(model["input_shape"]))
    shape = graph.input_shape
    counters: dict[str, int] = {}
    for index, layer_config in enumerate(model["layers"]):
        config = dict(layer_config)
        kind = config["type"]
        name = config.pop("name", None) or _auto_name(kind, counters)
        activation = config.get("activation", "linear") if kind != "Activation" else "linear"
        location = spec.locate(("model", "layers", index))
        with _located(location):
            layer = REGISTRY[kind](config, name=name)
        nodes = [layer]
        if activation != "linear":
            nodes.append(REGISTRY["Activation"]({"activation": activation}, name=f"{name}_{activation}"))
        for node_layer in nodes:
            with _located(location):
                out = tuple(node_layer.output_shape(shape))
            graph.nodes.append(Node(node_layer, shape, out, index))
            shape = out
    return graph
