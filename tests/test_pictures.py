"""Pictures of runs: training curves, the confusion matrix with per-class scores, the examples a model gets wrong."""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from specforge import api
from specforge.runs.listing import Curves, higher_is_better, run_curves
from specforge.runs.plots import COLOURS
from specforge.training.progress import Silent
from tests.test_cli_train import ROOT, SEED_SPEC, environment, specforge


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two short runs of the seed spec, one with EarlyStopping on val_accuracy, in a fresh directory."""
    root = tmp_path_factory.mktemp("pictures")
    first = api.fit(
        SEED_SPEC,
        overrides=["fit.epochs=3"],
        out=root / "runs/first",
        progress=Silent(),
        limit_train=600,
        limit_test=200,
    )
    second = api.fit(
        SEED_SPEC,
        overrides=[
            "fit.epochs=2",
            "fit.batch_size=64",
            ('fit.callbacks=[{"type": "EarlyStopping", "monitor": "val_accuracy", "patience": 5}]'),
        ],
        out=root / "runs/second",
        progress=Silent(),
        limit_train=600,
        limit_test=200,
    )
    return root, first, second


def colour_pixels(path, hex_colour):
    rgb = np.asarray(Image.open(path).convert("RGB")).reshape(-1, 3).astype(int)
    target = np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)])
    return int((np.abs(rgb - target).sum(axis=1) < 30).sum())


def test_plot_draws_each_run_in_its_colour(runs):
    root, _first, _second = runs
    result = specforge("plot", "runs/first", cwd=root)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "wrote runs/first/curves.png\n"
    single = root / "runs/first/curves.png"
    assert Image.open(single).format == "PNG"
    assert colour_pixels(single, COLOURS[0]) > 500 and colour_pixels(single, COLOURS[1]) == 0
    both = specforge("plot", "runs/first", "runs/second", "--out", "both.png", cwd=root)
    assert both.returncode == 0, both.stderr
    assert colour_pixels(root / "both.png", COLOURS[0]) > 500 and colour_pixels(root / "both.png", COLOURS[1]) > 500


def test_the_best_epoch_follows_the_monitored_value(runs):
    _root, first, second = runs
    curves = run_curves(first.path)
    assert curves.monitor == "val_loss"
    assert curves.best_epoch == int(np.argmin(json.loads((first.path / "history.json").read_text())["val_loss"]))
    monitored = run_curves(second.path)
    assert monitored.monitor == "val_accuracy"
    assert Curves("x", {"val_accuracy": [0.5, 0.9, 0.7]}, "val_accuracy").best_epoch == 1
    assert Curves("x", {"val_loss": [0.5, 0.9, 0.2]}, "val_loss").best_epoch == 2
    assert higher_is_better("val_accuracy") and not higher_is_better("val_loss")
    assert not higher_is_better("val_accuracy", mode="min") and higher_is_better("loss", mode="max")


def test_per_class_scores_agree_with_the_predictions(runs):
    _root, first, _ = runs
    results = api.evaluate(first, limit=200, details=True)
    matrix = np.array(results["confusion_matrix"])
    assert matrix.sum() == results["examples"] == 200
    assert np.trace(matrix) / matrix.sum() == pytest.approx(results["accuracy"])
    from specforge.training.evaluate import run_split

    _, split = run_split(first, "test", 200)
    predicted = api.predict(first, split.images).argmax(axis=1)
    labels = np.asarray(split.labels)
    for row in results["per_class"]:
        cls = row["class"]
        hits = np.sum((predicted == cls) & (labels == cls))
        assert row["support"] == np.sum(labels == cls)
        assert row["recall"] == pytest.approx(hits / max(np.sum(labels == cls), 1))
        assert row["precision"] == pytest.approx(hits / np.sum(predicted == cls) if np.any(predicted == cls) else 0)
    assert api.evaluate(first, limit=200) == {
        key: value for key, value in results.items() if key not in ("class_names", "per_class", "confusion_matrix")
    }


def test_evaluate_prints_the_table_and_the_matrix_and_draws_it(runs):
    root, _, _ = runs
    result = specforge("evaluate", "runs/first", "--limit", 200, "--plot", cwd=root)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("test (200 examples) - loss: ")
    assert lines[2] == "class         precision  recall      f1  support"
    assert lines[14].startswith("weighted avg") and lines[14].endswith("  200")
    assert "true \\ predicted   0   1   2   3   4   5   6   7   8   9" in lines
    assert lines[-1] == "wrote runs/first/confusion-test.png"
    assert Image.open(root / "runs/first/confusion-test.png").format == "PNG"
    as_json = json.loads(specforge("evaluate", "runs/first", "--limit", 200, "--json", cwd=root).stdout)
    assert len(as_json["per_class"]) == 10 and len(as_json["confusion_matrix"]) == 10


def test_the_misclassified_grid_holds_exactly_the_wrong_examples(runs):
    root, first, _ = runs
    from specforge.training.evaluate import find_mistakes, run_split

    mistakes = find_mistakes(first, "test", limit=200)
    _, split = run_split(first, "test", 200)
    predicted = api.predict(first, split.images).argmax(axis=1)
    np.testing.assert_array_equal(mistakes.indices, np.flatnonzero(predicted != np.asarray(split.labels)))
    np.testing.assert_array_equal(mistakes.images, np.asarray(split.images)[mistakes.indices])
    result = specforge("data", "show", "runs/first", "--misclassified", "--limit", 200, "--count", 6, cwd=root)
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        f"{len(mistakes.indices)} of 200 test examples are misclassified; wrote the first "
        f"{min(6, len(mistakes.indices))} to runs/first/misclassified-test.png\n"
    )
    assert Image.open(root / "runs/first/misclassified-test.png").format == "PNG"


def test_drawing_without_matplotlib_is_one_line_naming_the_extra(runs):
    root, _, _ = runs
    probe = (
        "import sys; sys.modules['matplotlib'] = None; sys.argv = ['specforge', 'plot', 'runs/first']; "
        "from specforge.cli.commands import main; main()"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=root, env=environment(), capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2
    assert result.stderr == (
        "specforge: error: drawing needs matplotlib; install it with: pip install 'specforge[plot]'\n"
    )


def test_validate_does_not_import_the_drawing_or_logging_libraries():
    probe = (
        "import sys; from specforge import api, cli; api.validate(sys.argv[1]); "
        "print(','.join(m for m in ('matplotlib', 'tensorboardX', 'PIL') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", probe, SEED_SPEC], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


@pytest.mark.parametrize("loss", [[2.3, 1.9, 1.5, 1.3], [2.3, 0.5, 0.1, 0.05], [0.31, 0.29, 0.28, 0.27]])
def test_the_log_loss_axis_is_labelled_with_plain_numbers(loss):
    """Not 2×10⁰ (matplotlib's default writes minor ticks in scientific notation): every label reads as a
    number, and each sits at its tick."""
    from specforge.runs.plots import curves_figure

    figure = curves_figure([Curves("x", {"loss": loss, "val_loss": [value * 1.05 for value in loss]}, "val_loss")])
    figure.canvas.draw()
    axis = figure.axes[0]
    assert axis.get_yscale() == "log"
    labels = [
        (tick.get_loc(), tick.label1.get_text())
        for tick in axis.yaxis.get_major_ticks() + axis.yaxis.get_minor_ticks()
        if tick.label1.get_text()
    ]
    low, high = axis.get_ylim()
    shown = [(where, text) for where, text in labels if low <= where <= high]
    assert len(shown) >= 3, labels
    for where, text in shown:
        assert float(text) == pytest.approx(where, rel=0.01), text
