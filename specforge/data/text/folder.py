"""Folders of ``.txt`` documents, one sub-folder per class (Keras' ``text_dataset_from_directory`` layout):
each file is one document, read as UTF-8, its class the name of its folder; classes are numbered in the
folders' sorted order."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from specforge.data.files import decode_utf8, read_bytes, require_dir, sha256_bytes
from specforge.data.folders import count_class_files, require_known_classes

TEXT_SUFFIX = ".txt"


@dataclass
class Documents:
    """One split's documents as read: their text, class indices, files and a digest per file."""

    texts: list[str]
    labels: np.ndarray
    files: list[str]
    digests: dict[str, str]


def text_classes(directory: Path, option: str) -> dict[str, int]:
    """Each class sub-folder of a split's directory with its number of ``.txt`` files (the files unread)."""
    require_dir(directory, option)
    return count_class_files(
        directory, _documents_in, (".txt documents", ".txt", "documents"), "train/positive/1.txt, train/negative/2.txt"
    )


def _documents_in(folder: Path) -> list[Path]:
    return [path for path in sorted(folder.iterdir()) if path.suffix.lower() == TEXT_SUFFIX and path.is_file()]


def read_documents(name: str, directory: Path, option: str, classes: list[str] | None) -> tuple[Documents, list[str]]:
    """One split's documents and the class names (``classes``, or the folders' for the training split); a class
    folder that is not among ``classes`` is refused."""
    folders = list(text_classes(directory, option))
    classes = classes if classes is not None else folders
    require_known_classes(folders, classes, directory)
    texts, labels, files, digests = [], [], [], {}
    for folder in folders:
        for path in _documents_in(directory / folder):
            data = read_bytes(path)
            texts.append(decode_utf8(data, str(path), "documents"))
            labels.append(classes.index(folder))
            files.append(str(path))
            digests[f"{name}/{path.relative_to(directory).as_posix()}"] = sha256_bytes(data)
    return Documents(texts, np.array(labels, dtype=np.int64), files, digests), list(classes)
