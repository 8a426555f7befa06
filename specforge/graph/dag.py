"""validated spec -> graph: a DAG of nodes in topological order with every shape, parameter count and
FLOP count known.

Each spec layer becomes one node, plus an ``Activation`` node when the layer names a non-linear
``activation``: keeping activations separate lets the loss take the logits of a final softmax
(fused, stable cross-entropy) and lets each layer's math stay about one thing.  A node names the
nodes it takes its inputs from (``INPUT`` for the model's input).  The order is topological and,
among the layers ready at each point, the spec's own order, so a chain keeps the order it is written in.
Layers the output does not depend on are checked like the others, then left out, with a warning.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from specforge.base.errors import Problem, ShapeError, SpecError, SpecforgeError
from specforge.layers import REGISTRY, Layer
from specforge.layers.base import INPUT_DTYPES, Params, Shape
from specforge.spec.flatten import INPUT, FlatLayer, FlatModel, flatten_model, merge_uses
from specforge.spec.model_io import OUTPUT
from specforge.spec.reader import SpecPath

if TYPE_CHECKING:
    from specforge.layers.merge import Merge
    from specforge.spec import Spec

#: the index that stands for the model's (first) input in ``Node.inputs``; input k is ``input_node(k)``
INPUT_NODE = -1


def input_node(position: int) -> int:
    """The index that stands for the model's input number ``position`` in ``Node.inputs``: -1, -2, ..."""
    return INPUT_NODE - position


def input_position(index: int) -> int:
    """Which model input a negative ``Node.inputs`` index stands for."""
    return INPUT_NODE - index


@dataclass(frozen=True)
class GraphInput:
    """A model input: its name, the shape of one example and the dtype the spec declares (None: what the
    layers taking it take)."""

    name: str
    shape: Shape
    dtype: str | None = None


@dataclass
class Node:
    layer: Layer
    #: what the layer takes: its input's shape, or for a merge one shape per input
    input_shape: Any
    output_shape: Shape
    #: the nodes whose outputs it takes, in order (a negative index: a model input, ``input_node``)
    inputs: tuple[int, ...] = (INPUT_NODE,)
    #: the full name of the spec layer it comes from (a layer and its activation node share it)
    source: str = ""
    #: where the spec writes that layer
    path: SpecPath = ()
    #: the blocks that layer sits in, outermost first (their names under ``blocks:``)
    blocks: tuple[str, ...] = ()
    #: the mask its output carries (Keras' masking, ``Layer.masking``): the model inputs (negative indices) whose
    #: ids other than 0 are the steps that count, joined; empty: none
    mask: tuple[int, ...] = ()

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
    #: the spec layers (or ``input``) it takes its inputs from
    connected_to: list[str] = field(default_factory=list)
    #: the blocks it sits in, outermost first
    blocks: tuple[str, ...] = ()


