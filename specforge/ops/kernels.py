"""Which path the memory-bound passes take: the compiled kernels (:mod:`specforge.ops.numba_kernels`) when
numba imports and compiles them, else the numpy reference beside each.

The kernels are loaded once per process, on first use (or by :func:`load`, which the training loop calls
to say so on its progress line): numba compiles them on the first run and keeps the machine code in a
per-user cache directory (``NUMBA_CACHE_DIR`` when the user set one, else ``~/.cache/specforge/numba``, or
under ``XDG_CACHE_HOME``), so a second process loads them in a fraction of a second. Anything that keeps
them from loading (a compile error, a cache directory that cannot be written) leaves the numpy path in
use, said in one line, never a traceback. ``SPECFORGE_KERNELS`` chooses: ``auto`` (the default) the
compiled path where numba is installed (the ``fast`` extra), else numpy without a word; ``numba`` the
compiled path, saying so when numba is missing too; ``numpy`` the numpy path (for tests and debugging).

numba is imported here only inside :func:`load`: ``specforge validate`` never loads it.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np

from specforge.base.fileio import user_cache

#: The environment variable that chooses the path: ``auto`` (the default), ``numba`` or ``numpy``.
CHOICE = "SPECFORGE_KERNELS"
_CHOICES = ("auto", "numba", "numpy")

_lock = threading.Lock()
#: the loaded kernels, None for the numpy path; unset until the first ``load``
_loaded: ModuleType | None = None
_decided = False


def cache_directory() -> Path:
    """Where numba keeps the compiled kernels: ``NUMBA_CACHE_DIR`` if set, else specforge's per-user cache."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return Path(os.environ["NUMBA_CACHE_DIR"])
    return user_cache() / "numba"


def load(notify: Callable[[str], None] | None = None) -> ModuleType | None:
    """The compiled kernels, or None for the numpy path; loaded (compiled on the first run) once per process.
    ``notify`` gets one line when the kernels are compiled rather than read from the cache, and one line when
    they cannot be used (without ``notify``, that line goes to stderr)."""
    global _loaded, _decided
    with _lock:
        if not _decided:
            _loaded = _load(notify)
            _decided = True
        return _loaded


def active() -> ModuleType | None:
    """The compiled kernels when they are in use (loading them on first call), else None."""
    return _loaded if _decided else load()


def takes(*arrays: np.ndarray) -> bool:
    """Whether the compiled kernels are in use and take these arrays as they are: float32, C-contiguous."""
    return active() is not None and all(a.dtype == np.float32 and a.flags.c_contiguous for a in arrays)


def reset() -> None:
    """Forget the choice, so that the next use decides again (for tests that change the environment)."""
    global _loaded, _decided
    with _lock:
        _loaded, _decided = None, False


def _load(notify: Callable[[str], None] | None) -> ModuleType | None:
    choice = os.environ.get(CHOICE, "auto").strip().lower() or "auto"
    if choice == "numpy":
        return None
    installed = importlib.util.find_spec("numba") is not None
    if choice == "auto" and not installed:
        return None
    problem: str | None
    if choice not in _CHOICES:
        problem = f"{CHOICE}={choice!r} is not one of {', '.join(_CHOICES)}"
    elif not installed:
        problem = "numba is not installed (pip install 'specforge[fast]')"
    else:
        problem = _prepare_cache()
    if problem is None:
        if notify is not None and not _cached():
            notify(f"compiling kernels… (once; kept in {cache_directory()})")
        try:
            return _compile()
        except Exception as error:  # any failure to compile leaves the numpy path, said once
            problem = f"numba could not compile them ({type(error).__name__}: {_first_line(error)})"
    _say(f"compiled kernels unavailable: {problem}; using the numpy kernels", notify)
    return None


def _compile() -> ModuleType:
    """Import (and so compile, or read from the cache) the kernels."""
    from specforge.ops import numba_kernels

    return numba_kernels


def _prepare_cache() -> str | None:
    """Point numba at the cache directory and check that it can be written; what is wrong, else None."""
    directory = cache_directory()
    os.environ.setdefault("NUMBA_CACHE_DIR", str(directory))
    config = sys.modules.get("numba.core.config")
    if config is not None and not getattr(config, "CACHE_DIR", ""):  # numba, imported before, read its settings
        config.CACHE_DIR = str(directory)  # type: ignore[attr-defined]
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as error:
        return f"the cache directory {directory} cannot be written ({error.strerror or error})"
    return None


def _cached() -> bool:
    """Whether numba's cache holds the kernels (an index file of this module's functions)."""
    return any(cache_directory().rglob("numba_kernels.*.nbi"))


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [""])[0]


def _say(line: str, notify: Callable[[str], None] | None) -> None:
    if notify is not None:
        notify(line)
    else:
        sys.stderr.write(f"specforge: warning: {line}\n")
