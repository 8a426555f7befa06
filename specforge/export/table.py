"""A table model's ONNX interface: raw rows in, with every preprocessing step inside the graph.

One input per feature column, ``[N, 1]``: float for numeric columns (NaN for a missing value),
string for categorical, binary and text ones (an image column: float ``[N, height, width, channels]``, the raw
0-255 pixels of the images its cells name, which the graph multiplies by the column's ``rescale``), where ``""`` and every other text the table reader takes
for a missing cell (``MISSING``: ``NA``, ``null``, ``?``, ...) are missing, so that the same cell
means the same in Python and wherever the graph runs.  The graph fills missing values, scales
numbers, looks categories up in the training vocabulary (ai.onnx.ml LabelEncoder; a value never
seen in training matches no column, an all-zero one-hot, as scikit-learn's
``handle_unknown='ignore'``) and one-hot encodes them, vectorizes a text column's documents as the
text export does (``specforge.export.text``; a missing cell is an empty document), concatenates
everything into the network's ``input`` (or each named input's columns into that input: a text column
of token ids alone, int64), and, for a standardized regression target, turns the network's output back
into the target's units.  The output is ``probabilities`` for a classifier and ``predictions``
for a regression.

The parity gate runs the numpy pipeline (``TablePipeline.encode``, the numpy forward, the
target's ``decode``) against onnxruntime on the same raw rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import onnx
from onnx import TensorProto, compose, helper

from specforge.base.errors import ExportError
from specforge.data.feed import Feed
from specforge.data.table.features import UNSEEN
from specforge.data.table.read import MISSING
from specforge.export.onnx import INPUT_NAME, PROBABILITIES, check_model
from specforge.export.parity import ATOL, RTOL, ParityResult
from specforge.export.subgraph import ML_DOMAIN, ML_OPSET, Subgraph
from specforge.export.text import TextGraph, vectorized
from specforge.predict.session import make_session
from specforge.predict.table import each_numpy_output, rows_feed

if TYPE_CHECKING:
    from specforge.data.table.features import Feature, TablePipeline, Target
    from specforge.data.table.read import Table
    from specforge.graph.dag import Graph
    from specforge.layers.base import Params

PREDICTIONS = "predictions"


def output_name(target: Target) -> str:
    return PREDICTIONS if target.regression else PROBABILITIES


def _numeric(graph: Subgraph, feature: Feature) -> str:
    x = feature.column
    filled = graph.node(
        "Where", [graph.node("IsNaN", [x], "missing"), graph.floats([float(feature.fill)], "fill"), x], "filled"
    )
    if feature.scale == "log":
        filled = graph.node("Log", [graph.node("Add", [filled, graph.floats([1], "one")], "plus_one")], "log")
    centered = graph.node("Sub", [filled, graph.floats([feature.center], "center")], "centered")
    return graph.node("Div", [centered, graph.floats([feature.spread], "spread")], "scaled")


def _image(graph: Subgraph, feature: Feature) -> str:
    return graph.node("Mul", [feature.column, graph.floats([feature.rescale], "rescale")], "rescaled")


def _lookup(feature: Feature, codes: list, unseen: object) -> dict:
    """LabelEncoder attributes: each vocabulary value to its code, each missing-value text to the fill value's
    code (``unseen``'s when the fill value is not in the vocabulary)."""
    keys = list(feature.vocabulary)
    fill = codes[keys.index(feature.fill)] if feature.fill in keys else unseen
    markers = sorted(MISSING)
    return {"keys_strings": keys + markers, "values": codes + [fill] * len(markers)}


def _categorical(graph: Subgraph, feature: Feature) -> str:
    size = len(feature.vocabulary)
    lookup = _lookup(feature, list(range(size)), UNSEEN)
    codes = graph.node(
        "LabelEncoder",
        [feature.column],
        "code",
        domain=ML_DOMAIN,
        keys_strings=lookup["keys_strings"],
        values_int64s=lookup["values"],
        default_int64=UNSEEN,
    )
    hot = graph.node("Equal", [codes, graph.constant(np.arange(feature.width, dtype=np.int64), "categories")], "hot")
    return graph.node("Cast", [hot], "one_hot", to=TensorProto.FLOAT)


def _binary(graph: Subgraph, feature: Feature) -> str:
    values = [0.0, 1.0] if len(feature.vocabulary) == 2 else [0.0]
    lookup = _lookup(feature, values, 0.0)
    return graph.node(
        "LabelEncoder",
        [feature.column],
        "binary",
        domain=ML_DOMAIN,
        keys_strings=lookup["keys_strings"],
        values_floats=lookup["values"],
        default_float=0.0,
    )


def _text(graph: Subgraph, feature: Feature) -> str:
    """A text column's ``[N, 1]`` cells, a missing one (``MISSING``) an empty document, vectorized by the text
    export's nodes, named under a prefix of the feature's own (a column may feed two features)."""
    if feature.vectorizer is None:
        raise ValueError(f"text column {feature.column!r} has no fitted vectorizer")
    text = TextGraph(graph.name(feature.column))
    cells = text.node("Reshape", [feature.column, text.flat], "cells")
    markers = text.constant(np.array(sorted(MISSING), dtype=object), "missing_markers")
    marked = text.node(
        "Cast", [text.node("Equal", [feature.column, markers], "is_marker")], "marked", to=TensorProto.INT64
    )
    missing = text.node(
        "Cast", [text.node("ReduceMax", [marked, text.one], "any_marker", keepdims=0)], "missing", to=TensorProto.BOOL
    )
    documents = text.node("Where", [missing, text.empty, cells], "documents")
    vectors = vectorized(text, documents, feature.vectorizer)
    graph.nodes += text.nodes
    graph.initializers += text.initializers
    return vectors


def _model(
    graph: Subgraph,
    inputs: list[onnx.ValueInfoProto],
    outputs: list[onnx.ValueInfoProto],
    network: onnx.ModelProto,
    doc: str = "",
) -> onnx.ModelProto:
    opsets = [*network.opset_import, helper.make_opsetid(ML_DOMAIN, ML_OPSET)]
    return helper.make_model(
        helper.make_graph(graph.nodes, "table", inputs, outputs, graph.initializers, doc_string=doc),
        opset_imports=opsets,
        ir_version=network.ir_version,
    )


def _first_of_each_column(pipeline: TablePipeline) -> list[Feature]:
    """One feature per column (a column may feed several features, e.g. scaled two ways): one input each."""
    seen: dict[str, Feature] = {}
    for feature in pipeline.features:
        seen.setdefault(feature.column, feature)
    return list(seen.values())


def _image_info(feature: Feature) -> onnx.ValueInfoProto:
    info = helper.make_tensor_value_info(feature.column, TensorProto.FLOAT, ["N", *feature.shape])
    info.doc_string = (
        f"image column {feature.column!r}: raw 0-255 pixels {feature.shape} of the images its cells name, converted "
        "and resized as image folders are"
    )
    return info


def _input_doc(feature: Feature) -> str:
    """What a feature column's input takes, in words."""
    missing = f"missing when one of {', '.join(map(repr, sorted(MISSING)))}"
    if feature.type == "numeric":
        return "raw number, NaN when missing"
    if feature.type == "text":
        return f"raw document (UTF-8), an empty document when {missing}; vectorized in the graph"
    unseen = "adds nothing (an all-zero one-hot)" if feature.type == "categorical" else "reads as 0"
    return f"raw text, {missing}; a value not seen in training {unseen}"


def input_infos(pipeline: TablePipeline) -> list[onnx.ValueInfoProto]:
    """The model's inputs: one ``[N, 1]`` tensor per feature column, float or string (an image column's pixels
    ``[N, height, width, channels]``)."""
    infos = []
    for feature in _first_of_each_column(pipeline):
        if feature.type == "image":
            infos.append(_image_info(feature))
            continue
        numeric = feature.type == "numeric"
        doc = f"{feature.type} column {feature.column!r}: {_input_doc(feature)}"
        info = helper.make_tensor_value_info(
            feature.column, TensorProto.FLOAT if numeric else TensorProto.STRING, ["N", 1]
        )
        info.doc_string = doc
        infos.append(info)
    return infos


def _preprocessing(
    pipeline: TablePipeline, network: onnx.ModelProto, groups: dict[str, list[str]] | None = None
) -> onnx.ModelProto:
    """Raw rows to the network's input ``input``, the encoded features in order; or, with ``groups``
    (``data.inputs``), to each named model input, the encoded features of its columns in the group's order (an
    image column, alone in its group, its rescaled pixels ``[N, height, width, channels]``)."""
    graph = Subgraph("table")
    encode = {"numeric": _numeric, "categorical": _categorical, "binary": _binary, "image": _image, "text": _text}
    encoded = [(feature.column, encode[feature.type](graph, feature), feature.width) for feature in pipeline.features]
    ids = {feature.column for feature in pipeline.features if feature.takes_ids}
    wanted = (
        {
            name: [item for column in columns for item in encoded if item[0] == column]
            for name, columns in groups.items()
        }
        if groups
        else {INPUT_NAME: encoded}
    )
    outputs = []
    for name, taken in wanted.items():
        graph.nodes.append(
            helper.make_node("Concat", [part for _, part, _ in taken], [name], name=f"table/{name}", axis=1)
        )
        shape = pipeline_images(pipeline).get(taken[0][0]) or (sum(size for _, _, size in taken),)
        dtype = TensorProto.INT64 if all(column in ids for column, _, _ in taken) else TensorProto.FLOAT
        outputs.append(helper.make_tensor_value_info(name, dtype, ["N", *shape]))
    return _model(graph, input_infos(pipeline), outputs, network)


def _inverse_target(target: Target, network: onnx.ModelProto, units: int) -> onnx.ModelProto:
    graph = Subgraph("table")
    source = "table/network_output"
    scaled = graph.node("Mul", [source, graph.floats(target.std, "target_std")], "target_scaled")
    graph.nodes.append(
        helper.make_node(
            "Add", [scaled, graph.floats(target.mean, "target_mean")], [PREDICTIONS], name="table/target_units"
        )
    )
    return _model(
        graph,
        [helper.make_tensor_value_info(source, TensorProto.FLOAT, ["N", units])],
        [helper.make_tensor_value_info(PREDICTIONS, TensorProto.FLOAT, ["N", units])],
        network,
    )


def _renamed_output(network: onnx.ModelProto, name: str) -> onnx.ModelProto:
    """``network`` with its output ``probabilities`` called ``name``."""
    model = onnx.ModelProto()
    model.CopyFrom(network)
    for node in model.graph.node:
        node.output[:] = [name if value == PROBABILITIES else value for value in node.output]
    model.graph.output[0].name = name
    return model


def table_model(
    network: onnx.ModelProto, pipeline: TablePipeline, doc: str = "", groups: dict[str, list[str]] | None = None
) -> onnx.ModelProto:
    """The exported network (input ``input``, or one input per group of ``groups``, ``data.inputs``; output
    ``probabilities``) wrapped so that it takes raw rows: one input per feature column, as without groups."""
    target = pipeline.target
    names = list(groups) if groups else [INPUT_NAME]
    model = compose.merge_models(
        _preprocessing(pipeline, network, groups), network, io_map=[(name, name) for name in names]
    )
    if target.regression:
        units = len(target.columns)
        if target.mean:
            model = compose.merge_models(
                model, _inverse_target(target, network, units), io_map=[(PROBABILITIES, "table/network_output")]
            )
        else:
            model = _renamed_output(model, PREDICTIONS)
    model.graph.doc_string = doc
    model.producer_name, model.producer_version = network.producer_name, network.producer_version
    check_model(model)
    return model


def pipeline_inputs(pipeline: TablePipeline) -> list[tuple[str, bool]]:
    """``(column, is_text)`` for each input of raw cells (the image columns' are in ``pipeline_images``)."""
    return [
        (feature.column, feature.type != "numeric")
        for feature in _first_of_each_column(pipeline)
        if feature.type != "image"
    ]


def pipeline_images(pipeline: TablePipeline) -> dict[str, tuple[int, ...]]:
    """Each image column's input and the shape of its pixels."""
    return {feature.column: tuple(feature.shape) for feature in pipeline.features if feature.type == "image"}


def check_table_parity(
    graph: Graph,
    params: Sequence[Params],
    model: onnx.ModelProto,
    pipeline: TablePipeline,
    table: Table,
    data: str = "",
    feed: Feed | None = None,
) -> ParityResult:
    """The exported table model under onnxruntime against the numpy pipeline, on the raw rows of ``table``
    (split into the model's inputs by ``feed``): every output (each of a model of several, by its name) within
    the tolerances and every row's class agreeing in each."""
    expected = each_numpy_output(graph, params, pipeline, table, feed)
    if not all(np.all(np.isfinite(each)) for each in expected):
        raise ExportError(
            f"the numpy forward gives NaN or infinite outputs on {data or 'the parity rows'}; "
            "the weights are not usable (did training diverge?); nothing was written"
        )
    names = [output_name(pipeline.target)] if len(expected) == 1 else list(graph.output_names)
    session = make_session(model.SerializeToString())
    got = session.run(names, rows_feed(table, pipeline_inputs(pipeline), pipeline_images(pipeline)))
    rows = len(got[0])
    agree = (
        rows
        if pipeline.target.regression
        else min(int(np.sum(_classes(mine) == _classes(theirs))) for mine, theirs in zip(got, expected))
    )
    scale = max(1.0, max(float(np.max(np.abs(each), initial=0.0)) for each in expected))
    passed = (
        all(np.allclose(mine, theirs, rtol=RTOL, atol=ATOL * scale) for mine, theirs in zip(got, expected))
        and agree == rows
    )
    difference = max(
        float(np.max(np.abs(mine.astype(np.float64) - theirs), initial=0.0)) for mine, theirs in zip(got, expected)
    )
    return ParityResult(
        rows, difference, agree, passed, atol=ATOL * scale, data=data, classes=not pipeline.target.regression
    )


def _classes(scores: np.ndarray) -> np.ndarray:
    """Each row's class: the argmax, or for one sigmoid unit whether it is above 0.5."""
    return scores.argmax(-1) if scores.shape[-1] > 1 else scores[:, 0] > 0.5
