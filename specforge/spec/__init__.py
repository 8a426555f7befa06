"""text -> validated spec: read YAML/JSON with positions, apply ``--set`` overrides, validate, fill defaults."""

from __future__ import annotations

import copy
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import yaml

from specforge.errors import Location, Problem, SpecError
from specforge.spec.defaults import with_defaults
from specforge.spec.reader import Document, SpecPath, format_path, parse_text, read_document
from specforge.spec.schema import load_schema
from specforge.spec.validate import validate_document

__all__ = ["Spec", "load_spec", "spec_from_dict", "parse_override", "parse_path", "format_path", "with_overrides"]


@dataclass
class Spec:
    """A schema-valid spec: the user's document and the resolved config with every default filled in."""

    document: Document
    config: dict

    @property
    def name(self) -> str:
        return self.config["name"]

    @property
    def file(self) -> str:
        return self.document.file

    @property
    def base_dir(self) -> Path:
        """Directory that relative data paths in the spec are resolved against."""
        return Path(self.document.file).resolve().parent if Path(self.document.file).exists() else Path.cwd()

    def locate(self, path: SpecPath, *, at_key: bool = False) -> Location:
        return self.document.locate(path, at_key=at_key)

    def sha256(self) -> str:
        """Hash of the resolved config (stable key order), recorded in runs and ONNX metadata."""
        return hashlib.sha256(json.dumps(self.config, sort_keys=True).encode()).hexdigest()


def load_spec(path: str | Path, overrides: Sequence[str] = ()) -> Spec:
    """Read, override, validate and resolve a spec file; raises SpecError listing every problem."""
    return _resolve(read_document(path), overrides)


def with_overrides(spec: Spec, overrides: Sequence[str]) -> Spec:
    """``spec`` as read from its file with ``overrides`` (``PATH=VALUE``) applied after its own, revalidated."""
    return _resolve(copy.deepcopy(spec.document), overrides)


def spec_from_dict(data: dict, overrides: Sequence[str] = (), *, file: str = "<spec>") -> Spec:
    """A spec given as Python data (notebooks); errors carry paths but no line numbers."""
    return _resolve(parse_text(json.dumps(data), file, as_json=True), overrides)


def _resolve(doc: Document, overrides: Sequence[str]) -> Spec:
    for text in overrides:
        path, value = parse_override(text)
        _assign(doc, path, value, text)
        doc.overrides[path] = text
    schema = load_schema()
    validate_document(doc, schema)
    config = with_defaults(doc.data, schema)
    _resolve_sections(doc, config)
    return Spec(document=doc, config=config)


def _resolve_sections(doc: Document, config: dict) -> None:
    """Expand shorthands (``optimizer: adam``) to full mappings and apply the cross-field rules of each section."""
    from specforge import callbacks, metrics, optimizers

    compile_, fit = config["compile"], config["fit"]
    try:
        compile_["optimizer"] = optimizers.resolve(compile_["optimizer"])
        compile_["metrics"] = metrics.resolve(compile_["metrics"])
        fit["callbacks"] = callbacks.resolve(fit["callbacks"], fit["epochs"])
    except SpecError as error:
        raise SpecError(problems=[Problem(problem.message, doc.locate(_path_of(problem.location.path)))
                                  for problem in error.problems]) from None


def parse_path(text: str) -> SpecPath | None:
    """``model.layers[0].filters`` -> ``("model", "layers", 0, "filters")``; None when it is not such a path."""
    return _path_of(text) if _KEY.fullmatch(text) else None


def _path_of(text: str) -> SpecPath:
    """``compile.metrics[1].k`` -> ``("compile", "metrics", 1, "k")``."""
    return tuple(name if name else int(index) for name, index in _STEP.findall(text))


_KEY = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*|\[\d+\])*")
_STEP = re.compile(r"([A-Za-z_]\w*)|\[(\d+)\]")


def parse_override(text: str) -> tuple[SpecPath, Any]:
    """``fit.epochs=1`` or ``model.layers[0].filters=32`` -> (path, value parsed as YAML)."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not _KEY.fullmatch(key):
        raise SpecError(f"--set takes PATH=VALUE like fit.epochs=1 or model.layers[0].filters=32, got {text!r}",
                        file="--set")
    path = _path_of(key)
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        value = raw
    return path, _number_or_text(value)


def _number_or_text(value: Any) -> Any:
    """YAML 1.1 reads ``5e-4`` as text; on the command line it is meant as a number."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _assign(doc: Document, path: SpecPath, value: Any, text: str) -> None:
    node = doc.data
    for depth, part in enumerate(path):
        last = depth == len(path) - 1
        if isinstance(node, dict) and isinstance(part, str):
            if last:
                node[part] = value
                return
            if part not in node:
                node[part] = [] if isinstance(path[depth + 1], int) else {}
            if isinstance(node[part], str) and isinstance(path[depth + 1], str):
                node[part] = {"name": node[part]}  # `optimizer: adam` is short for `{name: adam}`
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            if last:
                node[part] = value
                return
            node = node[part]
        else:
            where = format_path(path[:depth])
            have = (f"{where} has {len(node)} items (0 to {len(node) - 1})" if isinstance(node, list) and node
                    else f"{where} is {type(node).__name__}, not a mapping" if depth else "")
            raise SpecError(f"does not exist; {have}".rstrip("; "), file=f"--set {text}",
                            path=format_path(path[:depth + 1]))
