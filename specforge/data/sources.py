"""One loader per ``data.source``: the spec's options in, a ``Loaded`` (splits, digests, classes) out."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from specforge.data.arrays import load_npz, read_npy_file
from specforge.data.files import require_file, resolve
from specforge.data.folders import load_folder_split
from specforge.data.idx import read_idx_file
from specforge.data.mnist import load_mnist
from specforge.data.pairs import Reader, load_pairs
from specforge.data.splits import SPLIT_NAMES, Loaded
from specforge.data.table import load_csv_split
from specforge.data.table_source import load_table
from specforge.registry import Registry

SourceLoader = Callable[[dict, Path, tuple[int, ...]], Loaded]


def _pairs(read: Reader) -> SourceLoader:
    def load(spec: dict, base_dir: Path, input_shape: tuple[int, ...]) -> Loaded:
        files = {f"{split}_{kind}": resolve(base_dir, spec[f"{split}_{kind}"])
                 for split in SPLIT_NAMES for kind in ("images", "labels") if f"{split}_{kind}" in spec}
        return load_pairs(files, read)
    return load


def _npz(spec: dict, base_dir: Path, input_shape: tuple[int, ...]) -> Loaded:
    return load_npz(require_file(resolve(base_dir, spec["path"]), "path"), spec.get("keys"))


def _csv_splits(spec: dict, paths: dict[str, tuple[Path, str]]) -> Loaded:
    loaded = Loaded({}, {})
    for split, (path, option) in paths.items():
        loaded.splits[split], loaded.digests[split] = load_csv_split(
            split, path, option, spec.get("label_column"), spec.get("header", "auto"))
    return loaded


def _csv(spec: dict, base_dir: Path, input_shape: tuple[int, ...]) -> Loaded:
    return _csv_splits(spec, {split: (resolve(base_dir, spec[split]), split)
                              for split in SPLIT_NAMES if split in spec})


def _image_folder(spec: dict, base_dir: Path, input_shape: tuple[int, ...]) -> Loaded:
    loaded = Loaded({}, {}, spec.get("class_names"))
    for split in SPLIT_NAMES:
        if split in spec:
            loaded.splits[split], loaded.class_names, digests = load_folder_split(
                split, resolve(base_dir, spec[split]), split, input_shape, loaded.class_names)
            loaded.digests.update(digests)
    return loaded


def _url(spec: dict, base_dir: Path, input_shape: tuple[int, ...]) -> Loaded:
    from specforge.data.download import fetch  # urllib and http.client only when downloading

    path = fetch(spec["url"], spec["sha256"])
    if spec.get("format", "npz") == "csv":
        return _csv_splits(spec, {"train": (path, "url")})
    return load_npz(path, spec.get("keys"))


#: The loader of every source the data schema names (``specforge.data.schema.SOURCES``), by name.
LOADERS: Registry[tuple[str, SourceLoader]] = Registry("data source", lambda entry: entry[0], (
    ("mnist", lambda spec, base_dir, input_shape: load_mnist()),
    ("idx", _pairs(read_idx_file)),
    ("npz", _npz),
    ("npy", _pairs(read_npy_file)),
    ("csv", _csv),
    ("image_folder", _image_folder),
    ("url", _url),
    ("table", load_table),
))
