"""Mini-batches: drawn in a seeded order, converted to the model input's dtype one batch at a time."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from specforge.data.preprocessing import Preprocessing
from specforge.data.splits import Split


def batch_count(split: Split, batch_size: int) -> int:
    """Batches per epoch, the last one possibly smaller (as Keras)."""
    return -(-len(split) // batch_size)


def iterate_batches(
    split: Split,
    batch_size: int,
    *,
    shuffle: bool,
    rng: np.random.Generator | None = None,
    preprocessing: Preprocessing | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
    """One epoch of ``(x (B, *input_shape), y)`` batches, x in the preprocessing's ``input_dtype``; y is None for
    an unlabelled split.

    With ``shuffle`` the order is ``rng.permutation(len(split))``, drawn once when this is
    called and nothing else is drawn from ``rng``: an epoch's order depends only
    on the generator's state at its start, so saving that state resumes training exactly.
    Only the batch is gathered and converted; the stored images are never copied whole.
    ``preprocessing`` defaults to the split's own (set by ``load_dataset``).
    """
    steps = preprocessing or split.preprocessing
    if steps is None:
        raise ValueError("iterate_batches needs a Preprocessing: the split has none; pass preprocessing=")
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    order = None
    if shuffle:
        if rng is None:
            raise ValueError("shuffle=True needs rng, a numpy Generator seeded from the spec")
        order = rng.permutation(len(split))
    return _batches(split, batch_size, steps, order)


def _batches(
    split: Split, batch_size: int, steps: Preprocessing, order: np.ndarray | None
) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
    for start in range(0, len(split), batch_size):
        index = slice(start, start + batch_size) if order is None else order[start : start + batch_size]
        labels = None if split.labels is None else steps.labels(split.labels[index])
        yield steps.images(split.images[index]), labels
