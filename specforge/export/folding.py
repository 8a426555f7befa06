"""Rewrites of the built node list that keep what the model computes and make it cheaper to run.

Keras flattens an image in (height, width, channels) order; ONNX's convolutions leave it in
(channels, height, width). Exported as written, a Dense after a convolution costs a Transpose of
the whole feature map back to NHWC before the Flatten, on every inference: the largest tensor of
the model copied once more (about 6% of the seed model's inference time). When that Transpose
feeds only the Flatten and the Flatten only a product with a constant matrix, permuting the
matrix's rows to the channels-first order computes the same thing without the Transpose.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
from onnx import numpy_helper

from specforge.export.builder import OnnxBuilder

_TO_NHWC = [0, 2, 3, 1]


def fold_flatten_transposes(builder: OnnxBuilder, outputs: set[str]) -> None:
    """Drop every Transpose-to-NHWC -> Flatten -> MatMul/Gemm run's Transpose, permuting the product's
    constant rows instead (``outputs``, the graph's output names, are never rewritten away)."""
    uses = Counter(name for node in builder.nodes for name in node.input)
    producers = {output: node for node in builder.nodes for output in node.output}
    constants = {tensor.name: index for index, tensor in enumerate(builder.initializers)}
    consumers = {name: node for node in builder.nodes for name in node.input}
    for flatten in [node for node in builder.nodes if node.op_type == "Flatten"]:
        transpose = producers.get(flatten.input[0])
        product = consumers.get(flatten.output[0])
        if (
            transpose is None
            or transpose.op_type != "Transpose"
            or _perm(transpose) != _TO_NHWC
            or _axis(flatten) != 1
            or product is None
            or product.op_type not in ("MatMul", "Gemm")
            or product.input[0] != flatten.output[0]
            or _transposed_b(product)
            or uses[transpose.output[0]] != 1
            or uses[flatten.output[0]] != 1
            or product.input[1] not in constants
            or uses[product.input[1]] != 1
            or {transpose.output[0], flatten.output[0]} & outputs
        ):
            continue
        height, width, channels = builder.shape(transpose.output[0])
        index = constants[product.input[1]]
        matrix = numpy_helper.to_array(builder.initializers[index])
        order = np.arange(height * width * channels).reshape(height, width, channels).transpose(2, 0, 1).ravel()
        builder.initializers[index].CopyFrom(numpy_helper.from_array(matrix[order], product.input[1]))
        flatten.input[0] = transpose.input[0]
        builder.nodes.remove(transpose)


def _attribute(node: onnx.NodeProto, name: str, default: None) -> onnx.AttributeProto | None:
    return next((attribute for attribute in node.attribute if attribute.name == name), default)


def _perm(node: onnx.NodeProto) -> list[int]:
    attribute = _attribute(node, "perm", None)
    return list(attribute.ints) if attribute is not None else []


def _axis(node: onnx.NodeProto) -> int:
    attribute = _attribute(node, "axis", None)
    return attribute.i if attribute is not None else 1


def _transposed_b(node: onnx.NodeProto) -> bool:
    attribute = _attribute(node, "transB", None)
    return attribute is not None and attribute.i == 1
