"""Helpers shared by the test modules: layers with parameters, the numerical gradient, the layer
examples as cases, reference convolutions, ONNX export of a chain of layers, and the machine constants the
cost model decides from in tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx.reference import ReferenceEvaluator

from specforge.export.onnx import graph_to_onnx
from specforge.graph.dag import Graph
from specforge.layers import REGISTRY
from specforge.layers.base import INPUT_DTYPES
from specforge.ops import machine, parallel
from specforge.ops.machine import Machine

#: The reference specs in specs/, each also a template of ``specforge init`` (a link in specforge/starters/).
REFERENCE_SPECS = ("inception", "mobilenet", "recurrent", "resnet", "sequence", "transformer")
#: The specs in specs/ of several named inputs or outputs, which only the numpy backend trains and which the
#: generic export harness (one loss, one input) leaves out: tests/test_multi_io.py trains and exports them.
SEVERAL_IO_SPECS = ("breast_cancer_two_inputs", "mnist_greater", "mnist_parity", "sms_text_and_table")

#: Every registered single-input layer kind's examples, as pytest parameters ``kind, config, shape`` (the merge
#: kinds, whose examples take several shapes, have tests/layers/test_merge.py and tests/export/test_graphs.py).
CASES = [
    pytest.param(kind, config, shape, id=f"{kind}-{i}")
    for kind, cls in REGISTRY.items()
    if not cls.merges
    for i, (config, shape) in enumerate(cls.examples)
]
#: The single-input kinds' examples whose kind fuses the activation after it (``Layer.fuses_activation``).
FUSING_CASES = [case for case in CASES if REGISTRY[case.values[0]].fuses_activation]
#: Every kind of several inputs' examples, as pytest parameters ``kind, config, shapes`` (one shape per input).
MERGE_CASES = [
    pytest.param(kind, config, shapes, id=f"{kind}-{i}")
    for kind, cls in REGISTRY.items()
    if cls.merges
    for i, (config, shapes) in enumerate(cls.examples)
]


def onnx_of(steps, input_shape: tuple, **options) -> onnx.ModelProto:
    """The exported model of ``steps`` (``(layer, params)`` pairs, in order) on ``input_shape``."""
    graph = Graph.chain(input_shape, [layer for layer, _ in steps])
    return graph_to_onnx(graph, [params for _, params in steps], **options)


def numerical_gradient(f, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences of the scalar ``f()`` with respect to each entry of ``x`` (changed in place and
    restored); ``f`` takes no argument and reads ``x`` itself."""
    grad = np.empty_like(x)
    for index in np.ndindex(x.shape):
        saved = x[index]
        x[index] = saved + eps
        plus = f()
        x[index] = saved - eps
        minus = f()
        x[index] = saved
        grad[index] = (plus - minus) / (2 * eps)
    return grad


def make_layer(kind: str, config: dict, shape: tuple, dtype=np.float64, seed: int = 0):
    """A layer of ``kind`` with its parameters, moved off special values (zero biases, unit gammas)."""
    layer = REGISTRY[kind].from_options(config)
    rng = np.random.default_rng(seed)
    params = {
        name: (value + 0.1 * rng.standard_normal(value.shape)).astype(dtype)
        for name, value in layer.init_params(shape, rng).items()
    }
    if "moving_variance" in params:
        params["moving_variance"] = np.abs(params["moving_variance"]) + 0.5
    return layer, params


#: Ids drawn for a kind that takes them (``Layer.input_dtype`` int): every example of such a kind takes ids below it.
IDS = 3


def example_input(kind: str, shape: tuple, count: int, seed: int, dtype=np.float64) -> np.ndarray:
    """``count`` random inputs of ``shape`` for ``kind``: standard normal values in ``dtype``, or for a kind that
    takes ids, ids below ``IDS`` in its own dtype."""
    rng = np.random.default_rng(seed)
    if REGISTRY[kind].input_dtype == "float":
        return rng.standard_normal((count, *shape)).astype(dtype)
    return rng.integers(0, IDS, (count, *shape)).astype(INPUT_DTYPES[REGISTRY[kind].input_dtype])


def forward_fresh(kind: str, config: dict, params: dict, x: np.ndarray, training: bool):
    """Forward through a new layer with a fixed generator, so that repeated calls see the same dropout mask."""
    layer = REGISTRY[kind].from_options(config)
    return layer, layer.forward(params, x, training=training, rng=np.random.default_rng(1))


