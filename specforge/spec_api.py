"""The part of the Python API that works on spec files: validate, schema and init.

``specforge.api`` re-exports every function here; the command line's spec commands (``specforge.cli.spec_commands``)
import this module alone, so that ``specforge validate`` loads the spec, graph and data checks it needs and none
of training, export, prediction or serving.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from specforge.base.errors import SpecforgeError
from specforge.data.precheck import check_data
from specforge.graph.build import build_graph, with_rest_checked
from specforge.graph.dag import Graph
from specforge.graph.training_checks import check_warmup_from_headers
from specforge.options import callbacks
from specforge.spec import RefusedSpec, Spec
from specforge.spec.schema import SCHEMA_FILE, write_schema_copy
from specforge.spec.starter import write_template as write_starter
from specforge.sweep.loading import read_sweep
from specforge.sweep.space import sweep_config
from specforge.training.heads import reported_names

__all__ = ["schema_text", "validate", "write_schema", "write_template"]


def validate(path: str | Path, overrides: Sequence[str] = (), *, data: bool = True) -> tuple[Spec, Graph]:
    """``specforge validate``: the resolved spec and its graph, or a SpecError/ShapeError naming every problem.
    ``path`` may be a sweep file: the spec it names is validated, and its sweep section against that spec.

    Also refused: callbacks monitoring a value training will not report, and (unless ``data`` is false) data
    that training would refuse as far as the files' headers and small label files tell
    (``specforge.data.precheck``)."""
    try:
        spec, sweep, locate = read_sweep(path, overrides)
    except RefusedSpec as refused:
        raise with_rest_checked(refused, read_data=data) from None
    graph = build_graph(spec, read_data=data)
    try:
        if data:
            check_data(spec.config, spec.base_dir, graph.output_shape[-1])
            check_warmup_from_headers(spec, spec.base_dir)
        callbacks.create(spec.config["fit"]["callbacks"], reported_names(spec.config, graph))
    except SpecforgeError as error:
        raise spec.located(error) from None
    if sweep is not None:
        sweep_config(spec, sweep, graph, locate)
    return spec, graph


def schema_text() -> str:
    """``specforge schema``: the spec's JSON Schema (draft-07) as stored in the package."""
    return SCHEMA_FILE.read_text(encoding="utf-8")


def write_schema(directory: str | Path) -> Path:
    """``specforge schema --write DIR``: copy the schema to DIR/specforge.schema.json for editors."""
    return write_schema_copy(Path(directory))


def write_template(name: str, template: str = "cnn", directory: str | Path = ".", *, force: bool = False) -> Path:
    """``specforge init``: a new, valid, commented spec NAME.yaml from ``template`` (cnn, mlp, lenet or
    a reference spec of specs/: inception, mobilenet, resnet, sequence)."""
    return write_starter(name, template, Path(directory), force=force)
