"""text -> validated spec: read YAML/JSON with positions, apply ``--set`` overrides, validate, fill defaults."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from specforge.base.defaults import with_defaults
from specforge.base.errors import Location, Problem, SpecError, SpecforgeError
from specforge.options import callbacks, metrics, optimizers
from specforge.spec.bounds import expansion_problems
from specforge.spec.partial import rest_of
from specforge.spec.reader import Document, SpecPath, format_path, parse_text, read_document
from specforge.spec.schema import load_schema
from specforge.spec.validate import validate_document

__all__ = [
    "RefusedSpec",
    "Spec",
    "format_path",
    "load_spec",
    "override_spec",
    "parse_override",
    "parse_path",
    "resolved_spec",
    "spec_from_dict",
    "spec_from_document",
]


@dataclass
class Spec:
    """A schema-valid spec: the user's document and the resolved config with every default filled in."""

    document: Document
    config: dict
    #: where relative data paths start when it is not the spec file's directory (a run's recorded base_dir)
    data_root: Path | None = field(default=None, compare=False)
    #: whether model.input_shape came from the data (``specforge.graph.build.data_shape``), not from the spec
    inferred_input_shape: bool = field(default=False, compare=False)

    @property
    def name(self) -> str:
        return self.config["name"]

    @property
    def file(self) -> str:
        return self.document.file

    @property
    def base_dir(self) -> Path:
        """Directory that relative data paths in the spec are resolved against."""
        if self.data_root is not None:
            return self.data_root
        return Path(self.document.file).resolve().parent if Path(self.document.file).exists() else Path.cwd()

    def locate(self, path: SpecPath, *, at_key: bool = False) -> Location:
        return self.document.locate(path, at_key=at_key)

    def __repr__(self) -> str:
        return f"Spec({self.file!r}, name={self.name!r})"

    def located(self, error: SpecforgeError) -> SpecforgeError:
        """``error`` with each problem that names only a spec path (a data column the file lacks, say) placed at
        that path's line in the spec; a problem found in a data file that names the spec setting involved (a
        label beyond data.num_classes) is placed at that setting, the data file named in its message; other
        problems that name a file keep it."""
        return type(error)(problems=[self._located(problem) for problem in error.problems])

    def _located(self, problem: Problem) -> Problem:
        if problem.setting:
            message = f"in {problem.location.file}: {problem.message}" if problem.location.file else problem.message
            return replace(problem, message=message, location=self.locate(_path_of(problem.setting)), setting="")
        if problem.location.file is None and problem.location.path:
            return replace(problem, location=self.locate(_path_of(problem.location.path)))
        return problem

    def sha256(self) -> str:
        """Hash of the resolved config (stable key order), recorded in runs and ONNX metadata."""
        import hashlib  # loads OpenSSL, which validate has no use for

        return hashlib.sha256(json.dumps(self.config, sort_keys=True).encode()).hexdigest()


def load_spec(path: str | Path, overrides: Sequence[str] = ()) -> Spec:
    """Read, override, validate and resolve a spec file; raises SpecError listing every problem."""
    return _resolve(read_document(path), overrides)


def spec_from_document(doc: Document, overrides: Sequence[str] = ()) -> Spec:
    """``load_spec`` of a file read already (``read_document``), which it takes over: the overrides are applied
    to ``doc`` itself."""
    return _resolve(doc, overrides)


def spec_from_dict(data: dict, overrides: Sequence[str] = (), *, file: str = "<spec>") -> Spec:
    """A spec given as Python data (notebooks); errors carry paths but no line numbers."""
    return _resolve(parse_text(json.dumps(data), file, as_json=True), overrides)


def resolved_spec(
    config: dict,
    text_file: str | Path,
    *,
    text_is_json: bool = False,
    recorded_overrides: Sequence[str] = (),
    data_root: Path | None = None,
) -> Spec:
    """A spec resolved and validated before (a run's ``spec.resolved.json``), taken as it is: not validated
    again.  ``text_file`` is the text it came from (a run's ``spec.yaml``, which holds JSON when
    ``text_is_json``), read only so that later errors point at its real lines; ``recorded_overrides`` are
    the ``--set`` options it was resolved with, so that errors about those values point at the option."""
    doc = read_document(text_file, as_json=text_is_json)
    for text in recorded_overrides:
        doc.overrides[parse_override(text)[0]] = text
    return Spec(document=doc, config=config, data_root=data_root)


def override_spec(spec: Spec, overrides: Sequence[str]) -> Spec:
    """``spec`` with ``--set`` ``overrides`` applied to its resolved config, validated by the schema again
    (errors about the new values name the option, the others keep the spec's own positions).  An input shape
    inferred from the data is left out, to be inferred again for the new values (a feature's type may change it)."""
    doc = Document(
        copy.deepcopy(spec.config), spec.file, spec.document.values, spec.document.keys, dict(spec.document.overrides)
    )
    if spec.inferred_input_shape:
        del doc.data["model"]["input_shape"]
    resolved = _resolve(doc, overrides)
    resolved.data_root = spec.data_root
    return resolved


def _resolve(doc: Document, overrides: Sequence[str]) -> Spec:
    for text in overrides:
        path, value = parse_override(text)
        _assign(doc, path, value, text)
        doc.overrides[path] = text
    schema = load_schema()
    try:
        validate_document(doc, schema)
    except SpecError as error:
        raise _refused(doc, schema, error.problems) from None
    too_large = expansion_problems(doc.data, doc.locate)
    if too_large:
        raise SpecError(problems=too_large)
    config = with_defaults(doc.data, schema)
    _resolve_sections(doc, config)
    return Spec(document=doc, config=config)


class RefusedSpec(SpecError):
    """The schema's problems with a spec, and what of it can still be checked: ``rest`` is the spec without
    what the schema refused (``specforge.spec.partial``), or None; ``complete`` when ``rest`` is a valid spec."""

    def __init__(self, problems: list[Problem], rest: Spec | None = None, complete: bool = False):
        super().__init__(problems=problems)
        self.rest, self.complete = rest, complete


def _refused(doc: Document, schema: dict, problems: list[Problem]) -> RefusedSpec:
    rest, complete = rest_of(doc.data, schema)
    too_large = expansion_problems(rest, doc.locate) if rest is not None else []
    if rest is None or too_large:
        return RefusedSpec(problems + too_large)
    config = with_defaults(rest, schema)
    if complete:
        _resolve_sections(doc, config)
    return RefusedSpec(problems, Spec(document=doc, config=config), complete)


def _resolve_sections(doc: Document, config: dict) -> None:
    """Expand shorthands (``optimizer: adam``, ``metrics: [accuracy]``) to full mappings with their defaults."""
    compile_, fit = config["compile"], config["fit"]
    compile_["optimizer"] = optimizers.resolve(compile_["optimizer"])
    compile_["metrics"] = metrics.resolve(compile_["metrics"])
    for output in config["model"].get("outputs", {}).values():
        if "metrics" in output:
            output["metrics"] = metrics.resolve(output["metrics"])
    fit["callbacks"] = callbacks.resolve(fit["callbacks"], fit["epochs"])


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
        raise SpecError(
            f"--set takes PATH=VALUE like fit.epochs=1 or model.layers[0].filters=32, got {text!r}", file="--set"
        )
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
            have = (
                f"{where} has {len(node)} items (0 to {len(node) - 1})"
                if isinstance(node, list) and node
                else f"{where} is {type(node).__name__}, not a mapping"
                if depth
                else ""
            )
            raise SpecError(
                f"does not exist; {have}".rstrip("; "), file=f"--set {text}", path=format_path(path[: depth + 1])
            )
