"""Export of graphs that branch and merge: every merge kind under onnxruntime and the ONNX reference
evaluator, hierarchical node names, and the parity gate naming the first differing node."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import run_onnx

from export.models import SPECS_DIR
from specforge.api import build_graph, load_spec
from specforge.export.onnx import graph_to_onnx
from specforge.export.parity import first_mismatch
from specforge.graph.dag import infer_graph
from specforge.graph.model import Model
from specforge.layers import REGISTRY
from specforge.spec import spec_from_dict

MERGE_CASES = [
    pytest.param(kind, config, shapes, id=f"{kind}-{i}")
    for kind, cls in REGISTRY.items()
    if cls.merges
    for i, (config, shapes) in enumerate(cls.examples)
]


def graph_of(layers, input_shape, output=None):
    model = {"input_shape": list(input_shape), "layers": layers, **({"output": output} if output else {})}
    return infer_graph(
        spec_from_dict({"version": 1, "name": "graph", "model": model, "compile": {"loss": "mean_squared_error"}})
    )


def branches(shapes) -> list[dict]:
    """One branch per merge input, from a flat model input: Dense to the input's size, Reshape to its shape,
    and for images and sequences a 1x1 convolution on the first branch (so that the merge meets an NCHW and
    an NHWC input)."""
    layers = []
    for index, shape in enumerate(shapes):
        layers += [
            {"type": "Dense", "units": math.prod(shape), "inputs": "input", "name": f"dense_{index}"},
            {"type": "Reshape", "target_shape": list(shape), "name": f"branch_{index}"},
        ]
        if index == 0 and len(shape) in (2, 3):
            kind = "Conv2D" if len(shape) == 3 else "Conv1D"
            layers.append({"type": kind, "filters": shape[-1], "kernel_size": 1, "name": "branch_0_conv"})
    return layers


def trained(graph, seed=0):
    model = Model.initialize(graph, np.random.default_rng(seed))
    rng = np.random.default_rng(seed + 1)
    for params in model.params:
        for name, value in params.items():
            params[name] = (value + 0.1 * rng.standard_normal(value.shape)).astype(np.float32)
    return model


@pytest.mark.parametrize("kind,config,shapes", MERGE_CASES)
def test_every_merge_kind_exports_with_numpy_parity(kind, config, shapes):
    layers = branches(shapes)
    first = "branch_0_conv" if len(shapes[0]) in (2, 3) else "branch_0"
    names = [first, *(f"branch_{i}" for i in range(1, len(shapes)))]
    layers.append({"type": kind, **config, "inputs": names, "name": "merged"})
    graph = graph_of(layers, (5,))
    model = trained(graph)
    x = np.random.default_rng(3).standard_normal((4, 5)).astype(np.float32)
    expected = model.forward(x)
    for got in run_onnx(graph_to_onnx(graph, model.params), x):
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


RESIDUAL = [
    {"type": "Conv2D", "name": "stem", "filters": 3, "kernel_size": 3, "padding": "same", "activation": "relu"},
    {"type": "Conv2D", "name": "conv_a", "filters": 3, "kernel_size": [3, 1], "strides": 2, "padding": "same"},
    {"type": "BatchNormalization", "name": "bn"},
    {"type": "Conv2D", "name": "shortcut", "inputs": "stem", "filters": 3, "kernel_size": 1, "strides": 2},
    {"type": "Add", "name": "add", "inputs": ["bn", "shortcut"]},
    {"type": "Concatenate", "name": "joined", "inputs": ["add", "shortcut"]},
    {"type": "Flatten", "name": "flat"},
    {"type": "Dense", "name": "classes", "units": 4, "activation": "softmax"},
]


def test_a_residual_graph_exports_with_its_node_names():
    graph = graph_of(RESIDUAL, (6, 5, 2))
    model = trained(graph)
    onnx_model = graph_to_onnx(graph, model.params)
    node_names = {node.name for node in onnx_model.graph.node}
    assert {"stem", "conv_a", "shortcut", "add", "joined", "classes"} <= node_names
    x = np.random.default_rng(4).standard_normal((3, 6, 5, 2)).astype(np.float32)
    for got in run_onnx(onnx_model, x):
        np.testing.assert_allclose(got, model.forward(x), rtol=1e-4, atol=1e-5)


def test_first_mismatch_names_the_first_differing_node_in_topological_order(monkeypatch):
    graph = graph_of(RESIDUAL, (6, 5, 2))
    model = trained(graph)
    x = np.random.default_rng(5).standard_normal((3, 6, 5, 2)).astype(np.float32)
    assert first_mismatch(graph, model.params, x, x, None) is None
    add = REGISTRY["Add"]
    monkeypatch.setattr(add, "onnx_op", "Max")  # a wrong conversion of the merge
    assert first_mismatch(graph, model.params, x, x, None) == "'add' (Add)"


def test_onnx_node_names_follow_the_hierarchical_names_of_blocks():
    graph = build_graph(load_spec(SPECS_DIR / "residual.yaml"))
    model = trained(graph)
    onnx_model = graph_to_onnx(graph, model.params)
    names = {node.name for node in onnx_model.graph.node}
    assert {"stem", "stage1/residual/conv_a", "stage1/residual/add", "stage2/residual_1/shortcut", "classes"} <= names
    x = np.random.default_rng(6).standard_normal((2, 28, 28, 1)).astype(np.float32)
    for got in run_onnx(onnx_model, x):
        np.testing.assert_allclose(got, model.forward(x), rtol=1e-4, atol=1e-5)
