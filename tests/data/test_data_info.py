"""data_info statistics and the PNG grid of samples."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from PIL import Image

from specforge.base.errors import DataError
from specforge.data import data_info, load_dataset, render_grid
from specforge.data.info import CELL_MIN_PX, LABEL_PX
from specforge.data.splits import Split


def test_info_counts_shapes_ranges_and_balance(idx_set):
    dataset = load_dataset(idx_set["spec"], (4, 5, 1), validation=0.25, base_dir=idx_set["base_dir"])
    info = data_info(dataset)
    assert set(info["splits"]) == {"train", "validation", "test"}
    train = info["splits"]["train"]
    images, labels = idx_set["arrays"]["train_images"][:9], idx_set["arrays"]["train_labels"][:9]
    counts = Counter(labels.tolist())
    assert train["count"] == 9 and train["image_shape"] == [4, 5] and train["dtype"] == "uint8"
    assert (train["min"], train["max"]) == (int(images.min()), int(images.max()))
    assert train["class_counts"] == [counts[c] for c in range(3)]
    assert info["num_classes"] == 3 and info["source_hash"] == dataset.source_hash
    assert info["preprocessing"] == dataset.preprocessing.to_dict()


def test_grid_shows_images_enlarged_with_captions(idx_set, tmp_path):
    dataset = load_dataset(idx_set["spec"], (4, 5, 1), base_dir=idx_set["base_dir"])
    path = render_grid(dataset.train, dataset.class_names, tmp_path / "out" / "grid.png", count=5)
    assert path == tmp_path / "out" / "grid.png" and list(path.parent.iterdir()) == [path]
    zoom = -(-CELL_MIN_PX // 5)
    cell_w, cell_h = 5 * zoom, 4 * zoom + LABEL_PX
    with Image.open(path) as grid:
        assert grid.size == (3 * cell_w, 2 * cell_h)  # 5 images: 3 columns, 2 rows
        pixels = np.asarray(grid.convert("L"))
    second = pixels[0 : 4 * zoom : zoom, cell_w : cell_w + 5 * zoom : zoom]
    from specforge.data.info import every_class_in_turn

    np.testing.assert_array_equal(second, dataset.train.images[every_class_in_turn(dataset.train.labels, 5)[1]])
    caption = pixels[4 * zoom : cell_h, 0:cell_w]
    assert caption.min() < 128  # dark text on the white caption strip


def test_grid_of_float_colour_images(tmp_path):
    images = np.random.default_rng(0).random((4, 6, 6, 3)).astype(np.float32)
    path = render_grid(Split("x", images, np.array([0, 1, 0, 1])), ["a", "b"], tmp_path / "g.png")
    with Image.open(path) as grid:
        assert grid.mode == "RGB" and grid.size[0] == 2 * 6 * (-(-CELL_MIN_PX // 6))


def test_grid_of_flat_rows_is_refused(tmp_path):
    with pytest.raises(DataError, match=r"cannot draw images of shape \[20\]"):
        render_grid(Split("x", np.zeros((3, 20), np.uint8), None), [], tmp_path / "g.png")


def test_the_sample_grid_shows_every_class_with_the_usual_file_mode(tmp_path):
    import os

    from specforge.data.info import every_class_in_turn, render_grid
    from specforge.data.splits import make_split

    labels = np.array([0] * 30 + [1] * 5 + [2] * 5)
    assert list(labels[every_class_in_turn(labels, 6)]) == [0, 1, 2, 0, 1, 2]
    assert list(every_class_in_turn(labels, 4)) == [0, 30, 35, 1]
    images = np.zeros((40, 4, 4), dtype=np.uint8)
    split = make_split("train", images, labels, "train.npy")
    mask = os.umask(0o022)
    try:
        path = render_grid(split, ["a", "b", "c"], tmp_path / "grid.png", 6)
    finally:
        os.umask(mask)
    assert (path.stat().st_mode & 0o777) == 0o644


def test_a_category_panel_labels_each_bar_with_its_value_and_count():
    """Each bar of a categorical column has its category at its left and its count at its right."""
    from specforge.data.table.info import column_panel

    panel = np.asarray(column_panel(["rosé"] * 5 + ["red"] * 9 + ["white"] * 2, "colour").convert("RGB")).astype(int)
    blue = np.abs(panel - [70, 130, 180]).sum(axis=2) < 30
    dark = panel.sum(axis=2) < 450  # text, antialiased
    rows = np.flatnonzero(blue.any(axis=1))
    bands = np.split(rows, np.flatnonzero(np.diff(rows) > 1) + 1)
    assert len(bands) == 3
    lengths = []
    for band in bands:
        columns = np.flatnonzero(blue[band].any(axis=0))
        lengths.append(len(columns))
        assert dark[band][:, : columns[0]].sum() > 10 and dark[band][:, columns[-1] + 1 :].sum() > 5
    assert lengths[0] > lengths[1] > lengths[2]  # red 9, rosé 5, white 2: the most frequent first
    assert dark[: bands[0][0]].sum() > 20  # the title above the bars


def test_a_target_panel_names_its_column_as_the_target():
    from specforge.data.table.info import target_title

    assert target_title("cultivar") == "cultivar (target)"
