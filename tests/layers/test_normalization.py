"""BatchNormalization: batch statistics in training, moving statistics at inference, Keras' counts."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import check_gradients, check_onnx_parity, make_layer

from specforge.layers import REGISTRY

BatchNormalization = REGISTRY["BatchNormalization"]


def test_parameters_like_keras():
    layer = BatchNormalization.from_options()
    params = layer.init_params((5, 5, 8), np.random.default_rng(0))
    assert sorted(params) == ["beta", "gamma", "moving_mean", "moving_variance"]
    assert layer.count_params((5, 5, 8)) == 32
    for name, value in [("gamma", 1), ("beta", 0), ("moving_mean", 0), ("moving_variance", 1)]:
        np.testing.assert_array_equal(params[name], np.full(8, value, dtype=np.float32))
    assert BatchNormalization.non_trainable == ("moving_mean", "moving_variance")


@pytest.mark.parametrize(
    "config,names",
    [
        ({"center": False}, ["gamma", "moving_mean", "moving_variance"]),
        ({"scale": False}, ["beta", "moving_mean", "moving_variance"]),
    ],
)
def test_center_and_scale_options(config, names):
    assert sorted(BatchNormalization.from_options(config).param_shapes((4,))) == names


def test_training_normalises_each_channel():
    layer = BatchNormalization.from_options()
    params = layer.init_params((3, 3, 2), np.random.default_rng(0))
    x = np.random.default_rng(1).normal(5.0, 3.0, size=(8, 3, 3, 2))
    y, _ = layer.forward(params, x, training=True)
    per_channel = y.reshape(-1, 2)
    np.testing.assert_allclose(per_channel.mean(axis=0), 0, atol=1e-12)
    variance = x.reshape(-1, 2).var(axis=0)
    np.testing.assert_allclose(per_channel.var(axis=0), variance / (variance + 0.001), rtol=1e-10)


def test_training_moves_the_running_statistics():
    layer = BatchNormalization.from_options({"momentum": 0.9})
    params = layer.init_params((4,), np.random.default_rng(0))
    x = np.random.default_rng(1).standard_normal((16, 4)) * 2 + 1
    before = {name: value.copy() for name, value in params.items()}
    _, cache = layer.forward(params, x, training=True)
    state = layer.new_state(cache)
    np.testing.assert_allclose(state["moving_mean"], 0.1 * x.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(state["moving_variance"], 0.9 + 0.1 * x.var(axis=0), rtol=1e-6)
    assert state["moving_mean"].dtype == np.float32
    for name, value in before.items():
        np.testing.assert_array_equal(params[name], value)


def test_inference_uses_the_running_statistics():
    layer = BatchNormalization.from_options({"epsilon": 0.01})
    params = {
        "gamma": np.array([2.0, 0.5]),
        "beta": np.array([1.0, -1.0]),
        "moving_mean": np.array([3.0, -2.0]),
        "moving_variance": np.array([3.99, 0.24]),
    }
    y, _ = layer.forward(params, np.array([[5.0, -2.0], [1.0, 0.0]]), training=False)
    np.testing.assert_allclose(y, [[3.0, -1.0], [-1.0, 1.0]])
    np.testing.assert_array_equal(params["moving_mean"], [3.0, -2.0])


def test_inference_gradient():
    _, params = make_layer("BatchNormalization", {}, (3, 2, 4))
    x = np.random.default_rng(2).standard_normal((3, 3, 2, 4))
    check_gradients("BatchNormalization", {}, params, x, training=False)


@pytest.mark.parametrize("config", [{}, {"center": False}, {"scale": False}])
def test_onnx_after_a_convolution(config):
    """Behind Conv2D the ONNX tensor is NCHW: the per-channel constants must broadcast over axis 1."""
    conv, conv_params = make_layer("Conv2D", {"filters": 3, "kernel_size": 2}, (4, 5, 2), dtype=np.float32)
    bn, bn_params = make_layer("BatchNormalization", config, (3, 4, 3), dtype=np.float32)
    x = np.random.default_rng(3).standard_normal((2, 4, 5, 2)).astype(np.float32)
    check_onnx_parity([(conv, conv_params), (bn, bn_params)], (4, 5, 2), x)
