"""Throughput of a callable: how many images per second it processes when called repeatedly."""

from __future__ import annotations

import time
from collections.abc import Callable


def best_rate(run: Callable[[], object], images: int, seconds: float = 1.0) -> float:
    """Images per second of ``run`` (``images`` per call), after one warm-up call, repeated for ``seconds``."""
    run()
    calls, start = 0, time.perf_counter()
    while True:
        run()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return calls * images / elapsed
