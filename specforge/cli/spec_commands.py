"""The spec commands: validate, schema and init, calls to the API's part on spec files (``specforge.spec_api``),
which loads no training, export or prediction code."""

from __future__ import annotations

from pathlib import Path

import typer

from specforge import spec_api
from specforge.cli.common import JsonOption, SetOption, command, echo_json
from specforge.cli.summary import print_summary, summary_json, write_picture

app = typer.Typer()


@command(app)
def validate(
    spec: Path = typer.Argument(..., help="Spec file (.yaml, .yml or .json)."),
    overrides: list[str] | None = SetOption,
    as_json: bool = JsonOption,
    no_data: bool = typer.Option(
        False, "--no-data", help="Skip the data checks (files exist, headers and label files fit the model)."
    ),
    picture: Path | None = typer.Option(
        None,
        "--graph",
        metavar="FILE",
        help="Also write a picture of the graph: FILE.dot (Graphviz "
        "text), or FILE.svg / FILE.png drawn by Graphviz's dot.",
    ),
) -> None:
    """Check a spec against the schema, infer every layer's shape, check its data files as far as their headers
    tell, and print the model summary."""
    resolved, graph = spec_api.validate(spec, overrides or (), data=not no_data)
    for warning in graph.warnings:
        typer.echo(warning.format(), err=True)
    if picture is not None:
        write_picture(graph, resolved.name, picture)
    if as_json:
        echo_json(summary_json(resolved, graph))
    else:
        print_summary(resolved, graph)


@command(app)
def schema(
    write: Path | None = typer.Option(
        None,
        "--write",
        metavar="DIR",
        help="Write DIR/specforge.schema.json instead, for a spec's $schema line to name by a relative path.",
    ),
) -> None:
    """Print the spec's JSON Schema (draft-07)."""
    if write is None:
        typer.echo(spec_api.schema_text(), nl=False)
    else:
        typer.echo(f"wrote {spec_api.write_schema(write)}")


@command(app)
def init(
    name: str = typer.Argument(..., help="Model name; the spec is written to NAME.yaml."),
    template: str = typer.Option(
        "cnn",
        "--template",
        "-t",
        help="Starting point: cnn, mlp, lenet, or a reference spec: inception, mobilenet, resnet, sequence.",
    ),
    directory: Path = typer.Option(Path("."), "--dir", help="Where to write the spec."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
) -> None:
    """Write a new, valid, commented spec to edit."""
    path = spec_api.write_template(name, template, directory, force=force)
    typer.echo(
        f"wrote {path} (its $schema line names the copy of the schema in schemas/ beside it); "
        f"check it with: specforge validate {path}"
    )
