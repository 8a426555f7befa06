"""Filling in every default the schema declares, so a run records the spec it really used."""

from __future__ import annotations

import copy
from typing import Any

from jsonschema import Draft7Validator


def with_defaults(instance: Any, schema: dict) -> Any:
    """A copy of a valid ``instance`` with the defaults of ``schema`` (and its if/then branches) filled in."""
    return _with_defaults(instance, schema, Draft7Validator(schema))


def _with_defaults(instance: Any, schema: Any, root: Draft7Validator) -> Any:
    """``with_defaults`` of ``schema``, a part of ``root``'s schema: its branches' conditions are checked by
    validators evolved from ``root``, which share its reference resolution rather than each building its own."""
    if not isinstance(schema, dict):
        return instance
    schema = _deref(schema, root.schema)
    instance = copy.deepcopy(instance)
    if "if" in schema:
        branch = schema.get("then" if _matches(root, schema["if"], instance) else "else", {})
        instance = _with_defaults(instance, branch, root)
    for branch in schema.get("allOf", []):
        if "if" in branch and _matches(root, branch["if"], instance):
            instance = _with_defaults(instance, branch.get("then", {}), root)
        elif "if" not in branch:
            instance = _with_defaults(instance, branch, root)
    for option in schema.get("oneOf", []):
        option = _deref(option, root.schema)
        if option.get("type") == "object" and isinstance(instance, dict) and _matches(root, option, instance):
            instance = _with_defaults(instance, option, root)
    if isinstance(instance, dict):
        for key, prop in schema.get("properties", {}).items():
            prop = _deref(prop, root.schema) if isinstance(prop, dict) else {}
            if key not in instance and "default" in prop:
                instance[key] = copy.deepcopy(prop["default"])
            if key in instance:
                instance[key] = _with_defaults(instance[key], prop, root)
    elif isinstance(instance, list) and isinstance(schema.get("items"), dict):
        instance = [_with_defaults(item, schema["items"], root) for item in instance]
    return instance


def _matches(root: Draft7Validator, schema: Any, instance: Any) -> bool:
    return root.evolve(schema=schema).is_valid(instance)


def _deref(schema: dict, root: Any) -> dict:
    ref = schema.get("$ref")
    if not ref:
        return schema
    node: Any = root
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node
