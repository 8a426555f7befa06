"""Fixtures shared by the export tests: a trained run directory, copied per test so a test may write to it."""

from __future__ import annotations

import shutil

import pytest

from export.models import small_spec
from specforge import api


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """A run of the small CNN trained for one epoch on 1024 images."""
    return api.fit(
        small_spec(), out=tmp_path_factory.mktemp("runs") / "small", quiet=True, limit_train=1024, limit_test=256
    ).path


@pytest.fixture
def run_copy(trained_run, tmp_path):
    return shutil.copytree(trained_run, tmp_path / "run")
