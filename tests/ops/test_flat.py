"""Arrays end to end in one flat buffer: packing, finding the run they form, flat views and blocks."""

from __future__ import annotations

import numpy as np
import pytest

from specforge.ops import flat


def arrays():
    rng = np.random.default_rng(0)
    return [rng.standard_normal(shape).astype(np.float32) for shape in [(3,), (2, 4), (5,)]]


def test_pack_copies_the_arrays_into_consecutive_views_of_one_buffer():
    originals = arrays()
    packed = flat.pack(originals)
    base = packed[0].base
    assert all(view.base is base for view in packed) and base.size == 3 + 8 + 5
    for view, original in zip(packed, originals):
        np.testing.assert_array_equal(view, original)
        assert not np.shares_memory(view, original)
    np.testing.assert_array_equal(base, np.concatenate([a.ravel() for a in originals]))


def test_pack_with_a_fill():
    packed = flat.pack(arrays(), fill=0.5)
    assert all((view == 0.5).all() for view in packed) and [v.shape for v in packed] == [(3,), (2, 4), (5,)]


def test_arrays_of_several_dtypes_get_copies_of_their_own():
    mixed = [np.ones(3, np.float32), np.ones(2, np.float64)]
    packed = flat.pack(mixed)
    assert [view.dtype for view in packed] == [np.float32, np.float64]
    assert flat.run_of(packed) is None


def test_run_of_is_the_flat_view_of_consecutive_parts():
    packed = flat.pack(arrays())
    run = flat.run_of(packed)
    assert run is not None and run.size == 16
    run[:] = 7.0
    assert all((view == 7).all() for view in packed)
    middle = flat.run_of(packed[1:])
    assert middle is not None and middle.size == 13 and np.shares_memory(middle, packed[1])


def test_run_of_rejects_separate_arrays_and_parts_out_of_order():
    packed = flat.pack(arrays())
    assert flat.run_of(arrays()) is None
    assert flat.run_of([packed[1], packed[0]]) is None
    assert flat.run_of([packed[0], packed[2]]) is None  # a gap
    assert flat.run_of([]) is None


def test_flat_view_writes_through_and_refuses_a_strided_array():
    array = np.zeros((2, 3))
    flat.flat_view(array)[4] = 1.0
    assert array[1, 1] == 1.0
    with pytest.raises(ValueError, match="not contiguous"):
        flat.flat_view(np.zeros((4, 4))[:, ::2])


def test_blocks_cover_the_buffer():
    size = 2 * flat.BLOCK + 3
    blocks = flat.blocks(size)
    assert blocks[0] == slice(0, flat.BLOCK) and blocks[-1] == slice(2 * flat.BLOCK, size) and len(blocks) == 3
