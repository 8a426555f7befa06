"""Looking at the data: per-split statistics, and a PNG grid of sample images with their labels."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from specforge.base.errors import DataError
from specforge.base.fileio import atomic_open
from specforge.data.dataset import Dataset
from specforge.data.splits import Split
from specforge.data.table.info import column_info, row_info, target_info
from specforge.data.text.info import text_info

CELL_MIN_PX = 56
LABEL_PX = 14


def split_info(split: Split, num_classes: int | None) -> dict:
    """Count, shape, dtype, value range and class balance of one split (JSON-friendly); no class balance for a
    regression (``num_classes`` None)."""
    info = {
        "count": len(split),
        "image_shape": list(split.images.shape[1:]),
        "dtype": str(split.images.dtype),
        "min": split.images.min().item() if len(split) else None,
        "max": split.images.max().item() if len(split) else None,
        "file": split.images_file,
    }
    if split.labels is not None and num_classes is not None:
        info["labels_dtype"] = str(split.labels.dtype)
        info["class_counts"] = np.bincount(split.labels, minlength=num_classes).tolist()
    return info


def data_info(dataset: Dataset) -> dict:
    """Statistics of every split present, with the classes, preprocessing and source hash; for a table, also
    each feature column (type, missing cells, range or vocabulary), the target's balance or distribution, and the
    rows of each split and those left out for a missing target (``split_rows``, ``dropped_missing_target``)."""
    regression = dataset.preprocessing.regression
    info = {
        "num_classes": dataset.num_classes,
        "class_names": list(dataset.class_names),
        "preprocessing": dataset.preprocessing.to_dict(),
        "source_hash": dataset.source_hash,
        "splits": {
            name: split_info(split, None if regression else dataset.num_classes)
            for name, split in dataset.splits().items()
        },
    }
    pipeline = dataset.preprocessing.pipeline
    if pipeline is not None:
        tables = {name: split.table for name, split in dataset.splits().items() if split.table is not None}
        info["columns"] = column_info(pipeline, tables)
        info["target"] = target_info(pipeline, tables)
        info.update(row_info(tables))
    vectorizer = dataset.preprocessing.vectorizer
    if vectorizer is not None:
        info["preprocessing"] = {
            **dataset.preprocessing.to_dict(),
            "text": {key: value for key, value in vectorizer.to_dict().items() if key not in ("vocabulary", "idf")},
        }
        info["text"] = text_info(vectorizer, {name: split.texts or [] for name, split in dataset.splits().items()})
    return info


def _as_pixels(images: np.ndarray) -> np.ndarray:
    """uint8 ``(N, H, W)`` or ``(N, H, W, 3|4)`` for drawing; other value ranges stretched to 0..255."""
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[-1] not in (3, 4)):
        raise DataError(
            f"cannot draw images of shape {list(images.shape[1:])}; a grid needs (H, W) or "
            "(H, W, 1|3|4) images (give model.input_shape so flat rows become images)"
        )
    if images.dtype == np.uint8:
        return images
    low, high = float(images.min()), float(images.max())
    scaled = (images.astype(np.float32) - low) * (255.0 / (high - low) if high > low else 0.0)
    return scaled.round().astype(np.uint8)


def render_grid(split: Split, class_names: tuple[str, ...] | list[str], path: Path, count: int = 25) -> Path:
    """Write ``count`` images of ``split`` as a PNG grid, each captioned with its class, taking each class in turn
    (the first of every class, then the second, ...) so that every class shows; return the path."""
    from PIL import Image, ImageDraw, ImageFont

    count = min(count, len(split))
    if count < 1:
        raise DataError(f"the {split.name} split has no images to draw", file=split.images_file)
    chosen = every_class_in_turn(split.labels, count)
    pixels = _as_pixels(np.asarray(split.images)[chosen])
    height, width = pixels.shape[1:3]
    zoom = max(1, math.ceil(CELL_MIN_PX / max(height, width)))
    cell_w, cell_h = width * zoom, height * zoom + LABEL_PX
    columns = math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    grid = Image.new("RGB", (columns * cell_w, rows * cell_h), "white")
    draw = ImageDraw.Draw(grid)
    font = ImageFont.load_default()
    for index in range(count):
        left, top = (index % columns) * cell_w, (index // columns) * cell_h
        tile = Image.fromarray(pixels[index]).resize((width * zoom, height * zoom), Image.Resampling.NEAREST)
        grid.paste(tile.convert("RGB"), (left, top))
        if split.labels is not None:
            label = int(split.labels[chosen[index]])
            caption = class_names[label] if label < len(class_names) else str(label)
            draw.text((left + 2, top + height * zoom), caption, fill="black", font=font)
    path = Path(path)
    with atomic_open(path, "wb") as handle:
        grid.save(handle, format="PNG")
    return path


def every_class_in_turn(labels: np.ndarray | None, count: int) -> np.ndarray:
    """Indices of ``count`` examples: the first example of each class, then the second of each, ... (the first
    ``count`` examples when there are no labels), in split order within a class."""
    if labels is None:
        return np.arange(count)
    labels = np.asarray(labels).astype(np.int64).reshape(len(labels), -1)[:, 0]
    rank = np.empty(len(labels), dtype=np.int64)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        rank[members] = np.arange(len(members))
    return np.lexsort((labels, rank))[:count]
