"""Loading the data a spec declares, checked against the model's input shape and classes."""

from __future__ import annotations

from dataclasses import dataclass, field
from math import prod
from pathlib import Path

import numpy as np

from specforge.base.errors import DataError
from specforge.data.files import sha256_bytes
from specforge.data.mnist import NUM_CLASSES as MNIST_CLASSES
from specforge.data.preprocessing import Preprocessing
from specforge.data.sources import create as create_source
from specforge.data.splits import Loaded, Split
from specforge.data.text.source import vectorized_with

Validation = str | float


@dataclass
class Dataset:
    """The splits a run uses, and the preprocessing that turns them into model inputs."""

    train: Split
    validation: Split | None
    test: Split | None
    preprocessing: Preprocessing
    #: SHA-256 over the data files' own SHA-256s, by role: changes when any data file changes.
    source_hash: str
    digests: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.preprocessing.class_names

    @property
    def num_classes(self) -> int:
        return self.preprocessing.num_classes

    def splits(self) -> dict[str, Split]:
        """The splits that are present, by name (validation may be the test split itself)."""
        named = {"train": self.train, "validation": self.validation, "test": self.test}
        return {name: split for name, split in named.items() if split is not None}


def declared_num_classes(data_spec: dict) -> int | None:
    """The number of classes the spec states or implies without reading data; None when only the data knows."""
    if "num_classes" in data_spec:
        return int(data_spec["num_classes"])
    if "class_names" in data_spec:
        return len(data_spec["class_names"])
    if data_spec.get("source", "mnist") == "mnist":
        return MNIST_CLASSES
    return None


def source_hash(digests: dict[str, str]) -> str:
    """SHA-256 of ``role sha256`` lines in role order: independent of where the files are stored."""
    text = "".join(f"{role} {digest}\n" for role, digest in sorted(digests.items()))
    return sha256_bytes(text.encode())


def shape_setting(data_spec: dict) -> str:
    """The spec setting that decides the shape examples are given to the model in."""
    return (
        "data.preprocessing.reshape" if (data_spec.get("preprocessing") or {}).get("reshape") else "model.input_shape"
    )


def check_fits(
    name: str, image_shape: tuple[int, ...], input_shape: tuple[int, ...], file: str | None, setting: str
) -> None:
    """Refuse stored examples of ``image_shape`` that cannot be reshaped to ``input_shape``."""
    if prod(image_shape) != prod(input_shape):
        shape = "x".join(map(str, image_shape))
        example = list(image_shape) + ([1] if len(image_shape) == 2 else [])
        raise DataError(
            f"{name} images are {shape} ({prod(image_shape)} values each) and cannot be reshaped "
            f"to model.input_shape {list(input_shape)} ({prod(input_shape)} values); use an input_shape "
            f"with {prod(image_shape)} values, e.g. {example}",
            file=file,
            setting=setting,
        )


def _fit_images(split: Split, input_shape: tuple[int, ...], setting: str) -> Split:
    """``split`` with flat rows reshaped to ``input_shape`` (a view); refuses images that cannot fit."""
    image_shape = split.images.shape[1:]
    check_fits(split.name, image_shape, input_shape, split.images_file, setting)
    if len(image_shape) == 1 and len(input_shape) > 1:
        split.images = split.images.reshape((len(split), *input_shape))
    return split


def _num_classes(data_spec: dict, loaded: Loaded) -> int:
    declared = declared_num_classes(data_spec)
    if declared is not None:
        return declared
    if loaded.class_names is not None:
        return len(loaded.class_names)
    largest = max(
        int(split.labels.max()) for split in loaded.splits.values() if len(split) and split.labels is not None
    )
    if largest < 1:
        raise DataError(
            "every label is 0: a classifier needs at least two classes; check the label column or set data.num_classes",
            file=loaded.splits["train"].labels_file,
        )
    return largest + 1


def check_labels(name: str, labels: np.ndarray | None, num_classes: int, file: str | None, setting: str) -> None:
    """Refuse class labels outside ``[0, num_classes)``; ``setting`` is the spec setting that gave the count.
    A split without labels has none to refuse."""
    if labels is None:
        return
    bad = np.flatnonzero((labels < 0) | (labels >= num_classes))
    if bad.size:
        index = int(bad[0])
        value = int(labels[index])
        more = (
            f"give the last layer {value + 1} units"
            if setting == "model.layers"
            else f"set data.num_classes to {value + 1}"
        )
        fix = more if value >= num_classes else "labels are class indices 0, 1, ..."
        raise DataError(
            f"{name} label {value} at index {index} is outside [0, {num_classes}) ({bad.size} such labels); {fix}",
            file=file,
            setting=setting,
        )


