import io
import json

import numpy as np
import pytest

from specforge import api
from specforge.runs import directory as runs
from specforge.spec import spec_from_dict
from specforge.training.loop import LossNotFinite, TrainingInterrupted
from specforge.training.progress import ConsoleProgress, Silent

SMALL = {
    "version": 1,
    "name": "small",
    "data": {"source": "mnist", "preprocessing": {"rescale": 0.00392156862745098}},
    "model": {
        "input_shape": [28, 28, 1],
        "layers": [
            {"type": "Conv2D", "filters": 4, "kernel_size": 3, "strides": 2},
            {"type": "BatchNormalization"},
            {"type": "ReLU"},
            {"type": "Flatten"},
            {"type": "Dropout", "rate": 0.25},
            {"type": "Dense", "units": 10, "activation": "softmax"},
        ],
    },
    "compile": {
        "optimizer": {"name": "adam", "learning_rate": 0.003},
        "loss": "categorical_crossentropy",
        "metrics": ["accuracy", {"name": "top_k_accuracy", "k": 3}],
    },
    "fit": {
        "epochs": 3,
        "batch_size": 32,
        "validation": "test",
        "seed": 7,
        "callbacks": [
            {"type": "ReduceLROnPlateau", "monitor": "loss", "patience": 0, "factor": 0.5},
            {"type": "ModelCheckpoint", "monitor": "val_accuracy"},
            {"type": "EarlyStopping", "monitor": "val_loss", "patience": 5, "restore_best_weights": True},
        ],
    },
}
LIMITS = {"limit_train": 320, "limit_test": 96}


def train(tmp_path, name, spec=SMALL, overrides=(), progress=None, **options):
    return api.fit(
        spec_from_dict(spec, overrides), out=tmp_path / name, progress=progress or Silent(), **LIMITS, **options
    )


def weights_of(run_dir):
    with np.load(run_dir / "weights.npz") as data:
        return {key: data[key] for key in data.files}


def assert_same_weights(a, b):
    first, second = weights_of(a), weights_of(b)
    assert first.keys() == second.keys()
    for key in first:
        np.testing.assert_array_equal(first[key], second[key], err_msg=key)


class StopAt(Silent):
    """Raises KeyboardInterrupt (as Ctrl-C does) at batch ``batch`` of epoch ``epoch`` (both from 1)."""

    def __init__(self, epoch, batch):
        self.stop, self.epoch = (epoch, batch), 0

    def epoch_start(self, epoch, epochs, steps):
        self.epoch = epoch + 1

    def batch_end(self, step, logs):
        if (self.epoch, step) == self.stop:
            raise KeyboardInterrupt


def test_same_spec_and_seed_give_bit_identical_weights_and_history(tmp_path):
    first = train(tmp_path, "a")
    second = train(tmp_path, "b")
    assert_same_weights(first.path, second.path)
    assert (first.path / "history.json").read_text() == (second.path / "history.json").read_text()
    assert first.metrics == second.metrics
    other_seed = train(tmp_path, "c", overrides=["fit.seed=8"])
    assert not np.array_equal(weights_of(first.path)["dense/kernel"], weights_of(other_seed.path)["dense/kernel"])


@pytest.mark.parametrize("stop", [(2, 1), (2, 6)], ids=["between-epochs", "mid-epoch"])
def test_an_interrupted_run_resumes_to_the_same_weights(tmp_path, stop):
    reference = train(tmp_path, "reference")
    with pytest.raises(TrainingInterrupted) as caught:
        train(tmp_path, "stopped", progress=StopAt(*stop))
    run_dir = tmp_path / "stopped"
    assert str(caught.value) == (
        f"interrupted at epoch {stop[0]}, batch {stop[1]}; resume with: "
        f"specforge train --resume {runs.display_path(run_dir)}"
    )
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "interrupted" and manifest["epochs_completed"] == 1
    assert not (run_dir / "weights.npz").exists()
    resumed = api.fit(resume=run_dir, progress=Silent())
    assert resumed.manifest["status"] == "completed"
    assert_same_weights(reference.path, run_dir)
    assert (reference.path / "history.json").read_text() == (run_dir / "history.json").read_text()
    assert reference.metrics == resumed.metrics
    assert (run_dir / "best.npz").read_bytes() == (reference.path / "best.npz").read_bytes()


def test_a_finished_run_can_be_extended_with_more_epochs(tmp_path):
    reference = train(tmp_path, "reference")
    short = train(tmp_path, "short", overrides=["fit.epochs=2"])
    with pytest.raises(runs.RunError, match="completed all its epochs"):
        api.fit(resume=short.path, progress=Silent())
    with pytest.raises(runs.RunError, match=r"only fit\.epochs can change"):
        api.fit(resume=short.path, overrides=["fit.seed=3"], progress=Silent())
    extended = api.fit(resume=short.path, overrides=["fit.epochs=3"], progress=Silent())
    assert extended.config["fit"]["epochs"] == 3 and extended.manifest["epochs_completed"] == 3
    assert_same_weights(reference.path, extended.path)


