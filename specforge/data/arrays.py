"""NumPy sources: one .npz archive with named arrays, or a pair of .npy files per split."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from specforge.base.errors import DataError
from specforge.data.files import sha256_file
from specforge.data.splits import SPLIT_NAMES, Loaded, Split, make_split

#: The names of the arrays in an .npz archive, by role, unless the spec names others (Keras' mnist.npz).
NPZ_DEFAULT_KEYS = {
    "x_train": "x_train",
    "y_train": "y_train",
    "x_test": "x_test",
    "y_test": "y_test",
    "x_validation": "x_validation",
    "y_validation": "y_validation",
}


def _unreadable(path: Path, kind: str, error: Exception) -> DataError:
    return DataError(
        f"cannot read as {kind}: {error}; save it with numpy.{'savez' if kind == '.npz' else 'save'}", file=str(path)
    )


def read_npy(path: Path) -> np.ndarray:
    """An .npy array, memory-mapped when the file allows it (images stay on disk until a batch needs them)."""
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise _unreadable(path, ".npy", error) from error


def load_npz(path: Path, keys: dict[str, str] | None = None) -> Loaded:
    """Splits from an .npz archive; a split is present when both of its arrays are."""
    keys = {**NPZ_DEFAULT_KEYS, **(keys or {})}
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files if name in keys.values()}
            available = sorted(archive.files)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise _unreadable(path, ".npz", error) from error
    splits: dict[str, Split] = {}
    for split in SPLIT_NAMES:
        x_key, y_key = keys[f"x_{split}"], keys[f"y_{split}"]
        found = [key for key in (x_key, y_key) if key in arrays]
        if len(found) == 2:
            splits[split] = make_split(split, arrays[x_key], arrays[y_key], str(path))
        elif found or split == "train":
            missing = [key for key in (x_key, y_key) if key not in arrays]
            raise DataError(
                f"the archive has no array {' or '.join(map(repr, missing))} for the {split} split; "
                f"it holds {available}; name them in data.keys",
                file=str(path),
            )
    return Loaded(splits, {"npz": sha256_file(path)})


def read_npy_file(path: Path) -> tuple[np.ndarray, str]:
    """An .npy array and the file's digest, for ``load_pairs``."""
    return read_npy(path), sha256_file(path)
