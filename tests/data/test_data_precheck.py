"""specforge validate checks the data as far as headers and small label files tell; --no-data skips it; what
only training finds names the spec file, its line and the data file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml
from typer.testing import CliRunner

from specforge import api
from specforge.base.errors import DataError
from specforge.cli.commands import app

from .builders import write_idx


def write_spec(root: Path, data: dict, input_shape=(4, 5, 1), fit: dict | None = None) -> Path:
    spec = {
        "version": 1,
        "name": "tiny",
        "data": data,
        "model": {
            "input_shape": list(input_shape),
            "layers": [{"type": "Flatten"}, {"type": "Dense", "units": 3, "activation": "softmax"}],
        },
        "compile": {"optimizer": "adam", "loss": "categorical_crossentropy", "metrics": ["accuracy"]},
        "fit": {"epochs": 1, **(fit or {})},
    }
    path = root / "tiny.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def validate(path: Path, *options: str):
    return CliRunner().invoke(app, ["validate", str(path), *options])


def line_of(path: Path, text: str) -> int:
    return next(number for number, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def test_a_missing_data_file_is_found_by_validate_and_skipped_with_no_data(idx_set):
    spec = write_spec(idx_set["base_dir"], {**idx_set["spec"], "test_labels": "idx/gone.idx.gz"})
    result = validate(spec)
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"{idx_set['root'] / 'gone.idx.gz'}: error: no such file (given by "
        "data.test_labels); relative paths start at the spec file's directory"
    )
    assert validate(spec, "--no-data").exit_code == 0


def test_images_that_do_not_fit_the_input_shape_are_located_at_the_setting(idx_set):
    spec = write_spec(idx_set["base_dir"], idx_set["spec"], input_shape=(28, 28, 1))
    result = validate(spec)
    assert result.exit_code == 2
    assert result.output.startswith(f"{spec}:{line_of(spec, 'input_shape') + 1}:")
    assert f"in {idx_set['root'] / 'train_images.idx.gz'}: train images are 4x5 (20 values each)" in result.output


def test_a_reshape_that_does_not_fit_the_stored_examples_is_located_at_the_reshape(idx_set):
    data = {**idx_set["spec"], "preprocessing": {"reshape": [3, 3, 1]}}
    spec = write_spec(idx_set["base_dir"], data, input_shape=(3, 3, 1))
    result = validate(spec)
    assert result.exit_code == 2 and "<input>" not in result.output
    assert result.output.startswith(f"{spec}:{line_of(spec, 'reshape') + 1}:")
    assert "cannot be reshaped to model.input_shape [3, 3, 1]" in result.output


def test_labels_beyond_the_output_units_are_found_by_validate(idx_set):
    write_idx(idx_set["root"] / "test_labels.idx.gz", np.array([0, 1, 2, 5, 0, 1], np.uint8))
    spec = write_spec(idx_set["base_dir"], idx_set["spec"])
    result = validate(spec)
    assert result.exit_code == 2
    assert result.output.startswith(f"{spec}:{line_of(spec, 'layers') + 1}:")
    assert "test label 5 at index 3 is outside [0, 3) (1 such labels); give the last layer 6 units" in result.output


def test_monitoring_validation_values_without_validation_data_is_refused_by_validate(idx_set):
    fit = {"validation": "none", "callbacks": [{"type": "EarlyStopping", "monitor": "val_loss"}]}
    spec = write_spec(idx_set["base_dir"], idx_set["spec"], fit=fit)
    result = validate(spec, "--no-data")
    assert result.exit_code == 2
    assert result.output.startswith(f"{spec}:{line_of(spec, 'monitor')}:")
    assert "monitors 'val_loss', which training does not report (there is no validation data" in result.output


def test_a_missing_validation_split_is_refused_by_validate(idx_set):
    data = {key: value for key, value in idx_set["spec"].items() if not key.startswith("test")}
    spec = write_spec(idx_set["base_dir"], data, fit={"validation": "test"})
    result = validate(spec)
    assert result.exit_code == 2
    assert result.output.startswith(f"{spec}:{line_of(spec, 'validation: test')}:")
    assert "data has no test split" in result.output


def test_what_only_training_finds_names_the_spec_line_and_the_data_file(tmp_path):
    rows = "\n".join(f"{label},1,2,3,4" for label in (0, 1, 2, 0, 7, 1))
    (tmp_path / "train.csv").write_text(rows + "\n")
    spec = write_spec(
        tmp_path,
        {"source": "csv", "train": "train.csv", "num_classes": 3},
        input_shape=(4,),
        fit={"validation": "none"},
    )
    assert validate(spec).exit_code == 0  # CSV labels are read only with the whole file
    try:
        api.load_data(api.load_spec(spec))
    except DataError as error:
        (problem,) = error.problems
    assert (problem.location.file, problem.location.line) == (str(spec), line_of(spec, "num_classes"))
    assert problem.message.startswith(f"in {tmp_path / 'train.csv'}: train label 7 at index 4 is outside [0, 3)")
