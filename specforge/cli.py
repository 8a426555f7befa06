"""The ``specforge`` command: parse arguments, call the API, print.  User errors become exit status 2 here."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Callable, List, Optional

import typer

from specforge.errors import SpecforgeError

app = typer.Typer(
    help="Declarative model specs: validate, train with numpy, export to ONNX, predict with onnxruntime.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

SetOption = typer.Option(None, "--set", metavar="PATH=VALUE",
                         help="Override a spec value, e.g. --set fit.epochs=1 (repeatable).")
JsonOption = typer.Option(False, "--json", help="Print JSON for tools instead of a table.")


class _Errors:
    """How user errors are printed: text lines, or JSON when a command was asked for --json."""

    as_json = False


def _echo_json(payload: object) -> None:
    typer.echo(json.dumps(payload, indent=2))


def command(group: typer.Typer = app, **options) -> Callable:
    """Register a command whose user errors print as one line per problem and exit with status 2."""

    def register(function: Callable) -> Callable:
        @functools.wraps(function)
        def run(*args, **kwargs):
            try:
                return function(*args, **kwargs)
            except SpecforgeError as error:
                if _Errors.as_json:
                    _echo_json({"valid": False, "errors": error.to_json()})
                else:
                    typer.echo(error.format(), err=True)
                raise typer.Exit(2) from None

        return group.command(**options)(run)

    return register


@command()
def validate(spec: Path = typer.Argument(..., help="Spec file (.yaml, .yml or .json)."),
             overrides: Optional[List[str]] = SetOption, as_json: bool = JsonOption) -> None:
    """Check a spec against the schema, infer every layer's shape and print the model summary."""
    from specforge import api
    from specforge.summary import print_summary, summary_json

    _Errors.as_json = as_json
    resolved, graph = api.validate(spec, overrides or ())
    if as_json:
        _echo_json(summary_json(resolved, graph))
    else:
        print_summary(resolved, graph)


@command()
def schema() -> None:
    """Print the spec's JSON Schema (draft-07)."""
    from specforge.spec.schema import SCHEMA_FILE

    typer.echo(SCHEMA_FILE.read_text(encoding="utf-8"), nl=False)


@command()
def init(name: str = typer.Argument(..., help="Model name; the spec is written to NAME.yaml."),
         template: str = typer.Option("cnn", "--template", "-t", help="Starting point: cnn, mlp or lenet."),
         directory: Path = typer.Option(Path("."), "--dir", help="Where to write the spec."),
         force: bool = typer.Option(False, "--force", help="Overwrite an existing file.")) -> None:
    """Write a new, valid, commented spec to edit."""
    from specforge.starter import write_template

    path = write_template(name, template, directory, force=force)
    typer.echo(f"wrote {path}; check it with: specforge validate {path}")


def main() -> None:
    """Console-script entry point."""
    app()