@dataclass
class Graph:
    input_shape: Shape
    nodes: list[Node] = field(default_factory=list)
    #: located remarks that do not stop the model (a layer nothing uses)
    warnings: list[Problem] = field(default_factory=list)
    #: the model's named inputs, in order; empty: one input ``input`` of ``input_shape`` (``model_inputs``)
    sources: list[GraphInput] = field(default_factory=list)
    #: the node of each model output, in order; empty: the last node (``output_nodes``)
    sinks: list[int] = field(default_factory=list)
    #: the name of each model output (``model.outputs``' keys); empty: one output, ``output``
    sink_names: list[str] = field(default_factory=list)

    def __repr__(self) -> str:
        return (
            f"Graph({len(self.nodes)} nodes, input {tuple(self.input_shape)} -> output {self.output_shape}, "
            f"{self.total_params:,} params)"
        )

    @classmethod
    def chain(cls, input_shape: Shape, layers: Sequence[Layer]) -> Graph:
        """The graph of ``layers`` one after the other, every shape inferred (ShapeError when one does not fit); a
        kind of several inputs (``Layer.merges``) takes the one before as its only input."""
        graph, shape = cls(tuple(input_shape)), tuple(input_shape)
        for index, layer in enumerate(layers):
            taken: Any = (shape,) if layer.merges else shape
            out = tuple(layer.output_shape(taken))
            inputs = (index - 1,)
            graph.nodes.append(Node(layer, taken, out, inputs, layer.name, mask=graph.output_mask(layer, inputs)))
            shape = out
        return graph

    # -- masks -------------------------------------------------------------------------------------------
    def mask_at(self, index: int) -> tuple[int, ...]:
        """The mask ``Node.inputs`` index ``index`` carries (a model input carries none)."""
        return () if index < 0 else self.nodes[index].mask

    def received_mask(self, inputs: Sequence[int]) -> tuple[int, ...]:
        """The mask a node taking ``inputs`` receives: theirs joined (Keras' merges join their inputs' masks)."""
        return tuple(sorted({source for index in inputs for source in self.mask_at(index)}, reverse=True))

    def output_mask(self, layer: Layer, inputs: Sequence[int]) -> tuple[int, ...]:
        """The mask the output of ``layer`` taking ``inputs`` carries: the one it makes, or the one it receives
        when it passes it on (``Layer.masking``)."""
        if layer.makes_mask():
            return tuple(index for index in inputs if index < 0)
        return self.received_mask(layer.mask_inputs(inputs)) if layer.passes_mask() else ()

    def drops_mask(self, index: int) -> bool:
        """Whether node ``index`` receives a mask it neither takes nor passes on (Keras drops it, with a
        warning)."""
        node = self.nodes[index]
        return (
            bool(self.received_mask(node.inputs))
            and node.layer.masking != "take"
            and not node.layer.passes_mask()
            and not node.layer.makes_mask()
        )

    def taken_masks(self, index: int) -> list[tuple[int, ...]] | None:
        """The mask of each input of node ``index`` when its kind takes masks and one reaches it, else None."""
        node = self.nodes[index]
        masks = [self.mask_at(source) for source in node.inputs]
        return masks if node.layer.masking == "take" and any(masks) else None

    @property
    def model_inputs(self) -> list[GraphInput]:
        """The model's inputs, in order."""
        return self.sources or [GraphInput(INPUT, tuple(self.input_shape))]

    @property
    def output_nodes(self) -> list[int]:
        """The node of each model output, in order."""
        return self.sinks or [len(self.nodes) - 1]

    @property
    def output_widths(self) -> list[int]:
        """The last axis of each model output, in order."""
        return [self.nodes[node].output_shape[-1] for node in self.output_nodes]

    @property
    def output_names(self) -> list[str]:
        """The name of each model output, in order."""
        return self.sink_names or [OUTPUT] * len(self.output_nodes)

    def shape_of(self, index: int) -> Shape:
        """The shape of what ``Node.inputs`` index ``index`` gives: a node's output or a model input."""
        return self.model_inputs[input_position(index)].shape if index < 0 else self.nodes[index].output_shape

    def prefix(self, until: int | None) -> Graph:
        """The graph of the first ``until`` nodes (all of them for None; a prefix's output is its last node)."""
        if until is None:
            return self
        return Graph(self.input_shape, self.nodes[:until], sources=self.sources)

    @property
    def output_shape(self) -> Shape:
        """The shape of the model's (first) output."""
        return self.nodes[self.output_nodes[0]].output_shape if self.nodes else self.input_shape

    @property
    def input_dtype(self) -> str:
        """The numpy dtype of the model's (first) input (``input_dtypes``)."""
        return self.input_dtypes[0]

    @property
    def input_dtypes(self) -> list[str]:
        """The numpy dtype of each model input: the one the spec declares, else what the kinds taking it
        declare (``Layer.input_dtype``), float32 for an input no node takes; ShapeError where
        ``input_dtype_conflict`` finds one."""
        conflict = self.input_dtype_conflict()
        if conflict is not None:
            raise ShapeError(conflict[1])
        dtypes = []
        for position, source in enumerate(self.model_inputs):
            kinds = [node.layer.input_dtype for node in self.nodes if input_node(position) in node.inputs]
            dtypes.append(source.dtype or INPUT_DTYPES[kinds[0] if kinds else "float"])
        return dtypes

    def input_dtype_conflict(self) -> tuple[Node, str] | None:
        """A node whose kind cannot take what it is given, and why: ids from another layer's output (no layer
        outputs ids), or a kind of input other than the model input holds (as declared, or as the first node
        taking it takes)."""
        first: dict[int, tuple[str, str]] = {
            input_node(position): (kind, f"model.inputs.{source.name} is {source.dtype}")
            for position, source in enumerate(self.model_inputs)
            if source.dtype is not None
            for kind in [next(k for k, dtype in INPUT_DTYPES.items() if dtype == source.dtype)]
        }
        for node in self.nodes:
            kind = node.layer.input_dtype
            taken = [index for index in node.inputs if index < 0]
            if not taken:
                if kind != "float":
                    return node, (
                        f"{node.layer.type} takes {kind} ids, which only the model's input holds; "
                        "give it `inputs: input` and the model token ids (source: text_folder with "
                        "vectorize.output_mode: int)"
                    )
                continue
            for index in taken:
                if index not in first:
                    first[index] = (kind, f"{node.layer.name!r} ({node.layer.type}) takes {kind}")
                elif kind != first[index][0]:
                    return node, (
                        f"{node.layer.type} takes {kind} input, and {first[index][1]} from the same model input; "
                        "make the layers taking the input take one kind"
                    )
        return None

    @property
    def final_activation(self) -> str:
        """The activation of the model's (first) output (``activation_of``)."""
        return self.activation_of(self.output_nodes[0])

    def activation_of(self, index: int) -> str:
        """The activation node ``index`` applies ('linear' when it is not an activation)."""
        layer = self.nodes[index].layer
        if layer.type in ("Activation", "Softmax"):
            return layer.config.get("activation", "softmax")
        return "linear"

    def source_of(self, index: int) -> str:
        """The spec layer that node ``index`` belongs to (the model input's name for a negative index)."""
        return self.model_inputs[input_position(index)].name if index < 0 else self.nodes[index].source

    def summary(self) -> list[SummaryRow]:
        """One row per spec layer (its activation node folded in), with the layers it is connected to."""
        rows: dict[str, SummaryRow] = {}
        for node in self.nodes:
            row = rows.get(node.source)
            if row is None:
                rows[node.source] = SummaryRow(
                    node.source,
                    node.layer.type,
                    node.output_shape,
                    node.param_count,
                    node.flops,
                    [self.source_of(index) for index in node.inputs],
                    node.blocks,
                )
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


