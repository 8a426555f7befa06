"""Schema validation with errors a person can act on.

jsonschema finds every violation; this module turns each into one located,
kind message: unknown keys and enum values get a did-you-mean, `oneOf` failures
say what forms would work, and all problems are reported at once.
"""

from __future__ import annotations

import difflib
from typing import Any, Iterable

from jsonschema import Draft7Validator
from jsonschema.exceptions import ValidationError

from specforge.errors import Problem, SpecError
from specforge.spec.reader import Document, SpecPath

_TYPE_NAMES = {"integer": "an integer", "number": "a number", "string": "a string", "boolean": "true or false",
               "array": "a list", "object": "a mapping", "null": "null"}


def validate_document(doc: Document, schema: dict) -> None:
    """Raise SpecError listing every schema violation in ``doc`` (sorted by position)."""
    problems = list(_problems(doc, Draft7Validator(schema).iter_errors(doc.data)))
    if problems:
        unique = {p.format(): p for p in problems}
        ordered = sorted(unique.values(), key=lambda p: (p.location.file or "", p.location.line or 0,
                                                         p.location.column or 0, p.message))
        raise SpecError(problems=ordered)


def _problems(doc: Document, errors: Iterable[ValidationError]) -> Iterable[Problem]:
    for error in errors:
        path: SpecPath = tuple(error.absolute_path)
        if error.validator == "additionalProperties":
            allowed = list(error.schema.get("properties", {}))
            for key in sorted(set(error.instance) - set(allowed)):
                yield Problem(_unknown_key(key, allowed), doc.locate(path + (key,), at_key=True))
        elif error.validator == "required":
            missing = error.message.split("'")[1]
            yield Problem(f"missing required key {missing!r}{_in_kind(error.instance)}", doc.locate(path))
        else:
            yield Problem(_message(error), doc.locate(path))


def _in_kind(instance: Any) -> str:
    if isinstance(instance, dict) and isinstance(instance.get("type"), str):
        return f" (needed by {instance['type']})"
    return ""


def _unknown_key(key: str, allowed: list[str]) -> str:
    guess = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    hint = f"did you mean {guess[0]!r}?" if guess else f"allowed keys: {', '.join(allowed)}"
    return f"unknown key {key!r}; {hint}"


def _show(value: Any) -> str:
    return repr(value) if not isinstance(value, bool) else str(value).lower()


def _message(error: ValidationError) -> str:
    value, schema, validator = error.instance, error.schema, error.validator
    if validator == "enum":
        options = [str(option) for option in schema["enum"]]
        guess = difflib.get_close_matches(str(value), options, n=1, cutoff=0.5)
        hint = f"did you mean {guess[0]!r}? " if guess else ""
        return f"unknown value {_show(value)}; {hint}expected one of: {', '.join(options)}"
    if validator == "const":
        return f"expected {_show(schema['const'])}, got {_show(value)}"
    if validator == "type":
        return f"expected {_expected(schema)}, got {_show(value)}"
    if validator in ("oneOf", "anyOf"):
        return f"expected {_expected(schema)}, got {_show(value)}"
    if validator in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        op = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}[validator]
        return f"must be {op} {schema[validator]}, got {_show(value)}"
    if validator == "minItems":
        return f"needs at least {schema['minItems']} item(s), got {len(value)}"
    if validator == "maxItems":
        return f"takes at most {schema['maxItems']} item(s), got {len(value)}"
    if validator == "pattern":
        return f"{_show(value)} does not match the allowed form {schema['pattern']}"
    return error.message


def _expected(schema: dict) -> str:
    """A short phrase for what a schema accepts: 'an integer >= 1 or a list of 2 integers'."""
    if "oneOf" in schema or "anyOf" in schema:
        return " or ".join(_expected(option) for option in schema.get("oneOf") or schema["anyOf"])
    if "enum" in schema:
        return "one of " + ", ".join(str(option) for option in schema["enum"])
    if "const" in schema:
        return _show(schema["const"])
    kind = schema.get("type")
    if isinstance(kind, list):
        return " or ".join(_TYPE_NAMES.get(k, k) for k in kind)
    if kind == "array":
        items = schema.get("items", {})
        count = schema.get("minItems")
        if count is not None and count == schema.get("maxItems"):
            return f"a list of {count} {_plural(items)}"
        return f"a list of {_plural(items)}"
    phrase = _TYPE_NAMES.get(kind, "a value")
    for key, op in (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="), ("exclusiveMaximum", "<")):
        if key in schema:
            phrase += f" {op} {schema[key]}"
    return phrase


def _plural(items: dict) -> str:
    kind = items.get("type")
    return {"integer": "integers", "number": "numbers", "string": "strings"}.get(kind, "values")
