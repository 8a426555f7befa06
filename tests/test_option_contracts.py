"""One contract for every named option family: a registry that refuses a second kind under a taken name,
every kind with examples that the family's JSON Schema accepts, and the schema as the only validator of
single values (the cross-field rules are spec checks, located in the file)."""

from __future__ import annotations

import copy

import pytest
from jsonschema import Draft7Validator

from specforge import api
from specforge.base.errors import SpecforgeError
from specforge.base.registry import DuplicateKind, Registry
from specforge.data.schema import DATA_SCHEMA
from specforge.data.sources import SOURCES
from specforge.layers import REGISTRY
from specforge.layers.base import activation_schema, initializer_schema
from specforge.options import callbacks, losses, metrics, optimizers
from specforge.options.activations import ACTIVATIONS
from specforge.options.initializers import INITIALIZERS
from specforge.spec import spec_from_dict

#: family -> (registry, the JSON Schema of one value naming a kind, the examples of a kind)
FAMILIES = {
    "activation": (ACTIVATIONS, activation_schema(), lambda name, kind: [name]),
    "initializer": (INITIALIZERS, initializer_schema("zeros", "kernel"), lambda name, kind: kind.examples),
    "loss": (losses.LOSSES, losses.LOSS_SCHEMA, lambda name, kind: kind.examples),
    "metric": (metrics.METRICS, metrics.METRIC_ITEM_SCHEMA, lambda name, kind: kind.examples),
    "optimizer": (optimizers.OPTIMIZERS, optimizers.OPTIMIZER_SCHEMA, lambda name, kind: kind.examples),
    "callback": (callbacks.CALLBACKS, callbacks.CALLBACK_ITEM_SCHEMA, lambda name, kind: kind.examples),
    "layer": (REGISTRY, None, lambda name, kind: [{"type": name, **config} for config, _ in kind.examples]),
    "data source": (SOURCES, DATA_SCHEMA, lambda name, kind: kind.examples),
}
KINDS = [(family, name) for family, (registry, _, _) in FAMILIES.items() for name in registry]
REGISTRIES = {family: registry for family, (registry, _, _) in FAMILIES.items()}


def _schema_of(family: str) -> dict:
    from specforge.spec.schema import load_schema

    if family == "layer":
        schema = load_schema()
        return {**schema["properties"]["model"]["properties"]["layers"]["items"], "definitions": schema["definitions"]}
    return FAMILIES[family][1]


def _named(example) -> str:
    if isinstance(example, str):
        return example
    return example.get("name") or example.get("type") or example["source"]


def test_a_registry_refuses_a_second_kind_under_a_taken_name():
    registry = Registry("thing", str.lower, ["a", "b"])
    with pytest.raises(DuplicateKind, match="two thing kinds are named 'a'"):
        registry.register("A")
    assert registry.names() == ("a", "b")


@pytest.mark.parametrize("family", REGISTRIES)
def test_every_registry_refuses_its_own_kinds_again(family):
    registry = REGISTRIES[family]
    name, kind = next(iter(registry.items()))
    with pytest.raises(DuplicateKind, match=f"named '{name}'"):
        registry.register(kind)


@pytest.mark.parametrize("family,name", KINDS)
def test_every_kind_has_examples_its_family_schema_accepts(family, name):
    registry, _, examples_of = FAMILIES[family]
    examples = examples_of(name, registry[name])
    assert examples, f"{family} {name} has no examples"
    validator = Draft7Validator(_schema_of(family))
    for example in examples:
        assert [error.message for error in validator.iter_errors(example)] == [], example
        assert _named(example) == name


#: families whose kinds each carry their own schema fragment (``schema``) and a ``description``
OWN_SCHEMA = ["initializer", "data source"]


@pytest.mark.parametrize("family,name", [(family, name) for family, name in KINDS if family in OWN_SCHEMA])
def test_a_kind_describes_itself_and_its_own_schema_accepts_its_examples(family, name):
    registry, _, examples_of = FAMILIES[family]
    kind = registry[name]
    schema = kind.json_schema()
    assert kind.description.strip() and schema["description"].strip()
    for option, fragment in schema.get("properties", {}).items():
        assert fragment.get("description", "").strip(), f"{family} {name}: {option} is not described"
    validator = Draft7Validator(schema)
    for example in examples_of(name, kind):
        assert [error.message for error in validator.iter_errors(example)] == [], example


