"""Dense: sizes of the seed model, a hand-worked product, the last axis of a sequence or an image, and the export."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import check_onnx_parity, onnx_of

from specforge.layers import REGISTRY

Dense = REGISTRY["Dense"]


def test_seed_model_sizes():
    layer = Dense.from_options({"units": 10})
    assert layer.output_shape((18432,)) == (10,)
    assert layer.count_params((18432,)) == 184_330
    assert layer.flops((18432,)) == 368_640
    assert Dense.from_options({"units": 10, "use_bias": False}).count_params((18432,)) == 184_320


def test_hand_worked_forward():
    params = {"kernel": np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]), "bias": np.array([0.5, 0.0, -1.0])}
    y, _ = Dense.from_options({"units": 3}).forward(params, np.array([[1.0, 2.0], [0.0, -1.0]]))
    np.testing.assert_allclose(y, [[9.5, 12.0, 14.0], [-3.5, -5.0, -7.0]])


def test_activation_option_is_left_to_the_graph():
    params = {"kernel": np.array([[-1.0]]), "bias": np.array([0.0])}
    y, _ = Dense.from_options({"units": 1, "activation": "relu"}).forward(params, np.array([[2.0]]))
    assert y[0, 0] == -2.0


def test_applies_to_the_last_axis_as_keras_does():
    """Keras 3 applies Dense to the last axis of any input: each step of a sequence, each pixel of an image,
    through the same kernel; the rows of the product are the positions."""
    layer = Dense.from_options({"units": 10})
    assert layer.output_shape((26, 26, 64)) == (26, 26, 10)
    assert layer.output_shape((28, 16)) == (28, 10)
    assert layer.count_params((28, 16)) == 170
    assert layer.flops((28, 16)) == 28 * 2 * 16 * 10
    rng = np.random.default_rng(0)
    params = layer.init_params((3, 4, 6), rng)
    x = rng.standard_normal((2, 3, 4, 6))
    y, cache = layer.forward(params, x)
    np.testing.assert_allclose(y, x @ params["kernel"] + params["bias"], rtol=1e-6)
    for row in range(3):  # each position alone gives what the flat layer gives it
        np.testing.assert_allclose(y[:, row, 1], layer.forward(params, x[:, row, 1])[0], rtol=1e-12)
    dx, grads = layer.backward(params, cache, np.ones_like(y))
    assert dx.shape == x.shape
    np.testing.assert_allclose(grads["kernel"], x.reshape(-1, 6).sum(axis=0)[:, None] * np.ones((1, 10)))


def test_initial_parameters():
    params = Dense.from_options({"units": 6}).init_params((4,), np.random.default_rng(0))
    assert params["kernel"].shape == (4, 6) and params["kernel"].dtype == np.float32
    assert np.abs(params["kernel"]).max() <= np.sqrt(6 / 10)
    np.testing.assert_array_equal(params["bias"], np.zeros(6))


def test_hand_worked_backward():
    params = {"kernel": np.array([[1.0, 2.0], [3.0, 4.0]]), "bias": np.zeros(2)}
    layer = Dense.from_options({"units": 2})
    _, cache = layer.forward(params, np.array([[1.0, -1.0]]))
    dx, grads = layer.backward(params, cache, np.array([[1.0, 2.0]]))
    np.testing.assert_allclose(dx, [[5.0, 11.0]])
    np.testing.assert_allclose(grads["kernel"], [[1.0, 2.0], [-1.0, -2.0]])
    np.testing.assert_allclose(grads["bias"], [1.0, 2.0])


@pytest.mark.parametrize("use_bias,op", [(True, "Gemm"), (False, "MatMul")])
def test_export_op(use_bias, op):
    layer = Dense.from_options({"units": 3, "use_bias": use_bias})
    params = layer.init_params((4,), np.random.default_rng(0))
    model = onnx_of([(layer, params)], (4,))
    assert [node.op_type for node in model.graph.node] == [op]
    assert {init.name for init in model.graph.initializer} == {f"dense_{name}" for name in params}


def test_export_after_flatten_of_a_convolution():
    """Conv2D leaves an NCHW tensor in ONNX; Flatten must flatten in the spec's NHWC order for Dense."""
    rng = np.random.default_rng(1)
    steps = []
    shape = (5, 4, 2)
    for kind, config in [("Conv2D", {"filters": 3, "kernel_size": 2}), ("Flatten", {}), ("Dense", {"units": 4})]:
        layer = REGISTRY[kind].from_options(config)
        steps.append((layer, layer.init_params(shape, rng)))
        shape = layer.output_shape(shape)
    check_onnx_parity(steps, (5, 4, 2), rng.standard_normal((2, 5, 4, 2)).astype(np.float32))


@pytest.mark.parametrize("use_bias", [True, False])
def test_export_on_the_steps_of_a_convolved_sequence(use_bias):
    """Conv1D leaves its sequence in ONNX as an NCHW image (N, C, 1, steps); Dense takes it back to (N, steps, C)
    and multiplies its last axis."""
    rng = np.random.default_rng(2)
    steps = []
    shape = (6, 3)
    for kind, config in [("Conv1D", {"filters": 4, "kernel_size": 2}), ("Dense", {"units": 5, "use_bias": use_bias})]:
        layer = REGISTRY[kind].from_options(config)
        steps.append((layer, layer.init_params(shape, rng)))
        shape = layer.output_shape(shape)
    check_onnx_parity(steps, (6, 3), rng.standard_normal((2, 6, 3)).astype(np.float32))
