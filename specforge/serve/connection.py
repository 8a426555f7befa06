"""uvicorn's HTTP/1.1 connection (h11) with what it leaves out: a deadline for a request's headers, and JSON
for the requests h11 itself refuses.

uvicorn waits for a request's headers without end (its keep-alive timer runs only between requests, and any
byte stops it), so a client that opens a connection and sends part of a head, or a byte now and then, would
hold it forever.  Here the head must be complete within ``Limits.read_timeout`` of the connection or of the
previous answer: otherwise the client gets a 408 (or, if it sent nothing, the connection just closes).  A
head longer than ``Limits.max_header_bytes`` that h11 refuses before it is complete gets a 431, any other
request h11 cannot parse a 400, both as JSON like every other error of this server.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from specforge.serve.guard import error_response

if TYPE_CHECKING:
    from specforge.serve.limits import Limits


def bounded_protocol(limits: Limits) -> type[asyncio.Protocol]:
    """The connection class for uvicorn's ``Config(http=...)``, with ``limits``."""
    from uvicorn.protocols.http.h11_impl import H11Protocol, RequestResponseCycle

    class BoundedH11Protocol(H11Protocol):
        head_deadline: asyncio.TimerHandle | None = None

        # The narrowed transport type is uvicorn's own (H11Protocol ignores the same override error).
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._await_head()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._await_head()

        def connection_lost(self, exc: Exception | None) -> None:
            if self.head_deadline is not None:
                self.head_deadline.cancel()
            super().connection_lost(exc)

        def send_400_response(self, msg: str) -> None:
            buffered = len(self.conn.trailing_data[0])
            if buffered > limits.max_header_bytes:
                self._refuse(
                    431,
                    f"the request's headers take more than {limits.max_header_bytes:,} bytes; this "
                    f"server takes at most {limits.max_header_bytes:,}",
                )
            else:
                self._refuse(400, "the request is not valid HTTP/1.1 (its request line or a header cannot be read)")

        def _await_head(self) -> None:
            if self.head_deadline is not None:
                self.head_deadline.cancel()
            if not self.transport.is_closing():
                self.head_deadline = self.loop.call_later(limits.read_timeout, self._head_overdue, self.cycle)

        def _head_overdue(self, cycle: RequestResponseCycle | None) -> None:
            """No new request head since ``cycle`` (the request answered last, None on a new connection)."""
            if self.transport.is_closing() or self.cycle is not cycle or (cycle and not cycle.response_complete):
                return
            if self.conn.trailing_data[0]:
                self._refuse(
                    408,
                    f"the request's headers did not arrive within {limits.read_timeout:g} s; send them whole, promptly",
                )
            else:
                self.transport.close()

        def _refuse(self, status: int, message: str) -> None:
            self.transport.write(error_response(status, message))
            self.transport.close()

    return BoundedH11Protocol
