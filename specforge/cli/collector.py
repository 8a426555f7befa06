"""The cyclic garbage collector paused while the command line's modules are imported.

Their imports make most of the objects a command starts with (modules, classes, functions, registries), and these
live as long as the process: collections run while they are made find nothing to free (a sixth of validate's start
went to them), so they are made without any, then frozen out of the collections that follow (``gc.freeze``), which
would otherwise go through them all again."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused_collector() -> Iterator[None]:
    """No collection inside; the objects made inside are frozen out of later ones, and the collector is on again
    after if it was before."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if collecting:
            gc.enable()
