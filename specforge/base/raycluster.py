"""Joining Ray: a cluster at an address (``--address`` or RAY_ADDRESS), or a local instance started for
the command (2 CPUs, no dashboard).  Ray is an extra: without it, one line names the install command."""

from __future__ import annotations

import contextlib
import importlib
import os
import socket
from collections.abc import Iterator
from typing import Any

from specforge.base.errors import RunError

INSTALL = "pip install 'specforge[ray]'"
#: A local Ray instance, when no cluster is named.
LOCAL_CPUS = 2
#: Seconds to wait for a cluster's address to answer before saying it is unreachable.
CONNECT_TIMEOUT = 5


def ray_module(command: str, part: str) -> Any:
    """``ray`` with ``part`` (``tune``, ``data``) importable, or a one-line error naming the install command."""
    try:
        ray = importlib.import_module("ray")
        importlib.import_module(f"ray.{part}")
    except ImportError:
        raise RunError(f"--backend ray needs Ray; install it with: {INSTALL}", file=f"specforge {command}") from None
    return ray


@contextlib.contextmanager
def connect(address: str | None, command: str, part: str) -> Iterator[Any]:
    """Ray, joined to ``address`` (or RAY_ADDRESS) or started locally, shut down afterwards (see ``ray_module``)."""
    ray = ray_module(command, part)
    if ray.is_initialized():  # a notebook's (or a caller's) own ray.init(): use it, leave it running
        yield ray
        return
    address = address or os.environ.get("RAY_ADDRESS")
    if address and address != "auto":
        _check_reachable(address)
    try:
        if address:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
        else:
            ray.init(num_cpus=LOCAL_CPUS, include_dashboard=False, log_to_driver=False, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise RunError(f"cannot join the Ray cluster: {first}", file=f"--address {address or 'local'}") from None
    try:
        yield ray
    finally:
        ray.shutdown()


def _check_reachable(address: str) -> None:
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=CONNECT_TIMEOUT):
            pass
    except (OSError, ValueError) as error:  # a ValueError is a port that is not a number
        reason = (error.strerror if isinstance(error, OSError) else None) or error
        raise RunError(
            f"no Ray cluster answers at {address} ({reason}); start one with `ray start --head` or give its HOST:PORT",
            file=f"--address {address}",
        ) from None
