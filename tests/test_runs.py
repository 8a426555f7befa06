import json
from pathlib import Path

import numpy as np
import pytest

from specforge import api
from specforge.base.errors import RunError
from specforge.runs import directory as runs
from specforge.spec import spec_from_dict
from specforge.training.progress import Silent

TINY = {
    "version": 1,
    "name": "tiny-mlp",
    "data": {"source": "mnist", "preprocessing": {"reshape": [784], "rescale": 0.00392156862745098}},
    "model": {"input_shape": [784], "layers": [{"type": "Dense", "units": 10, "activation": "softmax"}]},
    "compile": {"optimizer": "adam", "loss": "categorical_crossentropy"},
    "fit": {"epochs": 1, "seed": 3},
}


@pytest.fixture
def finished(tmp_path, monkeypatch):
    """A finished run trained under tmp_path/runs, the working directory."""
    monkeypatch.chdir(tmp_path)
    return api.fit(spec_from_dict(TINY, ["fit.epochs=2"]), progress=Silent(), limit_train=64, limit_test=32)


def test_runs_are_numbered_per_spec_with_a_latest_pointer(tmp_path):
    first = runs.create_run_dir("net", root=tmp_path)
    runs.point_latest(first)
    second = runs.create_run_dir("net", root=tmp_path)
    runs.point_latest(second)
    assert (first, second) == (tmp_path / "net" / "1", tmp_path / "net" / "2")
    assert (tmp_path / "net" / "latest").resolve() == second.resolve()
    (tmp_path / "net" / "7").mkdir()
    assert runs.create_run_dir("net", root=tmp_path).name == "8"


