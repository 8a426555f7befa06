"""Inputs to predict on, decoded to a model's input shape: image files, arrays, a data split.

PNG/JPEG files are converted as image folders are (to the model's channels, resized to its height and
width).  A one-channel model expects MNIST's white digits on black: an image whose mean brightness is
above ``INVERT_ABOVE`` (dark on light) is inverted, unless ``invert=False``.  ``.npy``/``.npz`` arrays
hold a batch ``(N, H, W[, C])`` or one example ``(H, W[, C])``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from math import prod
from pathlib import Path
from typing import Protocol

import numpy as np

from specforge.base.errors import DataError
from specforge.data.files import read_bytes
from specforge.data.image_decode import decode_image
from specforge.data.splits import Split

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
ARRAY_SUFFIXES = (".npy", ".npz")
#: A one-channel image brighter than this on average is dark-on-light and gets inverted.
INVERT_ABOVE = 127
#: .npz keys tried, in order, when an archive holds several arrays.
NPZ_KEYS = ("x_test", "images", "x", "inputs")


class ModelInput(Protocol):
    """What decoding needs to know of a model: its input (without the batch) and the stored images' shape."""

    path: Path
    input_shape: tuple[int, ...]
    image_shape: tuple[int, ...] | None


@dataclass
class Inputs:
    """Examples in the model's input shape (stored dtype), where each came from, and labels when known."""

    examples: np.ndarray
    sources: list[str]
    labels: np.ndarray | None = None
    inverted: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.examples)

    def head(self, limit: int | None) -> Inputs:
        if limit is None:
            return self
        cut = slice(0, limit)
        return Inputs(
            self.examples[cut],
            self.sources[cut],
            None if self.labels is None else self.labels[cut],
            None if self.inverted is None else self.inverted[cut],
        )


def split_inputs(split: Split, model: ModelInput, where: str, split_name: str) -> Inputs:
    """The examples of the split ``split_name`` of the data ``where`` names, with labels, in the model's shape."""
    if prod(split.images.shape[1:]) != prod(model.input_shape):
        raise DataError(
            f"{where} {split_name} examples have shape {list(split.images.shape[1:])}, the model takes "
            f"{list(model.input_shape)}; give data the model was trained on"
        )
    examples = np.asarray(split.images).reshape((len(split), *model.input_shape))
    return Inputs(examples, [f"{split_name}[{i}]" for i in range(len(split))], np.asarray(split.labels))


def read_files(paths: Sequence[str | Path], model: ModelInput, *, invert: bool = True) -> Inputs:
    """Images and arrays from files, in the order given, fitted to ``model``'s input."""
    parts: list[Inputs] = []
    images: list[Path] = []
    for path in map(Path, paths):
        suffix = path.suffix.lower()
        if suffix not in IMAGE_SUFFIXES + ARRAY_SUFFIXES:
            raise DataError(
                f"cannot predict on a {suffix or 'suffix-less'} file; give PNG/JPEG images or .npy/.npz arrays",
                file=str(path),
            )
        if not path.is_file():
            raise DataError("no such file", file=str(path))
        if suffix in IMAGE_SUFFIXES:
            images.append(path)
            continue
        if images:
            parts.append(read_images(images, model, invert=invert))
            images = []
        parts.append(read_array(path, model))
    if images:
        parts.append(read_images(images, model, invert=invert))
    if not parts:
        raise DataError("nothing to predict; give image or array files, or --data SOURCE:SPLIT")
    return _concatenate(parts)


def read_images(paths: Sequence[Path], model: ModelInput, *, invert: bool = True) -> Inputs:
    """PNG/JPEG files decoded as image folders decode them; one-channel dark-on-light images inverted."""
    shape = _image_shape(model)
    pixels = np.stack([decode_image(read_bytes(path), shape, str(path)) for path in paths])
    inverted = np.zeros(len(paths), dtype=bool)
    if invert and (len(shape) == 2 or shape[-1] == 1):
        inverted = pixels.reshape(len(pixels), -1).mean(axis=1) > INVERT_ABOVE
        pixels[inverted] = 255 - pixels[inverted]
    return Inputs(pixels.reshape((len(pixels), *model.input_shape)), [path.name for path in paths], inverted=inverted)


def read_array(path: Path, model: ModelInput) -> Inputs:
    """An .npy array or an .npz archive's images: a batch or a single example."""
    try:
        if path.suffix.lower() == ".npy":
            array = np.load(path, allow_pickle=False)
        else:
            with np.load(path, allow_pickle=False) as archive:
                array = archive[_npz_key(archive.files, path)]
    except (ValueError, OSError, EOFError) as error:
        raise DataError(
            f"cannot read the array ({error}); save it with numpy.save or numpy.savez", file=str(path)
        ) from None
    if array.dtype.kind not in "iufb":
        raise DataError(f"the array has dtype {array.dtype}; give numbers (uint8 pixels or floats)", file=str(path))
    examples, single = _fit(array, model, str(path))
    sources = [path.name] if single else [f"{path.name}[{i}]" for i in range(len(examples))]
    return Inputs(examples, sources)


def _image_shape(model: ModelInput) -> tuple[int, ...]:
    """The shape images decode to: the input's when it is an image, else the stored images' (metadata)."""
    shape = model.input_shape
    if len(shape) in (2, 3) and (len(shape) == 2 or shape[-1] in (1, 3, 4)):
        return shape
    if model.image_shape is not None and prod(model.image_shape) == prod(shape):
        return model.image_shape
    raise DataError(
        f"images cannot be converted to the model's input [N, {', '.join(map(str, shape))}]; "
        "give .npy arrays of that shape",
        file=str(model.path),
    )


def _fit(array: np.ndarray, model: ModelInput, file: str) -> tuple[np.ndarray, bool]:
    """``(examples, single)``: ``array`` as ``(N, *input_shape)``; a one-line error with both shapes otherwise."""
    shape = model.input_shape
    examples = {shape, shape[:-1] if shape[-1] == 1 and len(shape) > 1 else shape}
    if model.image_shape is not None and prod(model.image_shape) == prod(shape):
        examples.add(model.image_shape)
    if array.shape in examples:
        return array.reshape((1, *shape)), True
    if array.ndim >= 1 and array.shape[1:] in examples:
        return array.reshape((len(array), *shape)), False
    accepted = " or ".join(f"(N, {', '.join(map(str, s))})" for s in sorted(examples, key=len, reverse=True))
    raise DataError(
        f"an array of shape {tuple(array.shape)} does not fit the model's input "
        f"[N, {', '.join(map(str, shape))}]; give {accepted}, or one example without N",
        file=file,
    )


def _npz_key(keys: Sequence[str], path: Path) -> str:
    if len(keys) == 1:
        return keys[0]
    for key in NPZ_KEYS:
        if key in keys:
            return key
    raise DataError(
        f"the archive holds {sorted(keys)}; name the images one of {', '.join(NPZ_KEYS)} or save only them",
        file=str(path),
    )


def _concatenate(parts: list[Inputs]) -> Inputs:
    if len(parts) == 1:
        return parts[0]
    inverted = [p.inverted if p.inverted is not None else np.zeros(len(p), dtype=bool) for p in parts]
    dtype = np.result_type(*(p.examples.dtype for p in parts))
    return Inputs(
        np.concatenate([p.examples.astype(dtype, copy=False) for p in parts]),
        [s for p in parts for s in p.sources],
        None,
        np.concatenate(inverted),
    )


__all__ = ["Inputs", "ModelInput", "read_array", "read_files", "read_images", "split_inputs"]
