"""LayerNormalization: the formula per example over the chosen axes, Keras' parameter shapes, exact errors."""

from __future__ import annotations

import numpy as np
import pytest

from specforge.base.errors import ShapeError
from specforge.layers.layer_normalization import LayerNormalization


@pytest.mark.parametrize(
    "axis,shape,params_shape,reduced",
    [
        (-1, (3, 2, 4), (4,), (3,)),
        ([1, 2, 3], (3, 2, 4), (3, 2, 4), (1, 2, 3)),
        ([-2, -1], (4, 3), (4, 3), (1, 2)),
        (1, (5, 2), (5,), (1,)),
    ],
)
def test_normalises_each_example_over_the_axes(axis, shape, params_shape, reduced):
    layer = LayerNormalization.from_options({"axis": axis, "epsilon": 0.01})
    assert layer.param_shapes(shape) == {"gamma": params_shape, "beta": params_shape}
    rng = np.random.default_rng(0)
    params = {name: rng.standard_normal(s) for name, s in layer.param_shapes(shape).items()}
    x = rng.standard_normal((2, *shape)) * 3 + 1
    y, _ = layer.forward(params, x, training=True)
    mean = x.mean(axis=reduced, keepdims=True)
    variance = ((x - mean) ** 2).mean(axis=reduced, keepdims=True)
    broadcast = [size if index in reduced else 1 for index, size in enumerate(x.shape)]
    want = (x - mean) / np.sqrt(variance + 0.01) * params["gamma"].reshape(broadcast) + params["beta"].reshape(
        broadcast
    )
    np.testing.assert_allclose(y, want, rtol=1e-12)
    np.testing.assert_allclose(layer.forward(params, x, training=False)[0], y)


def test_without_scale_and_centre_the_output_is_standardised():
    layer = LayerNormalization.from_options({"center": False, "scale": False, "epsilon": 1e-12})
    assert layer.param_shapes((6,)) == {}
    y, _ = layer.forward({}, np.random.default_rng(1).standard_normal((4, 6)) * 5)
    np.testing.assert_allclose(y.mean(axis=-1), 0, atol=1e-12)
    np.testing.assert_allclose(y.std(axis=-1), 1, rtol=1e-9)


def test_axis_out_of_range_is_a_shape_error():
    with pytest.raises(ShapeError) as error:
        LayerNormalization.from_options({"axis": 3}).output_shape((5, 4))
    assert error.value.problems[0].message == (
        "LayerNormalization axis 3 is out of range for input shape (5, 4) "
        "(axis 0 is the batch); use one of 1, 2, -1, -2"
    )
