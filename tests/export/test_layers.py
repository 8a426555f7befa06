"""Every registered layer kind, on each of its examples, exported inside small networks (alone: the
generic layer tests).

The exported graphs run under onnxruntime and under onnx's ReferenceEvaluator (an independent
implementation of the operators) and must compute what the numpy forward computes.  Inside a
network the layer sits between layers that want other layouts (a Conv2D before it leaves NCHW
tensors; Flatten and Dense after it want NHWC), so every Transpose the builder inserts is exercised.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from helpers import CASES, check_onnx_parity, example_input, make_layer, numpy_forward

from specforge.data.preprocessing import Preprocessing
from specforge.export.onnx import IR_VERSIONS
from specforge.layers import REGISTRY

BATCH = 4


def surrounded(kind: str, config: dict, shape: tuple) -> tuple[list, tuple]:
    """``[before, layer, (Flatten), Dense(3), Softmax]``: the layer inside a small classifier (first, for a kind
    that takes the model's ids)."""
    before = {
        3: ("Conv2D", {"filters": shape[-1], "kernel_size": [2, 1], "padding": "same"}),
        1: ("Dense", {"units": shape[0]}),
    }.get(len(shape), ("ReLU", {}))
    steps = [make_layer(*before, shape, dtype=np.float32, seed=1)] if REGISTRY[kind].input_dtype == "float" else []
    steps.append(make_layer(kind, config, shape, dtype=np.float32))
    out = steps[-1][0].output_shape(shape)
    if len(out) != 1:
        steps.append(make_layer("Flatten", {}, out, dtype=np.float32))
        out = steps[-1][0].output_shape(out)
    steps.append(make_layer("Dense", {"units": 3}, out, dtype=np.float32, seed=2))
    steps.append(make_layer("Softmax", {}, (3,), dtype=np.float32))
    return steps, shape


def inputs(kind: str, shape: tuple, seed: int = 0) -> np.ndarray:
    return example_input(kind, shape, BATCH, seed, np.float32)


@pytest.mark.parametrize("kind,config,shape", CASES)
def test_inside_a_network(kind, config, shape):
    steps, shape = surrounded(kind, config, shape)
    check_onnx_parity(steps, shape, inputs(kind, shape, seed=1))


@pytest.mark.parametrize("kind,config,shape", [c for c in CASES if len(c.values[2]) == 3])
def test_inside_a_network_with_preprocessing(kind, config, shape):
    """Raw 0-255 values in, per-channel normalisation in the graph before the first layer."""
    steps, shape = surrounded(kind, config, shape)
    channels = shape[-1]
    prep = Preprocessing(
        shape,
        3,
        ("a", "b", "c"),
        rescale=1 / 255,
        mean=[0.1 * (c + 1) for c in range(channels)],
        std=[0.2 + 0.1 * c for c in range(channels)],
    )
    raw = np.random.default_rng(2).integers(0, 256, (BATCH, *shape)).astype(np.float32)
    check_onnx_parity(steps, shape, raw, numpy_forward(steps, prep.images(raw)), preprocessing=prep)


@pytest.mark.parametrize("opset", sorted(IR_VERSIONS))
def test_every_kind_in_every_opset(opset):
    """Every kind's first example inside a network, in each opset, with the IR version that goes with it."""
    for kind, cls in ((kind, cls) for kind, cls in REGISTRY.items() if not cls.merges):
        config, shape = cls.examples[0]
        steps, shape = surrounded(kind, config, shape)
        model = check_onnx_parity(steps, shape, inputs(kind, shape, seed=3), opset=opset)
        assert model.ir_version == onnx.helper.find_min_ir_version_for([onnx.helper.make_opsetid("", opset)])
        assert [(o.domain, o.version) for o in model.opset_import] == [("", opset)]
