import math

import numpy as np
import pytest
from helpers import numerical_gradient

from specforge.base.errors import DataError, SpecError
from specforge.options import losses

RNG = np.random.default_rng(0)


def check_grad(loss, outputs, y, from_logits):
    value, grad = loss.value_and_grad(outputs.copy(), y, from_logits)
    assert grad.shape == outputs.shape and grad.dtype == outputs.dtype
    assert value == pytest.approx(loss.value(outputs, y, from_logits), rel=1e-12)
    perturbed = outputs.copy()
    expected = numerical_gradient(lambda: loss.value(perturbed, y, from_logits), perturbed)
    np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-8)


def one_hot_rows(labels, depth):
    return np.eye(depth)[labels]


LABELS = np.array([0, 2, 1, 2, 3])


# -- gradients (float64 finite differences) -------------------------------------------------------


@pytest.mark.parametrize("name", ["categorical_crossentropy", "sparse_categorical_crossentropy"])
def test_crossentropy_gradient_from_logits(name):
    loss = losses.create(name)
    logits = RNG.normal(size=(5, 4)) * 3
    y = LABELS if name.startswith("sparse") else one_hot_rows(LABELS, 4)
    check_grad(loss, logits, y, from_logits=True)


@pytest.mark.parametrize("name", ["categorical_crossentropy", "sparse_categorical_crossentropy"])
def test_crossentropy_gradient_from_unnormalised_probabilities(name):
    loss = losses.create(name)
    outputs = RNG.uniform(0.1, 1.0, size=(5, 4))  # rows do not sum to 1: exercises the renormalisation
    y = LABELS if name.startswith("sparse") else one_hot_rows(LABELS, 4)
    check_grad(loss, outputs, y, from_logits=False)


def test_categorical_crossentropy_gradient_with_soft_labels():
    soft = RNG.dirichlet(np.ones(4), size=5)
    check_grad(losses.create("categorical_crossentropy"), RNG.normal(size=(5, 4)), soft, from_logits=True)


@pytest.mark.parametrize("from_logits", [True, False])
def test_binary_crossentropy_gradient(from_logits):
    outputs = RNG.normal(size=(6, 3)) * 4 if from_logits else RNG.uniform(0.05, 0.95, size=(6, 3))
    y = RNG.integers(0, 2, size=(6, 3)).astype(np.float64)
    check_grad(losses.create("binary_crossentropy"), outputs, y, from_logits)


@pytest.mark.parametrize("name", ["mean_squared_error", "mean_absolute_error", "huber"])
def test_regression_gradient(name):
    outputs = RNG.normal(size=(4, 3, 2))
    check_grad(
        losses.create(name),
        outputs,
        outputs + RNG.uniform(0.1, 1, size=outputs.shape) * RNG.choice([-1, 1], size=outputs.shape),
        from_logits=False,
    )


@pytest.mark.parametrize("delta", [1.0, 0.3])
def test_huber_gradient(delta):
    outputs = RNG.normal(size=(4, 3, 2))
    # every difference at least 0.05 away from the kink at |e| = delta
    offsets = RNG.choice([0.2, 0.6, 1.4, 3.0], size=outputs.shape) * RNG.choice([-1, 1], size=outputs.shape)
    check_grad(losses.Huber(delta=delta), outputs, outputs + offsets, from_logits=False)


@pytest.mark.parametrize("from_logits", [True, False])
def test_kl_divergence_gradient(from_logits):
    outputs = RNG.normal(size=(5, 4)) * 3 if from_logits else RNG.dirichlet(np.ones(4), size=5) * 0.9 + 0.02
    check_grad(losses.create("kl_divergence"), outputs, RNG.dirichlet(np.ones(4), size=5), from_logits)


# -- values against hand-worked references --------------------------------------------------------


def reference_crossentropy(logits, labels):
    total = 0.0
    for row, label in zip(logits.tolist(), labels.tolist()):
        top = max(row)
        log_sum = top + math.log(math.fsum(math.exp(v - top) for v in row))
        total += log_sum - row[label]
    return total / len(labels)


def test_crossentropy_values_match_plain_python():
    logits = RNG.normal(size=(5, 4))
    expected = reference_crossentropy(logits, LABELS)
    assert losses.create("categorical_crossentropy").value(logits, one_hot_rows(LABELS, 4), True) == pytest.approx(
        expected, rel=1e-12
    )
    assert losses.create("sparse_categorical_crossentropy").value(logits, LABELS, True) == pytest.approx(
        expected, rel=1e-12
    )
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert losses.create("categorical_crossentropy").value(probabilities, one_hot_rows(LABELS, 4)) == pytest.approx(
        expected, rel=1e-9
    )


def test_huge_logits_stay_finite_in_float32():
    # Raw 0-255 pixels give logits in the thousands; exp() of them overflows without the shift.
    logits = np.array([[3000.0, 0.0, -3000.0], [3000.0, 2000.0, 0.0]], dtype=np.float32)
    labels = np.array([0, 1])
    value, grad = losses.create("sparse_categorical_crossentropy").value_and_grad(logits, labels, True)
    assert grad.dtype == np.float32
    assert value == pytest.approx((0.0 + 1000.0) / 2)  # -log softmax: 0 for the first row, 1000 for the second
    np.testing.assert_allclose(grad, [[0, 0, 0], [0.5, -0.5, 0]], atol=1e-7)


