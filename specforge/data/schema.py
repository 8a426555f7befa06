"""JSON Schema (draft-07) of a spec's ``data`` section.

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

from specforge.data import table_source

SOURCES = ("mnist", "idx", "npz", "npy", "csv", "image_folder", "url", "table")
SPLITS = ("train", "test", "validation")
URL_FORMATS = ("npz", "csv")
NPZ_DEFAULT_KEYS = {
    "x_train": "x_train", "y_train": "y_train",
    "x_test": "x_test", "y_test": "y_test",
    "x_validation": "x_validation", "y_validation": "y_validation",
}


def _path(description: str) -> dict:
    return {"type": "string", "minLength": 1,
            "description": description + " Relative paths are relative to the spec file's directory."}


def _need(split: str) -> str:
    return {"train": "Required.", "test": "Optional.",
            "validation": "Optional; used when fit.validation is 'validation'."}[split]


# Sources that store each split as two files: IDX (raw or .gz) for source idx, .npy for source npy.
_PAIRS = {
    f"{split}_{kind}": _path(f"File of the {split} {kind} (IDX, raw or .gz, for source idx; .npy for source npy); "
                             f"given together with the {split} {other}. {_need(split)}")
    for split in SPLITS for kind, other in (("images", "labels"), ("labels", "images"))
}

_KEYS = {
    "type": "object",
    "description": "Names of the arrays inside the .npz archive. A split is loaded when both of its "
                   "arrays are in the archive; the training arrays are required. Default: Keras' mnist.npz "
                   "names x_train, y_train, x_test, y_test (and x_validation, y_validation).",
    "properties": {
        key: {"type": "string", "minLength": 1, "default": default,
              "description": f"Array holding the {'images' if key[0] == 'x' else 'labels'} of the "
                             f"{key.split('_', 1)[1]} split."}
        for key, default in NPZ_DEFAULT_KEYS.items()
    },
    "additionalProperties": False,
    "default": dict(NPZ_DEFAULT_KEYS),
    "examples": [{"x_train": "train_images", "y_train": "train_labels"}],
}

_CSV_OPTIONS = {
    "label_column": {
        "description": "The column holding the label: a 0-based index or a header name. "
                       "Default: the column named 'label' when the file has a header with one, else column 0.",
        "oneOf": [{"type": "integer", "minimum": 0}, {"type": "string", "minLength": 1}],
        "examples": [0, "label"],
    },
    "header": {
        "description": "Whether the first row holds column names. auto: yes when it has a cell that is not a "
                       "number. Default: auto.",
        "enum": ["auto", True, False],
        "default": "auto",
    },
}

_SPLIT_FILES = {
    split: _path(f"CSV file of the {split} split: one row per example, the label plus the pixel values in "
                 f"row-major order. {_need(split)}")
    for split in SPLITS
}
_SPLIT_DIRS = {
    split: _path(f"Directory of the {split} split with one sub-folder per class (the folder name is the class "
                 f"name) holding PNG or JPEG images. {_need(split)}")
    for split in SPLITS
}

_NORMALIZE_VALUE = {
    "oneOf": [{"type": "number"},
              {"type": "array", "items": {"type": "number"}, "minItems": 1}],
}

PREPROCESSING_SCHEMA = {
    "type": "object",
    "description": "Steps applied to every batch (training, evaluation, prediction and export alike), "
                   "in this order: reshape, rescale, normalize. They are recorded in the run directory.",
    "properties": {
        "rescale": {
            "type": "number", "default": 1.0, "exclusiveMinimum": 0,
            "description": "Multiply every pixel by this factor, e.g. 0.00392156862745098 (1/255) for [0, 1]. "
                           "Default 1.0: raw 0-255 pixels, as the seed tutorial.",
            "examples": [1.0, 0.00392156862745098],
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
                        "std": {**_NORMALIZE_VALUE, "description": "Standard deviation to divide by (after rescale); "
                                                                   "every value must be positive."},
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
            "oneOf": [{"type": "null"},
                      {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 1}],
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

_COMMON = {
    "source": {
        "description": "Where the data comes from: mnist (embedded in the package, works offline), idx, npz, "
                       "npy, csv, image_folder, url (downloaded once into the user's cache directory), or table "
                       "(named numeric and categorical columns from CSV or Parquet).",
        "enum": list(SOURCES),
        "default": "mnist",
    },
    "preprocessing": PREPROCESSING_SCHEMA,
    "num_classes": {
        "type": "integer", "minimum": 2,
        "description": "Number of classes. Default: inferred (10 for mnist, the number of class sub-folders for "
                       "image_folder, else the largest training label + 1).",
        "examples": [10],
    },
    "class_names": {
        "type": "array", "items": {"type": "string"}, "minItems": 2,
        "description": "Name of each class, in label order. Default: the folder names for image_folder, "
                       "else the labels as text ('0', '1', ...).",
        "examples": [["T-shirt", "Trouser", "Pullover", "Dress", "Coat",
                      "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]],
    },
}

_BY_SOURCE: dict[str, tuple[dict, list[str]]] = {
    "mnist": ({}, []),
    "idx": (_PAIRS, ["train_images", "train_labels"]),
    "npy": (_PAIRS, ["train_images", "train_labels"]),
    "npz": ({"path": _path("The .npz archive."), "keys": _KEYS}, ["path"]),
    "csv": ({**_SPLIT_FILES, **_CSV_OPTIONS}, ["train"]),
    "image_folder": (_SPLIT_DIRS, ["train"]),
    "url": ({
        "url": {"type": "string", "pattern": "^(https?|file)://", "description":
                "Address of the file, downloaded once into $XDG_CACHE_HOME/specforge (default ~/.cache/specforge) "
                "and checked against sha256.",
                "examples": ["https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"]},
        "sha256": {"type": "string", "pattern": "^[0-9a-fA-F]{64}$",
                   "description": "SHA-256 of the file (64 hex digits); a download that does not match is refused."},
        "format": {"enum": list(URL_FORMATS), "default": "npz",
                   "description": "Format of the downloaded file: npz (arrays named by keys) or csv (the training "
                                  "split, label_column and header as for the csv source). Default: npz."},
        "keys": _KEYS,
        **_CSV_OPTIONS,
    }, ["url", "sha256"]),
    "table": (table_source.OPTIONS, table_source.REQUIRED),
}

# The top level lists every option once, without the defaults that belong to a source; a split, which is a
# file for csv and a directory for image_folder, is described for both.
_ALL_OPTIONS: dict[str, dict] = {
    **_COMMON,
    **{split: _path(f"The {split} split. {_need(split)} csv: a CSV file, one row per example, the label plus "
                    "the pixel values in row-major order. image_folder: a directory with one sub-folder per "
                    "class (the folder's name is the class name; classes are numbered in the folders' sorted "
                    "order) holding PNG or JPEG images, e.g. train/cat/1.png, train/dog/2.png.")
       for split in SPLITS},
}
for _options, _ in _BY_SOURCE.values():
    for _name, _schema in _options.items():
        _ALL_OPTIONS.setdefault(_name, {key: value for key, value in _schema.items() if key != "default"})


def _branch(condition: dict, options: dict[str, dict], required: list[str]) -> dict:
    """``if condition then`` accept exactly ``options``, filling in their defaults."""
    properties = {name: ({"default": schema["default"]} if "default" in schema and name not in _COMMON else True)
                  for name, schema in options.items()}
    return {"if": condition,
            "then": {"properties": properties, "required": required, "additionalProperties": False}}


def _source_branch(source: str) -> dict:
    options, required = _BY_SOURCE[source]
    condition: dict = {"properties": {"source": {"const": source}}}
    if source != "mnist":
        condition["required"] = ["source"]
    return _branch(condition, {**_COMMON, **options}, required)


_UNKNOWN_SOURCE_BRANCH = _branch({"properties": {"source": {"not": {"enum": list(SOURCES)}}}, "required": ["source"]},
                                 {name: {} for name in _ALL_OPTIONS}, [])


DATA_SCHEMA: dict = {
    "type": "object",
    "description": "The data set, its splits, and the preprocessing applied to every batch.",
    "properties": _ALL_OPTIONS,
    "allOf": [*(_source_branch(source) for source in SOURCES), _UNKNOWN_SOURCE_BRANCH],
    "default": {"source": "mnist"},
    "examples": [
        {"source": "mnist", "preprocessing": {"rescale": 1.0, "labels": "one_hot"}},
        {"source": "idx", "train_images": "fashion/train-images-idx3-ubyte.gz",
         "train_labels": "fashion/train-labels-idx1-ubyte.gz",
         "test_images": "fashion/t10k-images-idx3-ubyte.gz", "test_labels": "fashion/t10k-labels-idx1-ubyte.gz"},
        {"source": "image_folder", "train": "images/train", "test": "images/test",
         "preprocessing": {"rescale": 0.00392156862745098}},
        {"source": "url", "url": "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz",
         "sha256": "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1", "format": "npz"},
    ],
}
