"""The ``table`` source: named columns from CSV, JSON lines or Parquet, features and a target, seeded stratified
splits.

The test and validation splits come from their own files or are drawn from the training file
(``test_fraction``, ``validation_fraction``) with ``split_seed``; for a categorical or binary
target the draw keeps each class's share (stratified).  With ``drop_missing_target`` the rows
without a target are left out of every file first.  The pipeline is fitted on what remains for
training, and only there.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from specforge.base.errors import DataError
from specforge.data.files import require_file, resolve, sha256_file
from specforge.data.rescale import RESCALE_VALUES
from specforge.data.splits import DataShape, Loaded, Split
from specforge.data.table.features import (
    FEATURE_TYPES,
    FILLS,
    SCALINGS,
    TARGET_TYPES,
    Feature,
    TablePipeline,
    refuse_missing_target,
)
from specforge.data.table.read import Table, read_table
from specforge.data.text.vectorize import VECTORIZE_SCHEMA

FILE_SPLITS = ("train", "test", "validation")
DRAWN_SPLITS = ("test", "validation")


def _file(split: str) -> dict:
    need = "Required." if split == "train" else f"Optional (or {split}_fraction)."
    return {
        "type": "string",
        "minLength": 1,
        "description": f"CSV (with a header row), JSON lines (.jsonl, .ndjson: an object per line) or Parquet "
        f"(.parquet, .pq; needs specforge[parquet]) file of the {split} split, text in UTF-8. {need} Relative paths "
        "are relative to the spec file's directory.",
    }


FEATURE_SCHEMA = {
    "type": "object",
    "description": "One input column and how it becomes model inputs (learned on the training split).",
    "properties": {
        "column": {"type": "string", "minLength": 1, "description": "The column's name in the header."},
        "type": {
            "enum": list(FEATURE_TYPES),
            "default": "numeric",
            "description": "numeric: one input; binary: two values, one 0/1 input; categorical: one-hot over "
            "the training values plus an out-of-vocabulary input; text: a document per cell, vectorized as "
            "vectorize says (an empty cell is an empty document); image: the path of a PNG or JPEG file, relative to "
            "the table file, whose pixels feed a model input of their own (data.inputs). Default: numeric.",
        },
        "vectorize": {
            **{key: value for key, value in VECTORIZE_SCHEMA.items() if key != "default"},
            "description": "type text only: how the column's documents become model inputs, with Keras' "
            "TextVectorization options and defaults; the vocabulary is learned on the training split and saved "
            "with the run. output_mode int (the default) gives token ids for an Embedding and makes the column "
            "the model's only input, or one model input of its own (data.inputs); the other modes give one value "
            "per vocabulary entry, beside other columns. The export takes the column's raw text and vectorizes it "
            "in the graph.",
        },
        "shape": {
            "type": "array",
            "items": {"type": "integer", "minimum": 1},
            "minItems": 3,
            "maxItems": 3,
            "description": "type image only (required with it): [height, width, channels] the images are converted "
            "to as image folders' are (1 channel: grayscale, 3: RGB, 4: RGBA; resized bilinearly), the shape of the "
            "model input the column feeds.",
        },
        "rescale": {
            **RESCALE_VALUES,
            "description": "type image only: multiply the raw 0-255 pixels by this factor, a number or a fraction "
            "such as 1/255 (for [0, 1]); in the exported graph too, which takes raw pixels. Default: 1.",
        },
        "fill": {
            "enum": list(FILLS),
            "description": "Value for a missing cell: the training split's mean or median (numeric only), its "
            "most frequent value, or fill_value. Default: mean for numeric, most_frequent "
            "otherwise.",
        },
        "fill_value": {"type": ["number", "string"], "description": "The value of fill: constant (required with it)."},
        "scale": {
            "enum": list(SCALINGS),
            "default": "standardize",
            "description": "Numeric scaling, with the training split's statistics: standardize (x - mean) / "
            "std, minmax (x - min) / (max - min), log ln(1 + x), or none. Default: standardize.",
        },
    },
    "required": ["column"],
    "if": {"properties": {"type": {"const": "image"}}, "required": ["type"]},
    "then": {"required": ["shape"]},
    "additionalProperties": False,
    "examples": [
        {"column": "age"},
        {"column": "city", "type": "categorical"},
        {"column": "income", "fill": "median", "scale": "log"},
        {"column": "message", "type": "text", "vectorize": {"max_tokens": 10000, "output_sequence_length": 64}},
        {"column": "photo", "type": "image", "shape": [28, 28, 1], "rescale": "1/255"},
    ],
}

TARGET_SCHEMA = {
    "type": "object",
    "description": "What the model predicts.",
    "properties": {
        "column": {
            "oneOf": [
                {"type": "string", "minLength": 1},
                {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1},
            ],
            "description": "The target column; several numeric columns for multi-output regression.",
        },
        "type": {
            "enum": list(TARGET_TYPES),
            "default": "categorical",
            "description": "categorical (classification; the classes are the training values, sorted), "
            "binary (two classes), or numeric (regression). Default: categorical.",
        },
        "standardize": {
            "type": "boolean",
            "default": False,
            "description": "numeric: train on (y - mean) / std of the training split; predictions and "
            "metrics are turned back into the target's units. Default: false.",
        },
    },
    "required": ["column"],
    "additionalProperties": False,
    "examples": [{"column": "diagnosis"}, {"column": "price", "type": "numeric", "standardize": True}],
}

_FRACTION = {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1}

OPTIONS = {
    **{split: _file(split) for split in FILE_SPLITS},
    "features": {
        "type": "array",
        "items": FEATURE_SCHEMA,
        "minItems": 1,
        "description": "The input columns, in the order the model sees them. Required for source table.",
    },
    "target": TARGET_SCHEMA,
    **{
        f"{split}_fraction": {
            **_FRACTION,
            "description": f"Draw this fraction of the training file's rows as the "
            f"{split} split (stratified for a class target), "
            f"instead of a {split} file.",
        }
        for split in DRAWN_SPLITS
    },
    "split_seed": {
        "type": "integer",
        "minimum": 0,
        "default": 0,
        "description": "Seed of the rows drawn by test_fraction and validation_fraction. Default: 0.",
    },
    "sample_weight": {
        "type": "string",
        "minLength": 1,
        "description": "The column holding each training example's weight in the loss (Keras' "
        "sample_weight; numbers >= 0, times the class_weight when both are set). "
        "Default: every example weighs 1.",
    },
    "drop_missing_target": {
        "type": "boolean",
        "default": False,
        "description": "Leave out the rows whose target is missing, in every file, before the "
        "splits are drawn (data info counts them); otherwise such rows are "
        "refused, with their line numbers. Default: false.",
    },
}
REQUIRED = ["train", "features", "target"]


def _draw(count: int, fraction: float, strata: np.ndarray | None, rng: np.random.Generator) -> np.ndarray:
    """A boolean mask of the rows drawn: ``fraction`` of each stratum (or of all rows), chosen by ``rng``."""
    drawn = np.zeros(count, dtype=bool)
    groups = (
        [np.arange(count)] if strata is None else [np.flatnonzero(strata == value) for value in sorted(set(strata))]
    )
    for rows in groups:
        drawn[rng.permutation(rows)[: round(len(rows) * fraction)]] = True
    return drawn


def _split_tables(spec: dict, base_dir: Path) -> tuple[dict[str, Table], dict[str, str]]:
    """The tables of every split (read from files or drawn from train) and the files' digests."""
    paths = {
        split: require_file(resolve(base_dir, spec[split]), split, at_option=True)
        for split in FILE_SPLITS
        if split in spec
    }
    tables = {split: read_table(path, split) for split, path in paths.items()}
    digests = {split: sha256_file(path) for split, path in paths.items()}
    rng = np.random.Generator(np.random.PCG64(spec.get("split_seed", 0)))
    target = spec["target"]
    columns = target["column"] if isinstance(target["column"], list) else [target["column"]]
    for split, table in tables.items():
        if spec.get("drop_missing_target", False):
            tables[split] = table.without_missing(columns, "data.target")
        else:
            refuse_missing_target(table, columns, table.missing(columns, "data.target"))
    for split in DRAWN_SPLITS:
        fraction = spec.get(f"{split}_fraction")
        if fraction is None:
            continue
        if split in tables:
            raise DataError(
                f"give either data.{split} or data.{split}_fraction, not both", path=f"data.{split}_fraction"
            )
        train = tables["train"]
        strata = (
            None if target.get("type", "categorical") == "numeric" else train.texts(target["column"], "data.target")
        )
        drawn = _draw(len(train), fraction, strata, rng)
        if drawn.all() or not drawn.any():
            raise DataError(
                f"{split}_fraction {fraction} of {len(train)} rows leaves {int((~drawn).sum())} to train "
                f"and {int(drawn.sum())} for {split}; use a fraction that leaves both some rows",
                path=f"data.{split}_fraction",
            )
        tables[split], tables["train"] = train.take(np.flatnonzero(drawn)), train.take(np.flatnonzero(~drawn))
    return tables, digests