@contextmanager
def _located(flat: FlatLayer, spec: Spec) -> Iterator[None]:
    """Re-raise a layer's unlocated error (ShapeError, SpecError) at the layer's place in the spec."""
    try:
        yield
    except SpecforgeError as error:
        raise type(error)(problems=[flat.context.problem(spec, error.problems[0].message)]) from None


def infer_graph(spec) -> Graph:
    """Infer every shape of ``spec``'s model; raises SpecError (or ShapeError when every problem is a shape)
    naming every mistake: names and inputs, blocks, a cycle, and each layer that cannot take what it is given
    (what depends on a mistake is not checked further), each located at the layer.  A table spec that leaves
    model.input_shape out needs its data read first: ``specforge.graph.build.build_graph`` does both."""
    model = spec.config["model"]
    if "input_shape" not in model and "inputs" not in model:
        raise SpecError(
            "model.input_shape is left out, so it comes from the table's data: build the graph with "
            "specforge.graph.build.build_graph (api.build_graph), which reads it",
            file=spec.file,
            path="model",
        )
    flat = flatten_model(spec)
    by_name = {layer.name: layer for layer in flat.layers}
    order, cycle = _topological(flat, by_name, spec)
    sources = [
        GraphInput(name, tuple(item["shape"]), item.get("dtype")) for name, item in model.get("inputs", {}).items()
    ]
    graph = Graph(
        input_shape=sources[0].shape if sources else tuple(model["input_shape"]),
        warnings=_unused(flat, spec),
        sources=sources,
    )
    made: dict[str, int] = {name: input_node(position) for position, name in enumerate(flat.sources)}
    shapes: list[Problem] = []
    for flat_layer in order:
        if any(name not in made for name in flat_layer.inputs):
            continue  # an input failed: its own error is reported
        try:
            with _located(flat_layer, spec):
                made[flat_layer.name] = _add_layer(graph, flat_layer, [made[name] for name in flat_layer.inputs])
        except ShapeError as error:
            shapes.extend(error.problems)
    if flat.problems or cycle:
        raise SpecError(problems=merge_uses(flat.problems + cycle + shapes, spec))
    if shapes:
        raise ShapeError(problems=merge_uses(shapes, spec))
    graph = _only(graph, _ancestors(flat.outputs, by_name), [made[name] for name in flat.outputs if name in made])
    graph.sink_names = list(model.get("outputs", {}))
    graph.warnings.extend(_mask_warnings(graph, by_name, spec))
    _check_sources(graph, spec)
    conflict = graph.input_dtype_conflict()
    if conflict is not None:
        node, message = conflict
        with _located(by_name[node.source], spec):
            raise ShapeError(message)
    return graph


