"""What every request goes through before the routes see it, as ASGI middleware: bounded headers, a body read
whole within a size limit and a deadline, and an unexpected error turned into a JSON 500 and one log line.

A body over the limit is still read (and dropped) up to ``DRAIN_FACTOR`` times the limit, so that a client
that sends all of it before reading sees the 413 instead of a reset connection; beyond that, or when the
client asked to be told first (``Expect: 100-continue``), the server answers at once and closes.  Whenever an
answer leaves part of the request unread, the connection is closed after it.
"""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import TYPE_CHECKING

from specforge.serve.protocol import ProtocolError

if TYPE_CHECKING:
    from specforge.serve.limits import Limits

Message = dict
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[dict, Receive, Send], Awaitable[None]]

DRAIN_FACTOR = 8
LOG = logging.getLogger("uvicorn.error")


class ClientGone(Exception):
    """The client closed the connection before its request was read: there is no one to answer."""


class RequestGuard:
    """ASGI middleware around the routes (inside Starlette's own error middleware, so nothing escapes it)."""

    def __init__(self, app: App, limits: Limits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: dict, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            _check_headers(scope, self.limits.max_header_bytes)
            body = await read_body(scope, receive, self.limits)
        except ProtocolError as error:
            await respond(send, error.status, error.message, close=error.close)
            return
        except ClientGone:
            return
        started = False
        unread: bytes | None = body

        async def replay() -> Message:
            nonlocal unread
            if unread is None:
                return await receive()
            message, unread = {"type": "http.request", "body": unread, "more_body": False}, None
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            await self.app(scope, replay, tracked)
        except Exception as error:
            LOG.error("%s %s: %s%s", scope["method"], scope["path"], summary(error), raised_at(error))
            if not started:
                await respond(
                    send,
                    500,
                    f"unexpected error while answering: {summary(error)}; this is a bug in "
                    "the served model or in specforge, not in the request",
                )


async def read_body(scope: dict, receive: Receive, limits: Limits) -> bytes:
    """The whole body (ProtocolError 413 over ``limits.max_body_bytes``, 408 past ``limits.read_timeout``)."""
    import anyio

    length = _header(scope, b"content-length")  # h11 has checked that it is digits
    declared = int(length) if length is not None else None
    limit = limits.max_body_bytes
    too_large = declared is not None and declared > limit
    if (
        declared is not None
        and too_large
        and (declared > DRAIN_FACTOR * limit or _header(scope, b"expect") == "100-continue")
    ):
        raise ProtocolError(413, _too_large(declared, limit), close=True)
    chunks, size, more = [], 0, True
    try:
        with anyio.fail_after(limits.read_timeout):
            while more and size <= DRAIN_FACTOR * limit:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise ClientGone
                chunk, more = message.get("body", b""), message.get("more_body", False)
                size += len(chunk)
                too_large = too_large or size > limit
                if not too_large:
                    chunks.append(chunk)
    except TimeoutError:
        if not too_large:
            raise ProtocolError(
                408,
                f"the request's body did not arrive within {limits.read_timeout:g} s "
                f"({size:,} bytes came); send it whole, promptly",
                close=True,
            ) from None
    if too_large:
        raise ProtocolError(413, _too_large(declared, limit), close=more)
    return b"".join(chunks)


async def respond(send: Send, status: int, message: str, *, close: bool = False) -> None:
    """A JSON error ``{"error": message}``; ``close``: tell the client the connection ends with it."""
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def error_response(status: int, message: str) -> bytes:
    """A whole HTTP/1.1 JSON error response that closes the connection, for errors found below ASGI."""
    body = json.dumps({"error": message}).encode()
    return (
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    ).encode() + body


def summary(error: BaseException) -> str:
    """``Type: the first line of the message``."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"


def raised_at(error: BaseException) -> str:
    """`` (at file:line)`` of the innermost frame, for the log (not for the client)."""
    frames = traceback.extract_tb(error.__traceback__)
    return f" (at {frames[-1].filename}:{frames[-1].lineno})" if frames else ""


def _check_headers(scope: dict, bound: int) -> None:
    size = sum(len(name) + len(value) + 4 for name, value in scope["headers"])
    if size > bound:
        raise ProtocolError(
            431, f"the request's headers take {size:,} bytes; this server takes at most {bound:,}", close=True
        )


def _header(scope: dict, name: bytes) -> str | None:
    return next((value.decode("latin-1").strip().lower() for key, value in scope["headers"] if key == name), None)


def _too_large(declared: int | None, limit: int) -> str:
    size = f"{declared:,} bytes" if declared is not None else f"more than {limit:,} bytes"
    return f"the request has {size}; this server takes at most {limit:,} (--max-request-mb)"
