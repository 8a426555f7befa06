"""Batch shards computed in threads, in order, and layers computing the same values split or whole, run after run."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from helpers import make_layer, split_every_batch

from specforge.ops import parallel
from specforge.ops.costs import Work, shards


def test_run_keeps_the_order_of_the_parts(monkeypatch):
    split_every_batch(monkeypatch, 3)
    threads = parallel.run(lambda part: (part.start, threading.get_ident()), shards(9, Work(flops=1e6)))
    assert [start for start, _ in threads] == [0, 3, 6]
    assert threads[0][1] == threading.get_ident() and len({ident for _, ident in threads}) > 1


def test_sum_in_order_adds_left_to_right():
    parts = [np.float32([1e8]), np.float32([1.0]), np.float32([-1e8])]
    # (1e8 + 1) rounds to 1e8 in float32, so left to right gives 0, not 1
    assert parallel.sum_in_order([p.copy() for p in parts])[0] == 0.0


LAYERS = [
    ("Conv2D", {"filters": 3, "kernel_size": 3, "padding": "same"}, (6, 5, 40)),
    ("Conv2D", {"filters": 4, "kernel_size": [2, 3]}, (7, 6, 2)),
    ("Conv2D", {"filters": 2, "kernel_size": 3, "strides": 2}, (7, 7, 3)),
    ("DepthwiseConv2D", {"kernel_size": 2, "depth_multiplier": 2}, (5, 4, 3)),
    ("Dense", {"units": 4}, (9,)),
    ("Activation", {"activation": "relu"}, (4, 3, 2)),
    ("Activation", {"activation": "softmax"}, (4, 3, 5)),
    ("ReLU", {"max_value": 1.0, "negative_slope": 0.1, "threshold": 0.2}, (6,)),
]


def forward_backward(kind, config, shape, dtype=np.float64):
    layer, params = make_layer(kind, config, shape, dtype=dtype)
    rng = np.random.default_rng(7)
    x = rng.standard_normal((7, *shape)).astype(dtype)
    y, cache = layer.forward(params, x, training=True)
    dx, grads = layer.backward(params, cache, rng.standard_normal(y.shape).astype(dtype))
    return [y, dx, *(grads[name] for name in sorted(grads))]


@pytest.mark.parametrize("kind, config, shape", LAYERS)
def test_split_batch_computes_the_whole_batch_result(kind, config, shape, monkeypatch):
    monkeypatch.setattr(parallel, "_WORKERS", 1)
    whole = forward_backward(kind, config, shape)
    split_every_batch(monkeypatch, 3)
    split = forward_backward(kind, config, shape)
    for expected, actual in zip(whole, split, strict=True):
        np.testing.assert_allclose(actual, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind, config, shape", LAYERS)
def test_split_batch_is_deterministic_in_float32(kind, config, shape, monkeypatch):
    split_every_batch(monkeypatch, 3)
    first = forward_backward(kind, config, shape, np.float32)
    for _ in range(3):
        for expected, actual in zip(first, forward_backward(kind, config, shape, np.float32), strict=True):
            np.testing.assert_array_equal(actual, expected)


def test_a_ctrl_c_while_the_pool_starts_leaves_no_worker_waiting(monkeypatch):
    """A KeyboardInterrupt raised between starting workers (a SIGINT pending before it was held back)
    releases the workers already at the start barrier, so the process can still exit."""
    from concurrent.futures import ThreadPoolExecutor

    submit, started = ThreadPoolExecutor.submit, []

    def interrupted_submit(pool, function, *args):
        if started:
            raise KeyboardInterrupt
        started.append(submit(pool, function, *args))
        return started[-1]

    monkeypatch.setattr(ThreadPoolExecutor, "submit", interrupted_submit)
    with pytest.raises(KeyboardInterrupt):
        parallel._started_pool(3)
    assert isinstance(started[0].exception(timeout=10), threading.BrokenBarrierError)
