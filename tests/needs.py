"""Tests that need a tool installed outside Python (Chromium, node packages, an extra): skipped without it,
except under CI (``CI=true``), where a missing tool fails the test instead."""

from __future__ import annotations

import os

import pytest


def require(available: bool, what: str) -> None:
    """Skip (fail under CI) unless ``available``; ``what`` names the missing tool and how to install it."""
    if available:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is not installed, and CI must run this test")
    pytest.skip(f"{what} is not installed")
