"""Reading a sweep: the ``sweep:`` section of a spec, or a sweep file ``{spec: PATH, sweep: {...}}``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from specforge.base.defaults import with_defaults
from specforge.base.errors import Location, Problem, SpecError
from specforge.graph.build import build_graph
from specforge.spec import Spec, load_spec, spec_from_document
from specforge.spec.reader import SpecPath, read_document
from specforge.spec.sweep_schema import SWEEP_FILE_SCHEMA, SWEEP_SCHEMA
from specforge.spec.validate import validate_document
from specforge.sweep.space import SweepConfig, sweep_config

Locate = Callable[[SpecPath], Location]


def load_sweep(source: str | Path | Spec, overrides: Sequence[str] = (), *, trials: int | None = None) -> SweepConfig:
    """The checked sweep of a spec (file or object) or sweep file; ``trials`` replaces its number of trials.
    ``overrides`` (``--set``) apply to the spec.  Raises SpecError locating every problem."""
    locate: Locate
    if isinstance(source, Spec):
        spec, section, locate = source, source.config.get("sweep"), source.locate
    else:
        spec, section, locate = read_sweep(source, overrides)
    if section is None:
        raise SpecError(
            "the spec has no sweep section; add sweep: {parameters: {PATH: {choice: [...]}}, "
            "metric: val_accuracy} (see the README's Sweeps section)",
            file=spec.file,
        )
    graph = build_graph(spec)
    if trials is not None:
        section = {**section, "trials": trials}
    return sweep_config(spec, section, graph, locate)


def read_sweep(path: str | Path, overrides: Sequence[str] = ()) -> tuple[Spec, dict | None, Locate]:
    """A spec file, or a sweep file ``{spec: PATH, sweep: {...}}`` (told apart by its ``spec`` key and no
    ``model``): the spec (``overrides`` applied), its sweep section with defaults (None when it has none), and
    where the section's values are written.  Both are validated by their schemas."""
    doc = read_document(path)
    if not (isinstance(doc.data, dict) and "spec" in doc.data and "model" not in doc.data):
        spec = spec_from_document(doc, overrides)
        return spec, spec.config.get("sweep"), spec.locate
    validate_document(doc, SWEEP_FILE_SCHEMA)
    named = Path(path).parent / doc.data["spec"]
    if not named.is_file():
        raise SpecError(
            problems=[
                Problem(
                    f"no such spec file {str(named)!r}; spec is relative to this file's directory",
                    doc.locate(("spec",)),
                )
            ]
        )
    return load_spec(named, overrides), with_defaults(doc.data["sweep"], SWEEP_SCHEMA), doc.locate