def test_binary_crossentropy_from_huge_logits_is_finite():
    logits = np.array([[800.0], [-800.0], [0.0]])
    y = np.array([[0.0], [0.0], [1.0]])
    value, grad = losses.create("binary_crossentropy").value_and_grad(logits, y, True)
    assert value == pytest.approx((800.0 + 0.0 + math.log(2)) / 3)
    np.testing.assert_allclose(grad, [[1 / 3], [0.0], [-0.5 / 3]])


def test_binary_crossentropy_value_matches_plain_python():
    p = np.array([[0.2, 0.9], [0.6, 0.3]])
    y = np.array([[0.0, 1.0], [1.0, 1.0]])
    expected = -(math.log(0.8) + math.log(0.9) + math.log(0.6) + math.log(0.3)) / 4
    assert losses.create("binary_crossentropy").value(p, y) == pytest.approx(expected, rel=1e-12)
    logits = np.log(p / (1 - p))
    assert losses.create("binary_crossentropy").value(logits, y, from_logits=True) == pytest.approx(expected, rel=1e-12)


def test_probabilities_are_clipped_as_keras():
    # A zero probability for the true class costs -log(1e-7), not infinity; no gradient flows through the clip.
    value, grad = losses.create("categorical_crossentropy").value_and_grad(
        np.array([[0.0, 1.0]]), np.array([[1.0, 0.0]])
    )
    assert value == pytest.approx(-math.log(1e-7))
    assert np.all(np.isfinite(grad))
    value, grad = losses.create("binary_crossentropy").value_and_grad(np.array([[1.0]]), np.array([[0.0]]))
    assert value == pytest.approx(-math.log(1e-7), rel=1e-6)
    assert grad[0, 0] == 0.0


def test_regression_values():
    outputs = np.array([[1.0, 2.0], [3.0, 5.0]])
    targets = np.array([[0.0, 2.0], [5.0, 4.0]])
    assert losses.create("mean_squared_error").value(outputs, targets) == pytest.approx((1 + 0 + 4 + 1) / 4)
    assert losses.create("mean_absolute_error").value(outputs, targets) == pytest.approx((1 + 0 + 2 + 1) / 4)


def test_huber_values_by_hand():
    # errors 0.5, -2, 0, 1: 0.125, 2 - 0.5 = 1.5, 0, 0.5 with delta 1; with delta 2 the -2 is still quadratic: 2
    outputs, targets = np.array([[1.5, -2.0], [3.0, 1.0]]), np.array([[1.0, 0.0], [3.0, 0.0]])
    assert losses.create("huber").value(outputs, targets) == pytest.approx((0.125 + 1.5 + 0 + 0.5) / 4)
    assert losses.Huber(delta=2.0).value(outputs, targets) == pytest.approx((0.125 + 2.0 + 0 + 0.5) / 4)


def test_kl_divergence_matches_plain_python():
    """Keras: sum(y * log(y / p)) per row with y and p clipped to [1e-7, 1], averaged over the rows."""
    y = np.array([[0.2, 0.8, 0.0], [1.0, 0.0, 0.0]])
    p = np.array([[0.3, 0.6, 0.1], [0.5, 0.25, 0.25]])
    expected = 0.0
    for y_row, p_row in zip(y.tolist(), p.tolist()):
        expected += math.fsum(max(a, 1e-7) * math.log(max(a, 1e-7) / b) for a, b in zip(y_row, p_row))
    loss = losses.create("kl_divergence")
    assert loss.value(p, y) == pytest.approx(expected / 2, rel=1e-12)
    assert loss.value(np.log(p) + 3.0, y, from_logits=True) == pytest.approx(expected / 2, rel=1e-12)
    assert loss.value(y, y) == pytest.approx(0.0, abs=1e-12)
    assert loss.encode_labels(np.array([1, 0]), 3).tolist() == [[0, 1, 0], [1, 0, 0]]


def test_float32_in_float32_out():
    logits = RNG.normal(size=(3, 4)).astype(np.float32)
    for loss in map(losses.create, losses.LOSS_NAMES):
        y = loss.encode_labels(np.array([0, 1, 3]), 4)
        from_logits = loss.fused_activation is not None
        outputs = logits if from_logits else np.abs(logits) / 10
        value, grad = loss.value_and_grad(outputs, y, from_logits)
        assert isinstance(value, float) and grad.dtype == np.float32


def test_outputs_are_not_modified():
    logits = RNG.normal(size=(3, 4))
    kept = logits.copy()
    for loss in map(losses.create, losses.LOSS_NAMES):
        loss.value_and_grad(
            logits, loss.encode_labels(np.array([0, 1, 3]), 4), from_logits=loss.fused_activation is not None
        )
    np.testing.assert_array_equal(logits, kept)


# -- declarations used by validation and the training loop ----------------------------------------


