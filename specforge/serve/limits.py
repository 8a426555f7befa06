"""What one request to ``specforge serve`` may hold, and how long it may take to arrive."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Limits:
    """The server's bounds on a request (``--max-request-mb``, ``--max-batch``, ``--read-timeout``)."""

    max_body_bytes: int = 8 * 1024 * 1024
    max_batch: int = 256
    #: seconds for a request's headers to arrive, and then for its body
    read_timeout: float = 30.0
    max_header_bytes: int = 16 * 1024
