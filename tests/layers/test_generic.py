"""Tests every registered layer kind on each of its examples: shapes, gradients, schema and ONNX export.

A kind is covered the moment it is registered; its own test file only adds what is specific to it.
"""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
from jsonschema import Draft7Validator
from onnx.reference import ReferenceEvaluator

from specforge.export.onnx import graph_to_onnx
from specforge.layers import REGISTRY

KINDS = ("Conv2D", "DepthwiseConv2D", "MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D",
         "GlobalMaxPooling2D", "ZeroPadding2D", "Dense", "Flatten", "Reshape", "Dropout", "BatchNormalization",
         "Activation", "ReLU", "LeakyReLU", "Softmax")
BATCH = 3
CASES = [pytest.param(kind, config, shape, id=f"{kind}-{i}")
         for kind, cls in REGISTRY.items() for i, (config, shape) in enumerate(cls.examples)]


# -- helpers shared with the kind-specific tests ---------------------------------------------------
def make_layer(kind: str, config: dict, shape: tuple, dtype=np.float64, seed: int = 0):
    """A layer of ``kind`` with its parameters, moved off special values (zero biases, unit gammas)."""
    layer = REGISTRY[kind](config)
    rng = np.random.default_rng(seed)
    params = {name: (value + 0.1 * rng.standard_normal(value.shape)).astype(dtype)
              for name, value in layer.init_params(shape, rng).items()}
    if "moving_variance" in params:
        params["moving_variance"] = np.abs(params["moving_variance"]) + 0.5
    return layer, params


def forward_fresh(kind: str, config: dict, params: dict, x: np.ndarray, training: bool):
    """Forward through a new layer with copies of ``params`` and a fixed generator, so that repeated calls
    see the same dropout mask and never each other's moving-statistics updates."""
    layer = REGISTRY[kind](config)
    copies = {name: value.copy() for name, value in params.items()}
    return layer, layer.forward(copies, x, training=training, rng=np.random.default_rng(1))


def check_gradients(kind: str, config: dict, params: dict, x: np.ndarray, training: bool = True,
                    eps: float = 1e-6, rtol: float = 1e-5, atol: float = 1e-7) -> None:
    """Analytic dx and trainable parameter gradients against central differences of ``sum(w * y)``."""
    layer, (y, cache) = forward_fresh(kind, config, params, x, training)
    w = np.random.default_rng(2).standard_normal(y.shape)
    dx, grads = layer.backward(params, cache, w.copy())

    def loss() -> float:
        return float(np.sum(w * forward_fresh(kind, config, params, x, training)[1][0]))

    trainable = [name for name in params if name not in layer.non_trainable]
    assert sorted(grads) == sorted(trainable)
    for name, array, analytic in [("x", x, dx), *((n, params[n], grads[n]) for n in trainable)]:
        assert analytic.shape == array.shape, name
        numeric = np.empty_like(array)
        for i in np.ndindex(array.shape):
            original = array[i]
            array[i] = original + eps
            plus = loss()
            array[i] = original - eps
            minus = loss()
            array[i] = original
            numeric[i] = (plus - minus) / (2 * eps)
        np.testing.assert_allclose(analytic, numeric, rtol=rtol, atol=atol, err_msg=f"gradient of {name}")


def run_onnx(model, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The model's output on ``x`` under onnxruntime and under the ONNX reference evaluator."""
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    runtime = session.run(None, {"input": x})[0]
    reference = ReferenceEvaluator(model).run(None, {"input": x})[0]
    return runtime, reference


def check_onnx_parity(steps, input_shape: tuple, x: np.ndarray) -> None:
    """The exported ``steps`` compute what the numpy forward computes in inference mode."""
    expected = x
    for layer, params in steps:
        expected = layer.forward(params, expected, training=False)[0]
    for got in run_onnx(graph_to_onnx(steps, input_shape), x):
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


# -- the generic tests ---------------------------------------------------------------------------
def test_every_kind_is_registered():
    assert set(KINDS) <= set(REGISTRY), f"missing: {sorted(set(KINDS) - set(REGISTRY))}"


@pytest.mark.parametrize("kind", sorted(REGISTRY))
def test_kind_is_documented(kind):
    cls = REGISTRY[kind]
    assert cls.examples, f"{kind} has no example"
    assert cls.description
    for prop, schema in cls.schema.items():
        assert schema.get("description"), f"{kind}.{prop} has no description"
        if prop not in cls.required:
            assert "default" in schema, f"optional {kind}.{prop} has no default"


@pytest.mark.parametrize("kind,config,shape", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_output_shape_matches_forward(kind, config, shape, dtype):
    layer, params = make_layer(kind, config, shape, dtype=np.float32)
    x = np.random.default_rng(3).standard_normal((BATCH, *shape)).astype(dtype)
    expected = layer.output_shape(shape)
    for training in (False, True):
        y, _ = layer.forward(params, x, training=training, rng=np.random.default_rng(0))
        assert y.shape == (BATCH, *expected)
        assert y.dtype == dtype


@pytest.mark.parametrize("kind,config,shape", CASES)
def test_gradients(kind, config, shape):
    _, params = make_layer(kind, config, shape)
    x = np.random.default_rng(4).standard_normal((BATCH, *shape))
    check_gradients(kind, config, params, x)


@pytest.mark.parametrize("kind,config,shape", CASES)
def test_backward_without_dx(kind, config, shape):
    layer, params = make_layer(kind, config, shape)
    x = np.random.default_rng(5).standard_normal((BATCH, *shape))
    y, cache = layer.forward(params, x, training=True, rng=np.random.default_rng(0))
    dy = np.ones_like(y)
    _, grads = layer.backward(params, cache, dy)
    dx, grads_only = layer.backward(params, cache, dy, need_dx=False)
    assert dx is None
    assert sorted(grads_only) == sorted(grads)
    for name in grads:
        np.testing.assert_allclose(grads_only[name], grads[name])


@pytest.mark.parametrize("kind,config,shape", CASES)
def test_param_counts(kind, config, shape):
    layer, params = make_layer(kind, config, shape)
    assert {name: value.shape for name, value in params.items()} == layer.param_shapes(shape)
    assert layer.count_params(shape) == sum(value.size for value in params.values())
    assert all(value.dtype == np.float32 for value in layer.init_params(shape, np.random.default_rng(0)).values())


@pytest.mark.parametrize("kind,config,shape", CASES)
def test_schema_round_trip(kind, config, shape):
    schema = REGISTRY[kind].json_schema()
    schema = json.loads(json.dumps(schema))
    Draft7Validator.check_schema(schema)
    validator = Draft7Validator(schema)
    item = {"type": kind, **config}
    validator.validate(item)
    assert not validator.is_valid({**item, "no_such_option": 1})
    for required in REGISTRY[kind].required:
        assert not validator.is_valid({key: value for key, value in item.items() if key != required})


@pytest.mark.parametrize("kind,config,shape", CASES)
def test_onnx_matches_numpy(kind, config, shape):
    layer, params = make_layer(kind, config, shape, dtype=np.float32)
    x = np.random.default_rng(6).standard_normal((BATCH, *shape)).astype(np.float32)
    check_onnx_parity([(layer, params)], shape, x)