def test_registry_matches_schema():
    assert tuple(losses.LOSSES) == losses.LOSS_NAMES == tuple(losses.LOSS_SCHEMA["allOf"][0]["then"]["enum"])


def test_a_loss_with_options():
    from jsonschema import Draft7Validator

    loss = losses.create({"name": "huber", "delta": 0.5})
    assert isinstance(loss, losses.Huber) and loss.delta == 0.5
    assert losses.create({"name": "huber"}).delta == losses.create("huber").delta == 1.0
    assert losses.create({"name": "mean_squared_error"}).name == "mean_squared_error"
    validator = Draft7Validator(losses.LOSS_SCHEMA)
    assert validator.is_valid({"name": "huber", "delta": 2})
    assert not validator.is_valid({"name": "mean_squared_error", "delta": 2})
    assert not validator.is_valid({"name": "huber", "delta": 0})
    assert not validator.is_valid({"delta": 2})


def test_fits_rejects_outputs_that_are_not_probabilities():
    message = losses.create("categorical_crossentropy").fits("relu", 10)
    assert message == (
        "categorical_crossentropy expects probabilities over the classes: use activation: "
        "softmax on the last layer (received: relu)"
    )
    assert "sigmoid" in losses.create("binary_crossentropy").fits("linear", 1)
    assert "1 unit" in losses.create("sparse_categorical_crossentropy").fits("softmax", 1)
    assert losses.create("categorical_crossentropy").fits("softmax", 10) is None
    assert losses.create("binary_crossentropy").fits("sigmoid", 1) is None
    assert losses.create("mean_squared_error").fits("linear", 1) is None


def test_declared_fusion_and_encoding():
    assert [(loss.fused_activation, loss.label_encoding) for loss in losses.LOSSES.values()] == [
        ("softmax", "one_hot"),
        ("softmax", "sparse"),
        ("sigmoid", "any"),
        (None, "any"),
        (None, "any"),
        (None, "any"),
        ("softmax", "one_hot"),
    ]


def test_encode_labels():
    labels = np.array([2, 0])
    np.testing.assert_array_equal(
        losses.create("categorical_crossentropy").encode_labels(labels, 3), [[0, 0, 1], [1, 0, 0]]
    )
    np.testing.assert_array_equal(losses.create("sparse_categorical_crossentropy").encode_labels(labels, 3), [2, 0])
    np.testing.assert_array_equal(losses.create("binary_crossentropy").encode_labels(np.array([1, 0]), 1), [[1], [0]])
    with pytest.raises(DataError, match="label 2 is out of range"):
        losses.create("binary_crossentropy").encode_labels(labels, 1)
    with pytest.raises(DataError, match="label 3 is out of range for 3 output units"):
        losses.create("sparse_categorical_crossentropy").value(np.zeros((1, 3)), np.array([3]), True)


def test_to_probabilities_applies_the_fused_activation():
    logits = np.array([[1.0, 2.0, 3.0]])
    np.testing.assert_allclose(
        losses.create("categorical_crossentropy").to_probabilities(logits, True), np.exp(logits) / np.exp(logits).sum()
    )
    np.testing.assert_allclose(
        losses.create("binary_crossentropy").to_probabilities(logits, True), 1 / (1 + np.exp(-logits))
    )
    assert losses.create("binary_crossentropy").to_probabilities(logits, False) is logits


def test_errors():
    with pytest.raises(SpecError, match="unknown loss 'mse'"):
        losses.create("mse")
    with pytest.raises(DataError, match=r"labels of shape \(2,\) do not match outputs of shape \(2, 3\)"):
        losses.create("categorical_crossentropy").value(np.zeros((2, 3)), np.array([0, 1]), True)
    with pytest.raises(ValueError, match="no fused activation"):
        losses.create("mean_squared_error").value(np.zeros((2, 1)), np.zeros((2, 1)), True)


def test_sparse_crossentropy_from_probabilities_clips_before_renormalising():
    """Keras' sparse form: -log(c_y / sum(c)) with c the outputs clipped to [1e-7, 1 - 1e-7]; a clipped label
    entry still passes a gradient to the other entries (renormalising first would stop all of it)."""
    loss = losses.create("sparse_categorical_crossentropy")
    outputs = np.array([[0.5, 0.3, 0.0, 0.2], [0.6, 0.1, 0.1, 0.2], [1.0, 0.0, 0.0, 0.0]])
    labels = np.array([2, 1, 0])
    clipped = np.clip(outputs, 1e-7, 1 - 1e-7)
    expected = -np.mean(np.log(clipped[np.arange(3), labels] / clipped.sum(axis=1)))
    value, grad = loss.value_and_grad(outputs.copy(), labels, from_logits=False)
    assert value == pytest.approx(expected, rel=1e-12)
    np.testing.assert_allclose(grad[0], [1 / 3 / clipped[0].sum()] * 2 + [0, 1 / 3 / clipped[0].sum()])
    inside = np.array([[0.5, 0.3, 0.05, 0.2], [0.6, 0.1, 0.1, 0.2]])
    check_grad(loss, inside, labels[:2], from_logits=False)