#: family -> where its schema lists the names of its kinds
NAMES_IN_SCHEMA = {
    "loss": lambda: losses.LOSS_SCHEMA["allOf"][0]["then"]["enum"],
    "metric": lambda: metrics.METRIC_ITEM_SCHEMA["allOf"][0]["then"]["enum"],
    "optimizer": lambda: optimizers.OPTIMIZER_SCHEMA["allOf"][0]["then"]["enum"],
    "callback": lambda: callbacks.CALLBACK_ITEM_SCHEMA["properties"]["type"]["enum"],
    "activation": lambda: activation_schema()["enum"],
    "initializer": lambda: initializer_schema("zeros", "kernel")["enum"],
    "data source": lambda: DATA_SCHEMA["properties"]["source"]["enum"],
}


@pytest.mark.parametrize("family", NAMES_IN_SCHEMA)
def test_the_schema_names_exactly_the_registered_kinds(family):
    assert list(NAMES_IN_SCHEMA[family]()) == list(REGISTRIES[family])


BASE = {
    "version": 1,
    "name": "t",
    "data": {"source": "mnist", "preprocessing": {"reshape": [784]}},
    "model": {"input_shape": [784], "layers": [{"type": "Dense", "units": 10, "activation": "softmax"}]},
    "compile": {"optimizer": "adam", "loss": "categorical_crossentropy"},
    "fit": {"epochs": 3},
}


def problems_of(section: str, key: str, value) -> list[str]:
    """The problems ``api.build_graph`` reports for the spec BASE with ``section.key`` set to ``value``."""
    spec = copy.deepcopy(BASE)
    spec[section][key] = value
    with pytest.raises(SpecforgeError) as caught:
        api.build_graph(spec_from_dict(spec))
    return [f"{problem.location.path}: {problem.message}" for problem in caught.value.problems]


@pytest.mark.parametrize(
    "section,key,value,expected",
    [
        ("fit", "callbacks", [{"type": "Stop"}], "fit.callbacks[0].type: unknown value 'Stop'"),
        (
            "fit",
            "callbacks",
            [{"type": "EarlyStopping", "factor": 0.5}],
            "fit.callbacks[0].factor: unknown key 'factor' for type EarlyStopping",
        ),
        (
            "fit",
            "callbacks",
            [{"type": "LearningRateScheduler", "schedule": "step"}],
            "fit.callbacks[0]: missing required key 'step_size'",
        ),
        (
            "fit",
            "callbacks",
            [{"type": "LearningRateScheduler", "schedule": "exponential", "decay_rate": 0.9, "gamma": 0.1}],
            "fit.callbacks[0].gamma: unknown key 'gamma' for schedule exponential",
        ),
        ("fit", "callbacks", [{"type": "LearningRateScheduler"}], "fit.callbacks[0]: missing required key 'schedule'"),
        (
            "fit",
            "callbacks",
            [
                {"type": "EarlyStopping"},
                {"type": "ReduceLROnPlateau"},
                {"type": "LearningRateScheduler", "schedule": "cosine"},
            ],
            "fit.callbacks[2]: ReduceLROnPlateau and LearningRateScheduler both set the learning rate; keep one of them",
        ),
        ("compile", "optimizer", "adadelta", "compile.optimizer: unknown value 'adadelta'; did you mean 'adagrad'?"),
        (
            "compile",
            "optimizer",
            {"name": "sgd", "beta_1": 0.9},
            "compile.optimizer.beta_1: unknown key 'beta_1' for sgd",
        ),
        (
            "compile",
            "optimizer",
            {"name": "adam", "clipnorm": 1.0, "clipvalue": 1.0},
            "compile.optimizer.clipvalue: only one of clipnorm and clipvalue can be set; received both",
        ),
        ("compile", "metrics", ["f1"], "compile.metrics[0]: unknown value 'f1'"),
        ("compile", "metrics", [{"name": "accuracy", "k": 2}], "compile.metrics[0].k: unknown key 'k' for accuracy"),
    ],
)
def test_each_mistake_is_reported_once_by_the_schema_or_a_spec_check(section, key, value, expected):
    problems = problems_of(section, key, value)
    assert len(problems) == 1 and problems[0].startswith(expected), problems
