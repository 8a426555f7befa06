"""JSON Schema (draft-07) of a spec's ``data`` section, generated from the data-source registry.

Every source's options sit next to ``source`` in one flat mapping.  The top level
lists all options with their descriptions (so editors complete them) and checks their
values.  Exactly one ``if ... then`` branch applies to any mapping: the one of its
source (mnist when ``source`` is left out), or a last one for a source that is not
known.  Each branch says which options its source requires and accepts, with
``additionalProperties: false``, and holds the defaults of its source's own options, so
that filling in defaults adds only options the source takes.  The top level has no
``additionalProperties`` of its own, so an unknown or misplaced key is reported once,
against the options of the source in use.
"""

from __future__ import annotations

from specforge.data.rescale import RESCALE_VALUES
from specforge.data.sources import SOURCES, DataSource, need, path_option
from specforge.data.splits import SPLIT_NAMES

_NORMALIZE_VALUE = {
    "oneOf": [{"type": "number"}, {"type": "array", "items": {"type": "number"}, "minItems": 1}],
}

PREPROCESSING_SCHEMA = {
    "type": "object",
    "description": "Steps applied to every batch (training, evaluation, prediction and export alike), "
    "in this order: reshape, rescale, normalize. They are recorded in the run directory.",
    "properties": {
        "rescale": {
            **RESCALE_VALUES,
            "default": 1.0,
            "description": "Multiply every pixel by this factor, a number or a fraction such as 1/255 (for [0, 1]). "
            "Default 1.0: raw 0-255 pixels, as the seed tutorial.",
            "examples": [1.0, "1/255", 0.00392156862745098],
        },
        "normalize": {
            "description": "Subtract mean and divide by std after rescaling; scalars or one value per channel. "
            "Default: no normalisation.",
            "oneOf": [
                {"type": "null"},
                {
                    "type": "object",
                    "properties": {
                        "mean": {**_NORMALIZE_VALUE, "description": "Mean to subtract (after rescale)."},
                        "std": {
                            **_NORMALIZE_VALUE,
                            "description": "Standard deviation to divide by (after rescale); "
                            "every value must be positive.",
                        },
                    },
                    "required": ["mean", "std"],
                    "additionalProperties": False,
                },
            ],
            "default": None,
            "examples": [{"mean": 0.1307, "std": 0.3081}, {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}],
        },
        "reshape": {
            "description": "Shape each image is reshaped to, without the batch axis. It must equal "
            "model.input_shape; default: model.input_shape (28x28 images become 28x28x1, "
            "as the seed's reshape).",
            "oneOf": [{"type": "null"}, {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 1}],
            "default": None,
            "examples": [[28, 28, 1]],
        },
        "labels": {
            "description": "Label encoding fed to the loss: one_hot (Keras' to_categorical, for "
            "categorical_crossentropy) or sparse integers (for sparse_categorical_crossentropy).",
            "enum": ["one_hot", "sparse"],
            "default": "one_hot",
        },
    },
    "additionalProperties": False,
    "default": {},
    "examples": [{"rescale": 1.0, "labels": "one_hot"}],
}

