"""Reading spec text (YAML or JSON) into plain data plus the position of every key and value.

Positions let every later error point at the exact line and column in the
user's file.  YAML is read with PyYAML's safe loader; JSON with the json module
(so JSON syntax errors read as JSON errors), then composed as YAML only to learn
where each value sits (JSON is YAML flow syntax).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from specforge.base.errors import Location, SpecError

SpecPath = tuple[str | int, ...]


def format_path(path: SpecPath) -> str:
    """``("model", "layers", 1, "kernel_size")`` -> ``model.layers[1].kernel_size``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


@dataclass
class Document:
    """Parsed spec data and where each piece of it came from."""

    data: Any
    file: str
    values: dict[SpecPath, tuple[int, int]] = field(default_factory=dict)
    keys: dict[SpecPath, tuple[int, int]] = field(default_factory=dict)
    #: paths set on the command line (``--set a.b=1``), located at that option instead of the file.
    overrides: dict[SpecPath, str] = field(default_factory=dict)

    def locate(self, path: SpecPath, *, at_key: bool = False) -> Location:
        """The location of the value at ``path`` (or of its key), falling back to the nearest parent."""
        text = format_path(path)
        overridden = [
            option
            for target, option in self.overrides.items()
            if target[: len(path)] == path or path[: len(target)] == target
        ]
        if overridden:  # this value, something inside it, or a parent was set on the command line
            return Location(f"--set {overridden[-1]}", None, None, text)
        for depth in range(len(path), -1, -1):
            prefix = path[:depth]
            table = self.keys if at_key and depth == len(path) and prefix in self.keys else self.values
            if prefix in table:
                line, column = table[prefix]
                return Location(self.file, line, column, text)
        return Location(self.file, None, None, text)


def read_document(path: str | Path, *, as_json: bool | None = None) -> Document:
    """Read a spec file, as JSON when ``as_json`` (default: when it is named .json); raises SpecError
    (located) on a missing file, text that is not UTF-8 or a syntax error."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SpecError("no such spec file; check the path (e.g. specs/mnist.yaml)", file=str(path)) from None
    except OSError as exc:
        raise SpecError(f"cannot read the spec: {exc.strerror or exc}", file=str(path)) from None
    return parse_text(
        _decode(raw, str(path)), str(path), as_json=path.suffix.lower() == ".json" if as_json is None else as_json
    )


def _decode(raw: bytes, file: str) -> str:
    """UTF-8 text, or a SpecError at the line and column of the first byte that is not UTF-8."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line_start = raw.rfind(b"\n", 0, exc.start) + 1
        column = len(raw[line_start : exc.start].decode("utf-8", errors="replace")) + 1
        raise SpecError(
            f"byte 0x{raw[exc.start]:02x} is not UTF-8 text; a spec is a UTF-8 text file (save it as "
            "UTF-8, or check that this is the spec and not a binary file)",
            file=file,
            line=raw.count(b"\n", 0, exc.start) + 1,
            column=column,
        ) from None


def parse_text(text: str, file: str, *, as_json: bool = False) -> Document:
    if not text.strip():
        raise SpecError("the spec is empty; start from `specforge init NAME`", file=file, line=1, column=1)
    data = _parse_json(text, file) if as_json else None
    node = _compose(text, file, strict=not as_json)
    doc = Document(data=None, file=file)
    constructed = _walk(node, (), doc) if node is not None else None
    doc.data = data if as_json else constructed
    if doc.data is None:
        raise SpecError("the spec is empty; start from `specforge init NAME`", file=file, line=1, column=1)
    return doc


