"""The data sources a spec's ``data.source`` may name, each one class: its name, description, options (JSON
Schema fragments with descriptions and defaults), the options it requires, examples of a ``data`` section
using it, and ``load`` (the spec's options in, a ``Loaded`` with splits, digests and classes out).

The ``data`` section's schema is generated from this registry (``specforge.data.schema``).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np

from specforge.base.errors import DataError
from specforge.base.registry import Kind, Registry
from specforge.data.arrays import NPZ_DEFAULT_KEYS, load_npz, read_npy, read_npy_file
from specforge.data.files import require_file, resolve
from specforge.data.folders import folder_classes, load_folder_split
from specforge.data.idx import read_idx_dims, read_idx_file
from specforge.data.mnist import MNIST_SHAPE, load_mnist
from specforge.data.pairs import load_pairs
from specforge.data.pixel_csv import csv_row_values, load_csv_split
from specforge.data.splits import SPLIT_NAMES, DataShape, Loaded, Probe
from specforge.data.table.source import OPTIONS as TABLE_OPTIONS
from specforge.data.table.source import REQUIRED as TABLE_REQUIRED
from specforge.data.table.source import fit_table, load_table, table_shape, table_splits
from specforge.data.text.source import load_text, text_probe, text_shape
from specforge.data.text.vectorize import VECTORIZE_SCHEMA

URL_FORMATS = ("npz", "csv")


def path_option(description: str) -> dict:
    """The schema of an option naming a file or directory."""
    return {
        "type": "string",
        "minLength": 1,
        "description": description + " Relative paths are relative to the spec file's directory.",
    }


def need(split: str) -> str:
    """Whether a source needs the files of ``split``."""
    return {
        "train": "Required.",
        "test": "Optional.",
        "validation": "Optional; used when fit.validation is 'validation'.",
    }[split]


_KEYS = {
    "type": "object",
    "description": "Names of the arrays inside the .npz archive. A split is loaded when both of its "
    "arrays are in the archive; the training arrays are required. Default: Keras' mnist.npz "
    "names x_train, y_train, x_test, y_test (and x_validation, y_validation).",
    "properties": {
        key: {
            "type": "string",
            "minLength": 1,
            "default": default,
            "description": f"Array holding the {'images' if key[0] == 'x' else 'labels'} of the "
            f"{key.split('_', 1)[1]} split.",
        }
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


def _csv_splits(spec: dict, paths: dict[str, tuple[Path, str]]) -> Loaded:
    loaded = Loaded({}, {})
    for split, (path, option) in paths.items():
        loaded.splits[split], loaded.digests[split] = load_csv_split(
            split, path, option, spec.get("label_column"), spec.get("header", "auto")
        )
    return loaded


#: Every source a spec may name, by name: each ``DataSource`` subclass with a ``name``, as it is defined.
SOURCES: Registry[type[DataSource]] = Registry("data source", lambda source: source.name)


class DataSource(Kind, registry=SOURCES, key="name"):
    """One ``data.source``. ``schema`` holds the options the source adds to the ``data`` section besides
    ``source``, ``preprocessing``, ``num_classes`` and ``class_names``, which every source takes."""

    name: ClassVar[str]
    description: ClassVar[str]
    #: option -> JSON Schema, with its default where the option has one.
    schema: ClassVar[dict[str, dict]] = {}
    required: ClassVar[tuple[str, ...]] = ()
    #: ``data`` sections using this source, for the documentation and the generic tests.
    examples: ClassVar[list[dict]] = []
    #: Whether reading the data tells the model's input shape (``shape``), so that model.input_shape may be left out.
    tells_input_shape: ClassVar[bool] = False

    @classmethod
    def json_schema(cls) -> dict:
        """The schema of a ``data`` section using this source, as far as its own options go (the options every
        source takes are the ``data`` section's, ``specforge.data.schema``)."""
        return {
            "type": "object",
            "description": cls.description,
            "properties": {"source": {"const": cls.name, "description": cls.description}, **cls.schema},
            "required": ["source", *cls.required],
            "examples": cls.examples,
        }

    def load(self, spec: dict, base_dir: Path, input_shape: tuple[int, ...]) -> Loaded:
        """The splits of a valid ``data`` section, relative paths taken from ``base_dir``."""
        raise NotImplementedError

    def shape(self, spec: dict, base_dir: Path) -> DataShape | None:
        """What the data fixes about the model that the spec alone does not tell (``specforge.graph.build``): a
        table's input width and classes; None for a source whose files need not be read for that."""
        return None

    def probe(self, spec: dict, base_dir: Path) -> dict[str, Probe] | None:
        """What each split's files say without reading the data set whole (``specforge validate``): the files
        exist, the examples' shape where a header tells it, labels where they are small; None when nothing can be
        learned without reading or downloading everything (a URL, a table)."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Mnist(DataSource):
    name = "mnist"
    description = "the MNIST digits embedded in the package (works offline)."
    examples = [{"source": "mnist", "preprocessing": {"rescale": 1.0, "labels": "one_hot"}}]

    def load(self, spec: dict, base_dir: Path, input_shape: tuple[int, ...]) -> Loaded:
        return load_mnist()

    def probe(self, spec: dict, base_dir: Path) -> dict[str, Probe] | None:
        return {split: Probe("mnist", MNIST_SHAPE) for split in ("train", "test")}


_PAIRS = {
    f"{split}_{kind}": path_option(
        f"File of the {split} {kind} (IDX, raw or .gz, for source idx; .npy for source "
        f"npy); given together with the {split} {other}. {need(split)}"
    )
    for split in SPLIT_NAMES
    for kind, other in (("images", "labels"), ("labels", "images"))
}


class _Pairs(DataSource):
    """A source storing each split as two files, the images and the labels, read by ``read``."""

    schema = _PAIRS
    required = ("train_images", "train_labels")

    @staticmethod
    def read(path: Path) -> tuple[np.ndarray, str]:
        """A file's array and its SHA-256 digest."""
        raise NotImplementedError

    @staticmethod
    def dims(path: Path) -> tuple[int, ...]:
        """The dimensions of a file, read from its header alone."""
        raise NotImplementedError

    def load(self, spec: dict, base_dir: Path, input_shape: tuple[int, ...]) -> Loaded:
        files = {option: resolve(base_dir, spec[option]) for option in _PAIRS if option in spec}
        return load_pairs(files, self.read)

    def probe(self, spec: dict, base_dir: Path) -> dict[str, Probe] | None:
        probes = {}
        for split in SPLIT_NAMES:
            if f"{split}_images" in spec and f"{split}_labels" in spec:
                images = require_file(resolve(base_dir, spec[f"{split}_images"]), f"{split}_images")
                labels = require_file(resolve(base_dir, spec[f"{split}_labels"]), f"{split}_labels")
                probes[split] = Probe(str(images), self.dims(images)[1:], self.read(labels)[0], str(labels))
        return probes


class Idx(_Pairs):
    name = "idx"
    description = "IDX files (raw or .gz), as the original MNIST and Fashion-MNIST downloads."
    read = staticmethod(read_idx_file)
    dims = staticmethod(read_idx_dims)
    examples = [
        {
            "source": "idx",
            "train_images": "fashion/train-images-idx3-ubyte.gz",
            "train_labels": "fashion/train-labels-idx1-ubyte.gz",
            "test_images": "fashion/t10k-images-idx3-ubyte.gz",
            "test_labels": "fashion/t10k-labels-idx1-ubyte.gz",
        }
    ]


class Npz(DataSource):
    name = "npz"
    description = "one .npz archive holding the arrays of every split, as Keras' mnist.npz."
    schema = {"path": path_option("The .npz archive."), "keys": _KEYS}
    required = ("path",)
    examples = [{"source": "npz", "path": "d.npz", "keys": {"x_train": "a", "y_train": "b"}, "num_classes": 10}]

    def load(self, spec: dict, base_dir: Path, input_shape: tuple[int, ...]) -> Loaded:
        return load_npz(require_file(resolve(base_dir, spec["path"]), "path"), spec.get("keys"))

    def probe(self, spec: dict, base_dir: Path) -> dict[str, Probe] | None:
        require_file(resolve(base_dir, spec["path"]), "path")
        return None


class Npy(_Pairs):
    name = "npy"
    description = "a pair of .npy files (images, labels) per split."
    read = staticmethod(read_npy_file)
    dims = staticmethod(lambda path: read_npy(path).shape)
    examples = [
        {
            "source": "npy",
            "train_images": "x.npy",
            "train_labels": "y.npy",
            "validation_images": "vx.npy",
            "validation_labels": "vy.npy",
        }
    ]


class Csv(DataSource):
    name = "csv"
    description = "one CSV file per split with a row per example (the label, then the pixel values)."
    schema = {
        **{
            split: path_option(
                f"CSV file of the {split} split: one row per example, the label plus the pixel "
                f"values in row-major order. {need(split)}"
            )
            for split in SPLIT_NAMES
        },
        **_CSV_OPTIONS,
    }
    required = ("train",)
    examples = [{"source": "csv", "train": "train.csv", "test": "test.csv", "label_column": "label", "header": True}]

    def load(self, spec: dict, base_dir: Path, input_shape: tuple[int, ...]) -> Loaded:
        return _csv_splits(
            spec, {split: (resolve(base_dir, spec[split]), split) for split in SPLIT_NAMES if split in spec}
        )

    def probe(self, spec: dict, base_dir: Path) -> dict[str, Probe] | None:
        paths = {split: require_file(resolve(base_dir, spec[split]), split) for split in SPLIT_NAMES if split in spec}
        return {
            split: Probe(str(path), (csv_row_values(path, spec.get("label_column"), spec.get("header", "auto")),))
            for split, path in paths.items()
        }


class ImageFolder(DataSource):
    name = "image_folder"
    description = "one directory per split with a sub-folder of PNG or JPEG images per class."
    schema = {
        split: path_option(
            f"Directory of the {split} split with one sub-folder per class (the folder name is the "
            f"class name) holding PNG or JPEG images. {need(split)}"
        )
        for split in SPLIT_NAMES
    }
    required = ("train",)
    examples = [
        {
            "source": "image_folder",
            "train": "images/train",
            "test": "images/test",
            "preprocessing": {"rescale": 0.00392156862745098},
        }
    ]

    def load(self, spec: dict, base_dir: Path, input_shape: tuple[int, ...]) -> Loaded:
        loaded = Loaded({}, {}, spec.get("class_names"))
        for split in SPLIT_NAMES:
            if split in spec:
                loaded.splits[split], loaded.class_names, digests = load_folder_split(
                    split, resolve(base_dir, spec[split]), split, input_shape, loaded.class_names
                )
                loaded.digests.update(digests)
        return loaded

    def probe(self, spec: dict, base_dir: Path) -> dict[str, Probe] | None:
        directories = {split: resolve(base_dir, spec[split]) for split in SPLIT_NAMES if split in spec}
        return {
            split: Probe(str(directory), classes=folder_classes(directory, split))
            for split, directory in directories.items()
        }


class Url(DataSource):
    name = "url"
    description = "an .npz archive or a CSV file downloaded once into the user's cache directory."
    schema = {
        "url": {
            "type": "string",
            "pattern": "^(https?|file)://",
            "description": "Address of the file, downloaded once into $XDG_CACHE_HOME/specforge (default ~/.cache/specforge) "
            "and checked against sha256.",
            "examples": ["https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"],
        },
        "sha256": {
            "type": "string",
            "pattern": "^[0-9a-fA-F]{64}$",
            "description": "SHA-256 of the file (64 hex digits); a download that does not match is refused.",
        },
        "format": {
            "enum": list(URL_FORMATS),
            "default": "npz",
            "description": "Format of the downloaded file: npz (arrays named by keys) or csv (the training "
            "split, label_column and header as for the csv source). Default: npz.",
        },
        "keys": _KEYS,
        **_CSV_OPTIONS,
    }
    required = ("url", "sha256")
    examples = [
        {
            "source": "url",
            "url": "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz",
            "sha256": "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1",
            "format": "npz",
        },
        {"source": "url", "url": "https://example.org/d.csv", "sha256": "a" * 64, "format": "csv", "label_column": 0},
    ]

    def load(self, spec: dict, base_dir: Path, input_shape: tuple[int, ...]) -> Loaded:
        from specforge.data.download import fetch

        path = fetch(spec["url"], spec["sha256"])
        if spec.get("format", "npz") == "csv":
            return _csv_splits(spec, {"train": (path, "url")})
        return load_npz(path, spec.get("keys"))


class Table(DataSource):
    name = "table"
    description = (
        "named numeric, binary, categorical and text columns from CSV, JSON lines or Parquet (the features "
        "and the target, their preprocessing and text vocabularies learned on the training split)."
    )
    schema = TABLE_OPTIONS
    tells_input_shape = True
    required = tuple(TABLE_REQUIRED)
    examples = [
        {
            "source": "table",
            "train": "data/breast_cancer.csv",
            "test_fraction": 0.2,
            "split_seed": 0,
            "features": [{"column": "mean_radius"}, {"column": "mean_texture"}],
            "target": {"column": "diagnosis", "type": "categorical"},
        },
        {
            "source": "table",
            "train": "data/diabetes.csv",
            "test_fraction": 0.2,
            "features": [{"column": "age"}, {"column": "sex", "type": "categorical"}, {"column": "bmi"}],
            "target": {"column": "progression", "type": "numeric", "standardize": True},
        },
        {
            "source": "table",
            "train": "data/sms_spam.csv",
            "test_fraction": 0.2,
            "features": [
                {"column": "message", "type": "text", "vectorize": {"max_tokens": 10000, "output_sequence_length": 64}}
            ],
            "target": {"column": "label"},
        },
    ]

    def load(self, spec: dict, base_dir: Path, input_shape: tuple[int, ...]) -> Loaded:
        return load_table(spec, base_dir, input_shape)

    def shape(self, spec: dict, base_dir: Path) -> DataShape | None:
        return table_shape(fit_table(spec, base_dir)[2])

    def probe(self, spec: dict, base_dir: Path) -> dict[str, Probe] | None:
        return {
            split: Probe(str(resolve(base_dir, spec[split if option == split else "train"])))
            for split, option in table_splits(spec).items()
        }


class TextFolder(DataSource):
    name = "text_folder"
    description = (
        "one directory per split with a sub-folder of UTF-8 .txt documents per class (Keras' "
        "text_dataset_from_directory layout), vectorized by a vocabulary learned on the training split."
    )
    schema = {
        **{
            split: path_option(
                f"Directory of the {split} split with one sub-folder per class (the folder name is "
                f"the class name) holding .txt documents, one a file, in UTF-8. {need(split)}"
            )
            for split in SPLIT_NAMES
        },
        "vectorize": VECTORIZE_SCHEMA,
    }
    required = ("train",)
    tells_input_shape = True
    examples = [
        {
            "source": "text_folder",
            "train": "reviews/train",
            "test": "reviews/test",
            "vectorize": {"max_tokens": 20000, "output_sequence_length": 200},
        },
        {"source": "text_folder", "train": "reviews/train", "vectorize": {"output_mode": "tf_idf", "ngrams": 2}},
    ]

    def load(self, spec: dict, base_dir: Path, input_shape: tuple[int, ...]) -> Loaded:
        return load_text(spec, base_dir)

    def shape(self, spec: dict, base_dir: Path) -> DataShape | None:
        return text_shape(spec, base_dir)

    def probe(self, spec: dict, base_dir: Path) -> dict[str, Probe] | None:
        return text_probe(spec, base_dir)


def create(name: str) -> DataSource:
    """The source a spec's ``data.source`` names; a DataError listing the valid names otherwise."""
    if name not in SOURCES:
        raise DataError(f"unknown data source {name!r}; use one of {sorted(SOURCES)}", path="data.source")
    return SOURCES[name]()
