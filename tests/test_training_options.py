"""Training options: learning-rate schedules (Keras' formulas, stepped per batch), label smoothing, class weights,
the moving average of the weights, and augmentation layers in a training run (seeded, resumable)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from test_train import StopAt, assert_same_weights, weights_of

from specforge import api
from specforge.base.errors import SpecError
from specforge.options import losses, optimizers
from specforge.options.class_weights import class_weight_vector
from specforge.options.schedules import SCHEDULES, create
from specforge.spec import spec_from_dict
from specforge.training.ema import WeightAverage
from specforge.training.loop import TrainingInterrupted
from specforge.training.progress import Silent

SPECS = Path(__file__).resolve().parents[1] / "specs"


# -- schedules ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value,step,expected",
    [
        (
            {"name": "exponential_decay", "initial_learning_rate": 0.1, "decay_steps": 100, "decay_rate": 0.5},
            150,
            0.1 * 0.5**1.5,
        ),
        (
            {
                "name": "exponential_decay",
                "initial_learning_rate": 0.1,
                "decay_steps": 100,
                "decay_rate": 0.5,
                "staircase": True,
            },
            150,
            0.05,
        ),
        ({"name": "piecewise_constant_decay", "boundaries": [10, 20], "values": [1.0, 0.5, 0.1]}, 10, 1.0),
        ({"name": "piecewise_constant_decay", "boundaries": [10, 20], "values": [1.0, 0.5, 0.1]}, 11, 0.5),
        ({"name": "piecewise_constant_decay", "boundaries": [10, 20], "values": [1.0, 0.5, 0.1]}, 21, 0.1),
        (
            {
                "name": "polynomial_decay",
                "initial_learning_rate": 1.0,
                "decay_steps": 10,
                "end_learning_rate": 0.0,
                "power": 2.0,
            },
            5,
            0.25,
        ),
        ({"name": "polynomial_decay", "initial_learning_rate": 1.0, "decay_steps": 10}, 50, 0.0001),
        (
            {
                "name": "polynomial_decay",
                "initial_learning_rate": 1.0,
                "decay_steps": 10,
                "end_learning_rate": 0.0,
                "cycle": True,
            },
            15,
            0.25,
        ),
        ({"name": "cosine_decay", "initial_learning_rate": 1.0, "decay_steps": 10}, 5, 0.5),
        ({"name": "cosine_decay", "initial_learning_rate": 1.0, "decay_steps": 10, "alpha": 0.2}, 10, 0.2),
        (
            {
                "name": "cosine_decay",
                "initial_learning_rate": 0.0,
                "decay_steps": 10,
                "warmup_target": 1.0,
                "warmup_steps": 4,
            },
            1,
            0.25,
        ),
        (
            {
                "name": "cosine_decay",
                "initial_learning_rate": 0.0,
                "decay_steps": 10,
                "warmup_target": 1.0,
                "warmup_steps": 4,
            },
            9,
            0.5,
        ),
        ({"name": "cosine_decay_restarts", "initial_learning_rate": 1.0, "first_decay_steps": 10}, 5, 0.5),
        (
            {"name": "cosine_decay_restarts", "initial_learning_rate": 1.0, "first_decay_steps": 10, "m_mul": 0.5},
            10,
            0.5,
        ),
        # the second period is t_mul = 2 times longer: halfway through it at 10 + 10
        ({"name": "cosine_decay_restarts", "initial_learning_rate": 1.0, "first_decay_steps": 10}, 20, 0.5),
    ],
)
def test_a_schedule_gives_keras_rate(value, step, expected):
    assert create(value)(step) == pytest.approx(expected)


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_every_schedule_has_valid_examples(name):
    for example in SCHEDULES[name].examples:
        rates = [create(example)(step) for step in range(0, 2000, 50)]
        assert all(math.isfinite(rate) and rate >= 0 for rate in rates)


def test_the_optimizer_asks_the_schedule_before_every_step():
    optimizer = optimizers.create(
        optimizers.resolve(
            {
                "name": "sgd",
                "learning_rate": {"name": "piecewise_constant_decay", "boundaries": [1], "values": [1.0, 0.5]},
            }
        )
    )
    weight = np.zeros(1, np.float32)
    steps = []
    for _ in range(3):
        before = weight.copy()
        optimizer.step([weight], [np.ones(1, np.float32)])
        steps.append(float(before[0] - weight[0]))
    assert steps == [1.0, 1.0, 0.5]  # steps 0 and 1 are <= the boundary


# -- label smoothing and class weights ---------------------------------------------------------------
@pytest.mark.parametrize(
    "name,smoothed",
    [("categorical_crossentropy", lambda y: y * 0.8 + 0.2 / 4), ("binary_crossentropy", lambda y: y * 0.8 + 0.1)],
)
def test_label_smoothing_moves_the_targets_as_keras(name, smoothed):
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((5, 4))
    y = np.eye(4)[rng.integers(0, 4, 5)]
    loss = losses.create({"name": name, "label_smoothing": 0.2})
    plain = losses.create(name)
    value, grad = loss.value_and_grad(logits, y, from_logits=True)
    expected_value, expected_grad = plain.value_and_grad(logits, smoothed(y), from_logits=True)
    assert value == pytest.approx(expected_value)
    np.testing.assert_allclose(grad, expected_grad)
    assert value != pytest.approx(plain.value(logits, y, from_logits=True))


def test_balanced_class_weights_are_sklearns():
    labels = np.array([0, 0, 0, 1, 2, 2])
    np.testing.assert_allclose(class_weight_vector("balanced", labels, 3), [6 / 9, 6 / 3, 6 / 6])
    np.testing.assert_allclose(
        class_weight_vector({"1": 3.0, "cat": 0.5}, labels, 3, ("dog", "cat", "bird")), [1.0, 0.5, 1.0]
    )


def test_a_weighted_loss_is_the_weighted_mean_of_the_examples_losses():
    rng = np.random.default_rng(1)
    logits, labels = rng.standard_normal((4, 3)), np.array([0, 2, 1, 2])
    loss = losses.create("sparse_categorical_crossentropy")
    weighted = losses.create("sparse_categorical_crossentropy")
    weighted.weights = np.array([1.0, 2.0, 0.0, 0.5])
    value, grad = weighted.value_and_grad(logits, labels, from_logits=True)
    each = [loss.value(logits[i : i + 1], labels[i : i + 1], from_logits=True) for i in range(4)]
    assert value == pytest.approx(np.dot(weighted.weights, each) / 4)
    _, plain_grad = loss.value_and_grad(logits, labels, from_logits=True)
    np.testing.assert_allclose(grad, plain_grad * weighted.weights[:, None])


# -- the moving average -------------------------------------------------------------------------------
def test_the_average_starts_at_the_weights_and_moves_with_the_momentum():
    weight = np.array([1.0])
    average = WeightAverage([weight], momentum=0.9, overwrite_frequency=None)
    average.update()
    weight[:] = 2.0
    average.update()
    assert average.averages[0][0] == pytest.approx(0.9 * 1.0 + 0.1 * 2.0)
    with average.applied():
        assert weight[0] == pytest.approx(1.1)
    assert weight[0] == 2.0


# -- runs ---------------------------------------------------------------------------------------------
AUGMENTED = {
    "version": 1,
    "name": "augmented",
    "data": {"source": "mnist", "preprocessing": {"rescale": 0.00392156862745098, "labels": "sparse"}},
    "model": {
        "input_shape": [28, 28, 1],
        "layers": [
            {"type": "RandomFlip", "mode": "horizontal"},
            {"type": "RandomRotation", "factor": 0.05, "fill_mode": "constant"},
            {"type": "RandomContrast", "factor": 0.2, "value_range": [0, 1]},
            {"type": "Conv2D", "filters": 4, "kernel_size": 3, "strides": 2, "activation": "relu"},
            {"type": "Flatten"},
            {"type": "Dense", "units": 10, "activation": "softmax"},
        ],
    },
    "compile": {
        "optimizer": {
            "name": "adam",
            "use_ema": True,
            "ema_momentum": 0.9,
            "learning_rate": {
                "name": "cosine_decay",
                "initial_learning_rate": 0.0,
                "warmup_target": 0.003,
                "warmup_steps": 6,
                "decay_steps": 20,
            },
        },
        "loss": {"name": "sparse_categorical_crossentropy", "label_smoothing": 0.1},
        "metrics": ["accuracy"],
    },
    "fit": {"epochs": 3, "batch_size": 32, "validation": "test", "seed": 5, "class_weight": "balanced"},
}


def fit(tmp_path, name, spec=AUGMENTED, progress=None, overrides=()):
    return api.fit(
        spec_from_dict(spec, overrides),
        out=tmp_path / name,
        progress=progress or Silent(),
        limit_train=256,
        limit_test=64,
    )


def test_an_augmented_run_is_bit_identical_and_resumes_exactly(tmp_path):
    first, second = fit(tmp_path, "a"), fit(tmp_path, "b")
    assert (first.path / "weights.npz").read_bytes() == (second.path / "weights.npz").read_bytes()
    with pytest.raises(TrainingInterrupted):
        fit(tmp_path, "stopped", progress=StopAt(2, 3))
    api.fit(resume=tmp_path / "stopped", progress=Silent())
    assert_same_weights(first.path, tmp_path / "stopped")
    assert (first.path / "history.json").read_text() == (tmp_path / "stopped" / "history.json").read_text()
    plain = dict(AUGMENTED, model=dict(AUGMENTED["model"], layers=AUGMENTED["model"]["layers"][3:]))
    unaugmented = fit(tmp_path, "plain", spec=plain)
    assert not np.array_equal(weights_of(first.path)["dense/kernel"], weights_of(unaugmented.path)["dense/kernel"])


def test_history_logs_the_scheduled_rate_and_the_saved_weights_are_the_averages(tmp_path):
    run = fit(tmp_path, "run")
    history = json.loads((run.path / "history.json").read_text())
    schedule = create(AUGMENTED["compile"]["optimizer"]["learning_rate"])
    assert history["learning_rate"] == pytest.approx([schedule(steps - 1) for steps in (8, 16, 24)])
    with np.load(run.path / "checkpoint.npz") as checkpoint:
        dense_average = checkpoint["ema/2"]  # conv kernel, conv bias, dense kernel, dense bias
        raw = checkpoint["weights/dense/kernel"]
    saved = weights_of(run.path)
    np.testing.assert_array_equal(saved["dense/kernel"], dense_average)
    assert not np.array_equal(saved["dense/kernel"], raw)


def test_the_augmented_residual_spec_learns_on_a_slice(tmp_path):
    overrides = [
        "fit.epochs=2",
        "fit.batch_size=32",
        "compile.optimizer.learning_rate.warmup_steps=4",
        "compile.optimizer.learning_rate.decay_steps=12",
    ]
    run = api.fit(
        api.load_spec(SPECS / "residual_augmented.yaml", overrides),
        out=tmp_path / "residual",
        progress=Silent(),
        limit_train=256,
        limit_test=128,
    )
    history = json.loads((run.path / "history.json").read_text())
    assert history["loss"][1] < history["loss"][0] < 3
    assert history["accuracy"][1] > 0.2


def test_data_show_draws_the_augmented_images(tmp_path):
    from PIL import Image

    spec = api.load_spec(SPECS / "residual_augmented.yaml")
    plain = np.asarray(Image.open(api.render_samples(spec, "train", tmp_path / "plain.png", 9)))
    first = np.asarray(Image.open(api.render_samples(spec, "train", tmp_path / "a.png", 9, augmented=True)))
    again = np.asarray(Image.open(api.render_samples(spec, "train", tmp_path / "b.png", 9, augmented=True)))
    assert first.shape == plain.shape and not np.array_equal(first, plain)
    np.testing.assert_array_equal(first, again)
    with pytest.raises(SpecError, match="no augmentation layers to show"):
        api.render_samples(api.load_spec(SPECS / "residual.yaml"), "train", tmp_path / "c.png", 9, augmented=True)


# -- example weights from a table column ------------------------------------------------------------
def _table_spec(tmp_path: Path, weights: list[str], **data) -> dict:
    rows = [f"{i % 7},{(i * 3) % 5},{'ab'[i % 2]},{weights[i % len(weights)]}" for i in range(40)]
    (tmp_path / "train.csv").write_text("x1,x2,label,w\n" + "\n".join(rows) + "\n")
    return {
        "version": 1,
        "name": "weighted",
        "data": {
            "source": "table",
            "train": "train.csv",
            "features": [{"column": "x1"}, {"column": "x2"}],
            "target": {"column": "label"},
            **data,
        },
        "model": {"input_shape": [2], "layers": [{"type": "Dense", "units": 2, "activation": "softmax"}]},
        "compile": {"optimizer": {"name": "sgd", "learning_rate": 0.1}, "loss": "categorical_crossentropy"},
        "fit": {"epochs": 2, "batch_size": 8, "seed": 3},
    }


def _table_run(tmp_path: Path, name: str, spec: dict):
    path = tmp_path / f"{name}.yaml"
    path.write_text(json.dumps(spec))
    return api.fit(path, out=tmp_path / name, progress=Silent())


def test_example_weights_follow_the_shuffled_batches(tmp_path):
    weights = [str(w) for w in (1, 0, 2, 0.5, 3)]
    weighted = _table_run(tmp_path, "weighted", _table_spec(tmp_path, weights, sample_weight="w"))
    ones = _table_run(tmp_path, "ones", _table_spec(tmp_path, ["1"], sample_weight="w"))
    plain = _table_run(tmp_path, "plain", _table_spec(tmp_path, ["1"]))
    assert_same_weights(ones.path, plain.path)
    assert not np.array_equal(weights_of(weighted.path)["dense/kernel"], weights_of(plain.path)["dense/kernel"])


def test_the_weighting_sees_the_examples_iterate_batches_yields():
    from specforge.data.batches import iterate_batches
    from specforge.data.preprocessing import Preprocessing
    from specforge.data.splits import Split
    from specforge.training.options import Weighting

    labels = np.arange(23)
    split = Split(
        "train",
        np.zeros((23, 1), np.float32),
        labels,
        preprocessing=Preprocessing((1,), 23, tuple(map(str, labels)), labels_encoding="sparse"),
    )
    weighting = Weighting(losses.create("sparse_categorical_crossentropy"), None, labels.astype(np.float64))
    rng = np.random.default_rng(4)
    weighting.start_epoch(23, 5, True, rng)
    for step, (_, y) in enumerate(iterate_batches(split, 5, shuffle=True, rng=rng), 1):
        np.testing.assert_array_equal(weighting.batch(step, y), y)


def test_a_weight_column_that_does_not_exist_is_one_located_line(tmp_path):
    from typer.testing import CliRunner

    from specforge.cli.commands import app

    spec = _table_spec(tmp_path, ["1"], sample_weight="weight")
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    result = CliRunner().invoke(app, ["train", str(tmp_path / "spec.yaml"), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2
    expected = (
        f"{tmp_path / 'spec.yaml'}:11:18: error: data.sample_weight: {tmp_path / 'train.csv'} has no "
        "column 'weight'; the header has: x1, x2, label, w"
    )
    assert result.output.strip().splitlines() == [expected]


def test_augmentation_is_absent_from_the_export_but_random_crop_crops():
    from helpers import make_layer, onnx_of

    dense = make_layer("Dense", {"units": 3}, (48,), dtype=np.float32)
    flatten = make_layer("Flatten", {}, (4, 4, 3), dtype=np.float32)
    augmented = [
        make_layer(kind, config, (4, 4, 3), dtype=np.float32)
        for kind, config in [
            ("RandomFlip", {}),
            ("RandomRotation", {"factor": 0.1}),
            ("RandomContrast", {"factor": 0.2}),
        ]
    ]
    plain_ops = [node.op_type for node in onnx_of([flatten, dense], (4, 4, 3)).graph.node]
    assert [node.op_type for node in onnx_of([*augmented, flatten, dense], (4, 4, 3)).graph.node] == plain_ops
    crop = make_layer("RandomCrop", {"height": 2, "width": 4}, (4, 4, 3), dtype=np.float32)
    cropped = onnx_of([crop, make_layer("Flatten", {}, (2, 4, 3), dtype=np.float32)], (4, 4, 3))
    assert "Slice" in [node.op_type for node in cropped.graph.node]
