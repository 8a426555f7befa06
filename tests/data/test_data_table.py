"""The table source: reading CSV and Parquet, the fitted feature and target steps, splits, and bad input."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from needs import require
from typer.testing import CliRunner

from specforge import api
from specforge.base.defaults import with_defaults
from specforge.base.errors import DataError
from specforge.cli.commands import app
from specforge.data import DATA_SCHEMA, load_dataset
from specforge.data.table.read import read_table

HEADER = "age,city,smoker,income,label,price"
ROWS = [
    "30,paris,yes,1000,a,1.5",
    "40,rome,no,,b,2.5",
    ",paris,no,3000,a,3.5",
    "50,oslo,,7000,b,4.5",
    "20,paris,yes,0,a,5.5",
    "60,rome,no,2000,b,6.5",
]
FEATURES = [
    {"column": "age"},
    {"column": "city", "type": "categorical"},
    {"column": "smoker", "type": "binary"},
    {"column": "income", "fill": "median", "scale": "log"},
]
WIDTH = 1 + 4 + 1 + 1  # age, city (paris, rome, oslo + out of vocabulary), smoker, income


def write_csv(path: Path, rows: list[str], header: str = HEADER) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def table_spec(tmp_path: Path, **options) -> dict:
    write_csv(tmp_path / "train.csv", ROWS)
    return {"source": "table", "train": "train.csv", "features": FEATURES, "target": {"column": "label"}, **options}


def load(spec: dict, tmp_path: Path, width: int = WIDTH, validation: str = "none"):
    return load_dataset(with_defaults(spec, DATA_SCHEMA), (width,), validation=validation, base_dir=tmp_path)


def test_features_are_encoded_with_statistics_of_the_training_rows(tmp_path):
    dataset = load(table_spec(tmp_path), tmp_path)
    x = dataset.train.images
    ages = np.array([30, 40, 40, 50, 20, 60], dtype=np.float64)  # the missing age filled with the mean, 40
    np.testing.assert_allclose(x[:, 0], (ages - ages.mean()) / ages.std(), rtol=1e-6)
    # city: the sorted vocabulary oslo, paris, rome and the out-of-vocabulary column (always 0), one-hot
    np.testing.assert_array_equal(x[:, 1:5], np.eye(4)[[1, 2, 1, 0, 1, 2]])
    # smoker: no/yes, yes is 1; the missing cell takes the most frequent value, no
    np.testing.assert_array_equal(x[:, 5], [1, 0, 0, 0, 1, 0])
    # income: the missing cell takes the median 2000, then ln(1 + x)
    np.testing.assert_allclose(x[:, 6], np.log1p([1000, 2000, 3000, 7000, 0, 2000]), rtol=1e-6)
    assert dataset.class_names == ("a", "b")
    np.testing.assert_array_equal(dataset.train.labels, [0, 1, 0, 1, 0, 1])
    recorded = dataset.preprocessing.to_dict()["table"]
    assert recorded["features"][1]["vocabulary"] == ["oslo", "paris", "rome"]
    assert recorded["features"][0]["center"] == pytest.approx(40.0)


def test_the_test_file_is_encoded_with_the_training_statistics_and_unseen_categories_are_all_zero(tmp_path):
    spec = table_spec(tmp_path, test="test.csv")
    write_csv(tmp_path / "test.csv", ["1000,tokyo,yes,5,a,0", "40,paris,no,5,b,0", "40,NA,no,5,b,0"])
    dataset = load(spec, tmp_path)
    ages = np.array([30, 40, 40, 50, 20, 60], dtype=np.float64)
    np.testing.assert_allclose(dataset.test.images[:, 0], ([1000, 40, 40] - ages.mean()) / ages.std(), rtol=1e-6)
    # tokyo, never seen in training, is no column at all (scikit-learn's handle_unknown='ignore'); NA is
    # missing and takes the most frequent city, paris
    np.testing.assert_array_equal(dataset.test.images[:, 1:5], [[0, 0, 0, 0], [0, 1, 0, 0], [0, 1, 0, 0]])


@pytest.mark.parametrize(
    "scale, expected",
    [
        ("minmax", lambda v: (v - 0) / 7000),
        ("none", lambda v: v),
        ("standardize", lambda v: (v - v.mean()) / v.std()),
    ],
)
def test_numeric_scalings_and_constant_fill(tmp_path, scale, expected):
    spec = table_spec(tmp_path)
    spec["features"] = [{"column": "income", "fill": "constant", "fill_value": 0, "scale": scale}]
    x = load(spec, tmp_path, width=1).train.images[:, 0]
    np.testing.assert_allclose(x, expected(np.array([1000, 0, 3000, 7000, 0, 2000], dtype=np.float64)), rtol=1e-6)


def test_numeric_targets_several_columns_standardized(tmp_path):
    spec = table_spec(tmp_path, target={"column": ["price", "age"], "type": "numeric", "standardize": True})
    spec["features"] = [{"column": "income"}]
    write_csv(tmp_path / "train.csv", ["30,paris,yes,1000,a,1.5", "40,rome,no,5,b,2.5", "50,oslo,no,7,b,4.5"])
    dataset = load(spec, tmp_path, width=1)
    y = np.array([[1.5, 30], [2.5, 40], [4.5, 50]])
    np.testing.assert_allclose(dataset.train.labels, (y - y.mean(0)) / y.std(0), rtol=1e-6)
    assert dataset.preprocessing.regression and dataset.class_names == ("price", "age")
    np.testing.assert_allclose(dataset.preprocessing.target_units(dataset.train.labels), y, rtol=1e-6)


def test_stratified_seeded_fraction(tmp_path):
    rows = [f"{i},paris,yes,{i},{'a' if i % 4 else 'b'},1" for i in range(200)]
    write_csv(tmp_path / "train.csv", rows)
    spec = {
        "source": "table",
        "train": "train.csv",
        "features": [{"column": "age"}],
        "target": {"column": "label"},
        "test_fraction": 0.2,
        "split_seed": 3,
    }
    first, again = load(spec, tmp_path, 1), load(spec, tmp_path, 1)
    other = load({**spec, "split_seed": 4}, tmp_path, 1)
    assert len(first.test) == 40 and len(first.train) == 160
    assert np.bincount(first.test.labels).tolist() == [30, 10]  # the file's 3:1 balance, kept
    np.testing.assert_array_equal(first.test.images, again.test.images)
    assert not np.array_equal(first.test.images, other.test.images)
    assert not set(first.test.images[:, 0]) & set(first.train.images[:, 0])
    # the statistics come from the 160 training rows only
    train_ages = np.array(sorted(set(range(200)) - set(first.test.table.numbers("age").astype(int))), dtype=float)
    assert first.preprocessing.pipeline.features[0].center == pytest.approx(train_ages.mean())


def test_parquet_reads_as_the_csv_does(tmp_path):
    require(importlib.util.find_spec("pyarrow") is not None, "pyarrow (pip install 'specforge[parquet]')")
    import pyarrow.csv
    import pyarrow.parquet

    spec = table_spec(tmp_path)
    pyarrow.parquet.write_table(pyarrow.csv.read_csv(tmp_path / "train.csv"), tmp_path / "train.parquet")
    from_csv = load(spec, tmp_path)
    from_parquet = load({**spec, "train": "train.parquet"}, tmp_path)
    np.testing.assert_allclose(from_parquet.train.images, from_csv.train.images, rtol=1e-6)
    np.testing.assert_array_equal(from_parquet.train.labels, from_csv.train.labels)


def test_parquet_without_pyarrow_names_the_extra(tmp_path, monkeypatch):
    (tmp_path / "train.parquet").write_bytes(b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(DataError, match=r"pip install 'specforge\[parquet\]'"):
        read_table(tmp_path / "train.parquet", "train")


def write_spec(tmp_path: Path, data: dict, width: int = WIDTH) -> Path:
    spec = {
        "version": 1,
        "name": "t",
        "data": data,
        "model": {"input_shape": [width], "layers": [{"type": "Dense", "units": 2, "activation": "softmax"}]},
        "compile": {"optimizer": "adam", "loss": "categorical_crossentropy"},
        "fit": {"epochs": 1},
    }
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def test_a_missing_column_is_located_at_the_spec_line_with_did_you_mean(tmp_path):
    data = table_spec(tmp_path)
    data["features"] = [{"column": "age"}, {"column": "incme"}]
    path = write_spec(tmp_path, data, 2)
    with pytest.raises(DataError) as caught:
        api.load_data(api.load_spec(path))
    (problem,) = caught.value.problems
    line = next(number for number, text in enumerate(path.read_text().splitlines(), 1) if "incme" in text)
    assert (problem.location.file, problem.location.line) == (str(path), line)
    assert problem.location.path == "data.features[1].column"
    assert "no column 'incme'; did you mean 'income'?" in problem.message


def test_a_non_numeric_cell_names_file_line_and_column(tmp_path):
    write_csv(tmp_path / "bad.csv", [*ROWS[:2], "3x,paris,no,3000,a,3.5"])
    data = {**table_spec(tmp_path), "train": "bad.csv"}
    with pytest.raises(DataError) as caught:
        api.load_data(api.load_spec(write_spec(tmp_path, data)))
    (problem,) = caught.value.problems
    assert (problem.location.file, problem.location.line) == (str(tmp_path / "bad.csv"), 4)
    assert "line 4, column 'age': '3x' is not a number" in problem.message


def test_missing_target_values_are_refused_with_their_rows(tmp_path):
    write_csv(tmp_path / "train.csv", ["1,paris,no,1,a,1", "2,rome,no,2,,1", "3,rome,no,3,b,1", "4,oslo,no,4,NA,1"])
    data = {"source": "table", "train": "train.csv", "features": [{"column": "age"}], "target": {"column": "label"}}
    with pytest.raises(DataError, match=r"target 'label' is missing at lines 3, 5; every row needs a target"):
        load(data, tmp_path, 1)


def test_missing_targets_are_refused_before_a_fraction_is_drawn(tmp_path):
    write_csv(tmp_path / "train.csv", [f"{i},paris,no,{i},{'' if i == 3 else 'ab'[i % 2]},1" for i in range(10)])
    data = {
        "source": "table",
        "train": "train.csv",
        "features": [{"column": "age"}],
        "target": {"column": "label"},
        "test_fraction": 0.2,
    }
    with pytest.raises(DataError, match=r"target 'label' is missing at lines 5; .*data.drop_missing_target: true"):
        load(data, tmp_path, 1)


def test_rows_without_a_target_can_be_left_out_and_data_info_counts_them(tmp_path):
    write_csv(tmp_path / "train.csv", [f"{i},paris,no,{i},{'NA' if i in (3, 7) else 'ab'[i % 2]},1" for i in range(20)])
    write_csv(tmp_path / "test.csv", ["1,paris,no,1,a,1", "2,rome,no,2,,1", "3,rome,no,3,b,1"])
    data = {
        "source": "table",
        "train": "train.csv",
        "test": "test.csv",
        "features": [{"column": "age"}],
        "target": {"column": "label"},
        "drop_missing_target": True,
    }
    dataset = load(data, tmp_path, 1)
    assert (len(dataset.train), len(dataset.test)) == (18, 2)
    assert 3 not in dataset.train.table.numbers("age") and 7 not in dataset.train.table.numbers("age")
    info = api.data_info(api.load_spec(write_spec(tmp_path, data, 1)))
    assert info["dropped_missing_target"] == {str(tmp_path / "train.csv"): [3, 7], str(tmp_path / "test.csv"): [1]}
    assert info["split_rows"]["test"] == {"file": str(tmp_path / "test.csv"), "rows": [0, 2]}
    out = CliRunner().invoke(app, ["data", "info", str(tmp_path / "t.yaml")])
    assert out.exit_code == 0
    assert out.stdout.splitlines()[0] == "rows: train 18, test 2; 1 model inputs; 3 without a target left out"


def test_data_info_lists_the_rows_of_each_drawn_split_by_their_place_in_the_file(tmp_path):
    labels = ["a" if i % 3 else "b" for i in range(30)]
    write_csv(tmp_path / "train.csv", [f"{i},paris,no,{i},{'' if i == 4 else labels[i]},1" for i in range(30)])
    data = {
        "source": "table",
        "train": "train.csv",
        "features": [{"column": "age"}],
        "target": {"column": "label"},
        "test_fraction": 0.2,
        "validation_fraction": 0.2,
        "split_seed": 5,
        "drop_missing_target": True,
    }
    info = api.data_info(api.load_spec(write_spec(tmp_path, data, 1), ["fit.validation=validation"]))
    rows = {name: split["rows"] for name, split in info["split_rows"].items()}
    assert sorted(rows["train"] + rows["test"] + rows["validation"]) == [i for i in range(30) if i != 4]
    assert all(len(rows[name]) == info["splits"][name]["count"] for name in rows)
    # the file's row at each listed position is the row the split holds: here age is the position
    dataset = load(data, tmp_path, 1, "validation")
    for name in ("train", "test", "validation"):
        assert dataset.splits()[name].table.numbers("age").astype(int).tolist() == rows[name]


def test_a_test_class_unseen_in_training_is_refused(tmp_path):
    spec = table_spec(tmp_path, test="test.csv")
    write_csv(tmp_path / "test.csv", ["1,paris,no,1,c,1"])
    with pytest.raises(DataError, match=r"classes the training split does not have \(c\) at lines 2"):
        load(spec, tmp_path)


def test_the_input_width_is_named_when_it_does_not_match(tmp_path):
    with pytest.raises(
        DataError,
        match=r"encode to 7 values per row \(3 numeric or binary columns of 1; city 4: "
        r"3 categories and the out-of-vocabulary column\).*use input_shape: \[7\]",
    ):
        load(table_spec(tmp_path), tmp_path, width=5)


def test_a_binary_column_with_three_values_is_refused(tmp_path):
    spec = table_spec(tmp_path)
    spec["features"] = [{"column": "city", "type": "binary"}]
    with pytest.raises(DataError, match=r"binary column 'city' has 3 values.*declare it categorical"):
        load(spec, tmp_path, 1)


def test_a_row_with_the_wrong_number_of_cells(tmp_path):
    spec = table_spec(tmp_path)
    write_csv(tmp_path / "train.csv", [*ROWS[:1], "1,2"])
    with pytest.raises(DataError, match="line 3 has 2 cells but the header names 6 columns"):
        load(spec, tmp_path)


def test_data_info_of_a_table(tmp_path):
    data = table_spec(tmp_path, test="test.csv")
    write_csv(tmp_path / "test.csv", ["1,tokyo,no,,a,1", "2,,no,5,b,1", "3,rome,no,5,b,1"])
    info = api.data_info(api.load_spec(write_spec(tmp_path, data)))
    columns = {column["column"]: column for column in info["columns"]}
    assert columns["age"]["type"] == "numeric" and (columns["age"]["min"], columns["age"]["max"]) == (20.0, 60.0)
    assert columns["age"]["missing"] == {"train": 1, "test": 0}
    assert columns["city"]["vocabulary_size"] == 3 and columns["city"]["missing"]["test"] == 1
    assert columns["income"]["missing"] == {"train": 1, "test": 1}
    assert info["target"]["class_counts"] == {"train": {"a": 3, "b": 3}, "test": {"a": 1, "b": 2}}


def test_data_show_draws_a_histogram_per_column_and_the_target(tmp_path):
    from PIL import Image

    from specforge.data.table.info import GAP, PANEL

    path = api.render_samples(api.load_spec(write_spec(tmp_path, table_spec(tmp_path))), "train", tmp_path / "h.png")
    with Image.open(path) as image:
        # 5 panels (4 feature columns, the target) in a 3-wide grid, with a gap around each
        assert image.size == (3 * (PANEL[0] + GAP) + GAP, 2 * (PANEL[1] + GAP) + GAP)


def test_a_numeric_target_needs_a_regression_loss_metrics_and_outputs(tmp_path):
    from specforge.base.errors import SpecError

    data = table_spec(tmp_path, target={"column": "price", "type": "numeric"})
    path = write_spec(tmp_path, data)
    spec = yaml.safe_load(path.read_text())
    spec["compile"]["metrics"] = ["accuracy", "r2"]
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    with pytest.raises(SpecError) as caught:
        api.validate(path)
    assert [(p.location.path, p.message.split(";")[0]) for p in caught.value.problems] == [
        ("compile.metrics[0]", "accuracy is a classification metric and the target is numeric"),
        ("compile.loss", "categorical_crossentropy is a classification loss and the target is numeric"),
        ("model.layers[0]", "the model outputs shape (2,) but the target has 1 numeric column(s)"),
    ]
    assert all(p.location.line for p in caught.value.problems)


def test_a_validation_fraction_is_drawn_before_fitting(tmp_path):
    spec = table_spec(tmp_path, validation_fraction=0.5)
    spec["features"] = [{"column": "age"}]
    dataset = load(spec, tmp_path, width=1, validation="validation")
    assert (len(dataset.train), len(dataset.validation)) == (2, 4)  # round(1.5) = 2 rows of each class drawn
    assert sorted(dataset.validation.labels.tolist()) == [0, 0, 1, 1]
    held_out = dataset.validation.table.numbers("age")
    assert dataset.preprocessing.pipeline.features[0].center == pytest.approx(
        np.nanmean(dataset.train.table.numbers("age"))
    )
    assert not set(held_out[~np.isnan(held_out)]) & set(dataset.train.table.numbers("age"))
    with pytest.raises(DataError, match=r"draw them before with data\.validation_fraction"):
        load(table_spec(tmp_path), tmp_path, validation=0.25)


def test_the_command_line_names_the_parquet_extra_in_one_line(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from specforge.cli.commands import app

    (tmp_path / "train.parquet").write_bytes(b"PAR1")
    data = {**table_spec(tmp_path), "train": "train.parquet"}
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    result = CliRunner().invoke(app, ["data", "info", str(write_spec(tmp_path, data))])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"{tmp_path / 'train.parquet'}: error: reading Parquet needs pyarrow: pip install 'specforge[parquet]'"
    ]
