"""The MNIST data set embedded in the package: checked against SHA256SUMS, decoded once per process."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np

from specforge.base.errors import DataError
from specforge.data.files import gunzip_if_compressed, read_bytes, require_file, sha256_bytes
from specforge.data.idx import parse_idx
from specforge.data.splits import Loaded, make_split

MNIST_DIR = Path(__file__).parent / "mnist"
FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
NUM_CLASSES = 10
#: The shape of one stored MNIST image.
MNIST_SHAPE = (28, 28)
_REINSTALL = "the installed data is damaged; reinstall specforge"


def read_checksums(directory: Path) -> dict[str, str]:
    """``file name -> sha256`` from the directory's SHA256SUMS (``sha256sum`` output)."""
    path = directory / "SHA256SUMS"
    sums = {}
    for line in read_bytes(require_file(path, "source (embedded MNIST)")).decode().splitlines():
        digest, _, name = line.strip().partition("  ")
        if digest:
            sums[name.lstrip("*")] = digest.lower()
    return sums


@cache
def read_mnist(directory: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The four arrays by role (read-only uint8 views of the decompressed files) and their checked digests."""
    sums = read_checksums(directory)
    missing = [name for name in FILES.values() if name not in sums]
    if missing:
        raise DataError(f"SHA256SUMS has no line for {missing[0]}; {_REINSTALL}", file=str(directory / "SHA256SUMS"))
    stored, digests = {}, {}
    for role, name in FILES.items():
        path = require_file(directory / name, "source (embedded MNIST)")
        stored[role] = read_bytes(path)
        digests[role] = sha256_bytes(stored[role])
        if digests[role] != sums[name]:
            raise DataError(
                f"checksum mismatch: sha256 is {digests[role]}, SHA256SUMS says {sums[name]}; {_REINSTALL}",
                file=str(path),
            )
    arrays = {
        role: parse_idx(gunzip_if_compressed(data, directory / FILES[role]), directory / FILES[role])
        for role, data in stored.items()
    }
    return arrays, digests


def load_mnist(directory: Path = MNIST_DIR) -> Loaded:
    arrays, digests = read_mnist(directory)
    splits = {
        split: make_split(
            split,
            arrays[f"{split}_images"],
            arrays[f"{split}_labels"],
            str(directory / FILES[f"{split}_images"]),
            str(directory / FILES[f"{split}_labels"]),
        )
        for split in ("train", "test")
    }
    return Loaded(splits, dict(digests))
