"""The machine constants the cost model decides from (:mod:`specforge.ops.costs`), measured once and kept.

A short calibration (under a second) times, on this machine: a single-threaded float32 matrix product
large and small (its rate, what each call costs, and what reading its weight operand costs per call), a run
of onnxruntime's convolution kernels on one pixel (what each run costs, whatever the batch), an
elementwise pass in cache, a copy of a batch's worth of activations on one core and on every core (the
memory bandwidth one core and all of them get), and what handing work to the other cores' threads and
waiting for it adds: each the best of several tries, what the machine can do. Last, the share of the other
cores a split gets: a few milliseconds of products run on one core, then the same on every core at once, in
turns. That share is what the cores give when they are free, as the other constants are: on a virtual
machine whose cores are shared with other machines, one turn in two may find the second core taken (on a
2-core VM, turns of 4 products of 256 x 256 x 256 gave shares from -0.3 to 1.2, their median 0.05 to 0.5
from one calibration to the next, their second best 0.7 to 1.2), and a share taken from the typical turn
kept whatever moment the calibration met, for good: measured at 0, nothing ever split, and the seed's
training step ran 1.35x slower than with its convolutions split. So the share is that of the second-best
turn (the best alone may be a fluke of the clock).

The constants are kept in ``$XDG_CACHE_HOME/specforge/machine.json`` (default ``~/.cache/specforge``),
one entry per processor model and core count, and read back as they were written, so that every process on
the machine decides alike and trains alike. ``SPECFORGE_CALIBRATE=1`` measures them again (and rewrites the
entry); where the cache cannot be read or written, the constants measured stay in memory for the process.
With one core, nothing is ever split and nothing is measured.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from specforge.base.fileio import user_cache, write_text
from specforge.ops import nchwc, parallel
from specforge.ops.window import Window

#: The environment variable that, set to 1, measures the constants again rather than reading them.
RECALIBRATE = "SPECFORGE_CALIBRATE"
#: Tries per timing; the best counts.
TRIES = 15
#: Turns of products on one core and on every core that the cores' share is measured from (the second best).
SHARES = 15
#: Products of (256 x 256) @ (256 x 256) each core computes in a turn: about 2-5 ms, many hand-offs' worth.
TURN_PRODUCTS = 4
#: Tries of a hand-off (tens of microseconds each): enough to catch the other cores free on a busy machine.
HANDOFFS = 400
#: Bytes of the copy that measures the memory bandwidth: about a layer's activations for a batch (the seed
#: model's second convolution makes 4.7 MB at batch 32), in the last-level cache of many machines, not all.
STREAMED = 4 << 20


@dataclass(frozen=True)
class Machine:
    """What operations cost on this machine, one core's figures unless named otherwise."""

    #: float32 matrix-product FLOPs per second, once the product is large enough to run at full speed
    flops_per_s: float
    #: weight-operand elements per second that a product reads and repacks once per call, however few rows
    packed_per_s: float
    #: the fixed cost of one numpy or BLAS call, seconds
    call_s: float
    #: the fixed cost of one run of onnxruntime's convolution kernels (:mod:`specforge.ops.nchwc`), seconds
    session_s: float
    #: elements per second of one elementwise pass (a ReLU) over an array in cache
    elements_per_s: float
    #: bytes per second one core reads and writes, copying a batch's worth of activations
    bytes_per_s: float
    #: bytes per second all the cores read and write together
    all_bytes_per_s: float
    #: what computing on one more core's thread adds: handing it its part and waiting for it, seconds
    handoff_s: float
    #: the share of each further core's time a split gets, 0 to 1: 1 where the cores are free, less where
    #: other processes take them (a shard on a busy core waits for it)
    core_share: float


_constants: Machine | None = None
_lock = threading.Lock()


def constants() -> Machine:
    """This machine's constants: read from the cache once per process, measured (and kept) where absent."""
    global _constants
    if _constants is None:
        with _lock:
            if _constants is None:
                _constants = _cached_or_measured()
    return _constants


def cache_file() -> Path:
    """Where the constants are kept: ``$XDG_CACHE_HOME/specforge/machine.json`` or ``~/.cache/specforge/…``."""
    return user_cache() / "machine.json"


def machine_key() -> str:
    """The cache entry of this machine: its processor model and the cores this process may use."""
    return f"{processor()} / {parallel.worker_count()} cores"


def processor() -> str:
    """The processor's model name (from /proc/cpuinfo where there is one)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cached_or_measured() -> Machine:
    key, path = machine_key(), cache_file()
    entries = _read(path)
    if os.environ.get(RECALIBRATE, "").strip() not in ("", "0") or key not in entries:
        entries[key] = asdict(measure())
        _write(path, entries)
    return Machine(**entries[key])


def _read(path: Path) -> dict[str, dict[str, float]]:
    """The cache's entries; none where it is missing, unreadable or not what this module writes."""
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(entries, dict):
        return {}
    names = {field.name for field in fields(Machine)}
    return {
        key: entry
        for key, entry in entries.items()
        if isinstance(entry, dict)
        and set(entry) == names
        and all(isinstance(value, float) and math.isfinite(value) and value >= 0 for value in entry.values())
    }