def _only(graph: Graph, sources: set[str], outputs: list[int]) -> Graph:
    """``graph`` without the nodes of layers outside ``sources`` (those no output depends on: checked like the
    others, then left out), the inputs of the others renumbered; ``outputs`` (node indices) become its sinks."""
    kept = [index for index, node in enumerate(graph.nodes) if node.source in sources]
    renumbered = {old: new for new, old in enumerate(kept)}
    nodes = [
        replace(graph.nodes[index], inputs=tuple(i if i < 0 else renumbered[i] for i in graph.nodes[index].inputs))
        for index in kept
    ]
    return replace(graph, nodes=nodes, sinks=[renumbered[index] for index in outputs])


def _mask_warnings(graph: Graph, by_name: dict[str, FlatLayer], spec: Spec) -> list[Problem]:
    """A warning at each layer that drops a mask it receives, and at each model output that carries one (which
    the loss does not weigh by, where Keras' would)."""
    warnings = [
        by_name[node.source].context.problem(
            spec,
            f"{node.layer.type} does not use the mask of the padding (Embedding mask_zero), so it is dropped here, "
            "as Keras drops it: from here on the padded steps count; the README's Masks section lists the kinds "
            "that take or pass one",
            severity="warning",
        )
        for index, node in enumerate(graph.nodes)
        if graph.drops_mask(index)
    ]
    warnings.extend(
        by_name[graph.nodes[index].source].context.problem(
            spec,
            "this model output carries the mask of the padding, which the loss does not weigh its steps by (Keras' "
            "would): every step counts in the loss; end with a layer that consumes the mask (a recurrent layer "
            "without return_sequences, GlobalAveragePooling1D)",
            severity="warning",
        )
        for index in graph.output_nodes
        if graph.mask_at(index)
    )
    return merge_uses(warnings, spec)


def _check_sources(graph: Graph, spec: Spec) -> None:
    """Every named model input is taken by a layer the outputs depend on."""
    taken = {index for node in graph.nodes for index in node.inputs if index < 0}
    problems = [
        Problem(
            f"no layer takes model input {source.name!r}; name it in the `inputs` of a layer an output depends on, "
            "or remove it",
            spec.locate(("model", "inputs", source.name), at_key=True),
        )
        for position, source in enumerate(graph.sources)
        if input_node(position) not in taken
    ]
    if problems:
        raise SpecError(problems=problems)


