"""Records of runs: TensorBoard event files, `specforge runs` and `runs compare`, and which run `latest` names."""

import json
import struct
import subprocess
import sys

import numpy as np
import pytest

from specforge import api
from specforge.spec import spec_from_dict
from specforge.training.progress import Silent
from tests.test_cli_train import environment, specforge

SMALL = {
    "version": 1,
    "name": "small",
    "data": {"source": "npz", "path": "small.npz", "preprocessing": {"rescale": 0.00392156862745098}},
    "model": {
        "input_shape": [6, 6, 1],
        "layers": [{"type": "Flatten"}, {"type": "Dense", "units": 3, "activation": "softmax"}],
    },
    "compile": {"optimizer": "adam", "loss": "categorical_crossentropy", "metrics": ["accuracy"]},
    "fit": {"epochs": 2, "batch_size": 8, "validation": "test", "seed": 1},
}


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A working directory holding a small .npz data set (60 training and 24 test images of 3 classes)."""
    rng = np.random.default_rng(0)
    labels = np.arange(84) % 3
    images = (rng.integers(0, 60, (84, 6, 6)) + labels[:, None, None] * 60).astype(np.uint8)
    np.savez(tmp_path / "small.npz", x_train=images[:60], y_train=labels[:60], x_test=images[60:], y_test=labels[60:])
    monkeypatch.chdir(tmp_path)
    return tmp_path


def small_spec(project, *overrides):
    return spec_from_dict(SMALL, list(overrides))


def read_events(path):
    """The Event records of a TensorBoard event file (TFRecord framing: length, its CRC, data, its CRC)."""
    from tensorboardX.proto import event_pb2

    data, offset, events = path.read_bytes(), 0, []
    while offset < len(data):
        (length,) = struct.unpack("<Q", data[offset : offset + 8])
        event = event_pb2.Event()
        event.ParseFromString(data[offset + 12 : offset + 12 + length])
        events.append(event)
        offset += 12 + length + 4
    return events


def scalars(directory):
    return {
        (value.tag, event.step): value.simple_value
        for path in directory.glob("events.out.tfevents.*")
        for event in read_events(path)
        for value in event.summary.value
        if value.HasField("simple_value")
    }


def test_tensorboard_logs_epochs_batches_spec_and_hyperparameters(project):
    run = api.fit(small_spec(project, "fit.log=[tensorboard]", "fit.log_every=3"), progress=Silent())
    log = run.path / "tensorboard"
    values = scalars(log)
    history = json.loads((run.path / "history.json").read_text())
    for name, series in history.items():
        tag = f"{name.removeprefix('val_')}/{'validation' if name.startswith('val_') else 'training'}"
        for epoch, value in enumerate(series, start=1):
            assert values[(tag, epoch)] == pytest.approx(value, rel=1e-6)
    batches = sorted(step for tag, step in values if tag == "batch/loss")
    assert batches == [3, 6, 9, 12, 15]  # 8 steps per epoch, every 3rd counted across the 2 epochs
    texts = [
        value.tensor.string_val[0].decode()
        for path in log.glob("events.out.tfevents.*")
        for event in read_events(path)
        for value in event.summary.value
        if value.tag.startswith("spec")
    ]
    assert json.loads(texts[0].replace("\n    ", "\n")) == run.config
    final = scalars(log / "hparams")
    metrics = json.loads((run.path / "metrics.json").read_text())
    assert final[("final/test_accuracy", 0)] == pytest.approx(metrics["accuracy"])
    experiment = [
        value.metadata.plugin_data.content
        for path in (log / "hparams").glob("events.*")
        for event in read_events(path)
        for value in event.summary.value
        if value.tag == "_hparams_/session_start_info"
    ]
    assert b"compile.optimizer.learning_rate" in experiment[0] and b"fit.batch_size" in experiment[0]


def test_tensorboard_without_tensorboardx_names_the_extra(project):
    probe = (
        "import sys; sys.modules['tensorboardX'] = None; sys.argv = ['specforge', 'train', 'small.yaml', "
        "'--set', 'fit.log=[tensorboard]', '--quiet']; from specforge.cli.commands import main; main()"
    )
    (project / "small.yaml").write_text(json.dumps(SMALL))
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=project, env=environment(), capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2
    assert result.stderr == (
        "--set fit.log=[tensorboard]: error: fit.log: tensorboard needs tensorboardX, which is "
        "not installed; install it with: pip install 'specforge[tensorboard]'\n"
    )


def test_latest_names_the_newest_completed_run_on_the_whole_data(project):
    first = api.fit(small_spec(project), progress=Silent())
    latest = project / "runs" / "small" / "latest"
    assert latest.resolve() == first.path.resolve()
    api.fit(small_spec(project), progress=Silent(), limit_train=16)  # a quick run on a slice
    api.fit(small_spec(project), out=project / "elsewhere", progress=Silent())  # a run put somewhere chosen
    assert latest.resolve() == first.path.resolve()
    third = api.fit(small_spec(project, "fit.epochs=1"), progress=Silent())
    assert latest.resolve() == third.path.resolve() == project / "runs/small/3"


def test_runs_lists_and_compares(project):
    api.fit(small_spec(project), progress=Silent())
    api.fit(small_spec(project, "fit.batch_size=4"), progress=Silent(), limit_train=30)
    listed = specforge("runs", cwd=project)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["run", "status", "epochs", "best", "test", "time", "spec"]
    assert lines[1].startswith("runs/small/1 ") and lines[2].startswith("runs/small/2*")
    assert " completed " in lines[1] and " 2/2 " in lines[1] and " val_loss " in lines[1]
    assert lines[-1] == "* trained on a slice of the data (--limit-train/--limit-test)"
    records = json.loads(specforge("runs", "small", "--json", cwd=project).stdout)
    first_metrics = json.loads((project / "runs/small/1/metrics.json").read_text())
    assert records[0]["test"]["accuracy"] == first_metrics["accuracy"]
    history = json.loads((project / "runs/small/1/history.json").read_text())
    assert records[0]["best"]["value"] == min(history["val_loss"])
    compared = specforge("runs", "compare", "runs/small/1", "runs/small/2", cwd=project)
    assert compared.returncode == 0, compared.stderr
    text = compared.stdout
    assert "  fit.batch_size: 8 -> 4" in text and "  limits.train: null -> 30" in text
    assert "fit.epochs" not in text
    second_metrics = json.loads((project / "runs/small/2/metrics.json").read_text())
    change = second_metrics["accuracy"] - first_metrics["accuracy"]
    assert (
        f"  test accuracy  {first_metrics['accuracy']:>9.4f}  {second_metrics['accuracy']:>9.4f}  {change:>+9.4f}"
    ) in text
    unknown = specforge("runs", "nothing", cwd=project)
    assert unknown.returncode == 2 and unknown.stderr == "runs/nothing: error: no runs of 'nothing'; runs here: small\n"


def test_runs_lists_what_it_suggests_runs_put_in_the_root_with_out_included(project):
    """``runs NAME`` suggests the spec names of the runs it lists, and lists a run that ``--out`` put in the root
    (``runs/custom``) as one of its spec's; a run put elsewhere is listed with ``--root`` its folder."""
    api.fit(small_spec(project), progress=Silent())
    api.fit(small_spec(project, "fit.epochs=1"), out=project / "runs" / "custom", progress=Silent())
    api.fit(small_spec(project, "fit.epochs=1"), out=project / "elsewhere" / "mine", progress=Silent())
    (project / "runs" / "notes").mkdir()  # a folder without runs is neither listed nor suggested
    listed = [record["path"] for record in json.loads(specforge("runs", "--json", cwd=project).stdout)]
    assert listed == ["runs/small/1", "runs/custom"]
    assert [record["path"] for record in json.loads(specforge("runs", "small", "--json", cwd=project).stdout)] == listed
    unknown = specforge("runs", "custom", cwd=project)
    assert unknown.returncode == 2 and unknown.stderr == "runs/custom: error: no runs of 'custom'; runs here: small\n"
    elsewhere = json.loads(specforge("runs", "--root", "elsewhere", "--json", cwd=project).stdout)
    assert [record["path"] for record in elsewhere] == ["elsewhere/mine"]
