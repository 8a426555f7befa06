"""The dense product: forward with bias and fused activation, and its gradients, whole or split into shards."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import split_every_batch

from specforge.ops.linear import dense, dense_gradients
from specforge.options.activations import ACTIVATIONS


def case(seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((7, 5)), rng.standard_normal((5, 3)), rng.standard_normal(3), rng.standard_normal((7, 3))


def test_forward_and_gradients_follow_the_formulas():
    x, kernel, bias, dy = case()
    y, record = dense(x, kernel, bias, ACTIVATIONS["relu"]())
    z = x @ kernel + bias
    np.testing.assert_allclose(y, np.maximum(z, 0), rtol=1e-12)
    dx, dkernel, dbias = dense_gradients(record, dy)
    dz = dy * (z > 0)
    np.testing.assert_allclose(dx, dz @ kernel.T, rtol=1e-12)
    np.testing.assert_allclose(dkernel, x.T @ dz, rtol=1e-12)
    np.testing.assert_allclose(dbias, dz.sum(axis=0), rtol=1e-12)


def test_without_bias_or_input_gradient():
    x, kernel, _, dy = case(1)
    y, record = dense(x, kernel)
    np.testing.assert_allclose(y, x @ kernel, rtol=1e-12)
    dx, dkernel, dbias = dense_gradients(record, dy, need_dx=False)
    assert dx is None and dbias is None
    np.testing.assert_allclose(dkernel, x.T @ dy, rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_shards_give_the_whole_batch_result(dtype, monkeypatch):
    x, kernel, bias, dy = (value.astype(dtype) for value in case(2))
    whole_y, whole = dense(x, kernel, bias)
    assert len(whole.parts) == 1
    expected = dense_gradients(whole, dy)
    split_every_batch(monkeypatch, 3)
    y, split = dense(x, kernel, bias)
    assert len(split.parts) == 3 and y.dtype == dtype
    np.testing.assert_array_equal(y, whole_y)
    tolerance = 1e-5 if dtype == np.float32 else 1e-12
    for got, want in zip(dense_gradients(split, dy), expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=tolerance, atol=tolerance)
