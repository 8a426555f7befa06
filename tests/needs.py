"""Tests that need a tool installed outside Python (Chromium, node packages, an extra): skipped without it,
except under CI (``CI=true``), where a missing tool fails the test instead."""

from __future__ import annotations

import importlib
import importlib.util
import os
from types import ModuleType

import pytest


def require(available: bool, what: str) -> None:
    """Skip (fail under CI) unless ``available``; ``what`` names the missing tool and how to install it."""
    if available:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is not installed, and CI must run this test")
    pytest.skip(f"{what} is not installed")


def need(module: str) -> ModuleType:
    """``module``, or a skip when it is not installed (a failure under CI, see ``require``)."""
    require(importlib.util.find_spec(module.partition(".")[0]) is not None, f"{module} (pip install -e '.[test]')")
    return importlib.import_module(module)