def test_nan_loss_stops_with_the_epoch_and_batch_and_keeps_the_last_good_checkpoint(tmp_path):
    spec = {**SMALL, "compile": {**SMALL["compile"], "optimizer": {"name": "sgd", "learning_rate": 1e30}}}
    with pytest.raises(LossNotFinite) as caught:
        train(tmp_path, "nan", spec=spec)
    message = caught.value.problems[0].message
    assert message.startswith(("loss became nan at epoch 1, batch ", "loss became inf at epoch 1"))
    assert message.endswith(
        f"the last good weights are in {runs.display_path(tmp_path / 'nan' / 'checkpoint.npz')}; "
        "lower the learning rate or rescale the inputs"
    )
    arrays, state = runs.load_checkpoint(tmp_path / "nan")
    assert state["epoch"] == 0 and all(np.isfinite(a).all() for a in arrays.values())
    assert json.loads((tmp_path / "nan" / "manifest.json").read_text())["status"] == "failed"


def test_early_stopping_stops_and_restores_the_best_weights(tmp_path):
    spec = {
        **SMALL,
        "fit": {
            **SMALL["fit"],
            "epochs": 6,
            "callbacks": [
                {"type": "EarlyStopping", "monitor": "loss", "mode": "max", "patience": 1, "restore_best_weights": True}
            ],
        },
    }
    lines = []

    class Record(Silent):
        def message(self, text):
            lines.append(text)

    run = train(tmp_path, "early", spec=spec, progress=Record())
    history = json.loads((run.path / "history.json").read_text())
    # "max" on a falling loss: epoch 0 is the best, epoch 1 does not improve, patience 1 stops there.
    assert len(history["loss"]) == 2 and lines[0] == "Epoch 2: early stopping"
    # then, the run having stopped early, the batch normalization's moving statistics have barely moved
    assert len(lines) == 2 and ": warning: model.layers[1]: after 20 training steps the moving mean" in lines[1]
    assert run.manifest["epochs_completed"] == 2 and run.manifest["status"] == "completed"


def test_history_files_and_metrics_agree_with_evaluate(tmp_path):
    run = train(tmp_path, "files")
    history = json.loads((run.path / "history.json").read_text())
    assert list(history) == ["loss", "accuracy", "top_k_accuracy", "val_loss", "val_accuracy", "val_top_k_accuracy"]
    csv = (run.path / "history.csv").read_text().splitlines()
    assert csv[0] == "epoch,loss,accuracy,top_k_accuracy,val_loss,val_accuracy,val_top_k_accuracy"
    assert [float(v) for v in csv[1].split(",")[1:]] == [history[name][0] for name in history]
    evaluated = api.evaluate(run, limit=96)
    assert evaluated == run.metrics
    probabilities = api.predict(run, run_test_images(96))
    labels = run_test_labels(96)
    assert np.mean(probabilities.argmax(axis=1) == labels) == pytest.approx(run.metrics["accuracy"])
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-5)


def run_test_images(count):
    return api.load_data(spec_from_dict(SMALL)).test.images[:count]


def run_test_labels(count):
    return api.load_data(spec_from_dict(SMALL)).test.labels[:count]


def test_a_small_cnn_learns_mnist_in_one_epoch(tmp_path):
    spec = {
        "version": 1,
        "name": "quick-cnn",
        "data": {"source": "mnist", "preprocessing": {"rescale": 0.00392156862745098}},
        "model": {
            "input_shape": [28, 28, 1],
            "layers": [
                {"type": "Conv2D", "filters": 64, "kernel_size": 3, "activation": "relu"},
                {"type": "Conv2D", "filters": 32, "kernel_size": 3, "activation": "relu"},
                {"type": "Flatten"},
                {"type": "Dense", "units": 10, "activation": "softmax"},
            ],
        },
        "compile": {"optimizer": "adam", "loss": "categorical_crossentropy", "metrics": ["accuracy"]},
        "fit": {"epochs": 1, "batch_size": 32, "seed": 0},
    }
    run = api.fit(spec_from_dict(spec), out=tmp_path / "quick", progress=Silent(), limit_train=5000, limit_test=2000)
    assert run.metrics["examples"] == 2000
    assert run.metrics["accuracy"] >= 0.90


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class Terminal(io.StringIO):
    def isatty(self):
        return True


