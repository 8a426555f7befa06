"""The steps that turn a table's raw columns into model inputs and targets, learned on the training split.

``TablePipeline.fit(features, target, train)`` learns every statistic (fill values, means,
deviations, ranges, vocabularies, classes) from the training table only; ``to_dict`` records
them in the run and ``from_dict`` reads them back for evaluation, prediction and export, which
build the same steps into the ONNX graph.  Encodings, in feature order:

- numeric: missing -> fill; ``log`` is ln(1 + x); ``standardize`` (x - mean) / std; ``minmax``
  (x - min) / (max - min); one column.
- binary: the two values seen in training, sorted; the second is 1, anything else 0 (an unseen value too:
  ``data info`` and ``predict`` say where rows hold one); one column.
- categorical: one column per training value (sorted) and a last out-of-vocabulary column; a value
  not seen in training is all zeros, as scikit-learn's ``OneHotEncoder(handle_unknown='ignore')``
  gives, so it adds nothing to the network's input.  The out-of-vocabulary column is therefore
  always 0: it keeps the input width of the models trained when unseen values were put there,
  where its weights, never trained, moved the prediction by their random initial values.
- text: each cell a document, vectorized as Keras' ``TextVectorization`` does
  (``specforge.data.text.vectorize``, the column's ``vectorize`` options) with the vocabulary learned
  on the training split: ``output_sequence_length`` token ids (int64, for an Embedding; then the
  column is the model's whole input, or one model input of its own, ``data.inputs``) or one value per
  vocabulary entry.  A missing cell is an empty
  document.
- image: each cell the path of a PNG or JPEG file relative to the table file, decoded to the column's
  ``shape`` (``specforge.data.table.images``), its raw 0-255 pixels times ``rescale``; the row's values, flat.
  The column feeds a model input of its own (``data.inputs``), which takes them as ``[height, width,
  channels]`` (``specforge.data.feed``).

A cell that is one of ``MISSING`` (``specforge.data.table.read``) is missing here, in the reader,
and inside the exported graph alike.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from math import prod
from typing import TypeVar

import numpy as np

from specforge.base.errors import DataError
from specforge.data.rescale import rescale_factor
from specforge.data.table.images import column_pixels
from specforge.data.table.read import Table, as_text
from specforge.data.text.vectorize import TextVectorizer

FEATURE_TYPES = ("numeric", "categorical", "binary", "text", "image")
TARGET_TYPES = ("categorical", "binary", "numeric")
FILLS = ("mean", "median", "constant", "most_frequent")
#: The fills that need numbers (graph.checks refuses them for a categorical or binary column).
NUMERIC_FILLS = ("mean", "median")
SCALINGS = ("standardize", "minmax", "log", "none")
#: The code of a category not seen in training: it matches no one-hot column.
UNSEEN = -1
#: How many row numbers an error lists.
SHOWN_ROWS = 10
#: The fields of a feature record only an image column has.
IMAGE_FIELDS = ("shape", "rescale")

_Value = TypeVar("_Value", float, str)


def _rows(table: Table, mask: np.ndarray) -> str:
    rows = table.rows[mask]
    shown = ", ".join(map(str, rows[:SHOWN_ROWS]))
    return f"{table.row_word}s {shown}" + (f" and {len(rows) - SHOWN_ROWS} more" if len(rows) > SHOWN_ROWS else "")


def _most_frequent(values: list[_Value]) -> _Value:
    """The most common value; ties go to the smallest, so the result does not depend on row order."""
    counts = Counter(values)
    top = max(counts.values())
    return min(value for value, count in counts.items() if count == top)


@dataclass
class Feature:
    """One feature column and what was learned about it."""

    column: str
    type: str
    fill: float | str
    scale: str = "none"
    #: numeric: the value subtracted and the value divided by, after the optional log
    center: float = 0.0
    spread: float = 1.0
    #: categorical and binary: the training values, sorted
    vocabulary: list[str] = field(default_factory=list)
    #: text: the vectorizer learned on the training split's documents
    vectorizer: TextVectorizer | None = None
    #: image: the pixels' [height, width, channels] and the factor they are multiplied by
    shape: list[int] = field(default_factory=list)
    rescale: float = 1.0

    @property
    def width(self) -> int:
        if self.vectorizer is not None:
            return self.vectorizer.output_shape[0]
        if self.type == "image":
            return prod(self.shape)
        return len(self.vocabulary) + 1 if self.type == "categorical" else 1

    @property
    def names(self) -> list[str]:
        """The name of each encoded column, for ``data info`` and the export's documentation."""
        if self.vectorizer is not None:
            if self.vectorizer.output_mode == "int":
                return [f"{self.column}[{position}]" for position in range(self.width)]
            return [f"{self.column}=<other>"] + [f"{self.column}={token}" for token in self.vectorizer.vocabulary]
        if self.type == "image":
            return [f"{self.column}[{position}]" for position in range(self.width)]
        if self.type != "categorical":
            return [self.column]
        return [f"{self.column}={value}" for value in self.vocabulary] + [f"{self.column}=<other>"]

    @property
    def takes_ids(self) -> bool:
        """Whether the column encodes to token ids (a text column of ``output_mode: int``)."""
        return self.vectorizer is not None and self.vectorizer.output_mode == "int"

    def documents(self, table: Table) -> list[str]:
        """A text column's cells as documents, a missing cell an empty one."""
        return ["" if text is None else text for text in table.texts(self.column)]

    @classmethod
    def fit(cls, config: dict, table: Table, where: str) -> Feature:
        kind, column, fill = config["type"], config["column"], config.get("fill")
        if kind == "text":
            feature = cls(column, kind, "")
            table.column(column, where)
            feature.vectorizer = TextVectorizer.from_options(config.get("vectorize") or {}).fit(
                feature.documents(table), f"{where}.column"
            )
            return feature
        if kind == "image":
            table.column(column, where)
            return cls(column, kind, "", shape=list(config["shape"]), rescale=rescale_factor(config.get("rescale", 1)))
        if kind == "numeric":
            values = table.numbers(column, where)
            present = values[~np.isnan(values)]
            if not present.size:
                raise DataError(f"column {column!r} has no values in the training split", file=table.file, path=where)
            fill = fill or "mean"
            fill_value = {
                "mean": lambda: float(present.mean()),
                "median": lambda: float(np.median(present)),
                "most_frequent": lambda: float(_most_frequent(present.tolist())),
                "constant": lambda: float(config.get("fill_value", 0.0)),
            }[fill]()
            filled = np.where(np.isnan(values), fill_value, values)
            feature = cls(column, kind, fill_value, config["scale"])
            feature._learn_scale(filled, table, where)
            return feature
        texts = table.texts(column, where)
        present = [text for text in texts if text is not None]
        if not present:
            raise DataError(f"column {column!r} has no values in the training split", file=table.file, path=where)
        fill = fill or "most_frequent"
        fill_text = as_text(config.get("fill_value", "")) if fill == "constant" else _most_frequent(present)
        vocabulary = sorted(set(present))
        if kind == "binary" and len(vocabulary) > 2:
            raise DataError(
                f"binary column {column!r} has {len(vocabulary)} values in the training split "
                f"({', '.join(vocabulary[:5])}...); declare it categorical",
                file=table.file,
                path=where,
            )
        return cls(column, kind, fill_text, vocabulary=vocabulary)

    def _learn_scale(self, values: np.ndarray, table: Table, where: str) -> None:
        if self.scale == "log":
            if values.min() <= -1:
                raise DataError(
                    f"log scaling is ln(1 + x) and column {self.column!r} has a value "
                    f"{values.min():g} <= -1; use standardize or minmax",
                    file=table.file,
                    path=where,
                )
        elif self.scale == "standardize":
            self.center, self.spread = float(values.mean()), float(values.std()) or 1.0
        elif self.scale == "minmax":
            self.center, self.spread = float(values.min()), float(values.max() - values.min()) or 1.0

    def encode(self, table: Table) -> np.ndarray:
        """float32 ``(N, width)`` for this feature's column of ``table`` (int64 token ids for a text column of
        ``output_mode: int``)."""
        if self.vectorizer is not None:
            return self.vectorizer.transform(self.documents(table))
        if self.type == "image":
            pixels = column_pixels(table, self.column, tuple(self.shape))
            return np.multiply(pixels.reshape(len(table), -1), np.float32(self.rescale), dtype=np.float32)
        if self.type == "numeric":
            values = table.numbers(self.column)
            values = np.where(np.isnan(values), self.fill, values)
            if self.scale == "log":
                values = np.log1p(values)
            return ((values - self.center) / self.spread).astype(np.float32)[:, None]
        texts = [str(self.fill) if text is None else text for text in table.texts(self.column)]  # fill: a text here
        if self.type == "binary":
            one = self.vocabulary[-1] if len(self.vocabulary) == 2 else None
            return np.array([[text == one] for text in texts], dtype=np.float32)
        index = {value: position for position, value in enumerate(self.vocabulary)}
        codes = np.array([index.get(text, UNSEEN) for text in texts], dtype=np.int64)
        return (codes[:, None] == np.arange(self.width)).astype(np.float32)


