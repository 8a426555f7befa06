"""Freed memory kept for the next batch: glibc's thresholds set once per process, and nothing where there
is no mallopt."""

from __future__ import annotations

import ctypes

from specforge.ops import memory


class FakeLibrary:
    def __init__(self):
        self.calls = []

    def mallopt(self, parameter, value):
        self.calls.append((parameter, value))
        return 1


def test_the_thresholds_are_set_once(monkeypatch):
    library = FakeLibrary()
    monkeypatch.setattr(memory, "_done", False)
    monkeypatch.setattr(ctypes, "CDLL", lambda name: library)
    memory.keep_freed_memory()
    memory.keep_freed_memory()
    assert library.calls == [(-3, memory.MMAP_THRESHOLD), (-1, memory.TRIM_THRESHOLD)]


def test_without_mallopt_nothing_happens(monkeypatch):
    def no_library(name):
        raise OSError("no C library")

    monkeypatch.setattr(memory, "_done", False)
    monkeypatch.setattr(ctypes, "CDLL", no_library)
    memory.keep_freed_memory()
    assert memory._done
