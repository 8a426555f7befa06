"""Split a layer's batch into shards computed on every core at once.

numpy runs its elementwise work (padding copies, sums, masks) on one core while BLAS threads
only the matrix products, and the products of a small batch are too small for BLAS's threads to
pay off. A layer therefore splits its batch into one shard per core and computes the shards in
worker threads (numpy and BLAS release the GIL), with BLAS held at one thread meanwhile so that
the threads do not fight over the cores. The split lives in the layers rather than in the training
step because only a layer knows whether its examples are independent (BatchNormalization's batch
statistics are not), and so that inference, training and tests all take the same path.

How many shards a batch takes is the cost model's decision (:mod:`specforge.ops.costs`), from the
operation's work, the number of cores and the machine's constants, measured once and kept; per-shard
results are combined in shard order (``sum_in_order``), so results are the same from run to run on a
machine (one with another number of cores, or other constants, may round differently). BLAS's thread
count is a process-wide setting, so layers are not meant to compute from several threads at once.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

import numpy as np
from threadpoolctl import ThreadpoolController, threadpool_limits

from specforge.ops.memory import keep_freed_memory

T = TypeVar("T")
P = TypeVar("P")


def worker_count() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


_WORKERS = worker_count()
_pool: ThreadPoolExecutor | None = None
_blas = None
_lock = threading.Lock()


def workers() -> int:
    """The cores a batch may be split over now: this process's, or fewer inside :func:`limited_to`."""
    return _WORKERS


def run(work: Callable[[P], T], parts: Sequence[P]) -> list[T]:
    """``[work(part) for part in parts]``, the parts in parallel threads when there are several.

    BLAS runs single-threaded even for one part: its worker threads, once woken, keep spinning
    for a while and would take the cores from the next shards.
    """
    keep_freed_memory()
    with single_threaded_blas():
        if len(parts) == 1:
            return [work(parts[0])]
        futures = [_executor().submit(work, part) for part in parts[1:]]
        first = work(parts[0])
        return [first, *(future.result() for future in futures)]


def sum_in_order(parts: Sequence[np.ndarray]) -> np.ndarray:
    """The sum of per-shard partial results, added in shard order (the same rounding on every run).

    The first part is updated in place and returned.
    """
    total = parts[0]
    for part in parts[1:]:
        total += part
    return total


def _executor() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        with _lock:
            if _pool is None:
                _pool = _started_pool(max(1, _WORKERS - 1))
    return _pool


def _started_pool(workers: int) -> ThreadPoolExecutor:
    """A pool whose every worker thread is already running.

    ThreadPoolExecutor starts threads lazily inside ``submit``; a Ctrl-C landing in that moment leaves
    a thread the pool never registered and the process hangs at exit.  So all workers are started at
    once, with SIGINT held back until they are (it is delivered right after).
    """
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="specforge-shard")
    blockable = hasattr(signal, "pthread_sigmask") and threading.current_thread() is threading.main_thread()
    if blockable:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    barrier = threading.Barrier(workers + 1)
    try:
        for _ in range(workers):
            pool.submit(barrier.wait)
        barrier.wait()
    except BaseException:
        # A Ctrl-C that arrived just before SIGINT was held back is raised here: release the workers
        # already waiting, or they wait at the barrier for ever and the process cannot exit.
        barrier.abort()
        pool.shutdown(wait=False)
        raise
    finally:
        if blockable:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    return pool


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """BLAS at one thread inside the block (its controllers found on first use: commands that never compute
    a batch do not look for them)."""
    global _blas
    if _blas is None:
        _blas = ThreadpoolController().select(user_api="blas").lib_controllers
    previous = [lib.num_threads for lib in _blas]
    for lib in _blas:
        lib.set_num_threads(1)
    try:
        yield
    finally:
        for lib, count in zip(_blas, previous):
            lib.set_num_threads(count)


@contextmanager
def limited_to(cores: int) -> Iterator[None]:
    """Inside the block, batches split into at most ``cores`` shards and BLAS runs at most ``cores`` threads:
    a sweep trial's share of a machine where other trials run (Ray grants a number of CPUs, not which)."""
    global _WORKERS

    previous = _WORKERS
    _WORKERS = max(1, min(cores, previous))
    try:
        with threadpool_limits(limits=cores):
            yield
    finally:
        _WORKERS = previous
