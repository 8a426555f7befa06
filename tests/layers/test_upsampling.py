"""UpSampling2D: nearest repeats pixels, bilinear matches TensorFlow's half-pixel resize worked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from specforge.layers.upsampling import UpSampling2D, interpolation_matrix


def test_nearest_repeats_every_pixel():
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 2))
    y, _ = UpSampling2D.from_options({"size": [2, 3]}).forward({}, x)
    np.testing.assert_array_equal(y, np.repeat(np.repeat(x, 2, axis=1), 3, axis=2))


@pytest.mark.parametrize(
    "size,factor,row,expected",
    [
        # centres at -0.25, 0.25, 0.75, 1.25: the ends take the edge pixels, the middle mixes 3:1 and 1:3
        (2, 2, [1.0, 2.0], [1.0, 1.25, 1.75, 2.0]),
        # centres at -1/3, 0, 1/3, 2/3, 1, 4/3 between the pixels 0 and 3
        (2, 3, [0.0, 3.0], [0.0, 0.0, 1.0, 2.0, 3.0, 3.0]),
        (3, 2, [0.0, 4.0, 8.0], [0.0, 1.0, 3.0, 5.0, 7.0, 8.0]),
    ],
)
def test_bilinear_is_half_pixel(size, factor, row, expected):
    np.testing.assert_allclose(interpolation_matrix(size, factor, "bilinear", np.float64) @ row, expected)


def test_bilinear_is_separable_per_axis():
    layer = UpSampling2D.from_options({"size": [3, 2], "interpolation": "bilinear"})
    x = np.random.default_rng(1).standard_normal((2, 4, 3, 2))
    y, _ = layer.forward({}, x)
    a_h = interpolation_matrix(4, 3, "bilinear", np.float64)
    a_w = interpolation_matrix(3, 2, "bilinear", np.float64)
    np.testing.assert_allclose(y, np.einsum("ip,jq,npqc->nijc", a_h, a_w, x), rtol=1e-12)
    assert layer.output_shape((4, 3, 2)) == (12, 6, 2)


def test_interpolation_rows_sum_to_one():
    for interpolation in ("nearest", "bilinear"):
        np.testing.assert_allclose(interpolation_matrix(5, 4, interpolation, np.float64).sum(axis=1), 1.0)