def fit_table(spec: dict, base_dir: Path) -> tuple[dict[str, Table], dict[str, str], TablePipeline]:
    """Every split's table, the files' digests, and the pipeline fitted on the training split; a split's own
    file must have every column the spec names (refused with the closest header name, as for training's)."""
    tables, digests = _split_tables(spec, base_dir)
    pipeline = TablePipeline.fit(spec["features"], spec["target"], tables["train"])
    targets = spec["target"]["column"] if isinstance(spec["target"]["column"], list) else [spec["target"]["column"]]
    named = [(f"data.features[{index}]", feature["column"]) for index, feature in enumerate(spec["features"])] + [
        ("data.target", column) for column in targets
    ]
    for split in digests.keys() - {"train"}:
        for where, column in named:
            tables[split].column(column, where)
    return tables, digests, pipeline


def table_shape(pipeline: TablePipeline) -> DataShape:
    """The model input width the fitted features encode to, the target's classes, and the vocabulary's size
    of a text column of token ids (an Embedding's smallest input_dim)."""
    categorical = [feature for feature in pipeline.features if feature.type == "categorical"]
    texts = pipeline.text_features
    images = [feature for feature in pipeline.features if feature.type == "image"]
    singles = len(pipeline.features) - len(categorical) - len(texts) - len(images)
    parts = (
        ([f"{singles} numeric or binary column{'s' if singles != 1 else ''} of 1"] if singles else [])
        + [
            f"{feature.column} {feature.width}: {len(feature.vocabulary)} categories and the out-of-vocabulary column"
            for feature in categorical
        ]
        + [_text_part(feature) for feature in texts]
        + [f"image {feature.column} {feature.width}: {feature.shape} pixels" for feature in images]
    )
    classes = None if pipeline.target.regression else len(pipeline.target.classes)
    ids = next((feature.vectorizer for feature in texts if feature.takes_ids and feature.vectorizer), None)
    widths: dict[str, int] = {}
    for feature in pipeline.features:
        if feature.type != "image":  # an image input's shape is its column's (graph.image_checks)
            widths[feature.column] = widths.get(feature.column, 0) + feature.width
    return DataShape(
        (pipeline.width,),
        classes,
        f"the features encode to {pipeline.width} values per row ({'; '.join(parts)})",
        vocabulary_size=ids.size if ids else None,
        column_widths=widths,
    )


def _text_part(feature: Feature) -> str:
    if feature.takes_ids:
        return f"text {feature.column} {feature.width}: token ids (vectorize.output_sequence_length)"
    return f"text {feature.column} {feature.width}: its vocabulary's size"


def load_table(spec: dict, base_dir: Path, input_shape: tuple[int, ...]) -> Loaded:
    """Every split's encoded features and targets, the fitted pipeline, and the files' digests."""
    tables, digests, pipeline = fit_table(spec, base_dir)
    problem = table_shape(pipeline).input_problem(input_shape)
    if problem:
        raise DataError(problem, path="model.input_shape")
    splits = {
        name: Split(
            name,
            pipeline.encode(table),
            pipeline.target.encode(table, "data.target"),
            table.file,
            table.file,
            table=table,
        )
        for name, table in tables.items()
    }
    return Loaded(splits, digests, None if pipeline.target.regression else pipeline.target.classes, pipeline)


def table_splits(spec: dict) -> dict[str, str]:
    """The splits a table spec gives, each with the option that gives it (a file, or a fraction of train)."""
    return {split: option for split in FILE_SPLITS for option in (split, f"{split}_fraction") if option in spec}
