"""The cost model's decision to split a batch across the cores, from given machine constants (nothing timed)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from helpers import TEST_MACHINE, split_every_batch

from specforge.ops import costs, machine, parallel
from specforge.ops.costs import Work, shard_count, shards

DENSE = Work.product(1, 784, 256)


def test_shards_cover_the_batch_in_order(monkeypatch):
    split_every_batch(monkeypatch, 3)
    assert shards(7, DENSE) == [slice(0, 2), slice(2, 4), slice(4, 7)]
    assert shards(2, DENSE) == [slice(0, 1), slice(1, 2)]


def test_a_cheap_hand_off_splits_and_a_costly_one_does_not():
    assert shard_count(DENSE, 128, 2, replace(TEST_MACHINE, handoff_s=1e-6)) == 2
    assert shard_count(DENSE, 128, 2, replace(TEST_MACHINE, handoff_s=1e-2)) == 1


def test_a_split_must_save_more_than_the_models_margin():
    """Two shards of 8 examples at 1 s each, a hand-off of ``h``: 8 + h against 16 seconds."""
    work, constants = Work(flops=TEST_MACHINE.flops_per_s), replace(TEST_MACHINE, call_s=1e-30)
    saved = 16 * (1 - costs.MARGIN)
    assert shard_count(work, 16, 2, replace(constants, handoff_s=8 - saved - 0.01)) == 2
    assert shard_count(work, 16, 2, replace(constants, handoff_s=8 - saved + 0.01)) == 1


def test_a_small_batch_stays_whole_where_every_shard_reads_the_whole_weights():
    """A dense layer's product reads its weight matrix whole in each shard, a time that splitting does not
    shorten: for a 2048 x 2048 matrix it outweighs two examples' arithmetic, not 512 examples'."""
    wide = Work.product(1, 2048, 2048)
    free_hand_off = replace(TEST_MACHINE, handoff_s=1e-30)
    assert shard_count(wide, 2, 2, free_hand_off) == 1
    assert shard_count(wide, 512, 2, free_hand_off) == 2


def test_a_small_batch_stays_whole_where_every_shard_runs_the_convolution_kernels_again():
    """Each shard of a convolution on onnxruntime's kernels pays for a run of them, however few its examples."""
    convolution = Work(flops=2e6, sessions=1.0)
    assert shard_count(convolution, 8, 2, replace(TEST_MACHINE, session_s=1e-3)) == 1
    assert shard_count(convolution, 8, 2, replace(TEST_MACHINE, session_s=1e-6)) == 2


def test_memory_bound_passes_split_only_while_the_bandwidth_grows():
    copy = Work.passes(1 << 16, 1.0)  # 256 KiB per example, read and written
    fast_cores = replace(TEST_MACHINE, elements_per_s=1e12)
    shared_bus = replace(fast_cores, all_bytes_per_s=fast_cores.bytes_per_s)
    assert shard_count(copy, 64, 2, replace(shared_bus, all_bytes_per_s=2 * shared_bus.bytes_per_s)) == 2
    assert shard_count(copy, 64, 2, shared_bus) == 1


def test_cores_that_other_processes_take_split_less():
    """Where a split gets half of the second core, the arithmetic runs on one and a half cores: it saves a third
    of the time rather than half, and a fifth of a core saves less than the margin."""
    work = Work(flops=TEST_MACHINE.flops_per_s * 1e-4, calls=0.0)
    free = replace(TEST_MACHINE, handoff_s=1e-30)
    assert costs.seconds(work, 64, 2, replace(free, core_share=0.5)) == pytest.approx(
        2 / 3 * costs.seconds(work, 64, 1, free)
    )
    assert shard_count(work, 64, 2, replace(free, core_share=0.5)) == 2
    assert shard_count(work, 64, 2, replace(free, core_share=0.2)) == 1
    assert shard_count(work, 64, 2, replace(free, core_share=0.0)) == 1


def test_each_core_adds_its_hand_off():
    """With 8 cores, each one's hand-off weighed against the shard it saves: fewer shards than cores."""
    count = shard_count(Work(flops=2e6), 64, 8, replace(TEST_MACHINE, call_s=1e-30, handoff_s=2e-4))
    assert 1 < count < 8


def test_never_more_shards_than_examples():
    assert shard_count(DENSE, 3, 8, replace(TEST_MACHINE, handoff_s=1e-30)) == 3


def test_one_core_splits_nothing_and_measures_nothing(monkeypatch):
    monkeypatch.setattr(parallel, "_WORKERS", 1)
    monkeypatch.setattr(machine, "_constants", None)
    monkeypatch.setattr(machine, "measure", pytest.fail)
    assert shards(128, Work(flops=1e12)) == [slice(0, 128)]


def test_limited_cores_split_into_no_more_shards(monkeypatch):
    split_every_batch(monkeypatch, 4)
    with parallel.limited_to(2):
        assert len(shards(64, DENSE)) == 2
    assert len(shards(64, DENSE)) == 4


def test_works_add_and_repeat():
    step = Work.product(1, 4, 8) + Work.passes(8, 2.0)
    assert step == Work(flops=64.0, elements=16.0, bytes=4.0 * (12 + 16), weights=32.0, calls=3.0)
    assert step * 3 == Work(flops=192.0, elements=48.0, bytes=12.0 * 28, weights=96.0, calls=9.0)
