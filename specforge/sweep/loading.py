"""Reading a sweep: the ``sweep:`` section of a spec, or a sweep file ``{spec: PATH, sweep: {...}}``."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from specforge.base.defaults import with_defaults
from specforge.base.errors import SpecError
from specforge.graph.build import build_graph
from specforge.spec import Spec, load_spec
from specforge.spec.reader import read_document
from specforge.spec.sweep_schema import SWEEP_FILE_SCHEMA, SWEEP_SCHEMA
from specforge.spec.validate import validate_document
from specforge.sweep.space import SweepConfig, sweep_config


def load_sweep(source: str | Path | Spec, overrides: Sequence[str] = (), *, trials: int | None = None) -> SweepConfig:
    """The checked sweep of a spec (file or object) or sweep file; ``trials`` replaces its number of trials.
    ``overrides`` (``--set``) apply to the spec.  Raises SpecError locating every problem."""
    if isinstance(source, Spec):
        spec, section, locate = source, source.config.get("sweep"), source.locate
    else:
        doc = read_document(source)
        if isinstance(doc.data, dict) and "spec" in doc.data and "model" not in doc.data:
            validate_document(doc, SWEEP_FILE_SCHEMA)
            spec = load_spec(Path(source).parent / doc.data["spec"], overrides)
            section, locate = with_defaults(doc.data["sweep"], SWEEP_SCHEMA), doc.locate
        else:
            spec = load_spec(source, overrides)
            section, locate = spec.config.get("sweep"), spec.locate
    if section is None:
        raise SpecError("the spec has no sweep section; add sweep: {parameters: {PATH: {choice: [...]}}, "
                        "metric: val_accuracy} (see the README's Sweeps section)", file=spec.file)
    graph = build_graph(spec)
    if trials is not None:
        section = {**section, "trials": trials}
    return sweep_config(spec, section, graph.output_shape[-1], locate)
