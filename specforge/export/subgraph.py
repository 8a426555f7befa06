"""Nodes and initializers of a small ONNX graph built by hand (a table's or a text model's preprocessing), every
name under one prefix so that it cannot clash with the network's when the two are merged."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx
from onnx import helper, numpy_helper

ML_DOMAIN = "ai.onnx.ml"
ML_OPSET = 2


class Subgraph:
    """The nodes and initializers built so far; each name is ``<prefix>/<count>_<hint>``."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.count = 0

    def name(self, hint: str) -> str:
        self.count += 1
        return f"{self.prefix}/{self.count}_{hint}"

    def constant(self, value: np.ndarray, hint: str) -> str:
        name = self.name(hint)
        self.initializers.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def floats(self, values: Sequence[float], hint: str) -> str:
        """A float32 constant of ``values``."""
        return self.constant(np.asarray(values, dtype=np.float32), hint)

    def ints(self, values: Sequence[int] | int, hint: str) -> str:
        """An int64 constant of ``values`` (a scalar for an int)."""
        return self.constant(np.asarray(values, dtype=np.int64), hint)

    def node(self, op: str, inputs: list[str], hint: str, domain: str = "", **attributes) -> str:
        return self.nodes_of(op, inputs, hint, 1, domain, **attributes)[0]

    def nodes_of(
        self, op: str, inputs: list[str], hint: str, outputs: int, domain: str = "", **attributes
    ) -> list[str]:
        """One node of ``outputs`` outputs; their names."""
        names = [self.name(hint) for _ in range(outputs)]
        self.nodes.append(helper.make_node(op, inputs, names, name=names[0], domain=domain, **attributes))
        return names
