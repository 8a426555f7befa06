"""The ``specforge`` command: argument parsing, presenting results, errors to exit codes."""

from specforge.cli.collector import paused_collector

with paused_collector():  # the command line's own modules and typer's (specforge.cli.collector)
    from specforge.cli.commands import main

__all__ = ["main"]