_COMMON: dict[str, dict] = {
    "source": {
        "description": "Where the data comes from. "
        + "; ".join(f"{name}: {source.description.rstrip('.')}" for name, source in SOURCES.items())
        + ".",
        "enum": list(SOURCES),
        "default": "mnist",
    },
    "preprocessing": PREPROCESSING_SCHEMA,
    "num_classes": {
        "type": "integer",
        "minimum": 2,
        "description": "Number of classes. Default: inferred (10 for mnist, the number of class sub-folders for "
        "image_folder and text_folder, else the largest training label + 1).",
        "examples": [10],
    },
    "class_names": {
        "type": "array",
        "items": {"type": "string"},
        "minItems": 2,
        "description": "Name of each class, in label order. Default: the folder names for image_folder and "
        "text_folder, "
        "else the labels as text ('0', '1', ...).",
        "examples": [
            ["T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
        ],
    },
    "inputs": {
        "type": "object",
        "description": "What feeds each named model input (model.inputs): input name -> the table's feature "
        "columns that feed it, in order (each feature feeds one input). Only a table feeds several "
        "inputs; another source, or a table without data.inputs, feeds its examples to the one input.",
        "additionalProperties": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "examples": [{"mean": ["mean_radius", "mean_texture"], "worst": ["worst_radius", "worst_texture"]}],
    },
    "targets": {
        "type": "object",
        "description": "The target of each named model output (model.outputs), derived from the data's class "
        "labels: output name -> {} (the labels as they are) or {map: [...]} (label i becomes map[i], "
        "one class per entry: [0, 1, 0, 1, 0, 1, 0, 1, 0, 1] gives MNIST digits' parity). Every "
        "output of several needs one; a single output takes the labels.",
        "additionalProperties": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "map": {
                    "description": "The class each data label becomes, one entry per data class, in label order.",
                    "type": "array",
                    "items": {"type": "integer", "minimum": 0},
                    "minItems": 2,
                }
            },
        },
        "examples": [{"digit": {}, "parity": {"map": [0, 1, 0, 1, 0, 1, 0, 1, 0, 1]}}],
    },
}

# The top level lists every option once, without the defaults that belong to a source; a split, which is a
# file for csv and a directory for image_folder, is described for both.
_ALL_OPTIONS: dict[str, dict] = {
    **_COMMON,
    **{
        split: path_option(
            f"The {split} split. {need(split)} csv: a CSV file, one row per example, the label "
            "plus the pixel values in row-major order. image_folder: a directory with one sub-folder "
            "per class (the folder's name is the class name; classes are numbered in the folders' "
            "sorted order) holding PNG or JPEG images, e.g. train/cat/1.png, train/dog/2.png. "
            "text_folder: a directory with one sub-folder per class holding UTF-8 .txt documents. "
            "table: a CSV file with a header row, JSON lines (.jsonl, .ndjson) or Parquet (.parquet, .pq; "
            "needs specforge[parquet]); test and validation may be drawn from the training file instead "
            "(test_fraction, validation_fraction)."
        )
        for split in SPLIT_NAMES
    },
}
for _source in SOURCES.values():
    for _name, _schema in _source.schema.items():
        _ALL_OPTIONS.setdefault(_name, {key: value for key, value in _schema.items() if key != "default"})


def _annotations(schema: dict) -> dict | bool:
    """What a branch says of one of its source's options: its own description and default (the top level
    checks the value), or ``True`` when it has neither."""
    return {key: schema[key] for key in ("description", "default") if key in schema} or True


def _branch(condition: dict, options: dict[str, dict], required: list[str]) -> dict:
    """``if condition then`` accept exactly ``options``, describing them and filling in their defaults."""
    properties = {name: True if name in _COMMON else _annotations(schema) for name, schema in options.items()}
    return {"if": condition, "then": {"properties": properties, "required": required, "additionalProperties": False}}


def _source_branch(source: type[DataSource]) -> dict:
    condition: dict = {"properties": {"source": {"const": source.name}}}
    if source.name != _COMMON["source"]["default"]:
        condition["required"] = ["source"]
    return _branch(condition, {**_COMMON, **source.schema}, list(source.required))


_UNKNOWN_SOURCE_BRANCH = _branch(
    {"properties": {"source": {"not": {"enum": list(SOURCES)}}}, "required": ["source"]},
    {name: {} for name in _ALL_OPTIONS},
    [],
)


DATA_SCHEMA: dict = {
    "type": "object",
    "description": "The data set, its splits, and the preprocessing applied to every batch.",
    "properties": _ALL_OPTIONS,
    "allOf": [*(_source_branch(source) for source in SOURCES.values()), _UNKNOWN_SOURCE_BRANCH],
    "default": {"source": "mnist"},
    "examples": [source.examples[0] for source in SOURCES.values()],
}
