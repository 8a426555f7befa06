"""A ``specforge serve`` process on a free 127.0.0.1 port, for scripts and tests that need a real server."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(model: str | Path, *options: str, timeout: float = 60) -> tuple[subprocess.Popen, str]:
    """Start ``specforge serve MODEL`` with ``options`` on a free loopback port; returns the process and its
    base URL once ``/v2/health/ready`` answers (RuntimeError after ``timeout`` seconds)."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "specforge", "serve", str(model), "--port", str(port), *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    output = process.stdout
    assert output is not None  # stdout=PIPE
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"specforge serve exited with status {process.returncode}: {output.read()}")
        try:
            with urllib.request.urlopen(f"{url}/v2/health/ready", timeout=5) as response:
                if response.status == 200:
                    return process, url
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"specforge serve did not answer within {timeout:g} s")


def stop_server(process: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM (a graceful stop), then wait for the process."""
    if process.poll() is None:
        process.terminate()
        process.wait(timeout)
    if process.stdout is not None:
        process.stdout.close()
