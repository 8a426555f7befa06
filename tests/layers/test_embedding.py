"""Embedding: rows gathered by id, gradients added into the rows of the ids seen (several times for a repeated
id), Keras' initializer bounds, and ids outside the table refused."""

from __future__ import annotations

import numpy as np
import pytest

from specforge.base.errors import DataError
from specforge.layers import REGISTRY


def _layer(**config):
    return REGISTRY["Embedding"].from_options({"input_dim": 4, "output_dim": 3, **config})


def test_forward_gathers_the_rows_of_the_ids():
    table = np.arange(12, dtype=np.float32).reshape(4, 3)
    y, _ = _layer().forward({"embeddings": table}, np.array([[3, 0, 3], [1, 1, 2]]))
    np.testing.assert_array_equal(y, [[table[3], table[0], table[3]], [table[1], table[1], table[2]]])


def test_backward_adds_each_gradient_into_its_ids_row():
    layer, table = _layer(), np.zeros((4, 3), dtype=np.float32)
    ids = np.array([[3, 0, 3], [1, 3, 2]])
    _, cache = layer.forward({"embeddings": table}, ids)
    dy = np.random.default_rng(0).standard_normal((2, 3, 3)).astype(np.float32)
    dx, grads = layer.backward({"embeddings": table}, cache, dy)
    assert dx is None
    expected = np.zeros((4, 3), dtype=np.float32)
    for (row, step), index in np.ndenumerate(ids):
        expected[index] += dy[row, step]
    np.testing.assert_allclose(grads["embeddings"], expected, rtol=1e-6)
    np.testing.assert_allclose(grads["embeddings"][3], dy[0, 0] + dy[0, 2] + dy[1, 1], rtol=1e-6)


def test_the_table_starts_uniform_in_plus_minus_0_05_as_keras():
    layer = REGISTRY["Embedding"].from_options({"input_dim": 500, "output_dim": 40})
    table = layer.init_params((8,), np.random.default_rng(0))["embeddings"]
    assert layer.config["embeddings_initializer"] == "random_uniform" and layer.config["mask_zero"] is False
    assert table.shape == (500, 40) and table.dtype == np.float32
    assert -0.05 <= table.min() < -0.049 and 0.049 < table.max() <= 0.05


def test_an_id_outside_the_table_is_refused():
    with pytest.raises(DataError, match=r"id 4 is outside \[0, input_dim 4\)"):
        _layer().forward({"embeddings": np.zeros((4, 3), np.float32)}, np.array([[0, 4]]))
