"""IDX files: raw and gzip, every type code, and each way a file can be wrong."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from specforge.base.errors import DataError
from specforge.data import load_dataset
from specforge.data.idx import parse_idx, read_idx_file

from .builders import idx_bytes, tiny_images, tiny_labels, write_idx

SHAPE = (4, 5, 1)


@pytest.mark.parametrize("dtype", ["u1", "i1", ">i2", ">i4", ">f4", ">f8"])
def test_every_type_code_round_trips(tmp_path, dtype):
    array = (np.arange(2 * 3 * 4).reshape(2, 3, 4) - (0 if dtype == "u1" else 7)).astype(dtype)
    path = write_idx(tmp_path / "a.idx", array)
    loaded, _ = read_idx_file(path)
    np.testing.assert_array_equal(loaded, array)
    assert loaded.dtype.isnative and loaded.dtype.kind == np.dtype(dtype).kind


def test_uint8_payload_is_a_read_only_view_not_a_copy(tmp_path):
    data = idx_bytes(tiny_images(3))
    array = parse_idx(data, tmp_path / "x")
    assert not array.flags.writeable
    assert array.base is not None and np.shares_memory(array, np.frombuffer(data, np.uint8))


def test_raw_and_gzip_files_give_the_same_data_set(idx_set, tmp_path):
    raw_spec = dict(idx_set["spec"])
    for role, array in idx_set["arrays"].items():
        write_idx(tmp_path / f"{role}.raw", array, compress=False)
        raw_spec[role] = f"{role}.raw"
    gz = load_dataset(idx_set["spec"], SHAPE, base_dir=tmp_path)
    raw = load_dataset(raw_spec, SHAPE, base_dir=tmp_path)
    for dataset in (gz, raw):
        np.testing.assert_array_equal(dataset.train.images, idx_set["arrays"]["train_images"])
        np.testing.assert_array_equal(dataset.test.labels, idx_set["arrays"]["test_labels"])
        assert dataset.train.labels.dtype == np.int64
    assert gz.source_hash != raw.source_hash


def test_wrong_magic_number_names_the_file_and_the_expected_numbers(idx_set):
    path = idx_set["root"] / "train_images.idx.gz"
    path.write_bytes(gzip.compress(b"\x03\x08\x00\x00" + b"\0" * 40))
    with pytest.raises(DataError) as error:
        load_dataset(idx_set["spec"], SHAPE, base_dir=idx_set["base_dir"])
    assert error.value.problems[0].location.file == str(path)
    assert "not an IDX file: magic number 0x03080000; expected 0x00000803 (images) or 0x00000801" in str(error.value)


def test_truncated_payload(idx_set):
    path = idx_set["root"] / "train_images.idx.gz"
    path.write_bytes(gzip.compress(idx_bytes(tiny_images(12))[:-7]))
    with pytest.raises(
        DataError,
        match=r"truncated: the header declares 12x4x5 values of uint8 \(240 bytes\) but "
        r"the file holds 233; download the file again",
    ) as error:
        load_dataset(idx_set["spec"], SHAPE, base_dir=idx_set["base_dir"])
    assert error.value.problems[0].location.file == str(path)


def test_truncated_gzip_stream(idx_set):
    path = idx_set["root"] / "test_labels.idx.gz"
    path.write_bytes(path.read_bytes()[:-12])
    with pytest.raises(DataError, match="truncated or corrupt gzip data"):
        load_dataset(idx_set["spec"], SHAPE, base_dir=idx_set["base_dir"])


def test_truncated_header(tmp_path):
    with pytest.raises(DataError, match="the header declares 3 dimensions but the file ends at byte 9"):
        parse_idx(b"\x00\x00\x08\x03" + b"\x00" * 5, tmp_path / "x")
    with pytest.raises(DataError, match="too short for an IDX header"):
        parse_idx(b"\x00\x00", tmp_path / "x")


def test_trailing_bytes_are_refused(tmp_path):
    with pytest.raises(DataError, match="has trailing bytes"):
        parse_idx(idx_bytes(tiny_labels(5)) + b"\x01", tmp_path / "x")


def test_image_and_label_counts_differ(idx_set):
    write_idx(idx_set["root"] / "train_labels.idx.gz", tiny_labels(11))
    with pytest.raises(DataError) as error:
        load_dataset(idx_set["spec"], SHAPE, base_dir=idx_set["base_dir"])
    labels_file = idx_set["root"] / "train_labels.idx.gz"
    assert f"train has 12 images but {labels_file} has 11 labels; every image needs exactly one label" in str(
        error.value
    )


def test_missing_file_names_the_option_and_where_relative_paths_start(idx_set):
    spec = {**idx_set["spec"], "test_labels": "idx/nope.gz"}
    with pytest.raises(DataError) as error:
        load_dataset(spec, SHAPE, base_dir=idx_set["base_dir"])
    problem = error.value.problems[0]
    assert problem.location.file == str(idx_set["base_dir"] / "idx/nope.gz")
    assert problem.message == (
        "no such file (given by data.test_labels); relative paths start at the spec file's directory"
    )


def test_a_split_needs_both_of_its_files(idx_set):
    spec = dict(idx_set["spec"])
    del spec["test_labels"]
    with pytest.raises(DataError, match=r"data\.test_labels is missing: the test images and labels are given together"):
        load_dataset(spec, SHAPE, base_dir=idx_set["base_dir"])


def test_labels_file_given_as_images(idx_set):
    spec = {**idx_set["spec"], "train_images": idx_set["spec"]["train_labels"]}
    with pytest.raises(DataError, match=r"train images have shape \(12,\); expected .*is this a labels file"):
        load_dataset(spec, SHAPE, base_dir=idx_set["base_dir"])


def test_separate_validation_files_are_used_for_validation_validation(idx_set):
    spec = dict(idx_set["spec"])
    write_idx(idx_set["root"] / "v_images", tiny_images(3, seed=9))
    write_idx(idx_set["root"] / "v_labels", np.array([2, 0, 1], np.uint8))
    spec.update(validation_images="idx/v_images", validation_labels="idx/v_labels")
    dataset = load_dataset(spec, SHAPE, validation="validation", base_dir=idx_set["base_dir"])
    np.testing.assert_array_equal(dataset.validation.labels, [2, 0, 1])
    np.testing.assert_array_equal(dataset.validation.images, tiny_images(3, seed=9))
    assert len(dataset.test) == 6 and len(dataset.train) == 12
