"""Dropout: inverted dropout in training, the identity at inference, reproducible masks."""

from __future__ import annotations

import numpy as np
import pytest

from specforge.layers import REGISTRY

Dropout = REGISTRY["Dropout"]


def test_training_drops_the_rate_and_rescales_the_rest():
    x = np.ones((200, 500), dtype=np.float32)
    y, mask = Dropout.from_options({"rate": 0.3}).forward({}, x, training=True, rng=np.random.default_rng(0))
    assert y.dtype == np.float32
    assert set(np.unique(y)) == {np.float32(0), np.float32(1 / 0.7)}
    assert (y == 0).mean() == pytest.approx(0.3, abs=0.005)
    assert y.mean() == pytest.approx(1.0, abs=0.01)
    dx, grads = Dropout.from_options({"rate": 0.3}).backward({}, mask, np.full_like(x, 2.0))
    np.testing.assert_array_equal(dx, 2 * y)
    assert grads == {}


def test_inference_and_rate_zero_are_the_identity():
    x = np.random.default_rng(0).standard_normal((4, 5))
    y, cache = Dropout.from_options({"rate": 0.5}).forward({}, x, training=False)
    assert y is x
    dy = np.ones_like(x)
    assert Dropout.from_options({"rate": 0.5}).backward({}, cache, dy)[0] is dy
    assert Dropout.from_options({"rate": 0.0}).forward({}, x, training=True, rng=np.random.default_rng(0))[0] is x


def test_seed_makes_masks_reproducible_and_different_per_step():
    x = np.ones((10, 10))
    first, second = Dropout.from_options({"rate": 0.5, "seed": 3}), Dropout.from_options({"rate": 0.5, "seed": 3})
    a1, a2 = (first.forward({}, x, training=True)[0] for _ in range(2))
    b1 = second.forward({}, x, training=True, rng=np.random.default_rng(99))[0]
    np.testing.assert_array_equal(a1, b1)
    assert not np.array_equal(a1, a2)


def test_training_without_a_generator_is_refused():
    with pytest.raises(ValueError, match="rng"):
        Dropout.from_options({"rate": 0.5}).forward({}, np.ones((2, 2)), training=True)


def test_spatial_dropout_drops_whole_channels():
    x = np.ones((40, 3, 4, 50), dtype=np.float32)
    layer = REGISTRY["SpatialDropout2D"].from_options({"rate": 0.4})
    y, mask = layer.forward({}, x, training=True, rng=np.random.default_rng(0))
    assert mask.shape == (40, 1, 1, 50)
    assert set(np.unique(y)) == {np.float32(0), np.float32(1 / 0.6)}
    np.testing.assert_array_equal(y, np.broadcast_to(y[:, :1, :1], y.shape))
    assert (y[:, 0, 0] == 0).mean() == pytest.approx(0.4, abs=0.03)
    dx, _ = layer.backward({}, mask, np.full_like(x, 3.0))
    np.testing.assert_array_equal(dx, 3 * y)
    assert layer.forward({}, x, training=False)[0] is x


def test_spatial_dropout_needs_an_image():
    from specforge.base.errors import ShapeError

    with pytest.raises(ShapeError, match=r"SpatialDropout2D expects an image input \(height, width, channels\)"):
        REGISTRY["SpatialDropout2D"].from_options({"rate": 0.5}).output_shape((10, 3))
