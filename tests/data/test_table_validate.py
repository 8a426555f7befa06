"""``specforge validate`` on a table spec reads the table's header and category vocabularies (CSV or Parquet, no
training): columns, fills and the classes against the output units are checked at the spec line, and
``model.input_shape`` is inferred from the features when left out."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from specforge import api
from specforge.cli.commands import app
from specforge.graph.build import build_graph
from specforge.graph.dag import infer_graph
from specforge.spec import override_spec

ROOT = Path(__file__).resolve().parents[2]
COLORS = ["red", "rose", "white"]

#: A wine-like table: three cultivars, a numeric, a categorical and a binary column, some cells missing.
SPEC = """\
version: 1
name: wine
data:
  source: table
  train: wine.csv
  test_fraction: 0.2
  features:
    - {column: alcohol}
    - {column: color, type: categorical}
    - {column: region, type: binary}
  target: {column: cultivar}
model:
  layers:
    - {type: Dense, units: 8, activation: relu}
    - {type: Dense, units: 3, activation: softmax}
compile:
  optimizer: adam
  loss: categorical_crossentropy
  metrics: [accuracy]
fit:
  epochs: 1
  batch_size: 8
"""
WIDTH = 1 + len(COLORS) + 1 + 1  # alcohol, color one-hot + unseen, region


def write_wine(directory: Path, spec: str = SPEC) -> Path:
    """The spec and wine.csv (60 rows) in ``directory``, and a test file wine_test.csv whose header spells
    color as colour."""
    rng = np.random.default_rng(0)
    lines = ["alcohol,color,region,cultivar"]
    for i in range(60):
        alcohol = "" if i % 9 == 4 else f"{rng.uniform(11, 15):.2f}"
        color = "" if i % 11 == 6 else COLORS[i % 3]
        lines.append(f"{alcohol},{color},{'north' if i % 2 else 'south'},c{i % 3 + 1}")
    (directory / "wine.csv").write_text("\n".join(lines) + "\n")
    (directory / "wine_test.csv").write_text("\n".join(["alcohol,colour,region,cultivar", *lines[1:7]]) + "\n")
    path = directory / "wine.yaml"
    path.write_text(spec)
    return path


def invoke(*args) -> object:
    return CliRunner().invoke(app, [*map(str, args)])


def test_the_input_shape_is_inferred_from_the_features_and_recorded_by_training(tmp_path):
    path = write_wine(tmp_path)
    spec, graph = api.validate(path)
    assert graph.input_shape == (WIDTH,) and spec.config["model"]["input_shape"] == [WIDTH]
    out = invoke("validate", path, "--json")
    assert out.exit_code == 0 and json.loads(out.stdout)["input_shape"] == [WIDTH]
    run = api.fit(path, out=tmp_path / "run", quiet=True)
    assert json.loads((run.path / "spec.resolved.json").read_text())["model"]["input_shape"] == [WIDTH]
    assert run.graph.input_shape == (WIDTH,)


def test_the_graph_alone_names_what_reads_the_input_shape(tmp_path):
    from specforge.base.errors import SpecError

    spec = api.load_spec(write_wine(tmp_path))
    with pytest.raises(
        SpecError, match=r"model.input_shape is left out.*specforge.graph.build.build_graph \(api.build_graph\)"
    ):
        infer_graph(spec)
    assert api.build_graph(spec).input_shape == infer_graph(spec).input_shape == (WIDTH,)


def test_a_given_input_shape_that_fits_is_kept(tmp_path):
    path = write_wine(tmp_path, SPEC.replace("model:\n", f"model:\n  input_shape: [{WIDTH}]\n"))
    assert api.validate(path)[1].input_shape == (WIDTH,)
    assert api.validate(path, data=False)[1].input_shape == (WIDTH,)


def test_the_width_follows_the_vocabulary(tmp_path):
    path = write_wine(tmp_path, SPEC.replace("{column: region, type: binary}", "{column: region, type: categorical}"))
    assert api.validate(path)[1].input_shape == (WIDTH + 2,)  # north, south and unseen instead of one 0/1 input


def test_a_trial_that_changes_a_feature_infers_the_width_again(tmp_path):
    spec, _ = api.validate(write_wine(tmp_path))
    trial = override_spec(spec, ["data.features[2].type=categorical"])
    assert build_graph(trial).input_shape == (WIDTH + 2,)
    assert build_graph(override_spec(spec, ["fit.epochs=2"])).input_shape == (WIDTH,)


def test_a_sweep_over_a_table_spec_without_input_shape_reaches_its_workers(tmp_path):
    from specforge.sweep.loading import load_sweep
    from specforge.sweep.space import sweep_from_payload, sweep_payload

    path = write_wine(
        tmp_path,
        SPEC + "sweep:\n  parameters:\n    data.features[2].type: {choice: [binary, categorical]}\n  metric: loss\n",
    )
    sweep = sweep_from_payload(sweep_payload(load_sweep(path)))  # as a worker process rebuilds it
    widths = [
        build_graph(sweep.trial_spec({"data.features[2].type": kind})).input_shape for kind in ("binary", "categorical")
    ]
    assert widths == [(WIDTH,), (WIDTH + 2,)]


def test_data_info_works_without_an_input_shape(tmp_path):
    info = api.data_info(api.load_spec(write_wine(tmp_path)))
    assert info["preprocessing"]["input_shape"] == [WIDTH] and info["class_names"] == ["c1", "c2", "c3"]


#: (what the user wrote instead, the spec line, path and message of the one error line)
MISTAKES = {
    "units": (
        "units: 3",
        "units: 4",
        15,
        "model.layers[1].units",
        "the model outputs 4 values but the data has 3 classes; use units: 3",
    ),
    "feature": (
        "column: color,",
        "column: colour,",
        9,
        "data.features[1].column",
        "has no column 'colour'; did you mean 'color'? (its columns: alcohol, color, region, cultivar)",
    ),
    "target": (
        "column: cultivar}",
        "column: cultivr}",
        11,
        "data.target.column",
        "has no column 'cultivr'; did you mean 'cultivar'? (its columns: alcohol, color, region, cultivar)",
    ),
    "train file": (
        "train: wine.csv",
        "train: wines.csv",
        5,
        "data.train",
        "wines.csv: no such file; relative paths start at the spec file's directory",
    ),
    "input_shape": (
        "model:\n",
        "model:\n  input_shape: [5]\n",
        13,
        "model.input_shape",
        (
            f"the features encode to {WIDTH} values per row (2 numeric or binary columns of 1; color 4: 3 "
            "categories and the out-of-vocabulary column) but model.input_shape is [5]; use input_shape: "
            f"[{WIDTH}] or leave it out (it is inferred)"
        ),
    ),
    "fill median": (
        "type: categorical}",
        "type: categorical, fill: median}",
        9,
        "data.features[1].fill",
        (
            "fill median needs numbers and column 'color' is categorical; use fill: most_frequent, or "
            "constant with a fill_value"
        ),
    ),
    "fill constant": (
        "{column: alcohol}",
        "{column: alcohol, fill: constant}",
        8,
        "data.features[0].fill",
        ("fill: constant needs fill_value, the value a missing cell takes; add fill_value: 0 (say), or use fill: mean"),
    ),
    "fill_value alone": (
        "{column: alcohol}",
        "{column: alcohol, fill_value: 0}",
        8,
        "data.features[0].fill_value",
        (
            "fill_value is the value of fill: constant and this column's fill is the default; add "
            "fill: constant or remove fill_value"
        ),
    ),
    "test file column": (
        "  test_fraction: 0.2\n",
        "  test: wine_test.csv\n",
        9,
        "data.features[1].column",
        "wine_test.csv has no column 'color'; did you mean 'colour'? (its columns: alcohol, colour, region, cultivar)",
    ),
    "twice": (
        "{column: region, type: binary}",
        "{column: color, type: categorical}",
        10,
        "data.features[2].column",
        (
            "column 'color' is listed twice (also data.features[1]) with the same encoding, which only copies an "
            "input; list each column once"
        ),
    ),
    "numbers and text": (
        "{column: region, type: binary}",
        "{column: alcohol, type: categorical}",
        10,
        "data.features[2].column",
        (
            "column 'alcohol' is listed twice (also data.features[0]) as numbers once and as text once; "
            "give each column one kind (numeric, or categorical/binary) and list it once"
        ),
    ),
    "target as feature": (
        "{column: region, type: binary}",
        "{column: cultivar, type: categorical}",
        10,
        "data.features[2].column",
        ("column 'cultivar' is the target; a model cannot take its target as a feature: remove it from data.features"),
    ),
}


@pytest.mark.parametrize("command", ["validate", "train"])
@pytest.mark.parametrize("case", MISTAKES)
def test_each_mistake_is_one_line_at_the_spec_line_exit_2(case, command, tmp_path):
    original, written, line, path, message = MISTAKES[case]
    assert original in SPEC
    spec = write_wine(tmp_path, SPEC.replace(original, written, 1))
    extra = ["--out", tmp_path / "run", "--quiet"] if command == "train" else []
    out = invoke(command, spec, *extra)
    assert out.exit_code == 2, out.output
    (error,) = out.output.strip().splitlines()
    location, _, rest = error.partition(" error: ")
    assert location.startswith(f"{spec}:{line}:") and rest.startswith(f"{path}: ")
    assert rest.endswith(message)
    assert not (tmp_path / "run").exists()


def test_a_declared_class_count_the_target_contradicts_is_refused(tmp_path):
    spec = write_wine(tmp_path, SPEC.replace("  target:", "  num_classes: 4\n  target:"))
    out = invoke("validate", spec)
    assert out.exit_code == 2
    assert out.output.strip().splitlines() == [
        (
            f"{spec}:11:16: error: data.num_classes: data.num_classes gives 4 classes but the target has 3 in the "
            "training split; use num_classes: 3 or leave it out"
        )
    ]
    spec = write_wine(tmp_path, SPEC.replace("  target:", "  class_names: [a, b]\n  target:"))
    assert (
        invoke("validate", spec)
        .output.strip()
        .endswith(
            "data.class_names: data.class_names gives 2 classes but the target has 3 in the training split; give 3 "
            "class_names or leave it out"
        )
    )


def test_a_column_encoded_two_ways_is_allowed(tmp_path):
    spec = write_wine(tmp_path, SPEC.replace("{column: region, type: binary}", "{column: alcohol, scale: log}"))
    assert api.validate(spec)[1].input_shape == (WIDTH,)


def test_no_data_skips_reading_when_the_input_shape_is_given(tmp_path):
    spec = write_wine(tmp_path, SPEC.replace("model:\n", f"model:\n  input_shape: [{WIDTH}]\n"))
    (tmp_path / "wine.csv").unlink()
    assert invoke("validate", spec, "--no-data").exit_code == 0
    assert invoke("validate", spec).exit_code == 2


def test_parquet_header_and_vocabularies(tmp_path):
    import pyarrow.csv
    import pyarrow.parquet as pq

    write_wine(tmp_path)
    pq.write_table(pyarrow.csv.read_csv(tmp_path / "wine.csv"), tmp_path / "wine.parquet")
    spec = write_wine(tmp_path, SPEC.replace("wine.csv", "wine.parquet"))
    assert api.validate(spec)[1].input_shape == (WIDTH,)
    spec.write_text(SPEC.replace("wine.csv", "wine.parquet").replace("column: color,", "column: colr,"))
    out = invoke("validate", spec)
    assert out.exit_code == 2
    assert out.output.strip() == (
        f"{spec}:9:16: error: data.features[1].column: {tmp_path / 'wine.parquet'} has no "
        "column 'colr'; did you mean 'color'? (its columns: alcohol, color, region, cultivar)"
    )


def test_validating_a_csv_table_imports_no_parquet_reader(tmp_path):
    probe = (
        "import sys; from specforge import api; api.validate(sys.argv[1]); "
        "print(','.join(m for m in ('pyarrow', 'onnx', 'onnxruntime') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, str(write_wine(tmp_path))], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
