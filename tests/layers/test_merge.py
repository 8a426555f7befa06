"""Every kind of several inputs (``Layer.merges``: the merges, MultiHeadAttention) on each of its examples:
shapes, gradients against central differences for every input and parameter, the schema, and the errors when
the inputs disagree.  Export is tested with the graphs that use them (tests/export/test_graphs.py)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import make_layer, numerical_gradient
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
FUSING_CASES = [case for case in CASES if REGISTRY[case.values[0]].fuses_activation]
BATCH = 3


def _inputs(shapes, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((BATCH, *shape)).astype(dtype) for shape in shapes]


def test_the_keras_merge_kinds_are_registered():
    expected = {"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate", "MultiHeadAttention"}
    assert set(MERGES) == expected


@pytest.mark.parametrize("kind,config,shapes", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_output_shape_matches_forward(kind, config, shapes, dtype):
    layer, params = make_layer(kind, config, shapes, dtype=dtype)
    for training in (False, True):
        y, _ = layer.forward(params, _inputs(shapes, dtype=dtype), training=training, rng=np.random.default_rng(0))
        assert y.shape == (BATCH, *layer.output_shape(shapes)) and y.dtype == dtype


@pytest.mark.parametrize("kind,config,shapes", CASES)
def test_gradients_of_every_input_and_parameter(kind, config, shapes):
    """A training forward (a new layer and a fixed generator: dropout draws the same masks each time) against
    central differences, for every input and every parameter; without ``need_dx`` the same parameter gradients."""
    layer, params = make_layer(kind, config, shapes)
    xs = _inputs(shapes, seed=1)

    def forward():
        return REGISTRY[kind].from_options(config).forward(params, xs, training=True, rng=np.random.default_rng(5))

    y, cache = forward()
    w = np.random.default_rng(2).standard_normal(y.shape)
    dxs, grads = layer.backward(params, cache, w.copy())
    assert sorted(grads) == sorted(params) and len(dxs) == len(xs)
    checked = [*zip(xs, dxs), *((params[name], grads[name]) for name in params)]
    for array, analytic in checked:
        numeric = numerical_gradient(lambda: float(np.sum(w * forward()[0])), array)
        np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-7)
    dx, grads_only = layer.backward(params, cache, w, need_dx=False)
    assert dx is None and sorted(grads_only) == sorted(grads)
    for name, grad in grads.items():
        np.testing.assert_allclose(grads_only[name], grad)


@pytest.mark.parametrize("kind,config,shapes", FUSING_CASES)
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
def test_schema_takes_as_many_inputs_as_the_arity(kind, config, shapes):
    """``inputs`` is required, and takes at least its fewest names, where a kind needs more than one; it takes no
    more names than its most."""
    cls = REGISTRY[kind]
    fewest, most = cls.arity
    validator = Draft7Validator(cls.json_schema())
    item = {"type": kind, **config}
    validator.validate(item)
    without = {key: value for key, value in item.items() if key != "inputs"}
    assert validator.is_valid(without) == (fewest == 1)
    assert validator.is_valid({**item, "inputs": ["only"]}) == (fewest == 1)
    if most is not None:
        assert not validator.is_valid({**item, "inputs": [f"layer_{index}" for index in range(most + 1)]})


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
