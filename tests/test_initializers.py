"""Initializers: Keras 3's distributions, checked on their statistics over large samples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from specforge.base.errors import SpecError
from specforge.layers.base import INITIALIZER_NAMES
from specforge.options.initializers import INITIALIZERS, compute_fans, initialize

FAN_IN, FAN_OUT = 300, 500
SHAPE = (FAN_IN, FAN_OUT)
#: name -> standard deviation of the target distribution for SHAPE.
VARIANCE_SCALING_STD = {
    "glorot_uniform": math.sqrt(2 / (FAN_IN + FAN_OUT)),
    "glorot_normal": math.sqrt(2 / (FAN_IN + FAN_OUT)),
    "he_uniform": math.sqrt(2 / FAN_IN),
    "he_normal": math.sqrt(2 / FAN_IN),
    "lecun_uniform": math.sqrt(1 / FAN_IN),
    "lecun_normal": math.sqrt(1 / FAN_IN),
}


def draw(name: str, shape=SHAPE, seed: int = 0, **kwargs) -> np.ndarray:
    fan_in, fan_out = compute_fans(shape)
    return initialize(name, shape, fan_in, fan_out, np.random.default_rng(seed), **kwargs)


def test_names_are_exactly_the_spec_names():
    assert set(INITIALIZERS) == set(INITIALIZER_NAMES)


@pytest.mark.parametrize("name", INITIALIZER_NAMES)
def test_shape_dtype_and_determinism(name):
    values = draw(name, shape=(3, 4, 5, 6))
    assert values.shape == (3, 4, 5, 6)
    assert values.dtype == np.float32
    np.testing.assert_array_equal(values, draw(name, shape=(3, 4, 5, 6)))
    assert draw(name, shape=(2, 3), dtype=np.float64).dtype == np.float64


@pytest.mark.parametrize("name", [n for n in VARIANCE_SCALING_STD if n.endswith("uniform")])
def test_uniform_variance_scaling(name):
    values = draw(name)
    limit = math.sqrt(3) * VARIANCE_SCALING_STD[name]
    assert np.abs(values).max() <= limit
    assert np.abs(values).max() > 0.99 * limit
    assert values.std() == pytest.approx(VARIANCE_SCALING_STD[name], rel=0.01)
    assert abs(values.mean()) < 0.01 * limit


@pytest.mark.parametrize("name", [n for n in VARIANCE_SCALING_STD if n.endswith("normal")])
def test_truncated_normal_variance_scaling(name):
    values = draw(name)
    std = VARIANCE_SCALING_STD[name]
    widened = std / 0.87962566103423978
    assert np.abs(values).max() <= 2 * widened
    assert np.abs(values).max() > 1.99 * widened
    assert values.std() == pytest.approx(std, rel=0.01)


def test_glorot_uniform_limit_hand_worked():
    values = initialize("glorot_uniform", (200, 400), 2, 4, np.random.default_rng(0))
    assert np.abs(values).max() == pytest.approx(1.0, rel=1e-3)  # sqrt(6 / (2 + 4))


def test_random_normal_and_uniform():
    normal, uniform = draw("random_normal"), draw("random_uniform")
    assert normal.std() == pytest.approx(0.05, rel=0.01)
    assert abs(normal.mean()) < 1e-3
    assert np.abs(uniform).max() <= 0.05
    assert uniform.min() < -0.0499 and uniform.max() > 0.0499


def test_constants():
    np.testing.assert_array_equal(draw("zeros", shape=(2, 3)), np.zeros((2, 3)))
    np.testing.assert_array_equal(draw("ones", shape=(4,)), np.ones(4))


def test_different_generators_give_different_values():
    assert not np.array_equal(draw("glorot_uniform", seed=0), draw("glorot_uniform", seed=1))


@pytest.mark.parametrize("shape,fans", [((784, 10), (784, 10)), ((3, 5, 2, 8), (30, 120)), ((7,), (7, 7))])
def test_compute_fans(shape, fans):
    assert compute_fans(shape) == fans


def test_unknown_initializer_is_a_spec_error():
    with pytest.raises(SpecError, match=r"unknown initializer 'glorot'.*glorot_uniform"):
        draw("glorot")


@pytest.mark.parametrize("shape", [(5, 5), (7, 3), (3, 12), (2, 3, 4)])
def test_orthogonal_is_keras_qr_with_the_sign_correction(shape):
    """Orthonormal columns (rows when the kernel is wide), and the Q of the normal draw whose R has a positive
    diagonal: ``Q.T @ draw`` is that R."""
    values = draw("orthogonal", shape=shape, dtype=np.float64)
    assert values.shape == shape
    rows, columns = math.prod(shape[:-1]), shape[-1]
    matrix = values.reshape(rows, columns)
    q = matrix if rows >= columns else matrix.T
    np.testing.assert_allclose(q.T @ q, np.eye(q.shape[1]), atol=1e-12)
    normal = np.random.default_rng(0).standard_normal((max(rows, columns), min(rows, columns)))
    r = q.T @ normal
    np.testing.assert_allclose(np.tril(r, -1), 0, atol=1e-12)
    assert (np.diag(r) > 0).all()
