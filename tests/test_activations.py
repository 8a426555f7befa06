"""Activation functions against independent formulas, their gradients, and their ONNX nodes."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from helpers import check_gradients, check_onnx_parity, make_layer

from specforge.base.errors import SpecError
from specforge.layers import REGISTRY
from specforge.layers.base import ACTIVATION_NAMES
from specforge.options.activations import ACTIVATIONS, Relu, erf
from specforge.options.activations import create as create_activation

_erf = np.vectorize(math.erf)
REFERENCES = {
    "linear": lambda x: x,
    "relu": lambda x: np.where(x > 0, x, 0.0),
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "tanh": lambda x: (np.exp(x) - np.exp(-x)) / (np.exp(x) + np.exp(-x)),
    "softmax": lambda x: np.exp(x) / np.exp(x).sum(axis=-1, keepdims=True),
    "elu": lambda x: np.where(x > 0, x, np.exp(x) - 1),
    "leaky_relu": lambda x: np.where(x > 0, x, 0.2 * x),
    "gelu": lambda x: 0.5 * x * (1 + _erf(x / math.sqrt(2))),
    "swish": lambda x: x / (1 + np.exp(-x)),
    "selu": lambda x: 1.0507009873554805 * np.where(x > 0, x, 1.6732632423543772 * (np.exp(x) - 1)),
    "softplus": lambda x: np.log(1 + np.exp(x)),
    "softsign": lambda x: x / (1 + np.abs(x)),
    "hard_sigmoid": lambda x: np.minimum(np.maximum(x + 3, 0), 6) / 6,
    "mish": lambda x: x * np.tanh(np.log(1 + np.exp(x))),
}


def test_names_are_exactly_the_spec_names():
    assert set(ACTIVATIONS) == set(ACTIVATION_NAMES)
    assert set(REFERENCES) == set(ACTIVATION_NAMES)


@pytest.mark.parametrize("name", ACTIVATION_NAMES)
def test_forward_matches_reference(name):
    x = np.random.default_rng(0).uniform(-4, 4, size=(5, 2, 3, 6))
    np.testing.assert_allclose(create_activation(name).forward(x), REFERENCES[name](x), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", ACTIVATION_NAMES)
def test_float32_stays_float32(name):
    fn = create_activation(name)
    x = np.linspace(-3, 3, 24, dtype=np.float32).reshape(4, 6)
    y = fn.forward(x)
    assert y.dtype == np.float32
    assert fn.backward(x, y, np.ones_like(y)).dtype == np.float32


@pytest.mark.parametrize(
    "name",
    ["sigmoid", "swish", "softmax", "elu", "gelu", "tanh", "selu", "softplus", "softsign", "hard_sigmoid", "mish"],
)
def test_extreme_inputs_stay_finite(name):
    x = np.array([[-1000.0, -30.0, 0.0, 30.0, 1000.0]], dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = create_activation(name).forward(x)
    assert np.all(np.isfinite(y))


def test_sigmoid_saturates_exactly():
    y = create_activation("sigmoid").forward(np.array([-1000.0, 0.0, 1000.0]))
    np.testing.assert_array_equal(y, [0.0, 0.5, 1.0])


def test_softmax_is_over_the_last_axis():
    x = np.random.default_rng(1).standard_normal((2, 3, 4, 5))
    y = create_activation("softmax").forward(x + 500)
    np.testing.assert_allclose(y.sum(axis=-1), 1.0)
    np.testing.assert_allclose(y, REFERENCES["softmax"](x), rtol=1e-12)


def test_erf_matches_math_erf():
    x = np.concatenate([np.linspace(-7, 7, 20001), [-1e-9, 1e-12, 0.0, 30.0, -30.0]])
    np.testing.assert_allclose(erf(x), _erf(x), rtol=1e-9, atol=1e-15)


def test_float32_erf_is_computed_in_float32_within_its_precision():
    x = np.concatenate([np.linspace(-7, 7, 20001), [-1e-30, 1e-12, 0.0, 30.0, -30.0]]).astype(np.float32)
    y = erf(x)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, _erf(x.astype(np.float64)), rtol=0, atol=3.2e-7)
    assert np.all(np.abs(y) <= 1)


@pytest.mark.parametrize(
    "config,x,expected",
    [
        ({}, [-2.0, 0.0, 3.0], [0.0, 0.0, 3.0]),
        ({"max_value": 6.0}, [-1.0, 5.0, 7.0], [0.0, 5.0, 6.0]),
        ({"negative_slope": 0.5}, [-2.0, 1.0], [-1.0, 1.0]),
        ({"threshold": 1.0, "negative_slope": 0.5}, [0.0, 0.5, 2.0], [-0.5, -0.25, 2.0]),
        ({"threshold": 1.0}, [0.5, 1.0, 1.5], [0.0, 0.0, 1.5]),
    ],
)
def test_relu_options_hand_worked(config, x, expected):
    np.testing.assert_allclose(Relu(**config).forward(np.array(x)), expected)


def test_relu_capped_below_its_threshold_keeps_the_slope_under_the_threshold():
    """Below the threshold the output is negative, under the cap: the slope applies on [max_value, threshold)."""
    function = Relu(max_value=0.25, negative_slope=0.1, threshold=0.5)
    z = np.array([0.3, 0.4, 0.45, 0.1, 0.6])
    dz = function.backward(z, function.forward(z), np.ones_like(z))
    np.testing.assert_allclose(dz, [0.1, 0.1, 0.1, 0.1, 0.0])


def test_unknown_activation_is_a_spec_error():
    with pytest.raises(SpecError, match=r"unknown activation 'rleu'.*relu"):
        create_activation("rleu")


@pytest.mark.parametrize("name", ACTIVATION_NAMES)
def test_gradient(name):
    x = np.random.default_rng(2).uniform(-3, 3, size=(3, 2, 4))
    check_gradients("Activation", {"activation": name}, {}, x)


@pytest.mark.parametrize("name", ACTIVATION_NAMES)
def test_onnx_after_a_convolution(name):
    """After Conv2D the tensor is NCHW in ONNX: elementwise nodes must work there and softmax must still
    normalise the channels."""
    conv, conv_params = make_layer("Conv2D", {"filters": 3, "kernel_size": 2}, (4, 5, 2), dtype=np.float32)
    act = REGISTRY["Activation"].from_options({"activation": name})
    x = np.random.default_rng(3).standard_normal((2, 4, 5, 2)).astype(np.float32)
    check_onnx_parity([(conv, conv_params), (act, {})], (4, 5, 2), x)


def test_hard_sigmoid_is_keras_3s():
    """relu6(x + 3) / 6 (Keras 3); Keras 2's clip(0.2 x + 0.5, 0, 1) would give 0.8 at 1.5 and 1 at 2.5."""
    y = create_activation("hard_sigmoid").forward(np.array([-4.0, -3.0, 0.0, 1.5, 2.5, 3.0, 9.0]))
    np.testing.assert_allclose(y, [0.0, 0.0, 0.5, 0.75, 2.5 / 6 + 0.5, 1.0, 1.0])


def test_softplus_and_mish_far_from_zero():
    x = np.array([-800.0, -40.0, 40.0, 800.0])
    np.testing.assert_allclose(create_activation("softplus").forward(x), [0.0, np.exp(-40.0), 40.0, 800.0], rtol=1e-12)
    np.testing.assert_allclose(
        create_activation("mish").forward(x), [0.0, -40 * np.exp(-40.0), 40.0, 800.0], rtol=1e-12, atol=1e-300
    )
