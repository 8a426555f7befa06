"""What of a spec the schema refused can still be checked, so that every independent mistake is reported at once.

A misspelt key in one layer says nothing about a merge whose shapes differ in another: the schema's problems
are reported with those of the graph built from the rest.  The rest is the document with each unknown key
the schema refused taken out and each layer, block layer or block it refused marked FAILED, so that
expansion and shape inference skip it and what takes its output.  Nothing is left to check when the schema
refused what the graph itself needs (the model, its input shape, its list of layers, its output, the blocks
section as a whole).
"""

from __future__ import annotations

import copy
from typing import Any

from jsonschema import Draft7Validator

from specforge.spec.flatten import FAILED
from specforge.spec.reader import SpecPath

#: what a layer that failed keeps: what names it, and what it takes
_KEPT = ("name", "type", "block")


def rest_of(data: Any, schema: dict) -> tuple[Any, bool]:
    """``(rest, complete)``: the part of ``data`` (a document the schema refuses) that the graph checks can
    still take, or None; ``complete`` when the rest is a whole valid spec (only unknown keys were taken out),
    so that the checks against the data and the loss can run on it too."""
    rest = copy.deepcopy(data)
    failed: list[SpecPath] = []
    for error in Draft7Validator(schema).iter_errors(data):
        path = tuple(error.absolute_path)
        if error.validator == "additionalProperties":
            owner = _at(rest, path)
            for key in set(error.instance) - set(error.schema.get("properties", {})):
                owner.pop(key, None)
        elif _needed_by_the_graph(path, error):
            return None, False
        else:
            failed.append(path)
    for path in failed:
        if path and path[0] in ("model", "blocks"):
            _fail(rest, path)
    return rest, not failed and Draft7Validator(schema).is_valid(rest)


def _needed_by_the_graph(path: SpecPath, error: Any) -> bool:
    """Whether a problem at ``path`` leaves nothing for the graph checks: one in the model outside its layers,
    in the blocks section as a whole, or a missing model or a document that is not a mapping."""
    if not path:
        return error.validator != "required" or "'model'" in error.message
    if path[0] == "model":
        return not (len(path) >= 3 and path[1] == "layers" and isinstance(path[2], int))
    return path[0] == "blocks" and len(path) < 2


def _fail(rest: dict, path: SpecPath) -> None:
    """Mark what the problem at ``path`` makes unusable: its layer (of the model or of a block), or a block."""
    if path[0] == "model" and isinstance(path[2], int):  # the only place in the model that can fail alone
        _fail_item(rest["model"]["layers"], path[2])
    elif path[0] == "blocks":
        block = rest["blocks"][path[1]]
        if isinstance(block, dict) and FAILED in block:
            return
        if len(path) >= 4 and path[2] == "layers" and isinstance(path[3], int):
            _fail_item(block["layers"], path[3])
        else:
            rest["blocks"][path[1]] = {FAILED: True, "layers": []}


def _fail_item(items: list, index: int) -> None:
    item = items[index] if isinstance(items[index], dict) else {}
    kept = {key: item[key] for key in _KEPT if isinstance(item.get(key), str)}
    inputs = item.get("inputs")
    if isinstance(inputs, str) or (isinstance(inputs, list) and inputs and all(isinstance(i, str) for i in inputs)):
        kept["inputs"] = inputs
    if isinstance(item.get("repeat"), int) and item["repeat"] >= 1:
        kept["repeat"] = item["repeat"]
    items[index] = {**kept, FAILED: True}


def _at(data: Any, path: SpecPath) -> Any:
    for part in path:
        data = data[part]
    return data
