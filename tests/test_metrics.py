import numpy as np
import pytest

from specforge.base.errors import SpecError
from specforge.options import metrics

PROBABILITIES = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.3, 0.4, 0.3], [0.05, 0.9, 0.05]])
LABELS = np.array([0, 1, 1, 2])
# argmax: 0, 2, 1, 1 -> rows 0 and 2 correct.
# Units above 0.5: (0,0) (1,2) (3,1); of these only (0,0) is a label -> precision 1/3, recall 1/4.
# Units above 0.25: (0,0) (1,1) (1,2) (2,0) (2,1) (2,2) (3,1); labels among them: (0,0) (1,1) (2,1)
# -> precision 3/7, recall 3/4.


def create(spec_list: list, units: int) -> list[metrics.Metric]:
    """The metrics a spec's ``compile.metrics`` describes, resolved as the spec resolves it."""
    return metrics.create(metrics.resolve(spec_list), units)


def test_a_metric_is_built_from_its_resolved_options_only():
    """Defaults are filled once, when the spec is resolved: the factory takes every option and adds none."""
    (metric,) = metrics.create(metrics.resolve([{"name": "precision", "class_id": 1}]), 3)
    assert (metric.name, metric.thresholds, metric.class_id) == ("precision", 0.5, 1)
    with pytest.raises(TypeError, match="thresholds"):
        metrics.create([{"name": "precision", "class_id": 1}], 3)


def measure(spec, probabilities=PROBABILITIES, labels=LABELS, units=3):
    (metric,) = create([spec], units)
    metric.update(probabilities, labels)
    return metric.result()


def test_accuracy():
    assert measure("accuracy") == 0.5


def test_top_k_accuracy():
    # Number of classes more probable than the label: 0, 1 (0.6 > 0.3), 0, 1 (0.9 > 0.05).
    assert measure({"name": "top_k_accuracy", "k": 1}) == 0.5
    assert measure({"name": "top_k_accuracy", "k": 2}) == 1.0


def test_top_k_counts_ties_as_inside():
    assert measure({"name": "top_k_accuracy", "k": 1}, np.array([[0.4, 0.4, 0.2]]), np.array([1])) == 1.0


@pytest.mark.parametrize("thresholds,precision,recall", [(0.5, 1 / 3, 1 / 4), (0.25, 3 / 7, 3 / 4)])
def test_precision_and_recall_over_all_units(thresholds, precision, recall):
    assert measure({"name": "precision", "thresholds": thresholds}) == pytest.approx(precision)
    assert measure({"name": "recall", "thresholds": thresholds}) == pytest.approx(recall)


def test_precision_and_recall_of_one_class():
    # Column 1: 0.2 0.3 0.4 0.9, labels == 1 in rows 1 and 2.
    assert measure({"name": "precision", "class_id": 1}) == 0.0  # only row 3 > 0.5, a class-2 example
    assert measure({"name": "recall", "class_id": 1}) == 0.0
    assert measure({"name": "precision", "class_id": 1, "thresholds": 0.35}) == 0.5  # rows 2 and 3
    assert measure({"name": "recall", "class_id": 1, "thresholds": 0.35}) == 0.5  # row 2 of rows 1, 2


def test_one_sigmoid_unit():
    probabilities = np.array([[0.8], [0.4], [0.6], [0.1]])
    labels = np.array([1, 1, 0, 0])
    assert measure("accuracy", probabilities, labels, units=1) == 0.5  # predicted 1 0 1 0
    assert measure("precision", probabilities, labels, units=1) == 0.5  # rows 0 and 2 predicted, row 0 right
    assert measure("recall", probabilities, labels, units=1) == 0.5  # rows 0 and 1 positive, row 0 found


@pytest.mark.parametrize("spec", ["accuracy", {"name": "top_k_accuracy", "k": 2}, "precision", "recall"], ids=str)
def test_results_do_not_depend_on_batching_and_reset_clears(spec):
    whole = measure(spec)
    (metric,) = create([spec], 3)
    metric.update(PROBABILITIES[:1], LABELS[:1])
    metric.update(PROBABILITIES[1:], LABELS[1:])
    assert metric.result() == whole
    metric.reset()
    assert metric.result() == 0.0
    metric.update(PROBABILITIES[:1], LABELS[:1])
    assert metric.result() == measure(spec, PROBABILITIES[:1], LABELS[:1])


