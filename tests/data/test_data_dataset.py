"""load_dataset: validation choices, classes, label and shape checks, and the source hash."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from specforge.base.errors import DataError
from specforge.data import load_dataset

from .builders import tiny_images, write_idx

SHAPE = (4, 5, 1)


def load(idx_set, validation="test", shape=SHAPE, **changes):
    return load_dataset({**idx_set["spec"], **changes}, shape, validation=validation, base_dir=idx_set["base_dir"])


def test_validation_fraction_holds_out_the_end_of_the_training_set_as_keras(idx_set):
    dataset = load(idx_set, validation=0.25)
    train = idx_set["arrays"]["train_images"]
    assert len(dataset.train) == 9 and len(dataset.validation) == 3  # split_at = int(12 * 0.75)
    np.testing.assert_array_equal(dataset.validation.images, train[9:])
    np.testing.assert_array_equal(dataset.train.labels, idx_set["arrays"]["train_labels"][:9])
    assert np.shares_memory(dataset.train.images, dataset.validation.images.base)
    assert len(dataset.test) == 6


def test_validation_none_and_test(idx_set):
    assert load(idx_set, validation="none").validation is None
    dataset = load(idx_set, validation="test")
    assert dataset.validation is dataset.test


@pytest.mark.parametrize(
    "validation, message",
    [
        ("validation", "fit.validation is 'validation' but the data has no validation split"),
        (1.5, "validation fraction 1.5 is not between 0 and 1"),
        (0.99, "validation 0.99 of 12 training examples leaves 0 to train on and 12 to validate"),
        ("holdout", "fit.validation 'holdout' is not understood"),
    ],
)
def test_validation_choices_that_cannot_work(idx_set, validation, message):
    with pytest.raises(DataError, match=message) as error:
        load(idx_set, validation=validation)
    assert error.value.problems[0].location.path == "fit.validation"


def test_validation_test_without_a_test_split(idx_set):
    spec = {key: value for key, value in idx_set["spec"].items() if not key.startswith("test")}
    with pytest.raises(DataError, match=r"fit\.validation is 'test' but the data has no test split"):
        load_dataset(spec, SHAPE, base_dir=idx_set["base_dir"])


def test_classes_are_inferred_from_the_largest_label_of_any_split(idx_set):
    assert load(idx_set).num_classes == 3
    write_idx(idx_set["root"] / "test_labels.idx.gz", np.array([0, 1, 2, 4, 0, 1], np.uint8))
    dataset = load(idx_set)
    assert dataset.num_classes == 5 and dataset.class_names == ("0", "1", "2", "3", "4")


def test_labels_outside_the_declared_classes(idx_set):
    write_idx(idx_set["root"] / "test_labels.idx.gz", np.array([0, 1, 2, 7, 0, 9], np.uint8))
    with pytest.raises(DataError) as error:
        load(idx_set, num_classes=3)
    problem = error.value.problems[0]
    assert problem.location.file == str(idx_set["root"] / "test_labels.idx.gz")
    assert problem.message == "test label 7 at index 3 is outside [0, 3) (2 such labels); set data.num_classes to 8"


def test_negative_labels(idx_set):
    write_idx(idx_set["root"] / "train_labels.idx.gz", np.array([0, 1, 2, -1] * 3, np.int8))
    with pytest.raises(
        DataError,
        match=r"train label -1 at index 3 is outside \[0, 3\) \(3 such labels\); labels "
        r"are class indices",
    ):
        load(idx_set)


def test_single_class_data_is_refused(idx_set):
    for split, count in (("train", 12), ("test", 6)):
        write_idx(idx_set["root"] / f"{split}_labels.idx.gz", np.zeros(count, np.uint8))
    with pytest.raises(DataError, match="every label is 0: a classifier needs at least two classes"):
        load(idx_set)


def test_images_that_cannot_fit_the_input_shape(idx_set):
    with pytest.raises(DataError) as error:
        load(idx_set, shape=(28, 28, 1))
    problem = error.value.problems[0]
    assert problem.location.file == str(idx_set["root"] / "train_images.idx.gz")
    assert problem.message == (
        "train images are 4x5 (20 values each) and cannot be reshaped to model.input_shape "
        "[28, 28, 1] (784 values); use an input_shape with 20 values, e.g. [4, 5, 1]"
    )


def test_images_keep_their_stored_shape_for_a_flat_input(idx_set):
    dataset = load(idx_set, shape=(20,))
    assert dataset.train.images.shape == (12, 4, 5)
    assert dataset.preprocessing.images(dataset.train.images[:2]).shape == (2, 20)


def test_class_names_from_the_spec(idx_set):
    assert load(idx_set, class_names=["a", "b", "c"]).class_names == ("a", "b", "c")
    with pytest.raises(DataError, match="2 class_names for 3 classes"):
        load(idx_set, num_classes=3, class_names=["a", "b"])


def test_source_hash_follows_the_contents_not_the_location(idx_set, tmp_path):
    first = load(idx_set).source_hash
    moved = tmp_path / "elsewhere"
    shutil.copytree(idx_set["root"], moved / "idx")
    assert load_dataset(idx_set["spec"], SHAPE, base_dir=moved).source_hash == first
    write_idx(idx_set["root"] / "test_images.idx.gz", tiny_images(6, seed=99))
    assert load(idx_set).source_hash != first


def test_unknown_source(idx_set):
    with pytest.raises(DataError, match="unknown data source 'hdf5'"):
        load(idx_set, source="hdf5")
