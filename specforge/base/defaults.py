"""Filling in every default the schema declares, so a run records the spec it really used."""

from __future__ import annotations

import copy
from typing import Any

from jsonschema import Draft7Validator


def with_defaults(instance: Any, schema: dict, root: dict | None = None) -> Any:
    """A copy of a valid ``instance`` with the defaults of ``schema`` (and its if/then branches) filled in."""
    root = root or schema
    if not isinstance(schema, dict):
        return instance
    schema = _deref(schema, root)
    instance = copy.deepcopy(instance)
    if "if" in schema:
        branch = schema.get("then" if Draft7Validator(schema["if"]).is_valid(instance) else "else", {})
        instance = with_defaults(instance, branch, root)
    for branch in schema.get("allOf", []):
        if "if" in branch and Draft7Validator(branch["if"]).is_valid(instance):
            instance = with_defaults(instance, branch.get("then", {}), root)
        elif "if" not in branch:
            instance = with_defaults(instance, branch, root)
    for option in schema.get("oneOf", []):
        option = _deref(option, root)
        if option.get("type") == "object" and isinstance(instance, dict) and Draft7Validator(option).is_valid(instance):
            instance = with_defaults(instance, option, root)
    if isinstance(instance, dict):
        for key, prop in schema.get("properties", {}).items():
            prop = _deref(prop, root) if isinstance(prop, dict) else {}
            if key not in instance and "default" in prop:
                instance[key] = copy.deepcopy(prop["default"])
            if key in instance:
                instance[key] = with_defaults(instance[key], prop, root)
    elif isinstance(instance, list) and isinstance(schema.get("items"), dict):
        instance = [with_defaults(item, schema["items"], root) for item in instance]
    return instance


def _deref(schema: dict, root: dict) -> dict:
    ref = schema.get("$ref")
    if not ref:
        return schema
    node: Any = root
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node
