"""How a batch of examples feeds the model's named inputs.

A source's examples are one array per batch.  The model's single input takes it whole; several inputs
(``model.inputs``) each take a group of a table's feature columns (``data.inputs``): the encoded columns of
those features, in the group's order, in the input's own dtype: int64 for a text column of token ids (which
has an input of its own), float32 for the others; an image column, alone in its group, gives its input the
pixels as ``[height, width, channels]``.  Only a table feeds several inputs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from specforge.data.table.features import TablePipeline


@dataclass(frozen=True)
class Feed:
    """The encoded columns each model input takes (None: the only input takes the whole batch), the shape of one
    example of each (None: the columns as they are; an image column's ``[height, width, channels]``) and each
    input's dtype (None: the batch's)."""

    columns: tuple[np.ndarray, ...] | None = None
    shapes: tuple[tuple[int, ...] | None, ...] = ()
    dtypes: tuple[str, ...] | None = None

    def split(self, x: np.ndarray) -> np.ndarray | list[np.ndarray]:
        """A batch as the model takes it: ``x`` itself, or one array per input."""
        if self.columns is None:
            return x
        shapes = self.shapes or (None,) * len(self.columns)
        dtypes = self.dtypes or (None,) * len(self.columns)
        return [
            np.ascontiguousarray(x[:, columns], dtype=dtype).reshape(len(x), *(shape or (len(columns),)))
            for columns, shape, dtype in zip(self.columns, shapes, dtypes, strict=True)
        ]


def examples_shape(config: dict) -> tuple[int, ...]:
    """The shape of one example as the data gives it: the model's one input's, or for a table feeding several
    inputs (vectors of its feature columns, ``model.inputs``) the width of all of them together."""
    model = config["model"]
    if "inputs" not in model:
        return tuple(model["input_shape"])
    shapes = [tuple(item["shape"]) for item in model["inputs"].values()]
    return shapes[0] if len(shapes) == 1 else (sum(math.prod(shape) for shape in shapes),)


def feature_columns(pipeline: TablePipeline) -> dict[str, list[int]]:
    """Each feature column's positions among the encoded columns (a column listed twice has both encodings)."""
    positions: dict[str, list[int]] = {}
    start = 0
    for feature in pipeline.features:
        positions.setdefault(feature.column, []).extend(range(start, start + feature.width))
        start += feature.width
    return positions


def make_feed(data_config: dict, pipeline: TablePipeline | None) -> Feed:
    """The feed ``data.inputs`` describes for a table's fitted ``pipeline`` (the whole batch without it)."""
    groups = data_config.get("inputs")
    if not groups or pipeline is None:
        return Feed()
    positions = feature_columns(pipeline)
    images = {feature.column: tuple(feature.shape) for feature in pipeline.features if feature.type == "image"}
    ids = {feature.column for feature in pipeline.features if feature.takes_ids}
    return Feed(
        tuple(
            np.array([index for column in columns for index in positions[column]], dtype=np.int64)
            for columns in groups.values()
        ),
        tuple(images.get(columns[0]) if len(columns) == 1 else None for columns in groups.values()),
        tuple("int64" if set(columns) <= ids else "float32" for columns in groups.values()),
    )


__all__ = ["Feed", "examples_shape", "feature_columns", "make_feed"]