def report_one_epoch(stream, quiet=False, columns=140):
    clock = Clock()
    progress = ConsoleProgress(stream, quiet=quiet, clock=clock, columns=columns)
    progress.epoch_start(0, 3, 1875)
    for step in (500, 1875):
        clock.now = step * 0.022
        progress.batch_end(step, {"loss": 0.2345, "accuracy": 0.9456})
    progress.epoch_end({"loss": 0.2345, "accuracy": 0.9456, "val_loss": 0.0893, "val_accuracy": 0.97331})
    return stream.getvalue()


END_OF_EPOCH = (
    "1875/1875 [==============================] - 41s 22ms/step - loss: 0.2345 - accuracy: 0.9456 - "
    "val_loss: 0.0893 - val_accuracy: 0.9733"
)


def test_progress_prints_keras_lines_to_a_log():
    assert report_one_epoch(io.StringIO()) == f"Epoch 1/3\n{END_OF_EPOCH}\n"


def test_a_log_shows_the_first_batch_and_then_a_line_every_interval():
    stream, clock = io.StringIO(), Clock()
    progress = ConsoleProgress(stream, clock=clock)
    progress.epoch_start(0, 3, 1875)
    for step in range(1, 1876):
        clock.now = step * 0.022
        progress.batch_end(step, {"loss": 0.2345})
    progress.epoch_end({"loss": 0.2345})
    lines = stream.getvalue().splitlines()
    assert lines[:2] == ["Epoch 1/3", "   1/1875 [..............................] - ETA: 41s - loss: 0.2345"]
    # then one line each LOG_INTERVAL seconds of the 41 s epoch, and the epoch's own line
    assert [line.split(" [")[0] for line in lines[2:]] == [" 683/1875", "1365/1875", "1875/1875"]
    assert lines[-1] == "1875/1875 [==============================] - 41s 22ms/step - loss: 0.2345"


def test_progress_redraws_the_bar_in_place_on_a_terminal():
    lines = report_one_epoch(Terminal()).split("\r")
    assert lines[0] == "Epoch 1/3\n"
    assert lines[1] == " 500/1875 [=======>......................] - ETA: 30s - loss: 0.2345 - accuracy: 0.9456\x1b[K"
    assert lines[-1] == END_OF_EPOCH + "\x1b[K\n"


def test_quiet_progress_is_one_line_per_epoch():
    assert report_one_epoch(Terminal(), quiet=True) == (
        "Epoch 1/3 - 41s 22ms/step - loss: 0.2345 - accuracy: 0.9456 - val_loss: 0.0893 - val_accuracy: 0.9733\n"
    )


#: A graph with a block used twice, a fan-out (the stem feeds the block and a Concatenate), dropout and
#: batch normalization inside the block.
GRAPH = {
    **SMALL,
    "name": "graph",
    "blocks": {
        "residual": {
            "params": {"filters": {"type": "integer"}, "strides": {"type": "integer", "default": 1}},
            "layers": [
                {
                    "type": "Conv2D",
                    "name": "conv",
                    "filters": "$filters",
                    "kernel_size": 3,
                    "strides": "$strides",
                    "padding": "same",
                    "activation": "relu",
                },
                {"type": "BatchNormalization", "name": "bn"},
                {"type": "Dropout", "name": "drop", "rate": 0.2},
                {
                    "type": "Conv2D",
                    "name": "shortcut",
                    "inputs": "input",
                    "filters": "$filters",
                    "kernel_size": 1,
                    "strides": "$strides",
                },
                {"type": "Add", "inputs": ["drop", "shortcut"]},
            ],
        }
    },
    "model": {
        "input_shape": [28, 28, 1],
        "layers": [
            {"type": "Conv2D", "name": "stem", "filters": 4, "kernel_size": 3, "strides": 2, "activation": "relu"},
            {"block": "residual", "filters": 4, "repeat": 2},
            {"type": "Concatenate", "inputs": ["residual_1", "stem"]},
            {"type": "GlobalAveragePooling2D"},
            {"type": "Dense", "units": 10, "activation": "softmax"},
        ],
    },
}


def test_a_graph_model_trains_bit_identically_and_resumes_exactly(tmp_path):
    reference = train(tmp_path, "reference", spec=GRAPH)
    again = train(tmp_path, "again", spec=GRAPH)
    assert_same_weights(reference.path, again.path)
    assert "residual_1/bn/moving_mean" in weights_of(reference.path)
    with pytest.raises(TrainingInterrupted):
        train(tmp_path, "stopped", spec=GRAPH, progress=StopAt(2, 4))
    api.fit(resume=tmp_path / "stopped", progress=Silent())
    assert_same_weights(reference.path, tmp_path / "stopped")
