"""The data section's schema: well-formed, documented, and precise about each source's options."""

from __future__ import annotations

import pytest
from jsonschema import Draft7Validator

from specforge.base.defaults import with_defaults
from specforge.data.schema import DATA_SCHEMA
from specforge.data.sources import SOURCES
from specforge.data.splits import SPLIT_NAMES

VALIDATOR = Draft7Validator(DATA_SCHEMA)


def walk(schema, path="data"):
    """Every (path, subschema) of the schema's object and property definitions."""
    yield path, schema
    for key in ("oneOf", "anyOf"):
        for index, option in enumerate(schema.get(key, [])):
            yield from walk(option, f"{path}/{key}[{index}]")
    for name, prop in schema.get("properties", {}).items():
        if isinstance(prop, dict):
            yield from walk(prop, f"{path}.{name}")


def errors(instance):
    found = VALIDATOR.iter_errors(instance)
    return sorted((list(error.absolute_path), error.validator, error.message) for error in found)


def test_schema_is_valid_draft_07():
    Draft7Validator.check_schema(DATA_SCHEMA)


#: the mappings by name (model input or output names), whose every key takes one schema
NAMED_MAPPINGS = ("data.inputs", "data.targets")


def test_every_property_is_described_and_every_object_closed():
    for path, schema in walk(DATA_SCHEMA):
        if path != "data" and "/" not in path.rsplit(".", 1)[-1]:
            assert "description" in schema, path
        if schema.get("type") == "object" and path != "data":
            if path in NAMED_MAPPINGS:
                assert isinstance(schema["additionalProperties"], dict), path
            else:
                assert schema.get("additionalProperties") is False, path
    for branch in DATA_SCHEMA["allOf"]:
        assert branch["then"]["additionalProperties"] is False


def branch(source):
    return next(b["then"] for b in DATA_SCHEMA["allOf"] if b["if"]["properties"]["source"].get("const") == source)


def test_optional_properties_have_defaults_where_their_source_is():
    assert DATA_SCHEMA["properties"]["source"]["default"] == "mnist"
    assert DATA_SCHEMA["properties"]["preprocessing"]["default"] == {}
    for name, prop in DATA_SCHEMA["properties"]["preprocessing"]["properties"].items():
        assert "default" in prop, name
    assert branch("csv")["properties"]["header"]["default"] == "auto"
    assert branch("url")["properties"]["format"]["default"] == "npz"
    assert branch("npz")["properties"]["keys"]["default"]["x_train"] == "x_train"
    assert "header" not in branch("npz")["properties"] and "default" not in DATA_SCHEMA["properties"]["header"]


@pytest.mark.parametrize("name", list(SOURCES))
def test_each_sources_branch_is_generated_from_its_class(name):
    source, then = SOURCES[name], branch(name)
    common = {"source", "preprocessing", "num_classes", "class_names", "inputs", "targets"}
    assert set(then["properties"]) == {*common, *source.schema}
    assert then["required"] == list(source.required)
    for option, schema in source.schema.items():
        assert then["properties"][option] == {key: schema[key] for key in ("description", "default") if key in schema}
        if option not in SPLIT_NAMES:  # a split is described at the top level for every source that has it
            assert DATA_SCHEMA["properties"][option] == {k: v for k, v in schema.items() if k != "default"}


@pytest.mark.parametrize("instance", [{}, {"source": "csv", "train": "a.csv"}, {"source": "npz", "path": "d.npz"}])
def test_filling_in_defaults_adds_only_the_sources_options(instance):
    full = with_defaults(instance, DATA_SCHEMA)
    assert errors(full) == []
    assert full["preprocessing"] == {"rescale": 1.0, "normalize": None, "reshape": None, "labels": "one_hot"}
    assert set(full) - set(instance) <= {"source", "preprocessing", "header", "keys"}
    assert ("header" in full) == (full["source"] == "csv") and ("keys" in full) == (full["source"] == "npz")


def test_examples_are_valid():
    for example in DATA_SCHEMA["examples"]:
        assert errors(example) == []


@pytest.mark.parametrize(
    "instance",
    [
        {},
        {
            "source": "mnist",
            "preprocessing": {
                "rescale": 0.00392156862745098,
                "labels": "sparse",
                "normalize": {"mean": 0.1307, "std": 0.3081},
                "reshape": [28, 28, 1],
            },
        },
        {
            "source": "npy",
            "train_images": "x.npy",
            "train_labels": "y.npy",
            "validation_images": "vx.npy",
            "validation_labels": "vy.npy",
        },
        {"source": "npz", "path": "d.npz", "keys": {"x_train": "a", "y_train": "b"}, "num_classes": 10},
        {"source": "csv", "train": "train.csv", "test": "test.csv", "label_column": "label", "header": True},
        {"source": "image_folder", "train": "images/train", "class_names": ["cat", "dog"]},
        {"source": "url", "url": "https://example.org/d.csv", "sha256": "a" * 64, "format": "csv", "label_column": 0},
    ],
)
def test_valid_specs(instance):
    assert errors(instance) == []


@pytest.mark.parametrize(
    "instance, expected",
    [
        (
            {"source": "idx", "path": "d.npz", "train_images": "a", "train_labels": "b"},
            [([], "additionalProperties", "Additional properties are not allowed ('path' was unexpected)")],
        ),
        (
            {"trian": "x.csv"},
            [([], "additionalProperties", "Additional properties are not allowed ('trian' was unexpected)")],
        ),
        ({"source": "npz"}, [([], "required", "'path' is a required property")]),
        (
            {"source": "url", "url": "ftp://x", "sha256": "abc"},
            [
                (["sha256"], "pattern", "'abc' does not match '^[0-9a-fA-F]{64}$'"),
                (["url"], "pattern", "'ftp://x' does not match '^(https?|file)://'"),
            ],
        ),
        (
            {"source": "csv", "train": "a.csv", "header": "maybe"},
            [(["header"], "enum", "'maybe' is not one of ['auto', True, False]")],
        ),
        (
            {"preprocessing": {"labels": "onehot"}},
            [(["preprocessing", "labels"], "enum", "'onehot' is not one of ['one_hot', 'sparse']")],
        ),
        (
            {"source": "mnst", "trian": 1},
            [
                ([], "additionalProperties", "Additional properties are not allowed ('trian' was unexpected)"),
                (["source"], "enum", f"'mnst' is not one of {list(SOURCES)}"),
            ],
        ),
    ],
)
def test_each_mistake_is_reported_once_where_it_is(instance, expected):
    assert errors(instance) == expected
