"""Fixtures: small data sets built in tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest

from .builders import tiny_images, tiny_labels, write_idx


@pytest.fixture
def idx_set(tmp_path: Path) -> dict:
    """An IDX data set: 12 training and 6 test 4x5 images with labels 0..2, in tmp_path/idx (gzip)."""
    root = tmp_path / "idx"
    root.mkdir()
    arrays = {
        "train_images": tiny_images(12),
        "train_labels": tiny_labels(12),
        "test_images": tiny_images(6, seed=2),
        "test_labels": tiny_labels(6, seed=3),
    }
    spec = {"source": "idx"}
    for role, array in arrays.items():
        write_idx(root / f"{role}.idx.gz", array)
        spec[role] = f"idx/{role}.idx.gz"
    return {"spec": spec, "arrays": arrays, "base_dir": tmp_path, "root": root}
