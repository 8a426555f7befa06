"""Schema validation with errors a person can act on.

jsonschema finds every violation; this module turns each into one located,
kind message: unknown keys and enum values get a did-you-mean, `oneOf` failures
say what forms would work, and all problems are reported at once.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

from jsonschema import Draft7Validator
from jsonschema.exceptions import ValidationError

from specforge.base.errors import Problem, SpecError
from specforge.base.registry import NAME_PATTERN
from specforge.spec.reader import Document, SpecPath

_PATTERNS = {
    NAME_PATTERN: "is not a valid name: use letters, digits, '.', '_' and '-', starting with a letter or digit",
    "^[A-Za-z_][A-Za-z0-9_.-]*$": "is not a valid layer name: use letters, digits, '_', '.' and '-', "
    "starting with a letter or '_'",
    "^[0-9a-fA-F]{64}$": "is not a SHA-256 digest: 64 hexadecimal digits",
}
_TYPE_NAMES = {
    "integer": "an integer",
    "number": "a number",
    "string": "a string",
    "boolean": "true or false",
    "array": "a list",
    "object": "a mapping",
    "null": "null",
}


def validate_document(doc: Document, schema: dict) -> None:
    """Raise SpecError listing every schema violation in ``doc`` (sorted by position)."""
    errors = list(Draft7Validator(schema).iter_errors(doc.data))
    problems = list(_problems(doc, _without_misspelled_required(errors), schema))
    if problems:
        unique = {p.format(): p for p in problems}
        ordered = sorted(
            unique.values(),
            key=lambda p: (p.location.file or "", p.location.line or 0, p.location.column or 0, p.message),
        )
        raise SpecError(problems=ordered)


def _without_misspelled_required(errors: list[ValidationError]) -> list[ValidationError]:
    """Drop "missing key 'x'" where the same mapping has an unknown key that is a misspelling of 'x':
    the did-you-mean on the unknown key says it all."""
    guesses = {
        (tuple(e.absolute_path), guess)
        for e in errors
        if e.validator == "additionalProperties"
        for key in _unknown_keys(e)
        for guess in _close(key, list(_schema(e).get("properties", {})))
    }
    return [
        e for e in errors if not (e.validator == "required" and (tuple(e.absolute_path), _missing_key(e)) in guesses)
    ]


def _problems(doc: Document, errors: Iterable[ValidationError], schema: dict) -> Iterable[Problem]:
    for message, path, at_key in error_messages(errors, schema):
        yield Problem(message, doc.locate(path, at_key=at_key))


def error_messages(errors: Iterable[ValidationError], schema: dict) -> Iterable[tuple[str, SpecPath, bool]]:
    """``(message, path, at_key)`` for each violation: the message and where it is (at the key, for a
    key that is unknown or missing)."""
    for error in errors:
        path: SpecPath = tuple(error.absolute_path)
        if error.validator == "additionalProperties":
            allowed = list(_schema(error).get("properties", {}))
            for key in _unknown_keys(error):
                yield (
                    _unknown_key(key, allowed, _owners(schema, error, key), _sections(schema, error, key)),
                    (*path, key),
                    True,
                )
        elif error.validator == "required":
            yield f"missing required key {_missing_key(error)!r}{_in_kind(_instance(error))}", path, True
        else:
            yield type_message(error), path, False


def _schema(error: ValidationError) -> Mapping[str, Any]:
    """The schema whose keyword ``error`` broke: a mapping, since only a keyword fails (a boolean schema,
    which has no keywords, reads as an empty one)."""
    return error.schema if isinstance(error.schema, Mapping) else {}


def _instance(error: ValidationError) -> Any:
    """The value that broke the schema (any JSON value; the stubs also allow the unset default that
    a validator's errors never keep)."""
    return error.instance


def _unknown_keys(error: ValidationError) -> list[str]:
    return sorted(set(_instance(error)) - set(_schema(error).get("properties", {})))


def _missing_key(error: ValidationError) -> str:
    return error.message.split("'")[1]


def _close(word: str, options: list[str], cutoff: float = 0.6) -> list[str]:
    """Spelling neighbours of ``word``, or the option it abbreviates (mse -> mean_squared_error)."""
    initials = [option for option in options if "_" in option and "".join(w[0] for w in option.split("_")) == word]
    return initials or difflib.get_close_matches(word, options, n=1, cutoff=cutoff)


def _owners(schema: dict, error: ValidationError, key: str) -> tuple[str, list[str]] | None:
    """For a key refused by one branch of a choice (sgd's options), the choice made and the branches that take it."""
    path = list(error.schema_path)
    if "allOf" not in path:
        return None
    cut = len(path) - 1 - path[::-1].index("allOf")
    node: Any = schema
    for part in path[: cut + 1]:
        while isinstance(node, dict) and part not in node and "$ref" in node:  # the path leaves out the $ref steps
            node = _referenced(schema, node["$ref"])
        node = node[part]
    branch = node[path[cut + 1]]
    ((field, condition),) = branch["if"]["properties"].items()
    takers = [
        str(other["if"]["properties"][field]["const"])
        for other in node
        if "const" in other.get("if", {}).get("properties", {}).get(field, {})
        and key in other.get("then", {}).get("properties", {})
    ]
    chosen = f"{field} {condition['const']}" if field != "name" else str(condition["const"])
    return (chosen, [f"{field} {taker}" if field != "name" else taker for taker in takers]) if takers else None


def _referenced(schema: dict, ref: str) -> Any:
    """The part of ``schema`` that ``ref`` (``#/definitions/block``) names."""
    node: Any = schema
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def _sections(schema: dict, error: ValidationError, key: str) -> list[str]:
    """Sections one level down that have ``key``: `epochs` at the top level belongs in `fit`.  A section
    written empty comes first: its keys were dedented out of it (`fit:` then `validation: test`)."""
    owners = [
        name
        for name, prop in _schema(error).get("properties", {}).items()
        if isinstance(prop, dict) and key in prop.get("properties", {})
    ]
    instance = error.instance if isinstance(error.instance, dict) else {}
    emptied = [name for name in owners if name in instance and instance[name] is None]
    return [f"{name}.{key}" for name in emptied or owners]


def _in_kind(instance: Any) -> str:
    if isinstance(instance, dict) and isinstance(instance.get("type"), str):
        return f" (needed by {instance['type']})"
    return ""


def _unknown_key(key: str, allowed: list[str], owners: tuple[str, list[str]] | None, sections: list[str]) -> str:
    guess = sections or _close(key, allowed)  # an exact key of a section beats a spelling neighbour
    if owners:
        chosen, takers = owners
        return (
            f"unknown key {key!r} for {chosen} (an option of {', '.join(takers)}); allowed keys: {', '.join(allowed)}"
        )
    hint = f"did you mean {guess[0]!r}?" if guess else f"allowed keys: {', '.join(allowed)}"
    return f"unknown key {key!r}; {hint}"


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict):
        return "a mapping"
    if value is None:
        return "nothing"
    return repr(value)