def _add_layer(graph: Graph, flat: FlatLayer, inputs: list[int]) -> int:
    """Add ``flat``'s node (and its activation node) taking the outputs of nodes ``inputs``; the last node's index."""
    config = dict(flat.config)
    kind = config["type"]
    layer = REGISTRY[kind](config, name=flat.name)
    layers = [layer]
    activation = config.get("activation", "linear")
    if activation != "linear" and not layer.applies_activation:
        layers.append(REGISTRY["Activation"]({"activation": activation}, name=f"{flat.name}_{activation}"))
    shapes = [graph.shape_of(index) for index in inputs]
    if not layer.merges and len(inputs) != 1:
        raise ShapeError(
            f"{kind} takes one input, got {len(inputs)}: {', '.join(flat.inputs)}; merge them first "
            "(Add, Concatenate, ...)"
        )
    for node_layer in layers:
        if node_layer.merges:  # a kind of several inputs (Layer.merges) takes their shapes and names, as Merge does
            taken: Any = tuple(shapes)
            merge = cast("Merge", node_layer)
            out = tuple(merge.output_shape(taken, [graph.source_of(index) for index in inputs]))
        else:
            taken = shapes[0]
            out = tuple(node_layer.output_shape(taken))
        mask = graph.output_mask(node_layer, inputs)
        graph.nodes.append(Node(node_layer, taken, out, tuple(inputs), flat.name, flat.path, flat.blocks, mask))
        inputs, shapes = [len(graph.nodes) - 1], [out]
    return len(graph.nodes) - 1


def _topological(flat: FlatModel, by_name: dict[str, FlatLayer], spec: Spec) -> tuple[list[FlatLayer], list[Problem]]:
    """The layers in an order where each comes after its inputs, otherwise as written (an input that failed
    counts as ready); and the problem of a cycle, whose layers (and what takes them) are left out of the order."""
    position = {layer.name: index for index, layer in enumerate(flat.layers)}
    outside = set(flat.sources) | flat.failed
    waiting = {layer.name: len(set(layer.inputs) - outside) for layer in flat.layers}
    users: dict[str, list[str]] = {}
    for layer in flat.layers:
        for name in set(layer.inputs) - outside:
            users.setdefault(name, []).append(layer.name)
    ready = [position[name] for name, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        layer = flat.layers[heapq.heappop(ready)]
        order.append(layer)
        for user in users.get(layer.name, []):
            waiting[user] -= 1
            if waiting[user] == 0:
                heapq.heappush(ready, position[user])
    if len(order) == len(flat.layers):
        return order, []
    cycle = _cycle([layer for layer in flat.layers if waiting[layer.name]], by_name)
    first = min(cycle, key=lambda name: position[name])
    cycle = cycle[cycle.index(first) :] + cycle[: cycle.index(first)]
    names = " -> ".join(repr(name) for name in [*cycle, first])
    context = by_name[first].context
    return order, [
        context.problem(
            spec,
            f"the layers {names} form a cycle; a layer cannot take its input from a layer that depends on it",
            (*context.item, "inputs"),
        )
    ]


def _cycle(stuck: list[FlatLayer], by_name: dict[str, FlatLayer]) -> list[str]:
    """One cycle among the layers that never became ready, in data-flow order."""
    stuck_names = {layer.name for layer in stuck}
    path, current = [], stuck[0].name
    while current not in path:
        path.append(current)
        current = next(name for name in by_name[current].inputs if name in stuck_names)
    cycle = path[path.index(current) :]
    return cycle[::-1]


def _ancestors(outputs: Sequence[str], by_name: dict[str, FlatLayer]) -> set[str]:
    """The layers the outputs depend on, themselves included."""
    seen, pending = set(), list(outputs)
    while pending:
        name = pending.pop()
        if name in seen or name not in by_name:
            continue  # the input, or a layer that failed
        seen.add(name)
        pending.extend(by_name[name].inputs)
    return seen


def _unused(flat: FlatModel, spec: Spec) -> list[Problem]:
    """A warning for each layer whose output nothing takes (the model's output aside)."""
    taken = {name for layer in flat.layers for name in layer.inputs}
    return merge_uses(
        [
            layer.context.problem(
                spec,
                f"nothing takes the output of {layer.name!r}, so it is left out of "
                "the model; use it in another layer's inputs or remove it",
                severity="warning",
            )
            for layer in flat.layers
            if layer.name not in taken and layer.name not in flat.outputs
        ],
        spec,
    )
