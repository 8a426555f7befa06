"""Batches: seeded, resumable order; every example once per epoch; converted one batch at a time."""

from __future__ import annotations

import numpy as np
import pytest

from specforge.data import batch_count, iterate_batches, load_dataset
from specforge.data.splits import Split


@pytest.fixture
def dataset(idx_set):
    return load_dataset(idx_set["spec"], (4, 5, 1), base_dir=idx_set["base_dir"])


def test_in_order_batches_with_a_smaller_last_one(dataset):
    batches = list(iterate_batches(dataset.train, 5, shuffle=False))
    assert [len(x) for x, _ in batches] == [5, 5, 2] and batch_count(dataset.train, 5) == 3
    x = np.concatenate([x for x, _ in batches])
    np.testing.assert_array_equal(x[..., 0], dataset.train.images.astype(np.float32))
    y = np.concatenate([y for _, y in batches])
    np.testing.assert_array_equal(y.argmax(axis=1), dataset.train.labels)


def test_shuffled_order_is_the_seeded_permutation(dataset):
    order = np.random.default_rng(42).permutation(12)
    batches = list(iterate_batches(dataset.train, 4, shuffle=True, rng=np.random.default_rng(42)))
    x = np.concatenate([x for x, _ in batches])[..., 0]
    np.testing.assert_array_equal(x, dataset.train.images[order])
    np.testing.assert_array_equal(np.concatenate([y for _, y in batches]).argmax(1), dataset.train.labels[order])


def test_each_epoch_draws_one_permutation_so_a_saved_state_resumes_exactly(dataset):
    def epoch(rng):
        return np.concatenate([x for x, _ in iterate_batches(dataset.train, 5, shuffle=True, rng=rng)])

    rng = np.random.default_rng(7)
    first = epoch(rng)
    state = rng.bit_generator.state
    second = epoch(rng)
    resumed = np.random.default_rng()
    resumed.bit_generator.state = state
    np.testing.assert_array_equal(epoch(resumed), second)
    assert not np.array_equal(first, second)
    reference = np.random.default_rng(7)
    reference.permutation(12)
    assert reference.bit_generator.state == state


def test_unlabelled_split_yields_no_labels(dataset):
    unlabelled = Split("predict", dataset.test.images, None)
    ((x, y),) = iterate_batches(unlabelled, 10, shuffle=False, preprocessing=dataset.preprocessing)
    assert y is None and x.shape == (6, 4, 5, 1)


def test_needs_preprocessing_and_rng(dataset):
    with pytest.raises(ValueError, match="needs a Preprocessing"):
        iterate_batches(Split("x", dataset.test.images, None), 2, shuffle=False)
    with pytest.raises(ValueError, match="shuffle=True needs rng"):
        iterate_batches(dataset.train, 2, shuffle=True)
