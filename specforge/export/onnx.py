"""Graph + weights -> ONNX model.

The model's input is ``input`` (a model of several named inputs has one ONNX input per model input, named as
it is, and one of several outputs one ONNX output per model output, named as it is): the graph's input dtype (float32, or int64 ids for a model whose
first layers take ids), NHWC as in the spec, with a symbolic batch axis ``N``.  Optional preprocessing
(``x * scale + offset``, the run's rescale and normalisation) comes first, so a deployed model takes raw values.
Each layer emits its nodes through an OnnxBuilder, which inserts NHWC <-> NCHW
Transposes only where a layer needs the other layout; the output is brought
back to the spec's layout.  ``export_graph`` gives a trained classifier its
deployment interface: ``probabilities`` and, on request, the ``logits`` before
the final softmax.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

import numpy as np
import onnx
from onnx import helper

import specforge
from specforge.base.errors import ExportError
from specforge.export.builder import NHWC, OnnxBuilder
from specforge.export.folding import fold_flatten_transposes
from specforge.graph.dag import input_node
from specforge.layers.base import Layer, Params

if TYPE_CHECKING:
    from specforge.data.preprocessing import Preprocessing
    from specforge.graph.dag import Graph
    from specforge.layers.merge import Merge

#: The ONNX IR version that goes with each default-domain opset (onnx.helper.VERSION_TABLE).
IR_VERSIONS = {13: 7, 14: 7, 15: 8, 16: 8, 17: 8, 18: 8, 19: 9, 20: 9, 21: 10}
DEFAULT_OPSET = 13
INPUT_NAME = "input"
PROBABILITIES = "probabilities"
LOGITS = "logits"


def graph_to_onnx(
    graph: Graph,
    params: Sequence[Params],
    *,
    opset: int = DEFAULT_OPSET,
    output_name: str = "output",
    preprocessing: Preprocessing | None = None,
    logits: bool = False,
    doc: str = "",
) -> onnx.ModelProto:
    """The ONNX model computing ``graph`` with ``params`` (one dict per node) in inference mode.

    ``preprocessing`` puts its scale and offset before the first node.  ``logits``
    also outputs each softmax output's input (``logits_outputs``).  Every
    tensor takes its shape from the graph's nodes, and the graph's outputs are named when
    the nodes that make them are added.  A graph of several inputs or outputs takes and gives them
    under their model names (``output_name`` names a single output; ``preprocessing`` is for a single input).  Raises ExportError naming a layer that cannot be converted.
    """
    if opset not in IR_VERSIONS:
        raise ExportError(f"Received: opset={opset}; use an opset from {min(IR_VERSIONS)} to {max(IR_VERSIONS)}")
    builder = OnnxBuilder(opset)
    sources = graph.model_inputs
    input_names = [INPUT_NAME] if len(sources) == 1 else [source.name for source in sources]
    several = len(graph.output_nodes) > 1
    if len(sources) > 1 and preprocessing is not None:
        raise ValueError("preprocessing in the graph is for a model of one input")
    last = len(graph.nodes) - 1
    publics: dict[int, str] = dict(zip(graph.output_nodes, graph.output_names)) if several else {last: output_name}
    logit_names = logits_outputs(graph) if logits else {}
    if set(logit_names) & set(publics):
        raise ExportError("--logits: a softmax output's input is another output of the model; leave --logits out")
    publics.update(logit_names)
    # Reserve the graph's own names so that no layer's tensor can take them.
    for reserved in (*input_names, *publics.values()):
        if reserved:
            builder.unique(reserved)
    tensors = {
        input_node(position): _preprocess(builder, input_name, source.shape, preprocessing)
        for position, (input_name, source) in enumerate(zip(input_names, sources))
    }
    if last == -1:
        tensors[input_node(0)] = _publish(builder, tensors[input_node(0)], output_name)
    mask_tensors: dict[tuple[int, ...], str] = {}
    for index, (node, node_params) in enumerate(zip(graph.nodes, params)):
        public = publics.get(index)
        if public:
            builder.claim(node.layer.name, public, len(node.output_shape))
        taken = [tensors[source] for source in node.inputs]
        masks = _masks(builder, graph, index, tensors, mask_tensors)
        name = _convert(node.layer, builder, node_params, taken if node.layer.merges else taken[0], masks)
        builder.shapes[name] = node.output_shape
        if public:
            if not builder.release(node.layer.name) and name != public:
                raise ExportError(
                    f"layer {node.layer.name!r} ({node.layer.type}) cannot be exported: a node "
                    "other than the one making its output is hinted with the layer's name"
                )
            name = _publish(builder, name, public)
            builder.shapes[name] = node.output_shape
        tensors[index] = name
    outputs = (
        [(public, graph.nodes[index].output_shape) for index, public in zip(graph.output_nodes, graph.output_names)]
        if several
        else [(output_name, graph.output_shape)]
    )
    outputs += [(name, graph.nodes[index].output_shape) for index, name in logit_names.items()]
    fold_flatten_transposes(builder, {public for public, _ in outputs})

    onnx_graph = helper.make_graph(
        builder.nodes,
        "specforge",
        [
            builder.value_info(input_name, ["N", *source.shape], _input_doc(source.shape, dtype, preprocessing), dtype)
            for input_name, source, dtype in zip(input_names, sources, graph.input_dtypes)
        ],
        [builder.value_info(public, ["N", *dims], _output_doc(public)) for public, dims in outputs],
        initializer=builder.initializers,
        doc_string=doc,
    )
    model = helper.make_model(
        onnx_graph,
        opset_imports=[helper.make_opsetid("", opset)],
        ir_version=IR_VERSIONS[opset],
        producer_name="specforge",
        producer_version=specforge.__version__,
    )
    check_model(model)
    return model


def export_graph(
    graph: Graph,
    params: Sequence[Params],
    *,
    opset: int = DEFAULT_OPSET,
    logits: bool = False,
    preprocessing: Preprocessing | None = None,
    until: int | None = None,
    doc: str = "",
) -> onnx.ModelProto:
    """A classifier's deployment model: ``input`` -> ``probabilities`` (and ``logits`` when asked), or a model
    of several outputs' named outputs (and ``NAME_logits`` of each softmax output, ``logits_outputs``).

    ``logits`` needs a softmax output.  ``until`` exports only the first ``until`` nodes, for the
    parity gate's comparison of prefixes (not combined with ``logits``).
    """
    if logits and not logits_outputs(graph):
        raise ExportError(
            f"--logits needs a model whose last activation is softmax; this one ends with "
            f"{graph.final_activation!r}, so its output already is what the last layer computes; "
            "leave --logits out"
            if len(graph.output_nodes) == 1
            else "--logits needs an output whose activation is softmax, and no output of this model has one; "
            "leave --logits out"
        )
    return graph_to_onnx(
        graph.prefix(until),
        params,
        opset=opset,
        output_name=PROBABILITIES,
        preprocessing=preprocessing,
        logits=logits,
        doc=doc,
    )


def logits_outputs(graph: Graph) -> dict[int, str]:
    """The logits ``--logits`` adds: for each output whose activation is softmax, the node giving its input (the
    softmax's logits), and the logits output's name: ``logits`` for a model of one output, ``NAME_logits`` (e.g.
    ``digit_logits``) for each softmax output of a model of several."""
    several = len(graph.output_nodes) > 1
    return {
        graph.nodes[index].inputs[0]: f"{name}_{LOGITS}" if several else LOGITS
        for index, name in zip(graph.output_nodes, graph.output_names)
        if graph.activation_of(index) == "softmax"
    }


def check_model(model: onnx.ModelProto) -> None:
    """The ONNX checker (full check) and strict shape inference with type checks; ExportError when either fails."""
    try:
        onnx.checker.check_model(model, full_check=True)
        onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ExportError(f"the exported model is not valid ONNX: {first}") from error


_OUTPUT_DOCS = {
    PROBABILITIES: "[N, classes] float32: the model's output (class probabilities after a final softmax).",
    LOGITS: "[N, classes] float32: the final softmax's input.",
}


def _output_doc(name: str) -> str:
    if name.endswith(f"_{LOGITS}"):
        return f"[N, classes] float32: the softmax's input of output {name.removesuffix(f'_{LOGITS}')!r}."
    return _OUTPUT_DOCS.get(name, "")


def _input_doc(input_shape: Sequence[int], dtype: str, preprocessing: Preprocessing | None) -> str:
    shape = ", ".join(["N", *map(str, input_shape)])
    values = (
        "raw values as stored in the training data; the run's preprocessing is in the graph"
        if preprocessing is not None
        else "preprocessed values (apply the preprocessing in the metadata)"
    )
    layout = "NHWC" if len(input_shape) == 3 else "as in the spec"
    return f"[{shape}] {dtype}, {layout}: {values}."


def _preprocess(builder: OnnxBuilder, name: str, shape: tuple[int, ...], preprocessing: Preprocessing | None) -> str:
    """``x * scale + offset`` as Preprocessing.images computes it (the Mul left out when the scale is 1)."""
    builder.shapes[name] = shape
    builder.layouts[name] = NHWC
    if preprocessing is None:
        return name
    scale, offset = preprocessing.scale_and_offset
    if np.any(scale != 1):
        name = builder.node("Mul", [name, builder.initializer(scale, "preprocess_scale")], "preprocess_scaled")
    if preprocessing.mean is not None:
        name = builder.node("Add", [name, builder.initializer(offset, "preprocess_offset")], "preprocessed")
    builder.shapes[name] = shape
    return name


def _masks(
    builder: OnnxBuilder, graph: Graph, index: int, tensors: dict[int, str], made: dict[tuple[int, ...], str]
) -> str | list[str | None] | None:
    """The masks node ``index`` takes (``Graph.taken_masks``) as float ``(N, steps)`` tensors, 1 where a step
    counts: the model inputs' ids other than 0, each mask made once (in ``made``); a list for a merge."""
    taken = graph.taken_masks(index)
    if taken is None:
        return None
    names: list[str | None] = []
    for sources in taken:
        if sources and sources not in made:
            kept = [
                builder.node(
                    "Cast",
                    [
                        builder.node(
                            "Not",
                            [builder.node("Equal", [tensors[source], _zero_id(builder)], "padding")],
                            "counts",
                        )
                    ],
                    "mask",
                    to=onnx.TensorProto.FLOAT,
                )
                for source in sources
            ]
            joined = kept[0]
            for other in kept[1:]:
                joined = builder.node("Mul", [joined, other], "mask")
            made[sources] = joined
        names.append(made[sources] if sources else None)
    return names if graph.nodes[index].layer.merges else names[0]


def _zero_id(builder: OnnxBuilder) -> str:
    return builder.initializer(np.zeros((), np.int64), "padding_id")


def _convert(
    layer: Layer,
    builder: OnnxBuilder,
    params: Params,
    input_name: str | list[str],
    mask: str | list[str | None] | None = None,
) -> str:
    """``layer.to_onnx`` with its failures named after the layer; a merging layer takes the list of its inputs, a
    layer that takes masks the ``mask`` of its input (only when one reaches it)."""
    extra = {} if mask is None else {"mask": mask}
    try:
        if isinstance(input_name, list):  # a merging kind (Layer.merges) takes its inputs' names
            return cast("Merge", layer).to_onnx(builder, params, input_name, **extra)
        return layer.to_onnx(builder, params, input_name, **extra)
    except NotImplementedError:
        raise ExportError(
            f"layer {layer.name!r} ({layer.type}) has no ONNX conversion; export supports "
            "the layer kinds whose class implements to_onnx"
        ) from None
    except ExportError as error:
        raise ExportError(
            f"layer {layer.name!r} ({layer.type}) cannot be exported: {error.problems[0].message}"
        ) from None


def _publish(builder: OnnxBuilder, tensor: str, public: str) -> str:
    """The graph output ``public`` for a node's output ``tensor``: the tensor itself when its node took the
    name (``OnnxBuilder.claim``), else a Transpose back to NHWC made under that name, else an Identity
    (a node that makes no node of its own, e.g. Dropout, or an output that is not the layer's own node)."""
    if tensor == public:
        return tensor
    transposed = builder.to_layout(tensor, NHWC, output=public)
    if transposed == public:
        return public
    return builder.node("Identity", [tensor], public, name=public)