def type_message(error: ValidationError) -> str:
    """What is wrong with a value, in words (for a violation other than an unknown or missing key)."""
    value, schema, validator = _instance(error), _schema(error), error.validator
    if validator == "enum":
        options = [str(option) for option in schema["enum"]]
        guess = _close(str(value), options, cutoff=0.5)
        hint = f"did you mean {guess[0]!r}? " if guess else ""
        return f"unknown value {_show(value)}; {hint}expected one of: {', '.join(options)}"
    if validator == "const" and tuple(error.absolute_path) == ("version",):
        return (
            f"this specforge reads spec version {schema['const']}, got {_show(value)}; use version: {schema['const']}"
        )
    if validator == "const":
        return f"expected {_show(schema['const'])}, got {_show(value)}"
    if validator == "type" and value is None and schema.get("type") == "object":
        key = error.absolute_path[-1] if error.absolute_path else "it"
        return f"expected a mapping, got nothing; indent the keys that belong to {key} under `{key}:`"
    if validator == "type":
        return f"expected {_expected(schema)}, got {_show(value)}"
    if validator in ("oneOf", "anyOf"):
        return f"expected {_expected(schema)}, got {_show(value)}"
    if validator in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        op = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}[validator]
        return f"must be {op} {schema[validator]}, got {_show(value)}"
    if validator == "minItems":
        return f"needs at least {_count(schema['minItems'], 'item')}, got {len(value)}"
    if validator == "maxItems":
        return f"takes at most {_count(schema['maxItems'], 'item')}, got {len(value)}"
    if validator == "pattern":
        return f"{_show(value)} {_PATTERNS.get(schema['pattern'], 'does not match ' + schema['pattern'])}"
    return error.message


def _expected(schema: Mapping[str, Any]) -> str:
    """A short phrase for what a schema accepts: 'an integer >= 1 or a list of 2 integers'."""
    if "$ref" in schema and schema["$ref"].endswith("/parameter"):
        return "a block parameter like $filters"
    if "oneOf" in schema or "anyOf" in schema:
        return " or ".join(_expected(option) for option in schema.get("oneOf") or schema["anyOf"])
    if "enum" in schema:
        return "one of " + ", ".join(str(option) for option in schema["enum"])
    if "const" in schema:
        return _show(schema["const"])
    if set(schema) == {"required"}:
        return f"a mapping with {' and '.join(schema['required'])}"
    kind = schema.get("type", "")  # a type name, a list of them, or none ("" names no type)
    if isinstance(kind, list):
        return " or ".join(_TYPE_NAMES.get(k, str(k)) for k in kind)
    if kind == "array":
        items = schema.get("items", {})
        count = schema.get("minItems")
        if count is not None and count == schema.get("maxItems"):
            return f"a list of {count} {_plural(items)}"
        return f"a list of {_plural(items)}"
    bounds = [
        f"{op} {schema[key]}"
        for key, op in (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="), ("exclusiveMaximum", "<"))
        if key in schema
    ]
    return " ".join([_TYPE_NAMES.get(kind, "a value"), " and ".join(bounds)]).strip()


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


def _plural(items: Mapping[str, Any]) -> str:
    return {"integer": "integers", "number": "numbers", "string": "strings"}.get(items.get("type", ""), "values")