@dataclass
class Target:
    """The target column(s): classes learned in training, or numbers (optionally standardized)."""

    columns: list[str]
    type: str
    classes: list[str] = field(default_factory=list)
    mean: list[float] = field(default_factory=list)
    std: list[float] = field(default_factory=list)

    @property
    def regression(self) -> bool:
        return self.type == "numeric"

    @property
    def names(self) -> list[str]:
        """Class names, or the target columns of a regression."""
        return list(self.columns) if self.regression else list(self.classes)

    @classmethod
    def fit(cls, config: dict, table: Table, where: str) -> Target:
        columns = config["column"] if isinstance(config["column"], list) else [config["column"]]
        target = cls(columns, config["type"])
        if target.regression:
            values = target._numbers(table, where)
            if config.get("standardize", False):
                target.mean = values.mean(axis=0).tolist()
                target.std = [float(s) or 1.0 for s in values.std(axis=0)]
            return target
        if len(columns) != 1:
            raise DataError(
                f"a {target.type} target is one column; several columns are for numeric targets "
                "(multi-output regression)",
                path=f"{where}.column",
            )
        target.classes = sorted(set(target._texts(table, where)))
        if len(target.classes) < 2 or (target.type == "binary" and len(target.classes) > 2):
            want = "two" if target.type == "binary" else "at least two"
            raise DataError(
                f"target {columns[0]!r} has {len(target.classes)} classes in the training split "
                f"({', '.join(target.classes[:5])}); a {target.type} target needs {want}",
                file=table.file,
                path=where,
            )
        return target

    def encode(self, table: Table, where: str = "") -> np.ndarray:
        """int64 class indices ``(N,)``, or float32 ``(N, columns)`` numbers (standardized if asked)."""
        if self.regression:
            values = self._numbers(table, where)
            if self.mean:
                values = (values - np.asarray(self.mean)) / np.asarray(self.std)
            return values.astype(np.float32)
        texts = self._texts(table, where)
        index = {name: position for position, name in enumerate(self.classes)}
        unknown = np.array([text not in index for text in texts])
        if unknown.any():
            raise DataError(
                f"target {self.columns[0]!r} has classes the training split does not have "
                f"({', '.join(sorted(set(texts[unknown]))[:5])}) at {_rows(table, unknown)}; "
                "every class needs training examples",
                file=table.file,
                path=where,
            )
        return np.array([index[text] for text in texts], dtype=np.int64)

    def decode(self, values: np.ndarray) -> np.ndarray:
        """Numbers in the target's own units from the model's outputs (the inverse of standardizing)."""
        if not self.mean:
            return values
        return values * np.asarray(self.std, dtype=values.dtype) + np.asarray(self.mean, dtype=values.dtype)

    def _numbers(self, table: Table, where: str) -> np.ndarray:
        values = np.stack([table.numbers(column, where) for column in self.columns], axis=1)
        refuse_missing_target(table, self.columns, np.isnan(values).any(axis=1))
        return values

    def _texts(self, table: Table, where: str) -> np.ndarray:
        texts = table.texts(self.columns[0], where)
        refuse_missing_target(table, self.columns, np.array([text is None for text in texts]))
        return texts


