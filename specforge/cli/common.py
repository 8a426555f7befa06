"""What every command module shares: the registration that turns user errors into exit status 2, and the options
several commands take."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable

import typer

from specforge.base.errors import SpecforgeError

SetOption = typer.Option(
    None, "--set", metavar="PATH=VALUE", help="Override a spec value, e.g. --set fit.epochs=1 (repeatable)."
)
JsonOption = typer.Option(False, "--json", help="Print JSON for tools instead of a table.")

#: Help text is rich markup, where [plot] would be a style tag and vanish: a literal bracket is written \[.
NEEDS_PLOT = "(needs specforge\\[plot])"

#: Exit status of a run stopped with Ctrl-C (128 + SIGINT, as shells report it).
INTERRUPTED_EXIT = 130


def echo_json(payload: object) -> None:
    typer.echo(json.dumps(payload, indent=2))


def command(group: typer.Typer, **options) -> Callable:
    """Register a command in ``group`` whose user errors print as one line per problem (as JSON when the command
    was given --json) and exit with status 2."""

    def register(function: Callable) -> Callable:
        @functools.wraps(function)
        def run(*args, **kwargs):
            try:
                return function(*args, **kwargs)
            except SpecforgeError as error:
                if kwargs.get("as_json"):
                    echo_json({"valid": False, "errors": error.to_json()})
                else:
                    typer.echo(error.format(), err=True)
                raise typer.Exit(2) from None

        return group.command(**options)(run)

    return register
