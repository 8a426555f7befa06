"""The embedded MNIST set: contents, checksums, no needless copies, decoded once per process."""

from __future__ import annotations

import gzip
import shutil
import struct

import numpy as np
import pytest

from specforge.base.errors import DataError
from specforge.data import declared_num_classes, load_dataset
from specforge.data.mnist import FILES, MNIST_DIR, read_mnist

SEED_SHAPE = (28, 28, 1)
# Published class counts of the MNIST training and test sets.
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture(scope="module")
def mnist():
    return load_dataset({"source": "mnist"}, SEED_SHAPE, base_dir=MNIST_DIR)


def test_sizes_labels_and_class_counts(mnist):
    assert mnist.train.images.shape == (60000, 28, 28) and mnist.test.images.shape == (10000, 28, 28)
    assert mnist.train.images.dtype == np.uint8
    assert mnist.test.labels[:4].tolist() == [7, 2, 1, 0]
    assert mnist.train.labels[:5].tolist() == [5, 0, 4, 1, 9]
    assert np.bincount(mnist.train.labels).tolist() == TRAIN_COUNTS
    assert np.bincount(mnist.test.labels).tolist() == TEST_COUNTS
    assert mnist.num_classes == 10 and mnist.class_names == tuple("0123456789")


def test_first_test_image_matches_a_byte_level_decode(mnist):
    raw = gzip.decompress((MNIST_DIR / FILES["test_images"]).read_bytes())
    magic, count, rows, cols = struct.unpack(">IIII", raw[:16])
    assert (magic, count, rows, cols) == (0x803, 10000, 28, 28)
    first = np.array(list(raw[16 : 16 + 784]), dtype=np.uint8).reshape(28, 28)
    np.testing.assert_array_equal(mnist.test.images[0], first)


def test_seed_validation_is_the_test_split(mnist):
    assert mnist.validation is mnist.test


def test_images_are_shared_read_only_arrays_not_copies(mnist):
    arrays, _ = read_mnist(MNIST_DIR)
    again = load_dataset({"source": "mnist"}, SEED_SHAPE, base_dir=MNIST_DIR)
    assert np.shares_memory(mnist.train.images, arrays["train_images"])
    assert np.shares_memory(again.train.images, mnist.train.images)
    assert not mnist.train.images.flags.writeable


def test_declared_classes_without_reading():
    assert declared_num_classes({}) == 10
    assert declared_num_classes({"source": "mnist", "num_classes": 12}) == 12
    assert declared_num_classes({"source": "csv", "train": "x.csv"}) is None
    assert declared_num_classes({"source": "csv", "train": "x.csv", "class_names": ["a", "b", "c"]}) == 3


@pytest.fixture
def mnist_copy(tmp_path):
    directory = tmp_path / "mnist"
    shutil.copytree(MNIST_DIR, directory)
    return directory


def test_checksum_mismatch_names_the_damaged_file(mnist_copy):
    damaged = mnist_copy / FILES["test_labels"]
    damaged.write_bytes(damaged.read_bytes() + b"\0")
    with pytest.raises(DataError) as error:
        read_mnist(mnist_copy)
    problem = error.value.problems[0]
    assert problem.location.file == str(damaged)
    assert problem.message.startswith("checksum mismatch: sha256 is ")
    assert problem.message.endswith("the installed data is damaged; reinstall specforge")


def test_checksum_list_without_a_file(mnist_copy):
    sums = mnist_copy / "SHA256SUMS"
    sums.write_text("".join(line + "\n" for line in sums.read_text().splitlines() if "t10k-images" not in line))
    with pytest.raises(DataError, match=r"SHA256SUMS has no line for t10k-images-idx3-ubyte\.gz"):
        read_mnist(mnist_copy)
