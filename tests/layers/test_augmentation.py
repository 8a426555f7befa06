"""What is specific to the augmentation layers: Keras' transforms on known draws, the identity at inference,
RandomCrop's centred window (the generic tests cover shapes, gradients, float32 and ONNX)."""

from __future__ import annotations

import numpy as np
import pytest

from specforge.layers import REGISTRY

RNG = np.random.default_rng(0)
X = RNG.standard_normal((6, 4, 5, 2))


def forward(kind: str, config: dict, x: np.ndarray = X, training: bool = True, seed: int = 1) -> np.ndarray:
    return REGISTRY[kind].from_options(config).forward({}, x, training=training, rng=np.random.default_rng(seed))[0]


@pytest.mark.parametrize(
    "kind,config",
    [
        ("RandomFlip", {}),
        ("RandomRotation", {"factor": 0.2}),
        ("RandomZoom", {"height_factor": 0.2}),
        ("RandomTranslation", {"height_factor": 0.2, "width_factor": 0.2}),
        ("RandomContrast", {"factor": 0.5}),
        ("RandomBrightness", {"factor": 0.5}),
    ],
)
def test_inference_is_the_identity(kind, config):
    assert forward(kind, config, training=False) is X
    assert not np.array_equal(forward(kind, config, X * 50), X * 50)


def test_a_flip_mirrors_each_image_or_leaves_it():
    y = forward("RandomFlip", {"mode": "horizontal"})
    kinds = {
        ("same" if np.array_equal(a, x) else "mirrored" if np.array_equal(a, x[:, ::-1]) else "other")
        for a, x in zip(y, X)
    }
    assert kinds == {"same", "mirrored"}


def test_a_half_turn_rotates_by_pi():
    np.testing.assert_allclose(forward("RandomRotation", {"factor": [0.5, 0.5]}), X[:, ::-1, ::-1], atol=1e-12)
    np.testing.assert_allclose(forward("RandomRotation", {"factor": 0.0}), X, atol=1e-12)


def test_a_translation_shifts_and_fills():
    config = {"height_factor": [0.25, 0.25], "width_factor": 0.0, "fill_mode": "constant", "fill_value": 7.0}
    y = forward("RandomTranslation", config)  # 0.25 of 4 rows: one row down
    np.testing.assert_allclose(y[:, 1:], X[:, :-1], atol=1e-12)
    np.testing.assert_allclose(y[:, 0], 7.0)
    wrapped = forward("RandomTranslation", {**config, "fill_mode": "wrap"})
    np.testing.assert_allclose(wrapped, np.roll(X, 1, axis=1), atol=1e-12)


def test_a_zoom_out_by_two_with_nearest_reads_every_other_pixel():
    x = RNG.standard_normal((1, 5, 5, 1))
    y = forward("RandomZoom", {"height_factor": [1.0, 1.0], "fill_mode": "constant", "interpolation": "nearest"}, x)
    np.testing.assert_allclose(y[0, 1:4, 1:4], x[0, ::2, ::2], atol=1e-12)  # the centre 3x3 reads x at 0, 2, 4


def test_brightness_and_contrast_keep_to_the_value_range():
    x = RNG.uniform(0, 1, (8, 4, 4, 1))
    bright = forward("RandomBrightness", {"factor": [0.2, 0.2], "value_range": [0, 1]}, x)
    np.testing.assert_allclose(bright, np.minimum(x + 0.2, 1.0))
    contrast = forward("RandomContrast", {"factor": 0.5, "value_range": [0, 1]}, x)
    assert contrast.min() >= 0 and contrast.max() <= 1
    wide = forward("RandomContrast", {"factor": 0.5, "value_range": [-100, 100]}, x)
    np.testing.assert_allclose(wide.mean(axis=(1, 2)), x.mean(axis=(1, 2)))


def test_random_crop_takes_a_window_in_training_and_the_centre_at_inference():
    x = RNG.standard_normal((3, 6, 8, 1))
    layer = REGISTRY["RandomCrop"].from_options({"height": 4, "width": 4})
    y = layer.forward({}, x, training=True, rng=np.random.default_rng(2))[0]
    windows = [x[:, top : top + 4, left : left + 4] for top in range(3) for left in range(5)]
    assert any(np.array_equal(y, window) for window in windows)
    # inference: the largest centred 1:1 window (6 x 6, columns 1..6), resized to the output size (PyTorch's
    # half-pixel bilinear gives the same in tests/test_torch_twin.py)
    assert layer.window(6, 8) == (0, 1, 6, 6)
    wide = REGISTRY["RandomCrop"].from_options({"height": 6, "width": 6}).forward({}, x, training=False)[0]
    np.testing.assert_array_equal(wide, x[:, :, 1:7])
