"""The ``specforge`` command: argument parsing, presenting results, errors to exit codes."""

from specforge.cli.commands import main

__all__ = ["main"]
