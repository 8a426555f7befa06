"""Every independent mistake in one run: the schema's problems with those of the graph built from what the
schema did not refuse, and what a refused layer feeds left unchecked rather than reported twice."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from specforge import api
from specforge.base.errors import SpecforgeError

SPEC = {
    "version": 1,
    "name": "stages",
    "model": {
        "input_shape": [28, 28, 1],
        "layers": [
            {"type": "Conv2D", "name": "stem", "filters": 8, "kernel_size": 3},
            {"type": "Conv2D", "name": "side", "inputs": "stem", "filters": 8, "kernel_size": 3},
            {"type": "Add", "name": "joined", "inputs": ["stem", "side"]},
            {"type": "GlobalAveragePooling2D"},
            {"type": "Dense", "units": 10, "activation": "softmax"},
        ],
    },
    "compile": {"loss": "categorical_crossentropy"},
}
MISMATCH = "model.layers[2]: Add got (26, 26, 8) from 'stem' and (24, 24, 8) from 'side'; Add needs inputs of one shape"


def problems(tmp_path: Path, change=lambda spec: None, call=api.validate) -> list[str]:
    spec = yaml.safe_load(yaml.safe_dump(SPEC))
    change(spec)
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    with pytest.raises(SpecforgeError) as raised:
        call(path)
    return [f"{p.location.path}: {p.message}" for p in raised.value.problems]


def test_a_misspelt_key_does_not_hide_a_shape_mismatch(tmp_path: Path):
    def misspell(spec):
        spec["model"]["layers"][0]["activaton"] = "relu"

    assert problems(tmp_path, misspell) == [
        "model.layers[0].activaton: unknown key 'activaton'; did you mean 'activation'?",
        MISMATCH,
    ]


def test_training_reports_them_all_too(tmp_path: Path):
    def misspell(spec):
        spec["model"]["layers"][4]["unit"] = 10

    assert problems(tmp_path, misspell, call=api.fit) == [
        MISMATCH,
        "model.layers[4].unit: unknown key 'unit'; did you mean 'units'?",
    ]


def test_with_only_unknown_keys_refused_the_model_is_checked_against_its_data_and_loss_too(tmp_path: Path):
    def two_mistakes(spec):
        spec["model"]["layers"][2]["inputs"] = ["stem", "stem"]
        spec["model"]["layers"][4]["units"] = 12
        spec["fit"] = {"epoch": 3}

    assert problems(tmp_path, two_mistakes) == [
        "model.layers[4].units: the model outputs 12 values but the data has 10 classes; use units: 10",
        "fit.epoch: unknown key 'epoch'; did you mean 'epochs'?",
    ]


def test_what_a_refused_layer_feeds_is_not_checked(tmp_path: Path):
    def refuse_side(spec):
        spec["model"]["layers"][1]["kernel_size"] = 0
        spec["model"]["layers"].insert(2, {"type": "Dense", "inputs": "side", "units": 3})

    assert problems(tmp_path, refuse_side) == [
        "model.layers[1].kernel_size: expected an integer >= 1 or a list of 2 integers, got 0"
    ]


def test_a_refused_block_definition_leaves_its_uses_unexpanded_and_the_rest_checked(tmp_path: Path):
    def broken_block(spec):
        spec["blocks"] = {
            "pair": {
                "params": {"filters": {"type": "int"}},
                "layers": [{"type": "Conv2D", "filters": "$filters", "kernel_size": 1}],
            }
        }
        spec["model"]["layers"].insert(3, {"block": "pair", "filters": 4})

    assert problems(tmp_path, broken_block) == [  # the blocks are written after the model
        MISMATCH,
        (
            "blocks.pair.params.filters.type: unknown value 'int'; did you mean 'integer'? expected one of: "
            "integer, number, string, boolean, array"
        ),
    ]


def test_a_refused_input_shape_leaves_nothing_for_the_graph(tmp_path: Path):
    def no_shape(spec):
        spec["model"]["input_shape"] = [28, 0, 1]
        spec["model"]["layers"][0]["activaton"] = "relu"

    assert problems(tmp_path, no_shape) == [
        "model.input_shape[1]: must be >= 1, got 0",
        "model.layers[0].activaton: unknown key 'activaton'; did you mean 'activation'?",
    ]
