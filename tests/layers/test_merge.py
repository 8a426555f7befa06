"""Every merge kind (a layer of several inputs) on each of its examples: shapes, gradients against central
differences for every input, the schema, and the errors when the inputs disagree.  Export is tested with
the graphs that use them (tests/export/test_graphs.py)."""

from __future__ import annotations

import numpy as np
import pytest
from jsonschema import Draft7Validator

from specforge.base.errors import ShapeError
from specforge.graph.plan import plan_steps
from specforge.layers import REGISTRY

MERGES = sorted(kind for kind, cls in REGISTRY.items() if cls.merges)
CASES = [
    pytest.param(kind, config, shapes, id=f"{kind}-{i}")
    for kind in MERGES
    for i, (config, shapes) in enumerate(REGISTRY[kind].examples)
]
BATCH = 3


def _inputs(shapes, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((BATCH, *shape)).astype(dtype) for shape in shapes]


def test_the_keras_merge_kinds_are_registered():
    assert set(MERGES) == {"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate"}


@pytest.mark.parametrize("kind,config,shapes", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_output_shape_matches_forward(kind, config, shapes, dtype):
    layer = REGISTRY[kind].from_options(config)
    y, _ = layer.forward({}, _inputs(shapes, dtype=dtype), training=True)
    assert y.shape == (BATCH, *layer.output_shape(shapes)) and y.dtype == dtype


@pytest.mark.parametrize("kind,config,shapes", CASES)
def test_gradients_of_every_input(kind, config, shapes, eps=1e-6):
    layer = REGISTRY[kind].from_options(config)
    xs = _inputs(shapes, seed=1)
    y, cache = layer.forward({}, xs, training=True)
    w = np.random.default_rng(2).standard_normal(y.shape)
    dxs, grads = layer.backward({}, cache, w.copy())
    assert grads == {} and len(dxs) == len(xs)
    for x, dx in zip(xs, dxs):
        numeric = np.empty_like(x)
        for i in np.ndindex(x.shape):
            original = x[i]
            x[i] = original + eps
            plus = np.sum(w * layer.forward({}, xs)[0])
            x[i] = original - eps
            minus = np.sum(w * layer.forward({}, xs)[0])
            x[i] = original
            numeric[i] = (plus - minus) / (2 * eps)
        np.testing.assert_allclose(dx, numeric, rtol=1e-5, atol=1e-7)
    assert layer.backward({}, cache, w, need_dx=False) == (None, {})


@pytest.mark.parametrize("kind,config,shapes", CASES)
@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
def test_fused_activation_equals_the_two_nodes(kind, config, shapes, activation):
    """A merge run with the activation after it fused (a residual Add and its ReLU) computes what the two nodes
    compute in turn, forward and backward."""
    layer, node = REGISTRY[kind].from_options(config), REGISTRY["Activation"].from_options({"activation": activation})
    (step,) = plan_steps([layer, node], [(-1,) * len(shapes), (0,)])
    assert step.activation is not None
    xs = _inputs(shapes, seed=3)
    z, layer_cache = layer.forward({}, xs, training=True)
    y, node_cache = node.forward({}, z, training=True)
    fused_y, cache = step.forward({}, xs, training=True)
    np.testing.assert_allclose(fused_y, y, rtol=1e-12, atol=1e-12)
    dy = np.random.default_rng(4).standard_normal(y.shape)
    dxs, _ = layer.backward({}, layer_cache, node.backward({}, node_cache, dy)[0])
    fused_dxs, _ = step.backward({}, cache, dy)
    for fused_dx, dx in zip(fused_dxs, dxs):
        np.testing.assert_allclose(fused_dx, dx, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind,config,shapes", CASES)
def test_schema_needs_the_inputs(kind, config, shapes):
    validator = Draft7Validator(REGISTRY[kind].json_schema())
    item = {"type": kind, **config}
    validator.validate(item)
    assert not validator.is_valid({key: value for key, value in item.items() if key != "inputs"})
    assert not validator.is_valid({**item, "inputs": ["only"]})


def test_maximum_sends_a_tie_to_the_first_input():
    layer = REGISTRY["Maximum"].from_options({"inputs": ["a", "b"]})
    x = np.array([[1.0, 2.0]])
    _, cache = layer.forward({}, [x, x.copy()])
    first, second = layer.backward({}, cache, np.ones((1, 2)))[0]
    np.testing.assert_array_equal(first, [[1.0, 1.0]])
    np.testing.assert_array_equal(second, [[0.0, 0.0]])


@pytest.mark.parametrize(
    "kind,shapes,names,message",
    [
        (
            "Add",
            [(14, 14, 64), (28, 28, 64)],
            ["conv_b", "stem"],
            (
                "Add got (14, 14, 64) from 'conv_b' and (28, 28, 64) from 'stem'; give the shortcut a 1x1 Conv2D with "
                "strides 2"
            ),
        ),
        (
            "Add",
            [(14, 14, 64), (28, 28, 32)],
            ["conv_b", "stem"],
            (
                "Add got (14, 14, 64) from 'conv_b' and (28, 28, 32) from 'stem'; give the shortcut a 1x1 Conv2D with "
                "filters 64 and strides 2"
            ),
        ),
        (
            "Multiply",
            [(8, 8, 16), (8, 8, 4)],
            ["a", "b"],
            "Multiply got (8, 8, 16) from 'a' and (8, 8, 4) from 'b'; give the shortcut a 1x1 Conv2D with filters 16",
        ),
        (
            "Subtract",
            [(10,), (12,)],
            None,
            ("Subtract got (10,) from input 0 and (12,) from input 1; Subtract needs inputs of one shape"),
        ),
        (
            "Concatenate",
            [(4, 4, 3), (5, 4, 3)],
            ["a", "b"],
            (
                "Concatenate got (4, 4, 3) from 'a' and (5, 4, 3) from 'b'; every axis but axis -1 must agree (use axis "
                "to join along another, or resize one input)"
            ),
        ),
    ],
)
def test_inputs_that_disagree_are_named_with_their_shapes(kind, shapes, names, message):
    layer = REGISTRY[kind].from_options({"inputs": ["a", "b"]})
    with pytest.raises(ShapeError) as error:
        layer.output_shape(shapes, names)
    assert error.value.problems[0].message == message


def test_concatenate_axis_beyond_the_rank():
    with pytest.raises(ShapeError, match=r"Concatenate axis 3 does not exist for inputs of rank 2"):
        REGISTRY["Concatenate"].from_options({"inputs": ["a", "b"], "axis": 3}).output_shape([(2, 3), (2, 3)])
