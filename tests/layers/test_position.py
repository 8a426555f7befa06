"""PositionEmbedding and SinePositionEncoding (keras_hub's): the output is the positions' table broadcast over
the batch, whatever the input's values; the learned table's gradient sums the batch's; the sine table is
keras_hub's formula; a sequence longer than the learned table is refused with both numbers."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import check_onnx_parity

from specforge.base.errors import ShapeError
from specforge.layers import REGISTRY

PositionEmbedding, SinePositionEncoding = REGISTRY["PositionEmbedding"], REGISTRY["SinePositionEncoding"]


def test_the_learned_embedding_is_its_first_rows_for_every_example():
    layer = PositionEmbedding.from_options({"sequence_length": 6})
    params = layer.init_params((4, 3), np.random.default_rng(0))
    assert params["embeddings"].shape == (6, 3) and layer.config["initializer"] == "glorot_uniform"
    x = np.random.default_rng(1).standard_normal((2, 4, 3)).astype(np.float32)
    y, cache = layer.forward(params, x)
    np.testing.assert_array_equal(y, np.broadcast_to(params["embeddings"][:4], (2, 4, 3)))
    np.testing.assert_array_equal(layer.forward(params, 100 * x)[0], y)
    dy = np.random.default_rng(2).standard_normal(y.shape).astype(np.float32)
    dx, grads = layer.backward(params, cache, dy)
    assert not dx.any() and dx.shape == x.shape
    np.testing.assert_allclose(grads["embeddings"][:4], dy.sum(axis=0), rtol=1e-6)
    assert not grads["embeddings"][4:].any()


def test_a_sequence_longer_than_the_learned_table_is_refused_with_both_numbers():
    with pytest.raises(ShapeError) as error:
        PositionEmbedding.from_options({"sequence_length": 20}).output_shape((28, 16))
    assert error.value.problems[0].message == (
        "PositionEmbedding has sequence_length 20 positions but its input (28, 16) has 28 steps; give "
        "sequence_length at least 28"
    )


def test_the_sine_encoding_is_keras_hubs():
    """Feature 2i of position p is sin(p / 10000^(2i / features)), feature 2i + 1 its cosine."""
    layer = SinePositionEncoding.from_options({})
    assert layer.config["max_wavelength"] == 10000 and layer.param_shapes((5, 6)) == {}
    y, _ = layer.forward({}, np.zeros((2, 5, 6), np.float32))
    assert y.dtype == np.float32
    p = np.arange(5)[:, None]
    rates = 10000.0 ** -(np.arange(0, 6, 2) / 6)
    expected = np.empty((5, 6))
    expected[:, 0::2], expected[:, 1::2] = np.sin(p * rates), np.cos(p * rates)
    np.testing.assert_allclose(y[0], expected, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(y[1], y[0])


def test_a_flat_input_is_refused():
    with pytest.raises(ShapeError, match=r"SinePositionEncoding expects a sequence input \(steps, channels\)"):
        SinePositionEncoding.from_options({}).output_shape((784,))


@pytest.mark.parametrize("kind,config", [("PositionEmbedding", {"sequence_length": 8}), ("SinePositionEncoding", {})])
def test_export_after_a_convolution_reads_only_the_batch_size(kind, config):
    """After Conv1D the sequence is an NCHW image in ONNX: the table is expanded to the batch without a
    Transpose back (the one Transpose is the convolution's input), and gives what numpy gives."""
    rng = np.random.default_rng(3)
    conv = REGISTRY["Conv1D"].from_options({"filters": 4, "kernel_size": 3, "padding": "same"})
    position = REGISTRY[kind].from_options(config)
    steps = [(conv, conv.init_params((6, 2), rng)), (position, position.init_params((6, 4), rng))]
    model = check_onnx_parity(steps, (6, 2), rng.standard_normal((3, 6, 2)).astype(np.float32))
    assert [node.op_type for node in model.graph.node].count("Transpose") == 1