def _parse_json(text: str, file: str) -> Any:
    """JSON data; duplicate keys are left for the positional walk, which reports them with their place."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        message, position = _explain_json(exc)
        line = text.count("\n", 0, position) + 1
        column = position - (text.rfind("\n", 0, position) + 1) + 1
        raise SpecError(f"invalid JSON: {message}", file=file, line=line, column=column) from None


def _explain_json(exc: json.JSONDecodeError) -> tuple[str, int]:
    """json's message and offset, put in a user's terms for the mistakes people make most."""
    text, position = exc.doc, exc.pos
    if text.startswith(("//", "/*"), position):
        return "JSON has no comments; remove this line or write the spec in YAML", position
    if text.startswith("'", position):
        return "JSON needs double quotes around keys and strings; write \"...\" instead of '...'", position
    before = len(text[:position].rstrip()) - 1
    if text.startswith(("]", "}"), position) and before >= 0 and text[before] == ",":
        return "a comma after the last item is not allowed; remove this comma", before
    return exc.msg, position


#: Values that aliases (``*name``) may add to a document in all: a spec uses them for a few shared blocks, and a
#: handful of nested aliases can otherwise expand into billions of values ("billion laughs").
MAX_ALIASED_VALUES = 10_000


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing aliases that expand past MAX_ALIASED_VALUES values or into themselves."""

    def __init__(self, text: str, file: str):
        super().__init__(text)
        self.file = file
        self._aliased = 0
        self._sizes: dict[int, int] = {}

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            target = self.anchors.get(event.anchor)
            if target is not None:
                where = {"file": self.file, "line": event.start_mark.line + 1, "column": event.start_mark.column + 1}
                if target.end_mark is None:
                    raise SpecError(
                        f"alias *{event.anchor} refers to a value that contains it; a spec cannot contain itself",
                        **where,
                    )
                self._aliased += self._size(target)
                if self._aliased > MAX_ALIASED_VALUES:
                    raise SpecError(
                        f"aliases expand to more than {MAX_ALIASED_VALUES:,} values by alias "
                        f"*{event.anchor}; write the values out, or use fewer nested aliases",
                        **where,
                    )
        return super().compose_node(parent, index)

    def _size(self, node: yaml.Node) -> int:
        """Values in ``node`` with every alias in it expanded (each shared node counted once per use)."""
        known = self._sizes.get(id(node))
        if known is None:
            children = (
                [part for pair in node.value for part in pair]
                if isinstance(node, yaml.MappingNode)
                else node.value
                if isinstance(node, yaml.SequenceNode)
                else []
            )
            known = self._sizes[id(node)] = 1 + sum(self._size(child) for child in children)
        return known


def _compose(text: str, file: str, *, strict: bool) -> yaml.Node | None:
    loader = _BoundedLoader(text, file)
    try:
        return loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        if not strict:
            return None
        message, mark = _explain_yaml(exc)
        raise SpecError(
            f"invalid YAML: {message}",
            file=file,
            line=mark.line + 1 if mark else None,
            column=mark.column + 1 if mark else None,
        ) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"invalid YAML: {exc}", file=file) from None
    finally:
        loader.dispose()


#: PyYAML's context of an unclosed flow collection -> its opening and closing brackets.
_OPENERS = {"while parsing a flow sequence": ("[", "]"), "while parsing a flow mapping": ("{", "}")}


def _explain_yaml(exc: yaml.MarkedYAMLError) -> tuple[str, yaml.Mark | None]:
    """PyYAML's message and place, put in a user's terms for the mistakes people make most."""
    problem, mark = exc.problem or exc.context or "syntax error", exc.problem_mark or exc.context_mark
    if "'\\t'" in problem or "\t" in problem:
        return "a tab cannot indent YAML; indent with spaces", mark
    brackets = _OPENERS.get(exc.context or "")
    if brackets and exc.context_mark and exc.problem_mark:
        opener, closer = brackets
        found = problem.rsplit(" got ", 1)[-1]
        where = f"{exc.problem_mark.line + 1}:{exc.problem_mark.column + 1}"
        return f"this '{opener}' is not closed; expected ',' or '{closer}' before {found} at {where}", exc.context_mark
    if problem == "mapping values are not allowed here":
        return (
            "a ':' after a value on the same line; put each key on its own line, or quote a value that contains ': '"
        ), mark
    if "expected <block end>" in problem:
        return "bad indentation; indent this key like the other keys of its mapping", mark
    context = f" ({exc.context})" if exc.context and exc.problem else ""
    return f"{problem}{context}", mark


_constructor = yaml.SafeLoader("")


def _walk(node: yaml.Node, path: SpecPath, doc: Document) -> Any:
    """Build plain data from a YAML node, recording the position of every value and key."""
    doc.values[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        _constructor.flatten_mapping(node)
        result: dict = {}
        for key_node, value_node in node.value:
            key = _constructor.construct_object(key_node, deep=True)
            if isinstance(key, (list, dict)):
                raise SpecError(
                    "a key must be a plain name",
                    file=doc.file,
                    line=key_node.start_mark.line + 1,
                    column=key_node.start_mark.column + 1,
                )
            key = key if isinstance(key, str) else str(key)
            child = (*path, key)
            if key in result:
                location = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
                raise SpecError(
                    f"duplicate key {key!r}; each key may appear once",
                    file=doc.file,
                    line=location[0],
                    column=location[1],
                    path=format_path(child),
                )
            doc.keys[child] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            result[key] = _walk(value_node, child, doc)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_walk(item, (*path, index), doc) for index, item in enumerate(node.value)]
    return _constructor.construct_object(node, deep=True)