def test_latest_falls_back_to_a_text_file_without_symlinks(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("symlinks are not supported here")

    monkeypatch.setattr(Path, "symlink_to", refuse)
    run_dir = runs.create_run_dir("net", root=tmp_path)
    (run_dir / runs.MANIFEST).write_text("{}")
    runs.point_latest(run_dir)
    latest = tmp_path / "net" / "latest"
    assert latest.is_file() and latest.read_text().strip() == "1"
    assert runs.resolve_run_path(latest) == run_dir


def test_out_must_be_new_or_empty(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert runs.create_run_dir("net", out=empty) == empty
    (empty / "manifest.json").write_text("{}")
    with pytest.raises(RunError, match="not empty; choose a new directory; resume it with"):
        runs.create_run_dir("net", out=empty)


def test_a_finished_run_holds_every_file_and_reads_back(finished, tmp_path):
    names = {
        "spec.yaml",
        "spec.resolved.json",
        "manifest.json",
        "preprocessing.json",
        "weights.npz",
        "checkpoint.npz",
        "checkpoint.json",
        "history.csv",
        "history.json",
        "metrics.json",
    }
    assert names <= {p.name for p in finished.path.iterdir()}
    assert finished.path == Path("runs/tiny-mlp/1")
    assert not Path("runs/tiny-mlp/latest").exists()  # a run on a slice of the data is never latest
    for name in ("runs/tiny-mlp/1", tmp_path / "runs" / "tiny-mlp" / "1"):
        run = runs.open_run(name)
        assert run.config == finished.config and run.metrics == finished.metrics
    manifest = finished.manifest
    assert manifest["status"] == "completed" and manifest["epochs_completed"] == 2
    assert manifest["seed"] == 3 and manifest["overrides"] == ["fit.epochs=2"]
    assert manifest["spec_sha256"] == spec_from_dict(TINY, ["fit.epochs=2"]).sha256()
    assert manifest["numpy"] == np.__version__ and manifest["blas"]
    assert manifest["limits"] == {"train": 64, "test": 32} and len(manifest["data_hash"]) == 64
    assert finished.config["fit"]["epochs"] == 2 and finished.config["fit"]["batch_size"] == 32
    assert finished.preprocessing["input_shape"] == [784] and finished.preprocessing["labels"] == "one_hot"
    assert finished.spec().sha256() == manifest["spec_sha256"]
    weights = finished.weights()
    assert [sorted(p) for p in weights] == [["bias", "kernel"], []]
    assert weights[0]["kernel"].shape == (784, 10) and weights[0]["kernel"].dtype == np.float32


def test_missing_and_unfinished_runs_say_what_to_do(finished, tmp_path):
    with pytest.raises(RunError) as missing:
        runs.open_run("runs/tiny-mlp/9")
    assert missing.value.format() == (
        "runs/tiny-mlp/9: error: no run directory here; give a run such as "
        "runs/<spec name>/latest or runs/<spec name>/1 (specforge train prints the path)"
    )
    (finished.path / "weights.npz").unlink()
    with pytest.raises(RunError) as unfinished:
        runs.open_run("runs/tiny-mlp/1")
    assert unfinished.value.problems[0].message == (
        "no weights.npz: the run did not finish; resume it with specforge train --resume runs/tiny-mlp/1"
    )
    with pytest.raises(RunError, match="not a run directory"):
        runs.open_run(tmp_path)


def test_checkpoint_keeps_arrays_and_state_together(tmp_path):
    arrays = {"weights/dense/kernel": np.arange(6, dtype=np.float32).reshape(2, 3), "optimizer/m.0": np.ones(3)}
    state = {"epoch": 2, "rng": {"state": 2**100 + 1}, "history": {"loss": [0.5, 0.25]}}
    runs.save_checkpoint(tmp_path, arrays, state)
    loaded_arrays, loaded_state = runs.load_checkpoint(tmp_path)
    assert loaded_state == state
    assert loaded_arrays.keys() == arrays.keys()
    np.testing.assert_array_equal(loaded_arrays["weights/dense/kernel"], arrays["weights/dense/kernel"])
    assert json.loads((tmp_path / "checkpoint.json").read_text())["epoch"] == 2
    with pytest.raises(RunError, match=r"no checkpoint\.npz"):
        runs.load_checkpoint(tmp_path / "elsewhere")


def test_history_is_written_as_csv_and_json(tmp_path):
    runs.write_history(tmp_path, {"loss": [0.5, 0.25], "val_accuracy": [0.75, 0.875]})
    assert (tmp_path / "history.csv").read_text() == "epoch,loss,val_accuracy\n0,0.5,0.75\n1,0.25,0.875\n"
    assert json.loads((tmp_path / "history.json").read_text()) == {"loss": [0.5, 0.25], "val_accuracy": [0.75, 0.875]}


def test_update_manifest_changes_only_what_it_is_given(tmp_path):
    runs.write_json(tmp_path / "manifest.json", {"status": "running", "seed": 1, "updated": "then"})
    manifest = runs.update_manifest(tmp_path, status="completed")
    assert manifest["status"] == "completed" and manifest["seed"] == 1 and manifest["updated"] != "then"
    assert runs.read_json(tmp_path / "manifest.json") == manifest


def _line_of(path: Path, text: str) -> int:
    return next(number for number, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def _damage(run: runs.Run, change) -> None:
    """Edit the run's spec.resolved.json as a damaged or hand-edited file would be."""
    config = json.loads((run.path / runs.RESOLVED).read_text())
    change(config)
    (run.path / runs.RESOLVED).write_text(json.dumps(config))


def test_a_run_loads_its_resolved_spec_as_stored_without_validating_it_again(finished, monkeypatch):
    def no_validation(*args):
        raise AssertionError("the run's spec went through the schema again")

    monkeypatch.setattr("specforge.spec.validate_document", no_validation)
    spec = api.load_run(finished.path).spec()
    assert spec.config == finished.config
    assert spec.file == str(finished.path / runs.SPEC_TEXT)
    assert spec.base_dir == Path(finished.manifest["base_dir"])


def test_an_error_about_a_run_names_its_spec_yaml_at_the_real_line(finished):
    _damage(finished, lambda config: config["model"]["layers"].insert(0, {"type": "MaxPooling2D"}))
    with pytest.raises(api.SpecforgeError) as caught:
        api.evaluate(finished.path)
    spec_text = finished.path / runs.SPEC_TEXT
    line = _line_of(spec_text, "- type: Dense")
    assert caught.value.format().startswith(
        f"{spec_text}:{line}:5: error: model.layers[0]: MaxPooling2D has no value for pool_size, strides, padding"
    )


def test_a_resumed_run_locates_errors_in_its_spec_yaml_and_at_the_option(finished):
    _damage(finished, lambda config: config["model"]["layers"][0].update(units=0))
    with pytest.raises(api.SpecforgeError) as caught:
        api.fit(resume=finished.path, overrides=["fit.epochs=0"], progress=Silent())
    spec_text = finished.path / runs.SPEC_TEXT
    assert caught.value.format().splitlines() == [
        "--set fit.epochs=0: error: fit.epochs: must be >= 1, got 0",
        f"{spec_text}:{_line_of(spec_text, 'units: 10')}:12: error: model.layers[0].units: must be >= 1, got 0",
    ]


def test_a_run_of_a_json_spec_reads_its_spec_text_as_json(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(TINY, indent="\t"))  # tabs: JSON, but not YAML
    run = api.fit(path, progress=Silent(), limit_train=64, limit_test=32)
    spec = api.load_run(run.path).spec()
    assert spec.config == run.config
    assert spec.locate(("fit", "seed")).line == api.load_spec(path).locate(("fit", "seed")).line
