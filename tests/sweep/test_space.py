"""The sweep section: in the schema, its defaults, and the located errors validate reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from specforge import api
from specforge.base.errors import SpecError
from specforge.spec.schema import load_schema
from specforge.sweep.loading import load_sweep
from specforge.sweep.space import Parameter

from .tiny import TINY, write_spec

SEED = Path(__file__).resolve().parents[2] / "specs" / "mnist.yaml"


def errors(path: Path) -> list[str]:
    with pytest.raises(SpecError) as caught:
        api.validate(path)
    return [problem.format() for problem in caught.value.problems]


def test_the_schema_describes_the_sweep_section():
    sweep = load_schema()["properties"]["sweep"]
    assert set(sweep["properties"]) == {
        "parameters",
        "metric",
        "direction",
        "trials",
        "sampler",
        "pruner",
        "seed",
        "timeout",
        "resources",
    }
    kinds = sweep["properties"]["parameters"]["additionalProperties"]["properties"]
    assert {"choice", "uniform", "loguniform", "int", "step", "log"} == set(kinds)


def test_a_valid_sweep_validates_and_gets_its_defaults(tmp_path):
    spec, _ = api.validate(write_spec(tmp_path))
    assert spec.config["sweep"]["sampler"] == "tpe" and spec.config["sweep"]["direction"] == "auto"
    sweep = load_sweep(tmp_path / "tiny.yaml", trials=5)
    assert sweep.trials == 5 and sweep.direction == "maximize"
    assert [p.key for p in sweep.parameters] == ["compile.optimizer.learning_rate", "model.layers[1].units"]
    trial = sweep.trial_spec({"compile.optimizer.learning_rate": 0.004, "model.layers[1].units": 8})
    assert trial.config["compile"]["optimizer"]["learning_rate"] == 0.004
    assert trial.config["model"]["layers"][1]["units"] == 8


def test_loss_metrics_are_minimized_by_default(tmp_path):
    sweep = load_sweep(write_spec(tmp_path, sweep={"metric": "val_loss"}))
    assert sweep.direction == "minimize" and not sweep.maximize


def test_every_mistake_is_located_at_validate(tmp_path):
    text = write_spec(tmp_path).read_text() + "\n"
    path = tmp_path / "bad.yaml"
    parameters = {
        "compile.optimizer.learning_rat": {"loguniform": [1.0e-4, 1.0e-2]},
        "model.layers[9].units": {"choice": [8]},
        "model.layers[1].units": {"uniform": [4, 32]},
        "fit.batch_size": {"int": [64, 16]},
        "fit.shuffle": {"choice": [1, 2]},
        "compile.optimizer.beta_1": {"uniform": [0.9, 0.9]},
    }
    spec = {**TINY, "sweep": {"parameters": parameters, "metric": "val_acc"}}
    path.write_text(json.dumps(spec, indent=1))
    found = errors(path)
    assert all(line.startswith(f"{path}:") for line in found)
    joined = "\n".join(found)
    assert (
        "sweep.parameters.compile.optimizer.learning_rat: compile.optimizer.learning_rat does not exist in the "
        "spec; compile.optimizer has: name, learning_rate"
    ) in joined
    assert "model.layers[9] does not exist in the spec; model.layers has 3 items (0 to 2)" in joined
    assert "uniform value 14.695048" in joined
    assert "does not fit model.layers[1].units: expected an integer >= 1" in joined
    assert "fit.batch_size: empty range [64, 16]" in joined
    assert "choice value 1 does not fit fit.shuffle: expected true or false, got 1" in joined
    assert "compile.optimizer.beta_1: empty range [0.9, 0.9]" in joined
    assert (
        "sweep.metric: training does not report 'val_acc'; reported: loss, accuracy, val_loss, val_accuracy" in joined
    )
    assert len(found) == 7 and text


def test_schema_errors_in_the_sweep_are_located(tmp_path):
    path = write_spec(
        tmp_path,
        sweep={
            "parameters": {
                "fit.epochs": {"choice": []},
                "compile.optimizer.learning_rate": {"loguniform": [0, 1]},
                "fit.seed": {"between": [1, 2]},
            }
        },
    )
    found = errors(path)
    assert any("sweep.parameters.fit.epochs.choice: needs at least 1 item, got 0" in line for line in found)
    assert any("learning_rate.loguniform[0]: must be > 0, got 0" in line for line in found)
    assert any("fit.seed.between: unknown key 'between'" in line for line in found)
    assert all(":" in line.split(" error: ")[0] for line in found)


def test_a_val_metric_without_validation_data_says_so(tmp_path):
    found = errors(write_spec(tmp_path, fit={"validation": "none"}))
    assert found == [found[0]] and "there is no validation data" in found[0] and "reported: loss, accuracy" in found[0]


def test_grid_needs_finite_values(tmp_path):
    found = errors(write_spec(tmp_path, sweep={"sampler": "grid"}))
    assert len(found) == 1 and "grid sampler needs a finite set of values" in found[0]


def test_int_ranges_and_grids():
    assert Parameter("fit.batch_size", "int", (16, 64), step=16).grid() == [16, 32, 48, 64]
    assert Parameter("x", "choice", ("a", "b")).grid() == ["a", "b"]


def test_a_sweep_file_names_its_spec(tmp_path):
    spec = write_spec(tmp_path)
    sweep_file = tmp_path / "search.yaml"
    sweep_file.write_text(
        "spec: tiny.yaml\nsweep:\n  parameters:\n    fit.batch_size: {int: [16, 64], step: 16}\n"
        "  metric: val_loss\n  trials: 3\n"
    )
    sweep = load_sweep(sweep_file)
    assert sweep.spec.file == str(spec) and sweep.trials == 3 and sweep.parameters[0].step == 16
    sweep_file.write_text("spec: tiny.yaml\nsweep:\n  parameters:\n    fit.batch_sise: {int: [16, 64]}\n")
    with pytest.raises(SpecError) as caught:
        load_sweep(sweep_file)
    assert caught.value.problems[0].format().startswith(f"{sweep_file}:4:21: error: sweep.parameters.fit.batch_sise")


def test_a_spec_without_a_sweep_cannot_be_swept():
    with pytest.raises(SpecError, match="the spec has no sweep section"):
        load_sweep(SEED)


def cli_validate(*args) -> object:
    from typer.testing import CliRunner

    from specforge.cli.commands import app

    return CliRunner().invoke(app, ["validate", *map(str, args)])


def test_validate_reads_the_shipped_sweep_file_as_its_spec_and_sweep():
    shipped = SEED.parent / "sweeps" / "mnist.yaml"
    out = cli_validate(shipped, "--json")
    assert out.exit_code == 0, out.output
    spec, graph = api.validate(SEED)
    assert json.loads(out.stdout)["total_params"] == graph.total_params
    assert api.validate(shipped)[0].config == spec.config


def test_validate_locates_a_sweep_file_s_mistakes_in_it_and_the_spec_s_in_the_spec(tmp_path):
    spec = write_spec(tmp_path)
    sweep_file = tmp_path / "search.yaml"
    sweep_file.write_text(
        "spec: tiny.yaml\nsweep:\n  parameters:\n    fit.batch_sise: {int: [16, 64]}\n  metric: val_acc\n"
    )
    out = cli_validate(sweep_file)
    assert out.exit_code == 2 and "Traceback" not in out.output
    lines = sorted(out.output.strip().splitlines())
    assert [line.split(" error: ")[0] for line in lines] == [f"{sweep_file}:4:21:", f"{sweep_file}:5:11:"]
    assert lines[1].endswith(
        "sweep.metric: training does not report 'val_acc'; reported: loss, accuracy, val_loss, val_accuracy"
    )
    sweep_file.write_text("spec: tiny.yaml\nsweep:\n  parameters:\n    fit.batch_size: {int: [16, 64]}\n")
    assert (
        cli_validate(sweep_file, "--set", "fit.epochs=0").output.strip()
        == "--set fit.epochs=0: error: fit.epochs: must be >= 1, got 0"
    )
    spec.write_text(spec.read_text().replace("epochs:", "epoch:"))
    found = cli_validate(sweep_file).output.strip().splitlines()
    assert len(found) == 1 and found[0].startswith(f"{spec}:") and "unknown key 'epoch'" in found[0]
    sweep_file.write_text("spec: gone.yaml\nsweep:\n  parameters:\n    fit.batch_size: {int: [16, 64]}\n")
    assert cli_validate(sweep_file).output.strip() == (
        f"{sweep_file}:1:7: error: spec: no such spec file "
        f"'{tmp_path / 'gone.yaml'}'; spec is relative to this "
        "file's directory"
    )


def test_a_sweep_over_ray_train_workers_is_refused_where_fit_backend_says_it(tmp_path):
    path = write_spec(tmp_path, fit={"backend": "ray"})
    line = next(number for number, text in enumerate(path.read_text().splitlines(), 1) if "backend: ray" in text)
    found = errors(path)
    assert len(found) == 1
    assert found[0].startswith(f"{path}:{line}:12: error: fit.backend: a sweep trains each trial in the one process")
    assert found[0].endswith(
        "sweep with fit.backend torch (and sweep.resources for each trial's CPUs and GPU share on Ray Tune)"
    )


def test_a_gpu_share_needs_torch_trials(tmp_path):
    found = errors(write_spec(tmp_path, sweep={"resources": {"cpu": 1, "gpu": 0.25}}))
    assert len(found) == 1 and found[0].endswith(
        "error: sweep.resources.gpu: the numpy backend trains on CPUs; a trial trains on its GPU share with "
        "fit.backend: torch"
    )
    sweep = load_sweep(write_spec(tmp_path, fit={"backend": "torch"}, sweep={"resources": {"gpu": 0.25}}))
    assert sweep.resources == {"gpu": 0.25}