def missing_split(validation: str) -> DataError:
    """The error for a fit.validation naming a split the data does not have."""
    return DataError(
        f"fit.validation is {validation!r} but the data has no {validation} split; give its files in "
        "data, or use a fraction such as 0.1, or 'none'",
        path="fit.validation",
    )


def _select_validation(splits: dict[str, Split], validation: Validation) -> tuple[Split, Split | None]:
    """``(train, validation)`` for fit.validation: 'test', 'validation', 'none' or a fraction held out."""
    train = splits["train"]
    if isinstance(validation, (int, float)) and not isinstance(validation, bool):
        if not 0 < validation < 1:
            raise DataError(
                f"validation fraction {validation} is not between 0 and 1; use e.g. 0.1", path="fit.validation"
            )
        split_at = int(len(train) * (1.0 - validation))
        if split_at == 0 or split_at == len(train):
            raise DataError(
                f"validation {validation} of {len(train)} training examples leaves "
                f"{split_at} to train on and {len(train) - split_at} to validate; use a fraction that "
                "leaves both some examples",
                path="fit.validation",
            )
        return train.part("train", None, split_at), train.part("validation", split_at, None)
    if validation == "none":
        return train, None
    if validation in ("test", "validation"):
        if validation not in splits:
            raise missing_split(validation)
        return train, splits[validation]
    raise DataError(
        f"fit.validation {validation!r} is not understood; use 'test', 'validation', 'none' or a fraction such as 0.1",
        path="fit.validation",
    )


def load_dataset(
    data_spec: dict,
    input_shape: tuple[int, ...],
    *,
    validation: Validation = "test",
    base_dir: Path,
    input_dtype: str = "float32",
    fitted: Preprocessing | None = None,
) -> Dataset:
    """Read, check and split the data a spec's ``data`` section declares, for a model input of ``input_shape``
    and ``input_dtype`` (``Graph.input_dtype``). A run's ``fitted`` preprocessing, when given, vectorizes text
    with the vocabulary the run learned rather than one learned again.

    Images keep their stored dtype (uint8 for every image format) and shape (flat CSV
    rows become ``input_shape``); they are converted batch by batch by ``preprocessing``.
    """
    input_shape = tuple(int(d) for d in input_shape)
    source = data_spec.get("source", "mnist")
    loaded = create_source(source).load(data_spec, Path(base_dir), input_shape)
    if fitted is not None and fitted.vectorizer is not None:
        loaded = vectorized_with(loaded, fitted.vectorizer)
    setting = shape_setting(data_spec)
    splits = {name: _fit_images(split, input_shape, setting) for name, split in loaded.splits.items()}
    if loaded.pipeline is not None and data_spec.get("inputs"):
        # a table feeding several inputs: its batches keep the encoded dtype (float64 where token ids sit beside
        # values), and the feed (``specforge.data.feed``) gives each input its own
        input_dtype = str(splits["train"].images.dtype)
    if loaded.pipeline is not None and loaded.pipeline.target.regression:
        names = loaded.pipeline.target.names
        preprocessing = Preprocessing(
            input_shape,
            len(names),
            tuple(names),
            labels_encoding="values",
            table=loaded.pipeline.to_dict(),
            input_dtype=input_dtype,
        )
    else:
        num_classes = _num_classes(data_spec, loaded)
        counted_by = "data.num_classes" if declared_num_classes(data_spec) is not None else "data"
        for split in splits.values():
            check_labels(split.name, split.labels, num_classes, split.labels_file, counted_by)
        class_names = data_spec.get("class_names") or loaded.class_names or [str(i) for i in range(num_classes)]
        preprocessing = Preprocessing.from_spec(
            data_spec, input_shape, num_classes, class_names, loaded.pipeline, input_dtype, loaded.text
        )
    for split in splits.values():
        split.preprocessing = preprocessing
    if loaded.pipeline is not None and isinstance(validation, float):
        raise DataError(
            f"fit.validation {validation} would hold out rows the table's statistics were already "
            "learned on; draw them before with data.validation_fraction and set fit.validation: "
            "validation",
            path="fit.validation",
        )
    if loaded.text is not None and isinstance(validation, float):
        raise DataError(
            f"fit.validation {validation} would hold out documents the vocabulary was already learned "
            "on; put them in a folder of their own, data.validation, and set fit.validation: validation",
            path="fit.validation",
        )
    train, held_out = _select_validation(splits, validation)
    return Dataset(
        train, held_out, splits.get("test"), preprocessing, source_hash(loaded.digests), dict(loaded.digests)
    )
