"""Per-channel arithmetic over whole examples: rows of one example, tiled vectors, and sums block by
block, in order, that equal numpy's reductions whatever the block size."""

from __future__ import annotations

import numpy as np
import pytest

from specforge.ops import channels


def test_example_rows_are_a_view_of_a_contiguous_batch():
    x = np.zeros((3, 2, 4, 5))
    rows = channels.example_rows(x)
    assert rows.shape == (3, 40) and np.shares_memory(rows, x)
    strided = x[:, ::2]
    assert channels.example_rows(strided).shape == (3, 20) and not np.shares_memory(channels.example_rows(strided), x)


def test_tiled_repeats_the_vector_over_a_row_in_its_dtype():
    rows = np.zeros((2, 6), np.float32)
    tiled = channels.tiled(np.array([1.0, 2.0, 3.0]), rows)
    assert tiled.dtype == np.float32
    np.testing.assert_array_equal(tiled, [1, 2, 3, 1, 2, 3])


def test_position_sums_sum_each_example_over_its_positions():
    x = np.random.default_rng(0).standard_normal((4, 7, 3))
    np.testing.assert_allclose(channels.position_sums(x), x.sum(axis=1), rtol=1e-12)


def test_blocks_cover_every_row_in_order(monkeypatch):
    monkeypatch.setattr(channels, "BLOCK", 10)
    blocks = channels.blocks_of(np.zeros((7, 4)))
    assert blocks == [slice(0, 2), slice(2, 4), slice(4, 6), slice(6, 7)]
    assert channels.blocks_of(np.zeros((3, 50))) == [slice(0, 1), slice(1, 2), slice(2, 3)]  # one row at least


def test_blockwise_runs_the_work_on_every_block(monkeypatch):
    monkeypatch.setattr(channels, "BLOCK", 8)
    rows = np.arange(10 * 3, dtype=float).reshape(10, 3)
    out = np.zeros_like(rows)
    seen = []

    def work(block: slice) -> None:
        seen.append(block)
        np.multiply(rows[block], 2, out=out[block])

    channels.blockwise(work, rows)
    np.testing.assert_array_equal(out, rows * 2)
    assert seen == [slice(start, start + 2) for start in range(0, 10, 2)]  # 8 // 3 = 2 rows a block, in order


@pytest.mark.parametrize("block", [channels.BLOCK, 12, 1])
def test_blockwise_sums_equal_numpy_per_channel_sums(block, monkeypatch):
    monkeypatch.setattr(channels, "BLOCK", block)
    x = np.random.default_rng(1).standard_normal((9, 4, 5, 3))
    rows = channels.example_rows(x)
    totals, squares = channels.blockwise_sums(lambda part: [rows[part], rows[part] ** 2], rows)
    np.testing.assert_allclose(channels.channel_totals(totals, 3), x.sum(axis=(0, 1, 2)), rtol=1e-12)
    np.testing.assert_allclose(channels.channel_totals(squares, 3), (x**2).sum(axis=(0, 1, 2)), rtol=1e-12)
