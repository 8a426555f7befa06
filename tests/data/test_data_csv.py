"""CSV files: label column plus pixels, with or without a header, and the rows that are wrong."""

from __future__ import annotations

import numpy as np
import pytest

from specforge.base.errors import DataError
from specforge.data import load_dataset

from .builders import tiny_images, tiny_labels

SHAPE = (2, 3, 1)


def write_csv(path, labels, pixels, header=None, label_at=0):
    rows = [",".join(header)] if header else []
    for label, row in zip(labels, pixels.reshape(len(pixels), -1)):
        cells = [str(v) for v in row]
        cells.insert(label_at, str(label))
        rows.append(",".join(cells))
    path.write_text("\n".join(rows) + "\n")
    return path


def test_headerless_file_label_first(tmp_path):
    images, labels = tiny_images(5, 2, 3), tiny_labels(5)
    write_csv(tmp_path / "train.csv", labels, images)
    dataset = load_dataset({"source": "csv", "train": "train.csv"}, SHAPE, validation="none", base_dir=tmp_path)
    assert dataset.train.images.dtype == np.uint8 and dataset.train.images.shape == (5, 2, 3, 1)
    np.testing.assert_array_equal(dataset.train.images[..., 0], images)
    np.testing.assert_array_equal(dataset.train.labels, labels)


def test_header_with_a_label_column_anywhere(tmp_path):
    images, labels = tiny_images(4, 2, 3), tiny_labels(4)
    header = ["p0", "p1", "label", "p2", "p3", "p4", "p5"]
    write_csv(tmp_path / "train.csv", labels, images, header=header, label_at=2)
    write_csv(tmp_path / "test.csv", labels[:2], images[:2], header=header, label_at=2)
    dataset = load_dataset({"source": "csv", "train": "train.csv", "test": "test.csv"}, SHAPE, base_dir=tmp_path)
    np.testing.assert_array_equal(dataset.train.images.reshape(4, 6), images.reshape(4, 6))
    np.testing.assert_array_equal(dataset.test.labels, labels[:2])


def test_label_column_by_index_and_float_pixels_kept(tmp_path):
    pixels = np.array([[0.5, 0.25, 1, 0, 0, 0], [0, 0, 0, 0.75, 0, 1]])
    write_csv(tmp_path / "t.csv", [1, 0], pixels, label_at=6)
    spec = {"source": "csv", "train": "t.csv", "label_column": 6, "header": False}
    dataset = load_dataset(spec, SHAPE, validation="none", base_dir=tmp_path)
    assert dataset.train.images.dtype == np.float32
    np.testing.assert_allclose(dataset.train.images.reshape(2, 6), pixels)
    assert dataset.num_classes == 2


def test_ragged_row_names_the_line(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("label,a,b,c,d,e,f\n1,0,0,0,0,0,0\n0,1,2,3,4,5\n")
    with pytest.raises(DataError) as error:
        load_dataset({"source": "csv", "train": "t.csv"}, SHAPE, base_dir=tmp_path)
    problem = error.value.problems[0]
    assert problem.location.file == str(path)
    assert problem.message == (
        "cannot read the CSV: the number of columns changed from 7 to 6 on line 3; every row "
        "needs the label and the same number of pixel values, all numbers"
    )


def test_text_in_a_pixel_cell(tmp_path):
    (tmp_path / "t.csv").write_text("1,0,0,0,0,0,0\n0,1,x,3,4,5,6\n")
    with pytest.raises(DataError, match="could not convert string 'x'"):
        load_dataset({"source": "csv", "train": "t.csv"}, SHAPE, base_dir=tmp_path)


def test_named_label_column_without_header(tmp_path):
    (tmp_path / "t.csv").write_text("1,0,0,0,0,0,0\n")
    with pytest.raises(DataError, match="label_column 'digit' names a column but the file has no header row"):
        load_dataset({"source": "csv", "train": "t.csv", "label_column": "digit"}, SHAPE, base_dir=tmp_path)


def test_unknown_label_column_name(tmp_path):
    (tmp_path / "t.csv").write_text("y,a,b,c,d,e,f\n1,0,0,0,0,0,0\n")
    with pytest.raises(DataError, match=r"no column named 'digit'; the header starts \['y', 'a', 'b', 'c', 'd'\]"):
        load_dataset({"source": "csv", "train": "t.csv", "label_column": "digit"}, SHAPE, base_dir=tmp_path)


def test_empty_file(tmp_path):
    (tmp_path / "t.csv").write_text("")
    with pytest.raises(DataError, match="the CSV has no rows"):
        load_dataset({"source": "csv", "train": "t.csv"}, SHAPE, base_dir=tmp_path)


@pytest.mark.parametrize("header", ["label,a,b,c,d,e,f\n", ""])
@pytest.mark.parametrize(
    "bad_row, reported",
    [
        ("0,1,x,3,4,5,6\n", ("could not convert string 'x' to float32 on line {line}, column 3")),
        ("0,1,2,3,4,5\n", ("the number of columns changed from 7 to 6 on line {line}")),
    ],
)
def test_a_bad_row_is_reported_on_its_own_line(tmp_path, header, bad_row, reported):
    (tmp_path / "t.csv").write_text(header + "1,0,0,0,0,0,0\n2,0,0,0,0,0,0\n" + bad_row)
    with pytest.raises(DataError) as error:
        load_dataset({"source": "csv", "train": "t.csv"}, SHAPE, base_dir=tmp_path)
    line = 4 if header else 3
    assert reported.format(line=line) in error.value.problems[0].message
