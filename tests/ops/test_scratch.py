"""Per-thread scratch buffers, and column sums as a product with a row of ones."""

from __future__ import annotations

import threading

import numpy as np

from specforge.ops import scratch as scratch_module
from specforge.ops.scratch import column_sums, scratch


def test_scratch_is_per_thread_and_per_key():
    a = scratch("a", (3,), np.float32)
    assert scratch("a", (3,), np.float32) is a
    assert scratch("b", (3,), np.float32) is not a
    assert scratch("a", (3,), np.float64) is not a
    assert scratch("a", (4,), np.float32) is not a
    other = []
    thread = threading.Thread(target=lambda: other.append(scratch("a", (3,), np.float32)))
    thread.start()
    thread.join()
    assert other[0] is not a


def test_a_filled_buffer_starts_filled():
    assert not scratch("z", (4,), np.float32, fill=0.0).any()
    assert (scratch("z", (4,), np.float32, fill=1.0) == 1).all()


def test_a_thread_drops_its_buffers_past_the_limit(monkeypatch):
    monkeypatch.setattr(scratch_module, "_MAX_BUFFERS", 3)

    def fill() -> list[bool]:
        first = scratch("kept", (2,), np.float32)
        for index in range(3):
            scratch(("other", index), (2,), np.float32)
        return [scratch("kept", (2,), np.float32) is first]

    result = []
    thread = threading.Thread(target=lambda: result.extend(fill()))
    thread.start()
    thread.join()
    assert result == [False]


def test_column_sums_equal_numpy_sums():
    rows = np.random.default_rng(0).standard_normal((37, 5))
    np.testing.assert_allclose(column_sums(rows), rows.sum(axis=0), rtol=1e-12)
    assert column_sums(rows.astype(np.float32)).dtype == np.float32
