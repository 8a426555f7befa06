"""NumPy sources: .npz archives (Keras' mnist.npz keys or others) and .npy pairs."""

from __future__ import annotations

import numpy as np
import pytest

from specforge.base.errors import DataError
from specforge.data import load_dataset

from .builders import tiny_images, tiny_labels

SHAPE = (4, 5, 1)


def save_keras_layout(path, **extra):
    np.savez(
        path,
        x_train=tiny_images(9),
        y_train=tiny_labels(9),
        x_test=tiny_images(3, seed=5),
        y_test=tiny_labels(3, seed=6),
        **extra,
    )


def test_npz_with_keras_keys(tmp_path):
    save_keras_layout(tmp_path / "mnist.npz")
    dataset = load_dataset({"source": "npz", "path": "mnist.npz"}, SHAPE, base_dir=tmp_path)
    np.testing.assert_array_equal(dataset.train.images, tiny_images(9))
    np.testing.assert_array_equal(dataset.test.labels, tiny_labels(3, seed=6))
    assert dataset.validation is dataset.test and dataset.train.labels.dtype == np.int64


def test_npz_with_configured_keys_and_float_labels(tmp_path):
    np.savez_compressed(tmp_path / "d.npz", images=tiny_images(6), classes=tiny_labels(6).astype(np.float32))
    spec = {"source": "npz", "path": "d.npz", "keys": {"x_train": "images", "y_train": "classes"}}
    dataset = load_dataset(spec, SHAPE, validation="none", base_dir=tmp_path)
    np.testing.assert_array_equal(dataset.train.labels, tiny_labels(6))
    assert dataset.test is None and dataset.validation is None


def test_npz_missing_key_lists_what_the_archive_holds(tmp_path):
    np.savez(tmp_path / "d.npz", images=tiny_images(2), y_train=tiny_labels(2))
    with pytest.raises(DataError) as error:
        load_dataset({"source": "npz", "path": "d.npz"}, SHAPE, base_dir=tmp_path)
    assert error.value.problems[0].message == (
        "the archive has no array 'x_train' for the train split; it holds ['images', 'y_train']; name them in data.keys"
    )


def test_npz_half_a_split_is_refused(tmp_path):
    save_keras_layout(tmp_path / "d.npz", x_validation=tiny_images(2))
    with pytest.raises(DataError, match="no array 'y_validation' for the validation split"):
        load_dataset({"source": "npz", "path": "d.npz"}, SHAPE, base_dir=tmp_path)


def test_npz_that_is_not_an_archive(tmp_path):
    (tmp_path / "d.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DataError, match=r"cannot read as \.npz: .*; save it with numpy\.savez"):
        load_dataset({"source": "npz", "path": "d.npz"}, SHAPE, base_dir=tmp_path)


def test_one_hot_labels_get_a_hint(tmp_path):
    np.savez(tmp_path / "d.npz", x_train=tiny_images(3), y_train=np.eye(3, dtype=np.float32))
    with pytest.raises(DataError, match=r"labels have shape \(3, 3\); .*store np.argmax\(y, axis=1\)"):
        load_dataset({"source": "npz", "path": "d.npz"}, SHAPE, base_dir=tmp_path)


def test_fractional_labels_are_refused(tmp_path):
    np.savez(tmp_path / "d.npz", x_train=tiny_images(3), y_train=np.array([0.0, 1.5, 2.0]))
    with pytest.raises(DataError, match=r"label 1\.5 at index 1 is not an integer"):
        load_dataset({"source": "npz", "path": "d.npz"}, SHAPE, base_dir=tmp_path)


def test_npy_pairs_are_memory_mapped(tmp_path):
    np.save(tmp_path / "xi.npy", tiny_images(7))
    np.save(tmp_path / "yi.npy", tiny_labels(7).astype(np.int32))
    spec = {"source": "npy", "train_images": "xi.npy", "train_labels": "yi.npy"}
    dataset = load_dataset(spec, SHAPE, validation=0.3, base_dir=tmp_path)
    assert isinstance(dataset.train.images, np.memmap)
    assert len(dataset.train) == 4 and len(dataset.validation) == 3  # int(7 * 0.7) = 4, as Keras
    np.testing.assert_array_equal(dataset.validation.images, tiny_images(7)[4:])


def test_npy_file_that_is_not_npy(tmp_path):
    (tmp_path / "xi.npy").write_bytes(b"hello")
    np.save(tmp_path / "yi.npy", tiny_labels(2))
    spec = {"source": "npy", "train_images": "xi.npy", "train_labels": "yi.npy"}
    with pytest.raises(DataError, match=r"cannot read as \.npy: .*; save it with numpy\.save") as error:
        load_dataset(spec, SHAPE, base_dir=tmp_path)
    assert error.value.problems[0].location.file == str(tmp_path / "xi.npy")
