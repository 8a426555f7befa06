"""Keep the memory of freed arrays in the process from one batch to the next.

A training step allocates and frees the same large arrays every batch (layer outputs and
gradients, megabytes each). glibc's malloc hands freed memory at the top of its heap back to
the system as soon as more than twice the largest recently freed block lies free, so every
batch faulted its arrays' pages in anew: about 4,500 page faults per step of the seed model,
a quarter of its CPU time. Raising the thresholds keeps up to ``TRIM_THRESHOLD`` of free heap
for the next batch and serves arrays up to ``MMAP_THRESHOLD`` from the heap. Elsewhere than
glibc this does nothing.
"""

from __future__ import annotations

import ctypes

#: mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
#: Arrays up to this size come from the heap (glibc's largest allowed value on 64-bit systems).
MMAP_THRESHOLD = 32 * 1024 * 1024
#: Free heap kept for reuse rather than returned to the system.
TRIM_THRESHOLD = 512 * 1024 * 1024

_done = False


def keep_freed_memory() -> None:
    """Set the thresholds once per process (a no-op without glibc's mallopt)."""
    global _done
    if _done:
        return
    _done = True
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library this process already runs on
    except (OSError, AttributeError, TypeError):
        return
    mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
