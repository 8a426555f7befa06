"""The ``specforge`` command: its commands by name, each loaded from its module when it is looked up, and the exit
status of every outcome (user errors 2, command-line mistakes as one line, a bug as one line and a file).

The commands live in ``specforge.cli.spec_commands`` (validate, schema, init: the spec checks alone) and
``specforge.cli.pipeline_commands`` (the rest, through ``specforge.api``), so that ``specforge validate`` starts
without importing training, export or prediction."""

from __future__ import annotations

import importlib
import os
import sys
import tempfile
import traceback
from collections.abc import Iterator, MutableMapping
from types import ModuleType
from typing import TYPE_CHECKING, Any

import typer
from typer.core import TyperGroup

from specforge import __version__
from specforge.cli.collector import paused_collector
from specforge.cli.common import INTERRUPTED_EXIT

try:
    from typer import _click as click
except ImportError:  # typer before 0.28 uses click itself
    import click  # type: ignore[no-redef]

if TYPE_CHECKING:
    from typer._click import ClickException

#: The module of each command, in the order ``specforge --help`` lists them.
COMMAND_MODULES = {
    **dict.fromkeys(("validate", "schema", "init"), "specforge.cli.spec_commands"),
    **dict.fromkeys(
        ("train", "evaluate", "runs", "plot", "export", "predict", "sweep", "inspect", "serve", "data"),
        "specforge.cli.pipeline_commands",
    ),
}


class _Commands(MutableMapping[str, click.Command]):
    """The commands by name, each module's built (from its ``app``) the first time one of its commands is looked
    up; the names, which suggestions for a mistyped command come from, need no import."""

    def __init__(self) -> None:
        self._groups: dict[str, TyperGroup] = {}
        self._added: dict[str, click.Command] = {}

    def __getitem__(self, name: str) -> click.Command:
        if name in self._added:
            return self._added[name]
        module = COMMAND_MODULES[name]
        if module not in self._groups:
            self._groups[module] = typer.main.get_group(_imported(module).app)
        return self._groups[module].commands[name]

    def __setitem__(self, name: str, command: click.Command) -> None:
        self._added[name] = command

    def __delitem__(self, name: str) -> None:
        del self._added[name]

    def __iter__(self) -> Iterator[str]:
        return iter({**dict.fromkeys(COMMAND_MODULES), **self._added})

    def __len__(self) -> int:
        return len(COMMAND_MODULES.keys() | self._added.keys())


def _imported(name: str) -> ModuleType:
    """The command module ``name``, imported the first time with the cyclic garbage collector paused
    (``specforge.cli.collector``)."""
    if name in sys.modules:
        return sys.modules[name]
    with paused_collector():
        return importlib.import_module(name)


class _Specforge(TyperGroup):
    """The root group, whose commands are loaded as they are looked up (``_Commands``)."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = _Commands()


app = typer.Typer(
    cls=_Specforge,
    help="Declarative model specs: validate, train with numpy, export to ONNX, predict with onnxruntime.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(requested: bool) -> None:
    if requested:
        typer.echo(f"specforge {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Declarative model specs: validate, train with numpy, export to ONNX, predict with onnxruntime."""


def usage_error_line(error: ClickException) -> str:
    """A command-line mistake (unknown option or command, value out of range) as one line, like every other
    user error, with where to find the command's usage."""
    context = getattr(error, "ctx", None)
    command_path = context.command_path if context is not None else "specforge"
    message = " ".join(error.format_message().split())
    return f"specforge: error: {message} (usage: {command_path} --help)"


#: Exit status of an unexpected exception (a bug in specforge), as Python gives an uncaught one.
BUG_EXIT = 1
#: Exit status when the reader of the output went away (``specforge runs | head -1``), as Python's own recipe,
#: click and rich give it.
CLOSED_PIPE_EXIT = 1


def main(args: list[str] | None = None) -> None:
    """Console-script entry point: runs the command and exits with its status; usage errors exit with 2.

    Last resort: a closed pipe ends quietly, and any other unexpected exception is one line saying it is a bug,
    with the file its traceback was written to."""
    try:
        status = _run(args)
        sys.stdout.flush()  # output still buffered meets a closed pipe here, not at interpreter shutdown
    except BrokenPipeError:
        status = _silence_stdout()
    except Exception as error:
        typer.echo(_bug_line(error), err=True)
        status = BUG_EXIT
    sys.exit(status)


def _run(args: list[str] | None) -> int:
    """The command's exit status, command-line mistakes shown as one line."""
    try:
        status = app(args=args, prog_name="specforge", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as error:
        typer.echo(error.format_message())
        return error.exit_code
    except click.ClickException as error:
        typer.echo(usage_error_line(error), err=True)
        return error.exit_code
    except typer.Abort:  # end of input at a prompt
        return INTERRUPTED_EXIT
    return status if isinstance(status, int) else 0


def _silence_stdout() -> int:
    """Point standard output at the null device, so that what is still buffered is dropped at exit without
    a second BrokenPipeError; the exit status of a closed pipe."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return CLOSED_PIPE_EXIT


def _bug_line(error: Exception) -> str:
    """One line for an exception specforge did not expect, its traceback written to a file in the temporary
    directory (printed after the line when that file cannot be written)."""
    text = "".join(traceback.format_exception(error))
    summary = " ".join(f"{type(error).__name__}: {error}".split())
    try:
        descriptor, path = tempfile.mkstemp(prefix="specforge-bug-", suffix=".txt")
        with open(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError:
        return f"specforge: internal error: {summary}; this is a bug in specforge, please report it with:\n{text}"
    return (
        f"specforge: internal error: {summary}; this is a bug in specforge, please report it with the "
        f"traceback written to {path}"
    )
