"""Image folders: one sub-folder per class, PNG and JPEG through Pillow, converted to the input shape."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from specforge.base.errors import DataError
from specforge.data import load_dataset, read_image


def save(path, pixels, format=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, format=format)
    return path


@pytest.fixture
def folders(tmp_path):
    """train/{cat,dog} with 2 and 1 grey 6x4 PNGs, test/dog with one RGB JPEG."""
    rng = np.random.default_rng(0)
    pictures = {name: rng.integers(0, 256, (4, 6), dtype=np.uint8) for name in ("c1", "c2", "d1")}
    save(tmp_path / "train/cat/1.png", pictures["c1"])
    save(tmp_path / "train/cat/2.PNG", pictures["c2"])
    save(tmp_path / "train/dog/1.png", pictures["d1"])
    (tmp_path / "train/dog/notes.txt").write_text("not an image")
    save(tmp_path / "test/dog/1.jpg", np.full((4, 6, 3), 128, np.uint8))
    return tmp_path, pictures


def test_labels_follow_the_sorted_folder_names(folders):
    root, pictures = folders
    dataset = load_dataset({"source": "image_folder", "train": "train", "test": "test"}, (4, 6, 1), base_dir=root)
    assert dataset.class_names == ("cat", "dog") and dataset.num_classes == 2
    assert dataset.train.labels.tolist() == [0, 0, 1] and dataset.test.labels.tolist() == [1]
    assert dataset.train.images.dtype == np.uint8 and dataset.train.images.shape == (3, 4, 6, 1)
    for index, name in enumerate(("c1", "c2", "d1")):
        np.testing.assert_array_equal(dataset.train.images[index, ..., 0], pictures[name])
    assert abs(int(dataset.test.images[0, 0, 0, 0]) - 128) <= 2  # JPEG is lossy


def test_images_are_converted_to_the_input_channels_and_size(folders):
    root, pictures = folders
    dataset = load_dataset({"source": "image_folder", "train": "train"}, (2, 3, 3), validation="none", base_dir=root)
    assert dataset.train.images.shape == (3, 2, 3, 3)
    reference = np.asarray(Image.fromarray(pictures["c1"]).convert("RGB").resize((3, 2), Image.Resampling.BILINEAR))
    np.testing.assert_array_equal(dataset.train.images[0], reference)


def test_unreadable_image_names_the_file(folders):
    root, _ = folders
    broken = root / "train/dog/2.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(DataError) as error:
        load_dataset({"source": "image_folder", "train": "train"}, (4, 6, 1), base_dir=root, validation="none")
    problem = error.value.problems[0]
    assert problem.location.file == str(broken)
    assert problem.message.startswith("cannot read the image (") and problem.message.endswith("; use PNG or JPEG files")


def test_a_file_that_is_no_image_says_so_in_words(folders):
    root, _ = folders
    broken = root / "train/dog/2.png"
    broken.write_bytes(b"plain text, not pixels")
    with pytest.raises(DataError) as error:
        load_dataset({"source": "image_folder", "train": "train"}, (4, 6, 1), base_dir=root, validation="none")
    assert error.value.problems[0].format() == (
        f"{broken}: error: not an image file Pillow can read; use PNG or JPEG files"
    )


def test_truncated_png(folders):
    root, _ = folders
    path = root / "train/cat/1.png"
    path.write_bytes(path.read_bytes()[:60])
    with pytest.raises(DataError, match="cannot read the image"):
        load_dataset({"source": "image_folder", "train": "train"}, (4, 6, 1), base_dir=root, validation="none")


def test_test_class_missing_from_training(folders):
    root, pictures = folders
    save(root / "test/bird/1.png", pictures["c1"])
    with pytest.raises(DataError, match=r"class folder 'bird' is not among the classes \['cat', 'dog'\]"):
        load_dataset({"source": "image_folder", "train": "train", "test": "test"}, (4, 6, 1), base_dir=root)


def test_folder_without_class_folders(tmp_path):
    save(tmp_path / "flat/1.png", np.zeros((4, 6), np.uint8))
    with pytest.raises(DataError, match="no class sub-folders; put each class's images in its own folder"):
        load_dataset({"source": "image_folder", "train": "flat"}, (4, 6, 1), base_dir=tmp_path, validation="none")


def test_missing_directory(tmp_path):
    with pytest.raises(DataError, match=r"no such directory \(given by data.train\)"):
        load_dataset({"source": "image_folder", "train": "nope"}, (4, 6, 1), base_dir=tmp_path, validation="none")


def test_input_shape_that_is_not_an_image(folders):
    root, _ = folders
    with pytest.raises(DataError, match=r"images cannot be converted to model.input_shape \[24\]"):
        load_dataset({"source": "image_folder", "train": "train"}, (24,), base_dir=root, validation="none")


def test_read_image_matches_the_folder_conversion(folders):
    root, pictures = folders
    np.testing.assert_array_equal(read_image(root / "train/dog/1.png", (4, 6)), pictures["d1"])


def test_an_empty_class_folder_is_refused_where_it_is(folders):
    root, _ = folders
    (root / "train/emu").mkdir()
    with pytest.raises(DataError) as error:
        load_dataset({"source": "image_folder", "train": "train"}, (4, 6, 1), base_dir=root, validation="none")
    (problem,) = error.value.problems
    assert problem.location.file == str(root / "train/emu")
    assert problem.message == (
        "class folder 'emu' holds no PNG or JPEG files (1 such folders); add its images or remove the folder"
    )