def test_names_as_keras_reports_them():
    created = create(
        ["accuracy", {"name": "top_k_accuracy", "k": 3}, "precision", "recall", {"name": "precision", "class_id": 2}],
        10,
    )
    assert [m.name for m in created] == ["accuracy", "top_k_accuracy", "precision", "recall", "precision_1"]


def test_resolve_fills_defaults_as_the_schema_does():
    from specforge.base.defaults import with_defaults

    spec = ["accuracy", {"name": "top_k_accuracy"}, {"name": "recall", "class_id": 1}]
    assert metrics.resolve(spec) == [
        {"name": "accuracy"},
        {"name": "top_k_accuracy", "k": 5},
        {"name": "recall", "thresholds": 0.5, "class_id": 1},
    ]
    assert with_defaults(spec[1:], metrics.METRICS_SCHEMA) == metrics.resolve(spec)[1:]
    assert metrics.METRICS_SCHEMA["default"] == ["accuracy"]


@pytest.mark.parametrize(
    "spec,units,path,message",
    [
        ({"name": "top_k_accuracy"}, 5, "compile.metrics[0].k", "k=5 with 5 classes"),
        ("top_k_accuracy", 1, "compile.metrics[0].name", "single unit"),
        ({"name": "precision", "class_id": 3}, 3, "compile.metrics[0].class_id", "class_id=3 with 3 output unit"),
    ],
)
def test_spec_errors(spec, units, path, message):
    with pytest.raises(SpecError, match=message) as error:
        create([spec], units)
    assert error.value.problems[0].location.path == path


def test_schema_is_precise():
    from jsonschema import Draft7Validator

    validator = Draft7Validator(metrics.METRICS_SCHEMA)
    assert validator.is_valid(["accuracy", {"name": "precision", "thresholds": 0.3, "class_id": 0}])
    errors = list(validator.iter_errors([{"name": "recall", "k": 2}]))
    assert [e.validator for e in errors] == ["additionalProperties"]


PREDICTIONS = np.array([[2.0, 10.0], [4.0, 20.0], [5.0, 20.0], [9.0, 50.0], [1.0, 0.0]])
TARGETS = np.array([[1.0, 12.0], [4.0, 18.0], [7.0, 25.0], [8.0, 40.0], [0.0, 5.0]])


def regression(name, batches):
    (metric,) = create([name], 2)
    for part in batches:
        metric.update(PREDICTIONS[part], TARGETS[part])
    return metric.result()


@pytest.mark.parametrize("batches", [[slice(None)], [slice(0, 2), slice(2, 3), slice(3, None)]])
def test_regression_metrics_are_exact_totals_over_the_epoch(batches):
    errors = PREDICTIONS - TARGETS
    assert metrics.METRICS["mae"].takes_targets and not metrics.METRICS["accuracy"].takes_targets
    assert regression("mae", batches) == pytest.approx(np.abs(errors).mean(), rel=1e-12)
    assert regression("rmse", batches) == pytest.approx(np.sqrt(np.square(errors).mean()), rel=1e-12)
    # r2 per output, averaged: scikit-learn's r2_score(multioutput="uniform_average")
    per_output = 1 - np.square(errors).sum(0) / np.square(TARGETS - TARGETS.mean(0)).sum(0)
    assert regression("r2", batches) == pytest.approx(per_output.mean(), rel=1e-12)


def test_r2_of_a_perfect_fit_and_of_the_mean():
    (metric,) = create(["r2"], 1)
    metric.update(TARGETS[:, :1], TARGETS[:, :1])
    assert metric.result() == 1.0
    metric.reset()
    metric.update(np.full((5, 1), TARGETS[:, 0].mean()), TARGETS[:, :1])
    assert metric.result() == pytest.approx(0.0, abs=1e-12)
