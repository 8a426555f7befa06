"""Graph + weights -> ONNX model.

The model's input is ``input``: float32, NHWC as in the spec, with a symbolic
batch axis ``N``.  Each layer emits its nodes through an OnnxBuilder, which
inserts NHWC <-> NCHW Transposes only where a layer needs the other layout;
the output is brought back to the spec's layout and named ``output``.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import onnx
from onnx import helper

import specforge
from specforge.errors import ExportError
from specforge.export.builder import NHWC, OnnxBuilder
from specforge.layers.base import Layer

#: The ONNX IR version that goes with each default-domain opset (onnx.helper.VERSION_TABLE).
IR_VERSIONS = {13: 7, 14: 7, 15: 8, 16: 8, 17: 8, 18: 8, 19: 9, 20: 9, 21: 10}
INPUT_NAME = "input"


def graph_to_onnx(steps: Sequence[tuple[Layer, dict[str, np.ndarray]]], input_shape: tuple[int, ...], *,
                  opset: int = 13, output_name: str = "output") -> onnx.ModelProto:
    """The ONNX model computing ``steps`` (layers with their parameters, in order) in inference mode."""
    if opset not in IR_VERSIONS:
        raise ExportError(f"Received: opset={opset}; use an opset from {min(IR_VERSIONS)} to {max(IR_VERSIONS)}")
    builder = OnnxBuilder(opset)
    # Reserve the graph's own names so that no layer's tensor can take them.
    name = builder.unique(INPUT_NAME)
    builder.unique(output_name)
    shape = tuple(int(d) for d in input_shape)
    builder.shapes[name] = shape
    builder.layouts[name] = NHWC
    for layer, params in steps:
        out_shape = layer.output_shape(shape)
        name = layer.to_onnx(builder, params, name)
        builder.shapes[name] = out_shape
        shape = out_shape
    _name_output(builder, builder.to_layout(name, NHWC), output_name)

    graph = helper.make_graph(
        builder.nodes, "specforge",
        [builder.value_info(INPUT_NAME, ["N", *input_shape], "NHWC, float32, as in the spec")],
        [builder.value_info(output_name, ["N", *shape])],
        initializer=builder.initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              ir_version=IR_VERSIONS[opset], producer_name="specforge",
                              producer_version=specforge.__version__)
    onnx.checker.check_model(model, full_check=True)
    return model


def _name_output(builder: OnnxBuilder, tensor: str, output_name: str) -> None:
    """Rename the node output ``tensor`` to ``output_name``, or add an Identity when no node makes it
    (the graph input itself, e.g. a model of only Dropout)."""
    for node in reversed(builder.nodes):
        if tensor in node.output:
            node.output[list(node.output).index(tensor)] = output_name
            return
    builder.nodes.append(helper.make_node("Identity", [tensor], [output_name], name=output_name))
