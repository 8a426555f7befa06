"""A batch-normalized run too short for its moving statistics to move gets one located warning line, from
``train`` and from ``evaluate``, with the steps and the momentum that would do."""

from __future__ import annotations

import yaml
from typer.testing import CliRunner

from specforge import api
from specforge.cli.commands import app
from specforge.training.moving_statistics import UNSETTLED_SHARE, settling_momentum, steps_needed


def write_spec(tmp_path, momentum: float | None):
    normalization = {"type": "BatchNormalization", **({} if momentum is None else {"momentum": momentum})}
    spec = {
        "version": 1,
        "name": "bn",
        "data": {"source": "mnist", "preprocessing": {"rescale": 0.00392156862745098}},
        "model": {
            "input_shape": [28, 28, 1],
            "layers": [
                {"type": "Flatten"},
                {"type": "Dense", "units": 8},
                normalization,
                {"type": "Dense", "units": 10, "activation": "softmax"},
            ],
        },
        "compile": {"optimizer": "adam", "loss": "categorical_crossentropy", "metrics": ["accuracy"]},
        "fit": {"epochs": 2, "batch_size": 32, "validation": "none", "seed": 0},
    }
    path = tmp_path / "bn.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def invoke(*args):
    return CliRunner().invoke(app, [*map(str, args)])


def test_the_steps_needed_and_the_momentum_that_would_do():
    assert steps_needed(0.99) == 299 and 0.99**299 <= UNSETTLED_SHARE < 0.99**298
    assert steps_needed(1.0) is None
    assert settling_momentum(32) == 0.91 and 0.91**32 <= UNSETTLED_SHARE < 0.92**32


def test_a_short_batch_normalized_run_warns_in_train_and_evaluate(tmp_path):
    spec = write_spec(tmp_path, None)
    trained = invoke("train", spec, "--out", tmp_path / "run", "--limit-train", 64, "--limit-test", 32)
    assert trained.exit_code == 0, trained.output
    line = next(number for number, text in enumerate(spec.read_text().splitlines(), 1) if "BatchNormalization" in text)
    (warning,) = [text for text in trained.stdout.splitlines() if "warning" in text]
    assert warning.startswith(f"{spec}:{line}:")
    assert (
        ": warning: model.layers[2]: after 4 training steps the moving mean and variance of 'batch_normalization' "
        "still hold 96% of their initial values (momentum 0.99)"
    ) in warning
    assert warning.endswith(
        "train for at least 299 steps (more epochs, more data or a smaller batch_size) or lower "
        "the momentum (momentum: 0.47 would do in 4 steps)"
    )
    evaluated = invoke("evaluate", tmp_path / "run", "--limit", 32)
    assert evaluated.exit_code == 0, evaluated.output
    assert evaluated.stderr.splitlines() == [warning.replace(str(spec), str(tmp_path / "run" / "spec.yaml"))]


def test_a_momentum_that_settles_in_the_steps_taken_gives_no_warning(tmp_path):
    spec = write_spec(tmp_path, 0.45)  # 0.45 ** 4 = 0.04
    trained = invoke("train", spec, "--out", tmp_path / "run", "--limit-train", 64, "--limit-test", 32)
    assert trained.exit_code == 0, trained.output
    assert "warning" not in trained.stdout
    assert invoke("evaluate", tmp_path / "run", "--limit", 32).stderr == ""
    assert api.load_run(tmp_path / "run").manifest["steps_completed"] == 4
