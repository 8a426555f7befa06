"""Preprocessing: the recorded steps, applied batch by batch, identical after a JSON round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest

from specforge.base.errors import DataError, SpecError
from specforge.data import Preprocessing

DIGITS = tuple("0123456789")


def make(**options) -> Preprocessing:
    spec = {"preprocessing": options}
    return Preprocessing.from_spec(spec, options.pop("input_shape", (2, 3, 1)), 10, DIGITS)


def test_seed_defaults_raw_pixels_reshaped_and_one_hot():
    steps = make()
    batch = np.arange(12, dtype=np.uint8).reshape(2, 2, 3) * 20
    x = steps.images(batch)
    assert x.dtype == np.float32 and x.shape == (2, 2, 3, 1)
    np.testing.assert_array_equal(x[..., 0], batch.astype(np.float64))
    y = steps.labels(np.array([3, 0, 9]))
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, [[0, 0, 0, 1, 0, 0, 0, 0, 0, 0], [1] + [0] * 9, [0] * 9 + [1]])


def test_rescale_and_per_channel_normalisation_match_the_formula():
    steps = make(input_shape=(2, 2, 3), rescale=1 / 255, normalize={"mean": [0.5, 0.4, 0.3], "std": [0.2, 0.25, 0.5]})
    batch = np.random.default_rng(0).integers(0, 256, (4, 2, 2, 3), dtype=np.uint8)
    expected = (batch.astype(np.float64) / 255 - np.array([0.5, 0.4, 0.3])) / np.array([0.2, 0.25, 0.5])
    np.testing.assert_allclose(steps.images(batch), expected, rtol=1e-6, atol=1e-6)


def test_scalar_normalisation_and_float_input():
    steps = make(input_shape=(6,), normalize={"mean": 0.1307, "std": 0.3081})
    batch = np.linspace(0, 1, 12).reshape(2, 6)
    np.testing.assert_allclose(steps.images(batch), (batch - 0.1307) / 0.3081, rtol=1e-6, atol=1e-6)


def test_sparse_labels_stay_integers():
    labels = make(labels="sparse").labels(np.array([4, 1], dtype=np.uint8))
    assert labels.dtype == np.int64 and labels.tolist() == [4, 1]


def test_json_round_trip_applies_identical_steps():
    steps = make(input_shape=(2, 2, 3), rescale=0.5, normalize={"mean": [1, 2, 3], "std": 2}, labels="sparse")
    again = Preprocessing.from_dict(json.loads(json.dumps(steps.to_dict())))
    assert again == steps
    batch = np.random.default_rng(1).integers(0, 256, (3, 2, 2, 3), dtype=np.uint8)
    np.testing.assert_array_equal(again.images(batch), steps.images(batch))


def test_scale_and_offset_is_the_same_affine_map():
    steps = make(input_shape=(1, 1, 2), rescale=2.0, normalize={"mean": [1.0, -1.0], "std": [4.0, 0.5]})
    scale, offset = steps.scale_and_offset
    np.testing.assert_allclose(scale, [0.5, 4.0])
    np.testing.assert_allclose(offset, [-0.25, 2.0])


@pytest.mark.parametrize(
    "options, message",
    [
        (
            {"normalize": {"mean": [0.1, 0.2], "std": 1}},
            "normalize.mean has 2 values; give one number or one per channel \\(1, the last axis",
        ),
        ({"normalize": {"mean": 0, "std": 0}}, r"normalize.std \[0.0\] has a value <= 0"),
        ({"reshape": [6, 1]}, r"reshape \[6, 1\] differs from model.input_shape \[2, 3, 1\]"),
    ],
)
def test_inconsistent_options(options, message):
    with pytest.raises(DataError, match=message):
        make(**options)


def test_class_names_must_match_the_classes():
    with pytest.raises(DataError, match="3 class_names for 10 classes"):
        Preprocessing((4,), 10, ("a", "b", "c"))


def test_images_that_do_not_fit_the_input_shape():
    with pytest.raises(DataError, match=r"images of shape \[5\] \(5 values\) cannot be reshaped to input_shape"):
        make().images(np.zeros((2, 5), np.uint8))


@pytest.mark.parametrize("text, factor", [("1/255", 1 / 255), (" 2 / 0.5 ", 4.0), ("1/255.0", 1 / 255)])
def test_rescale_written_as_a_fraction_is_that_fraction(text, factor):
    assert make(rescale=text).rescale == factor


@pytest.mark.parametrize("text", ["1/0", "0/255", "a/255", "1/255/2"])
def test_the_schema_takes_only_positive_fractions(tmp_path, text):
    from specforge.spec import spec_from_dict

    config = {
        "version": 1,
        "name": "f",
        "data": {"source": "mnist", "preprocessing": {"rescale": "1/255"}},
        "model": {"input_shape": [28, 28, 1], "layers": [{"type": "Flatten"}, {"type": "Dense", "units": 10}]},
        "compile": {"optimizer": "adam", "loss": "categorical_crossentropy"},
    }
    assert spec_from_dict(config).config["data"]["preprocessing"]["rescale"] == "1/255"
    config["data"]["preprocessing"]["rescale"] = text
    with pytest.raises(SpecError, match=r"data\.preprocessing\.rescale"):
        spec_from_dict(config)
