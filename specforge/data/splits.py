"""A split (images with their labels) and what a source hands back: splits, digests, classes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from specforge.base.errors import DataError

if TYPE_CHECKING:
    from specforge.data.preprocessing import Preprocessing
    from specforge.data.table.features import TablePipeline
    from specforge.data.table.read import Table
    from specforge.data.text.vectorize import TextVectorizer

SPLIT_NAMES = ("train", "test", "validation")


@dataclass
class Probe:
    """What a split's files say without reading them whole (``specforge validate``): where its examples are,
    their shape when a header tells it, and its labels when they are small enough to read."""

    file: str
    image_shape: tuple[int, ...] | None = None
    labels: np.ndarray | None = None
    labels_file: str | None = None
    #: class folders (image_folder): name -> number of image files
    classes: dict[str, int] | None = None


@dataclass
class DataShape:
    """What a source's data fixes about the model when only reading the data tells it (a table's encoded width
    and its target's classes): the input shape, the classes (None for a regression), and in words why."""

    input_shape: tuple[int, ...]
    num_classes: int | None
    #: how the data gives ``input_shape``, for messages ("the features encode to 31 values per row (...)")
    origin: str
    #: a text source's vocabulary size, special entries included (an Embedding's smallest input_dim)
    vocabulary_size: int | None = None
    #: a table's encoded width of each feature column (what ``data.inputs`` groups feed each model input)
    column_widths: dict[str, int] | None = None

    def input_problem(self, given: tuple[int, ...] | list[int]) -> str | None:
        """What is wrong with a model.input_shape of ``given`` for this data, or None when it fits."""
        if tuple(given) == self.input_shape:
            return None
        return (
            f"{self.origin} but model.input_shape is {list(given)}; use input_shape: {list(self.input_shape)} "
            "or leave it out (it is inferred)"
        )


@dataclass
class Split:
    """Images as stored (uint8 or the file's dtype), shape ``(N, H, W[, C])``, and int64 labels ``(N,)``.

    ``images_file``/``labels_file`` say where the arrays came from, for error messages.
    ``preprocessing`` is set by ``load_dataset`` so that a split knows how to become batches.
    A table's split holds its encoded features as images, ``(N, features)`` float32, its targets as
    labels (int64 classes, or float32 ``(N, outputs)`` for regression) and its raw rows as ``table``.
    """

    name: str
    images: np.ndarray
    labels: np.ndarray | None
    images_file: str = ""
    labels_file: str = ""
    preprocessing: Preprocessing | None = field(default=None, repr=False)
    table: Table | None = field(default=None, repr=False)
    #: a text split's documents as read, one per example
    texts: list[str] | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.images)

    def part(self, name: str, start: int | None, stop: int | None) -> Split:
        """Examples ``start:stop`` as a new split; the arrays are views, not copies."""
        labels = None if self.labels is None else self.labels[start:stop]
        table = None if self.table is None else self.table.take(np.arange(len(self))[start:stop])
        texts = None if self.texts is None else self.texts[start:stop]
        return Split(
            name, self.images[start:stop], labels, self.images_file, self.labels_file, self.preprocessing, table, texts
        )


@dataclass
class Loaded:
    """What a source returns: its splits (``train`` always), a SHA-256 per data file, known classes, and a
    table source's fitted pipeline, or a text source's fitted vectorizer."""

    splits: dict[str, Split]
    digests: dict[str, str]
    class_names: list[str] | None = None
    pipeline: TablePipeline | None = None
    text: TextVectorizer | None = None


def labels_as_int64(labels: np.ndarray, file: str) -> np.ndarray:
    """Labels as int64 class indices; refuses anything that is not one integer per example."""
    labels = np.asarray(labels)
    if labels.ndim != 1:
        hint = " (one-hot rows? store np.argmax(y, axis=1))" if labels.ndim == 2 else ""
        raise DataError(
            f"labels have shape {labels.shape}; expected one integer class index per example, shape (N,){hint}",
            file=file,
        )
    if labels.dtype.kind in "iub":
        return labels.astype(np.int64)
    if labels.dtype.kind == "f":
        whole = np.isfinite(labels) & (labels == np.round(labels))
        if whole.all():
            return labels.astype(np.int64)
        index = int(np.flatnonzero(~whole)[0])
        raise DataError(
            f"label {labels[index].item()!r} at index {index} is not an integer; labels must be class "
            "indices 0, 1, ...",
            file=file,
        )
    raise DataError(f"labels have dtype {labels.dtype}; expected integer class indices 0, 1, ...", file=file)


def make_split(
    name: str, images: np.ndarray, labels: np.ndarray, images_file: str, labels_file: str | None = None
) -> Split:
    """A checked split: images with at least two axes, as many labels as images, labels as int64."""
    labels_file = labels_file or images_file
    if images.ndim < 2:
        raise DataError(
            f"{name} images have shape {images.shape}; expected (N, H, W[, C]) or (N, features) "
            "(is this a labels file?)",
            file=images_file,
        )
    if not (images.dtype.kind in "iuf" or images.dtype == np.bool_):
        raise DataError(
            f"{name} images have dtype {images.dtype}; expected numbers (uint8 pixels or floats)", file=images_file
        )
    labels = labels_as_int64(labels, labels_file)
    if len(images) != len(labels):
        where = "" if labels_file == images_file else f" but {labels_file} has"
        raise DataError(
            f"{name} has {len(images)} images{where or ' but'} {len(labels)} labels; "
            "every image needs exactly one label",
            file=images_file,
        )
    return Split(name, images, labels, images_file, labels_file)
