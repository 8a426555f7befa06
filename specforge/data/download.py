"""Downloading a data file once into the user's cache, with a progress bar, retries and resume.

The file goes to ``$XDG_CACHE_HOME/specforge`` (default ``~/.cache/specforge``), named by the
start of its SHA-256 and the URL's file name.  A partial download is kept as ``NAME.part``
and resumed with an HTTP Range request; the file is renamed into place only once its
SHA-256 matches, so a cached file is always a complete, checked one.
"""

from __future__ import annotations

import http.client
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TransferSpeedColumn,
)

from specforge.base.errors import DataError
from specforge.base.fileio import user_cache
from specforge.data.files import sha256_file

ATTEMPTS = 4
BACKOFF_S = 0.5
TIMEOUT_S = 30.0
_CHUNK = 1 << 16


def cached_path(url: str, sha256: str) -> Path:
    name = Path(urllib.parse.urlparse(url).path).name or "download"
    return user_cache() / f"{sha256.lower()[:16]}-{name}"


class _Permanent(Exception):
    """A failure that retrying cannot fix (e.g. HTTP 404)."""


def _progress(name: str):
    return Progress(
        TextColumn(name), BarColumn(), DownloadColumn(), TransferSpeedColumn(), console=Console(stderr=True)
    )


def _download_once(url: str, part: Path) -> None:
    """Fetch the rest of ``url`` into ``part``; raises on any failure, leaving what arrived in ``part``."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as error:
        if error.code == 416:
            part.unlink()
            raise
        if 400 <= error.code < 500 and error.code not in (408, 429):
            raise _Permanent(f"HTTP {error.code} {error.reason}") from error
        raise
    with response:
        if have and getattr(response, "status", None) != 206:
            have = 0
        length = response.headers.get("Content-Length")
        total = have + int(length) if length is not None else None
        with open(part, "ab" if have else "wb") as handle, _progress(part.name.removesuffix(".part")) as bar:
            task = bar.add_task("download", total=total, completed=have)
            for chunk in iter(lambda: response.read(_CHUNK), b""):
                handle.write(chunk)
                bar.advance(task, len(chunk))
    if total is not None and part.stat().st_size < total:
        raise http.client.IncompleteRead(b"", total - part.stat().st_size)


def _reason(error: Exception) -> str:
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    if isinstance(error, urllib.error.URLError):
        reason = error.reason
        return getattr(reason, "strerror", None) or str(reason)
    if isinstance(error, http.client.IncompleteRead):
        return f"the connection closed with {error.expected} bytes still to come"
    return str(error) or type(error).__name__


def fetch(url: str, sha256: str) -> Path:
    """The cached, checked file for ``url``, downloading (or resuming) it when it is not there yet."""
    sha256 = sha256.lower()
    target = cached_path(url, sha256)
    if target.is_file() and sha256_file(target) == sha256:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    failure: Exception | None = None
    for attempt in range(ATTEMPTS):
        if attempt:
            time.sleep(BACKOFF_S * 2 ** (attempt - 1))
        try:
            _download_once(url, part)
            failure = None
            break
        except _Permanent as error:
            failure = error
            break
        except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
            failure = error
    if failure is not None:
        tries = "" if isinstance(failure, _Permanent) else f" after {ATTEMPTS} attempts"
        raise DataError(
            f"cannot download {url}: {_reason(failure)}{tries}; check the network connection and "
            f"data.url, or download the file yourself and give its path (source: npz or csv)",
            file=url,
        )
    digest = sha256_file(part)
    if digest != sha256:
        part.unlink()
        raise DataError(
            f"the downloaded file's sha256 is {digest} but data.sha256 is {sha256}; check data.url and data.sha256",
            file=url,
        )
    os.replace(part, target)
    return target
