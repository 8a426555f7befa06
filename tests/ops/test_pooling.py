"""Windowed pooling around a kind's reduction: the views it hands the reduction, and the gradient through
the adjoint of a sum pooling, with windows that tile the input and windows that overlap."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import split_every_batch

from specforge.ops.pooling import pool, pool_gradient
from specforge.ops.window import Window

WINDOWS = [
    Window((2, 2), (2, 2), (1, 1), ((0, 0), (0, 0))),  # tiles a 6 x 4 image
    Window((3, 3), (2, 1), (1, 1), ((1, 1), (1, 1))),  # overlapping, padded
]


def sum_reduce(slices, out, part):
    np.copyto(out, slices[0])
    for view in slices[1:]:
        out += view


def sum_spread(targets, dy, part, tiling):
    for target in targets:
        if tiling:
            np.copyto(target, dy)
        else:
            target += dy


@pytest.mark.parametrize("window", WINDOWS, ids=str)
@pytest.mark.parametrize("shards", [1, 3])
def test_sum_pooling_and_its_gradient_are_adjoint(window, shards, monkeypatch):
    split_every_batch(monkeypatch, shards)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 6, 4, 2))
    y = pool(x, window, sum_reduce)
    assert y.shape == (5, *window.output_size((6, 4)), 2)
    dy = rng.standard_normal(y.shape)
    dx = pool_gradient(dy, x.shape, window, sum_spread)
    assert dx.shape == x.shape
    np.testing.assert_allclose(np.vdot(x, dx), np.vdot(y, dy), rtol=1e-12)


def test_padded_pixels_take_the_pad_value_and_parts_cover_the_batch(monkeypatch):
    split_every_batch(monkeypatch, 2)
    window = Window((2, 2), (1, 1), (1, 1), ((1, 0), (1, 0)))
    x = -np.ones((4, 2, 2, 1))
    parts = []

    def maximum(slices, out, part):
        parts.append(part)
        np.copyto(out, slices[0])
        for view in slices[1:]:
            np.maximum(out, view, out=out)

    y = pool(x, window, maximum, pad_value=-np.inf)
    assert (y == -1).all()  # the padding never wins a maximum
    assert sorted((part.start, part.stop) for part in parts) == [(0, 2), (2, 4)]
    assert (pool(x, window, maximum, pad_value=0.0)[:, 0] == 0).all()  # the first row's windows reach the padding


def test_tiling_windows_write_every_gradient_pixel():
    seen = []

    def spread(targets, dy, part, tiling):
        seen.append(tiling)
        sum_spread(targets, dy, part, tiling)

    dx = pool_gradient(np.ones((1, 3, 2, 1)), (1, 6, 4, 1), WINDOWS[0], spread)
    assert seen == [True] and (dx == 1).all()
    pool_gradient(np.ones((1, 3, 4, 1)), (1, 6, 4, 1), WINDOWS[1], spread)
    assert seen == [True, False]
