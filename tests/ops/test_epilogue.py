"""The epilogue of a product: bias and fused activation in place, and the activation's gradient from the
output alone."""

from __future__ import annotations

import numpy as np

from specforge.ops.epilogue import activation_gradient, add_bias_and_activate
from specforge.options.activations import ACTIVATIONS


def test_bias_then_activation_in_place():
    rng = np.random.default_rng(0)
    out, bias = rng.standard_normal((4, 3)), rng.standard_normal(3)
    expected = np.maximum(out + bias, 0)
    target = out
    add_bias_and_activate(out, bias, ACTIVATIONS["relu"]())
    assert out is target
    np.testing.assert_array_equal(out, expected)


def test_nothing_to_add_or_apply_leaves_the_output():
    out = np.random.default_rng(1).standard_normal((2, 5))
    before = out.copy()
    add_bias_and_activate(out, None, None)
    np.testing.assert_array_equal(out, before)


def test_without_an_activation_the_gradient_is_the_output_gradient_itself():
    dy = np.ones((2, 3))
    assert activation_gradient(None, np.zeros((2, 3)), dy) is dy


def test_the_gradient_before_the_activation_from_its_output():
    rng = np.random.default_rng(2)
    z = rng.standard_normal((3, 4))
    for name in ("relu", "sigmoid", "tanh"):
        function = ACTIVATIONS[name]()
        y, dy = function.forward(z), rng.standard_normal(z.shape)
        np.testing.assert_allclose(activation_gradient(function, y, dy), function.backward(z, y, dy), rtol=1e-12)


def test_the_gradient_is_a_scratch_buffer_reused_by_the_next_call():
    relu = ACTIVATIONS["relu"]()
    y = np.abs(np.random.default_rng(3).standard_normal((2, 3)))
    first = activation_gradient(relu, y, np.ones_like(y))
    second = activation_gradient(relu, y, np.full_like(y, 2.0))
    assert first is second and (second == 2).all()
