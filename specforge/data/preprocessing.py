"""The exact steps that turn stored images and labels into the arrays a model sees.

A ``Preprocessing`` is built from the spec once, saved with the run (``to_dict``) and
read back (``from_dict``) by evaluate, predict and export, so that every stage applies
the same steps: reshape to ``input_shape``, multiply by ``rescale``, subtract ``mean``
and divide by ``std`` (scalars or one value per channel, the last axis), giving float32; or, for a
model whose input is integer ids (``input_dtype`` int64) or a table feeding several inputs, reshape only.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from math import prod

import numpy as np

from specforge.base.errors import DataError
from specforge.data.rescale import rescale_factor
from specforge.data.table.features import TablePipeline
from specforge.data.text.vectorize import TextVectorizer


def _values(value: float | list[float] | tuple[float, ...] | None) -> tuple[float, ...] | None:
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return tuple(float(v) for v in value)
    return (float(value),)


@dataclass(frozen=True)
class Preprocessing:
    """Reshape, rescale, normalise; labels one-hot (float32), sparse (int64) or values (float32).

    ``table`` is a table source's fitted pipeline (``TablePipeline.to_dict()``): the steps from raw
    rows to the model's inputs, which a table split has already applied to its features.
    ``input_dtype`` is the model input's numpy dtype (``Graph.input_dtype``).
    """

    input_shape: tuple[int, ...]
    num_classes: int
    class_names: tuple[str, ...]
    rescale: float = 1.0
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    labels_encoding: str = "one_hot"
    table: dict | None = None
    input_dtype: str = "float32"
    #: a text source's fitted vectorizer (``TextVectorizer.to_dict()``: options, vocabulary, idf weights)
    text: dict | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_shape", tuple(int(d) for d in self.input_shape))
        object.__setattr__(self, "class_names", tuple(self.class_names))
        object.__setattr__(self, "mean", _values(self.mean))
        object.__setattr__(self, "std", _values(self.std))
        if (self.mean is None) != (self.std is None):
            raise DataError("normalize needs both mean and std", path="data.preprocessing.normalize")
        width = self.input_shape[-1]
        for name, values in (("mean", self.mean), ("std", self.std)):
            if values is not None and len(values) not in (1, width):
                raise DataError(
                    f"normalize.{name} has {len(values)} values; give one number or one per channel "
                    f"({width}, the last axis of input_shape {list(self.input_shape)})",
                    path=f"data.preprocessing.normalize.{name}",
                )
        if self.std is not None and min(self.std) <= 0:
            raise DataError(
                f"normalize.std {list(self.std)} has a value <= 0; standard deviations are positive",
                path="data.preprocessing.normalize.std",
            )
        if self.takes_ids and (self.rescale != 1 or self.mean is not None):
            raise DataError(
                f"the model's input is {self.input_dtype} ids, which are not rescaled or normalized; "
                "leave data.preprocessing.rescale and normalize out",
                path="data.preprocessing",
            )
        if len(self.class_names) != self.num_classes:
            raise DataError(
                f"{len(self.class_names)} class_names for {self.num_classes} classes; give one name per class",
                path="data.class_names",
            )

    @classmethod
    def from_spec(
        cls,
        data_spec: dict,
        input_shape: tuple[int, ...],
        num_classes: int,
        class_names: list[str],
        pipeline: TablePipeline | None = None,
        input_dtype: str = "float32",
        text: TextVectorizer | None = None,
    ) -> Preprocessing:
        """The steps the spec's ``data.preprocessing`` asks for (defaults filled in), to a model input of
        ``input_dtype``."""
        spec = data_spec.get("preprocessing") or {}
        reshape = spec.get("reshape")
        if reshape is not None and tuple(reshape) != tuple(input_shape):
            raise DataError(
                f"reshape {list(reshape)} differs from model.input_shape {list(input_shape)}; "
                "leave reshape out (it defaults to the input shape) or make them equal",
                path="data.preprocessing.reshape",
            )
        normalize = spec.get("normalize") or {}
        return cls(
            tuple(input_shape),
            num_classes,
            tuple(class_names),
            rescale_factor(spec.get("rescale", 1.0)),
            normalize.get("mean"),
            normalize.get("std"),
            spec.get("labels", "one_hot"),
            None if pipeline is None else pipeline.to_dict(),
            input_dtype,
            None if text is None else text.to_dict(),
        )

    # -- persistence -----------------------------------------------------------------
    def to_dict(self) -> dict:
        """JSON-friendly form, stored in the run directory (``input_dtype`` only when it is not float32)."""
        saved = {
            "input_shape": list(self.input_shape),
            "num_classes": self.num_classes,
            "class_names": list(self.class_names),
            "rescale": self.rescale,
            "mean": None if self.mean is None else list(self.mean),
            "std": None if self.std is None else list(self.std),
            "labels": self.labels_encoding,
            "table": self.table,
        }
        if self.text is not None:
            saved["text"] = self.text
        return saved if self.input_dtype == "float32" else {**saved, "input_dtype": self.input_dtype}

    @classmethod
    def from_dict(cls, data: dict) -> Preprocessing:
        return cls(
            tuple(data["input_shape"]),
            int(data["num_classes"]),
            tuple(data["class_names"]),
            float(data["rescale"]),
            data.get("mean"),
            data.get("std"),
            data["labels"],
            data.get("table"),
            data.get("input_dtype", "float32"),
            data.get("text"),
        )

    @cached_property
    def pipeline(self) -> TablePipeline | None:
        """The table source's fitted steps, or None for images and arrays."""
        return None if self.table is None else TablePipeline.from_dict(self.table)

    @cached_property
    def vectorizer(self) -> TextVectorizer | None:
        """A text source's fitted vectorizer, or None."""
        return None if self.text is None else TextVectorizer.from_dict(self.text)

    @property
    def takes_ids(self) -> bool:
        """Whether the model's input is integer ids rather than values."""
        return np.issubdtype(np.dtype(self.input_dtype), np.integer)

    @property
    def as_stored(self) -> bool:
        """Whether a batch keeps its stored values, reshaped only: integer ids, or a table's columns feeding
        several inputs (float64 where ids sit beside values), which the feed gives each input in its dtype."""
        return np.dtype(self.input_dtype) != np.float32

    @property
    def regression(self) -> bool:
        return self.labels_encoding == "values"

    def target_units(self, values: np.ndarray) -> np.ndarray:
        """A regression's outputs or targets in the target's own units (a standardized target turned back)."""
        return values if self.pipeline is None else self.pipeline.target.decode(values)

    # -- the steps ---------------------------------------------------------------------
    @cached_property
    def scale_and_offset(self) -> tuple[np.ndarray, np.ndarray]:
        """``(a, b)``, float32, broadcasting over the last axis: the steps are ``x * a + b``.

        ``a = rescale / std`` and ``b = -mean / std`` (``a = rescale``, ``b = 0`` without
        normalisation): the form an exporter can embed as one Mul and one Add.
        """
        mean = np.asarray(self.mean if self.mean is not None else (0.0,), dtype=np.float64)
        std = np.asarray(self.std if self.std is not None else (1.0,), dtype=np.float64)
        return (self.rescale / std).astype(np.float32), (-mean / std).astype(np.float32)

    def images(self, batch: np.ndarray) -> np.ndarray:
        """The model's input ``(B, *input_shape)`` in ``input_dtype`` from stored examples ``(B, ...)`` (any dtype,
        same element count): float32 values rescaled and normalized, or the ids as they are."""
        batch = np.asarray(batch)
        per_example = prod(batch.shape[1:])
        if per_example != prod(self.input_shape):
            raise DataError(
                f"images of shape {list(batch.shape[1:])} ({per_example} values) cannot be reshaped "
                f"to input_shape {list(self.input_shape)} ({prod(self.input_shape)} values)"
            )
        if self.as_stored:
            return batch.reshape((len(batch), *self.input_shape)).astype(self.input_dtype)
        scale, offset = self.scale_and_offset
        out = np.multiply(batch.reshape((len(batch), *self.input_shape)), scale, dtype=np.float32)
        if self.mean is not None:
            out += offset
        return out

    def labels(self, batch: np.ndarray) -> np.ndarray:
        """One-hot float32 ``(B, num_classes)`` (Keras' to_categorical), int64 ``(B,)`` or float32 values."""
        if self.regression:
            return np.asarray(batch, dtype=np.float32)
        batch = np.asarray(batch, dtype=np.int64)
        if self.labels_encoding == "sparse":
            return batch
        return self._identity[batch]

    @cached_property
    def _identity(self) -> np.ndarray:
        return np.eye(self.num_classes, dtype=np.float32)