def refuse_missing_target(table: Table, columns: list[str], missing: np.ndarray) -> None:
    """DataError naming the rows of ``table`` that ``missing`` marks, when there are any."""
    if missing.any():
        raise DataError(
            f"target {', '.join(map(repr, columns))} is missing at {_rows(table, missing)}; "
            "every row needs a target value: fill them in, or set data.drop_missing_target: true to "
            "leave those rows out",
            file=table.file,
        )


@dataclass
class TablePipeline:
    """Every feature's steps and the target's, in order; the record a run keeps."""

    features: list[Feature]
    target: Target

    @property
    def width(self) -> int:
        return sum(feature.width for feature in self.features)

    @classmethod
    def fit(cls, features: list[dict], target: dict, train: Table) -> TablePipeline:
        fitted = [Feature.fit(config, train, f"data.features[{index}]") for index, config in enumerate(features)]
        return cls(fitted, Target.fit(target, train, "data.target"))

    @property
    def text_features(self) -> list[Feature]:
        """The features of text columns."""
        return [feature for feature in self.features if feature.vectorizer is not None]

    def encode(self, table: Table) -> np.ndarray:
        """float32 ``(N, width)`` model inputs for the raw rows of ``table``; int64 token ids for a table whose one
        feature is a text column of ``output_mode: int``, float64 where such ids sit beside values (both exact,
        until the feed gives each model input its own dtype, ``specforge.data.feed``)."""
        return np.concatenate([feature.encode(table) for feature in self.features], axis=1)

    def to_dict(self) -> dict:
        """The record a run keeps: a text column's vectorizer and an image column's shape and rescale with their
        feature, no such entries for the others."""
        features = [
            {
                key: value
                for key, value in asdict(feature).items()
                if (key != "vectorizer" or value is not None) and (key not in IMAGE_FIELDS or feature.type == "image")
            }
            for feature in self.features
        ]
        return {"features": features, "target": asdict(self.target)}

    @classmethod
    def from_dict(cls, data: dict) -> TablePipeline:
        features = [
            Feature(**{**feature, "vectorizer": TextVectorizer.from_dict(feature["vectorizer"])})
            if feature.get("vectorizer")
            else Feature(**feature)
            for feature in data["features"]
        ]
        return cls(features, Target(**data["target"]))
