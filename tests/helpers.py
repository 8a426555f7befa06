"""Helpers shared by the test modules."""

from __future__ import annotations

import onnx

from specforge.export.onnx import graph_to_onnx
from specforge.graph import Graph


def onnx_of(steps, input_shape: tuple, **options) -> onnx.ModelProto:
    """The exported model of ``steps`` (``(layer, params)`` pairs, in order) on ``input_shape``."""
    graph = Graph.chain(input_shape, [layer for layer, _ in steps])
    return graph_to_onnx(graph, [params for _, params in steps], **options)