def _write(path: Path, entries: dict[str, dict[str, float]]) -> None:
    """Replace the cache at once (another process may be reading it); where it cannot be written, keep the
    constants in memory only."""
    with contextlib.suppress(OSError):
        write_text(path, json.dumps(entries, indent=1, sort_keys=True))


# -- the calibration ---------------------------------------------------------------------------------------
def measure() -> Machine:
    """Time this machine's constants (BLAS at one thread, as the shards run)."""
    rng = np.random.default_rng(0)
    with parallel.single_threaded_blas():
        call = _best(_product(rng, 1, 8, 8))
        session = _best(_smallest_convolution()) if nchwc.block_size() > 1 else call
        large_s, small_s = _best(_product(rng, 256, 256, 256)), _best(_product(rng, 32, 256, 256))
        flops_per_s = 2 * (256 - 32) * 256 * 256 / max(large_s - small_s, 1e-9)
        packing_s = small_s - call - 2 * 32 * 256 * 256 / flops_per_s
        elementwise = rng.standard_normal(16384).astype(np.float32)
        relu_s = _best(lambda: np.maximum(elementwise, 0, out=elementwise))
        one_core, all_cores, handoff = _memory_and_handoff()
        share = _core_share([_product(rng, 256, 256, 256) for _ in range(parallel.worker_count())], handoff)
    return Machine(
        flops_per_s=flops_per_s,
        packed_per_s=256 * 256 / max(packing_s, 1e-9),
        call_s=max(call, 1e-9),
        session_s=max(session, 1e-9),
        elements_per_s=elementwise.size / max(relu_s - call, 1e-9),
        bytes_per_s=one_core,
        all_bytes_per_s=max(all_cores, one_core),
        handoff_s=max(handoff, 1e-9),
        core_share=share,
    )


def _product(rng: np.random.Generator, m: int, k: int, n: int) -> Callable[[], object]:
    """A float32 product (m, k) @ (k, n) into a kept output."""
    a, b = rng.standard_normal((m, k)).astype(np.float32), rng.standard_normal((k, n)).astype(np.float32)
    out = np.empty((m, n), np.float32)
    return lambda: np.matmul(a, b, out=out)


def _smallest_convolution() -> Callable[[], object]:
    """A run of onnxruntime's NCHWc convolution kernels on one pixel of one block of channels."""
    block = nchwc.block_size()
    x, kernel = np.ones((1, 1, 1, block), np.float32), np.ones((1, 1, block, block), np.float32)
    out, window = np.empty((1, 1, 1, block), np.float32), Window((1, 1), (1, 1), (1, 1), ((0, 0), (0, 0)))
    return lambda: nchwc.forward(x, kernel, None, window, False, out)


def _best(work: Callable[[], object], tries: int = TRIES) -> float:
    """The shortest of ``tries`` timings of ``work``, seconds (after one untimed run)."""
    work()
    best = float("inf")
    for _ in range(tries):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


def _memory_and_handoff() -> tuple[float, float, float]:
    """``(bytes per second on one core, on every core, seconds one more core's thread adds)``."""
    workers = parallel.worker_count()
    source = np.ones(STREAMED // 4, np.float32)
    target = np.empty_like(source)
    whole = [slice(0, len(source))]
    split = [slice(len(source) * i // workers, len(source) * (i + 1) // workers) for i in range(workers)]

    def copy(part: slice) -> None:
        np.copyto(target[part], source[part])

    one_core = 2 * source.nbytes / _best(lambda: parallel.run(copy, whole), 4)
    all_cores = 2 * source.nbytes / _best(lambda: parallel.run(copy, split), 4)
    alone = _best(lambda: parallel.run(_nothing, [0]), HANDOFFS)
    together = _best(lambda: parallel.run(_nothing, list(range(workers))), HANDOFFS)
    return one_core, all_cores, (together - alone) / max(workers - 1, 1)


def _core_share(products: list[Callable[[], object]], handoff: float) -> float:
    """The share of each further core a split gets: ``TURN_PRODUCTS`` runs of one of ``products`` (one per
    core) on one core, then of all of them at once, one per core, in ``SHARES`` turns; the second-best turn's
    gain, what the cores give when free."""
    workers = len(products)
    if workers == 1:
        return 1.0

    def turn(index: int) -> None:
        for _ in range(TURN_PRODUCTS):
            products[index]()

    shares = []
    for _ in range(SHARES):
        alone = _timed(lambda: parallel.run(turn, [0]))
        together = _timed(lambda: parallel.run(turn, list(range(workers)))) - (workers - 1) * handoff
        # on free cores, the turns run side by side in the time of one
        shares.append((workers * alone / max(together, 1e-9) - 1) / (workers - 1))
    return min(1.0, max(0.0, sorted(shares)[-2]))


def _timed(work: Callable[[], object]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def _nothing(_: object) -> None:
    return None
