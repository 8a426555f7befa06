"""Image folders: one sub-folder per class holding PNG or JPEG files, decoded as ``data/image_decode.py`` decodes
every image file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from specforge.base.errors import DataError
from specforge.data.files import read_bytes, require_dir, sha256_bytes
from specforge.data.image_decode import IMAGE_SUFFIXES, decode_image, image_mode
from specforge.data.splits import Split, make_split


def class_folders(directory: Path) -> list[str]:
    """The class sub-folders' names, sorted (so labels follow the names' order, as Keras does)."""
    return sorted(entry.name for entry in directory.iterdir() if entry.is_dir() and not entry.name.startswith("."))


def folder_classes(directory: Path, option: str) -> dict[str, int]:
    """Each class sub-folder of a split's directory with its number of image files (the images unread)."""
    require_dir(directory, option)
    return count_class_files(directory, _images_in, ("images", "PNG or JPEG", "images"), "train/cat/1.png")


def require_known_classes(folders: list[str], classes: list[str], directory: Path) -> None:
    """Refuse a class folder of a split that is not among the training split's ``classes``."""
    unknown = [folder for folder in folders if folder not in classes]
    if unknown:
        raise DataError(
            f"class folder {unknown[0]!r} is not among the classes {classes}; use the same class "
            "folders in every split",
            file=str(directory),
        )


def count_class_files(
    directory: Path, files_in: Callable[[Path], list[Path]], names: tuple[str, str, str], example: str
) -> dict[str, int]:
    """Each class sub-folder of ``directory`` with its number of files as ``files_in`` lists them (unread).
    ``names`` says what the files are: as a class holds them, their formats, and as a folder's contents."""
    held, formats, contents = names
    folders = class_folders(directory)
    if not folders:
        raise DataError(
            f"no class sub-folders; put each class's {held} in its own folder, e.g. {example}", file=str(directory)
        )
    counts = {folder: len(files_in(directory / folder)) for folder in folders}
    empty = [folder for folder, count in counts.items() if count == 0]
    if empty:
        raise DataError(
            f"class folder {empty[0]!r} holds no {formats} files ({len(empty)} such folders); add its "
            f"{contents} or remove the folder",
            file=str(directory / empty[0]),
        )
    return counts


def _images_in(folder: Path) -> list[Path]:
    return [path for path in sorted(folder.iterdir()) if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()]


def load_folder_split(
    name: str, directory: Path, option: str, input_shape: tuple[int, ...], class_names: list[str] | None
) -> tuple[Split, list[str], dict[str, str]]:
    """One split, the class names (``class_names`` or the folders'), and a digest per image file.

    A split other than the training split may hold only some of the classes; a class the
    training split does not have is refused.
    """
    image_mode(input_shape)
    folders = list(folder_classes(directory, option))
    classes = class_names if class_names is not None else folders
    require_known_classes(folders, classes, directory)
    files = [(classes.index(folder), path) for folder in folders for path in _images_in(directory / folder)]
    if not files:
        raise DataError(f"no PNG or JPEG files in the class folders {folders}", file=str(directory))
    images = np.empty((len(files), *input_shape), dtype=np.uint8)
    digests = {}
    for index, (_, path) in enumerate(files):
        data = read_bytes(path)
        images[index] = decode_image(data, input_shape, str(path))
        digests[f"{name}/{path.relative_to(directory).as_posix()}"] = sha256_bytes(data)
    labels = np.array([label for label, _ in files], dtype=np.int64)
    return make_split(name, images, labels, str(directory)), list(classes), digests
