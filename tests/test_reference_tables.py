"""The reference table specs train to their targets on scikit-learn's bundled tables (shipped in specs/data)."""

from __future__ import annotations

from pathlib import Path

import pytest

from specforge import api
from specforge.training.progress import Silent

SPECS = Path(__file__).resolve().parents[1] / "specs"


@pytest.mark.parametrize(
    "name, metric, target",
    [("breast_cancer", "accuracy", 0.95), ("breast_cancer_two_inputs", "accuracy", 0.95), ("diabetes", "r2", 0.45)],
)
def test_reference_spec_reaches_its_target(tmp_path, name, metric, target):
    run = api.fit(SPECS / f"{name}.yaml", out=tmp_path / name, progress=Silent())
    assert run.metrics[metric] >= target
    assert run.metrics["examples"] == {"breast_cancer": 113, "breast_cancer_two_inputs": 113, "diabetes": 88}[name]