def check_gradients(
    kind: str,
    config: dict,
    params: dict,
    x: np.ndarray,
    training: bool = True,
    eps: float = 1e-6,
    rtol: float = 1e-5,
    atol: float = 1e-7,
) -> None:
    """Analytic dx and trainable parameter gradients against central differences of ``sum(w * y)``."""
    layer, (y, cache) = forward_fresh(kind, config, params, x, training)
    w = np.random.default_rng(2).standard_normal(y.shape)
    dx, grads = layer.backward(params, cache, w.copy())

    def loss() -> float:
        return float(np.sum(w * forward_fresh(kind, config, params, x, training)[1][0]))

    trainable = [name for name in params if name not in layer.non_trainable]
    assert sorted(grads) == sorted(trainable)
    takes_ids = np.issubdtype(x.dtype, np.integer)
    assert (dx is None) == takes_ids, "a kind has an input gradient exactly when it takes values, not ids"
    checked = [*([] if takes_ids else [("x", x, dx)]), *((n, params[n], grads[n]) for n in trainable)]
    for name, array, analytic in checked:
        assert analytic.shape == array.shape, name
        numeric = numerical_gradient(loss, array, eps)
        np.testing.assert_allclose(analytic, numeric, rtol=rtol, atol=atol, err_msg=f"gradient of {name}")


def run_onnx(model, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The model's output on ``x`` under onnxruntime and under the ONNX reference evaluator."""
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    runtime = session.run(None, {"input": x})[0]
    reference = ReferenceEvaluator(model).run(None, {"input": x})[0]
    return runtime, reference


def numpy_forward(steps, x: np.ndarray) -> np.ndarray:
    """The inference-mode output of ``steps`` (``(layer, params)`` pairs) for ``x``."""
    for layer, params in steps:
        x = layer.forward(params, x, training=False)[0]
    return x


def check_onnx_parity(
    steps, input_shape: tuple, x: np.ndarray, expected: np.ndarray | None = None, **options
) -> onnx.ModelProto:
    """Export ``steps``, check the file (checker, strict shape inference, declared output shape) and that
    onnxruntime and the ONNX reference evaluator compute ``expected`` (the numpy forward by default)."""
    model = onnx_of(steps, input_shape, **options)
    inferred = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    out_shape = numpy_forward(steps, np.zeros((1, *input_shape), x.dtype)).shape[1:]
    dims = inferred.graph.output[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["N", *out_shape]
    expected = numpy_forward(steps, x) if expected is None else expected
    for got in run_onnx(model, x):
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    return model


def reference_conv(x, kernel, bias, strides, dilation, pads, depthwise=False):
    """Direct definition, one output pixel and kernel tap at a time."""
    n, height, width, channels = x.shape
    kh, kw = kernel.shape[:2]
    xp = np.zeros((n, height + sum(pads[0]), width + sum(pads[1]), channels))
    xp[:, pads[0][0] : pads[0][0] + height, pads[1][0] : pads[1][0] + width] = x
    out_h = (xp.shape[1] - dilation[0] * (kh - 1) - 1) // strides[0] + 1
    out_w = (xp.shape[2] - dilation[1] * (kw - 1) - 1) // strides[1] + 1
    out_channels = channels * kernel.shape[3] if depthwise else kernel.shape[3]
    y = np.zeros((n, out_h, out_w, out_channels))
    for i in range(out_h):
        for j in range(out_w):
            for a in range(kh):
                for b in range(kw):
                    pixel = xp[:, i * strides[0] + a * dilation[0], j * strides[1] + b * dilation[1]]
                    if depthwise:
                        for c in range(channels):
                            for m in range(kernel.shape[3]):
                                y[:, i, j, c * kernel.shape[3] + m] += pixel[:, c] * kernel[a, b, c, m]
                    else:
                        y[:, i, j] += pixel @ kernel[a, b]
    return y if bias is None else y + bias


def random_params(layer, input_shape, rng):
    return {key: rng.standard_normal(shape) for key, shape in layer.param_shapes(input_shape).items()}


def float_arrays(value: Any) -> Iterator[np.ndarray]:
    """Every floating-point array in ``value`` (tuples, lists and dicts looked into, a dict's in key order)."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "f":
            yield value
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from float_arrays(item)
    elif isinstance(value, dict):
        for key in sorted(value):
            yield from float_arrays(value[key])


#: The machine constants every test's cost model decides from (tests/conftest.py), rather than the ones measured
#: on the machine that runs them: a test splits a batch, or not, on every machine alike.
TEST_MACHINE = Machine(
    flops_per_s=5e10,
    packed_per_s=4e9,
    call_s=1.5e-6,
    session_s=3e-5,
    elements_per_s=2e9,
    bytes_per_s=1e10,
    all_bytes_per_s=1.6e10,
    handoff_s=3e-5,
    core_share=1.0,
)
#: A machine on which only the arithmetic costs: splitting any batch pays.
FREE_HANDOFF = replace(
    TEST_MACHINE,
    packed_per_s=1e30,
    call_s=1e-30,
    session_s=1e-30,
    bytes_per_s=1e30,
    all_bytes_per_s=1e30,
    handoff_s=1e-30,
)


def split_every_batch(monkeypatch, cores: int) -> None:
    """Split every batch into up to ``cores`` shards (one per example at most), however little work it holds."""
    monkeypatch.setattr(parallel, "_WORKERS", cores)
    monkeypatch.setattr(machine, "_constants", FREE_HANDOFF)
