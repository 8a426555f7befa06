"""Sources that store each split as two files, ``{split}_images`` and ``{split}_labels`` (IDX, .npy)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from specforge.base.errors import DataError
from specforge.data.files import require_file
from specforge.data.splits import SPLIT_NAMES, Loaded, Split, make_split

#: Reads one file: its array and the SHA-256 of the file as stored.
Reader = Callable[[Path], tuple[np.ndarray, str]]


def load_pairs(files: dict[str, Path], read: Reader) -> Loaded:
    """Splits from the given files (train required, test and validation when both of their files are given)."""
    splits: dict[str, Split] = {}
    digests: dict[str, str] = {}
    for split in SPLIT_NAMES:
        roles = (f"{split}_images", f"{split}_labels")
        given = [role for role in roles if role in files]
        if not given and split != "train":
            continue
        if len(given) != 2:
            missing = next(role for role in roles if role not in files)
            raise DataError(
                f"data.{missing} is missing: the {split} images and labels are given together", path=f"data.{missing}"
            )
        arrays = []
        for role in roles:
            array, digests[role] = read(require_file(files[role], role))
            arrays.append(array)
        images, labels = arrays
        splits[split] = make_split(split, images, labels, str(files[roles[0]]), str(files[roles[1]]))
    return Loaded(splits, digests)
