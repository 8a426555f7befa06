"""An activation over a batch: the function's own forward and backward, whole or split into shards."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import split_every_batch

from specforge.ops.elementwise import activate, activate_gradient
from specforge.options.activations import ACTIVATIONS


@pytest.mark.parametrize("name", ["relu", "gelu", "softmax"])
@pytest.mark.parametrize("shards", [1, 3])
def test_activate_and_its_gradient_are_the_functions(name, shards, monkeypatch):
    split_every_batch(monkeypatch, shards)
    function = ACTIVATIONS[name]()
    rng = np.random.default_rng(0)
    x, dy = rng.standard_normal((7, 4, 3)), rng.standard_normal((7, 4, 3))
    y = activate(function, x)
    assert y is not x
    np.testing.assert_allclose(y, function.forward(x), rtol=1e-12)
    np.testing.assert_allclose(activate_gradient(function, x, y, dy), function.backward(x, y, dy), rtol=1e-12)


def test_the_dtype_is_kept():
    x = np.ones((2, 3), np.float32)
    y = activate(ACTIVATIONS["tanh"](), x)
    assert y.dtype == np.float32 and activate_gradient(ACTIVATIONS["tanh"](), x, y, x).dtype == np.float32
