"""Fixtures shared across test packages."""

from __future__ import annotations

from pathlib import Path

import pytest

from specforge import api

SEED_SPEC = Path(__file__).resolve().parents[1] / "specs" / "mnist.yaml"


@pytest.fixture(scope="session")
def seed_run(tmp_path_factory) -> Path:
    """The seed CNN (specs/mnist.yaml) trained for one epoch on 4000 images and exported: good enough to
    read the first test digits and a drawn stroke, quick enough for the suite."""
    run = api.fit(SEED_SPEC, overrides=["fit.epochs=1"], out=tmp_path_factory.mktemp("runs") / "seed", quiet=True,
                  limit_train=4000, limit_test=500)
    api.export(run)
    return run.path
