"""Reading data files: path resolution, existence, gzip, and SHA-256 digests.

Every failure is a DataError naming the file and what would work.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

from specforge.base.errors import DataError

GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20


def resolve(base_dir: Path, value: str) -> Path:
    """A path from the spec: ``~`` expanded, relative paths taken from the spec file's directory."""
    path = Path(value).expanduser()
    return path if path.is_absolute() else Path(base_dir) / path


def require_file(path: Path, option: str, *, at_option: bool = False) -> Path:
    """``path`` if it is a readable file; else a DataError that names the spec option that gave it (placed at that
    option's line in the spec when ``at_option``, else at the file)."""
    return _require(path, option, path.is_file(), "is a directory, not a file", "no such file", at_option)


def require_dir(path: Path, option: str) -> Path:
    """``path`` if it is a directory; else a DataError that names the spec option that gave it."""
    return _require(path, option, path.is_dir(), "is a file, not a directory", "no such directory")


def _require(path: Path, option: str, ok: bool, wrong_kind: str, missing: str, at_option: bool = False) -> Path:
    if ok:
        return path
    what = wrong_kind if path.exists() else missing
    if at_option:
        raise DataError(f"{path}: {what}; relative paths start at the spec file's directory", path=f"data.{option}")
    raise DataError(
        f"{what} (given by data.{option}); relative paths start at the spec file's directory", file=str(path)
    )


def read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise DataError(
            f"cannot read the file: {error.strerror or error}; check its permissions", file=str(path)
        ) from error


def decode_utf8(data: bytes, file: str, read_as: str) -> str:
    """``data`` as text (a leading byte order mark dropped); a DataError at the line of the first byte that is not
    UTF-8, naming the byte and its offset in the file. ``read_as`` names what is read ("documents", "tables")."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise DataError(
            f"byte 0x{data[error.start]:02x} at offset {error.start} is not UTF-8 ({read_as} are read as UTF-8); "
            "save the file as UTF-8",
            file=file,
            line=data[: error.start].count(b"\n") + 1,
        ) from None


def gunzip_if_compressed(data: bytes, path: Path) -> bytes:
    """``data`` decompressed when it starts with the gzip magic number, else unchanged."""
    if not data.startswith(GZIP_MAGIC):
        return data
    try:
        return gzip.decompress(data)
    except (EOFError, OSError, zlib.error) as error:
        raise DataError(f"truncated or corrupt gzip data ({error}); download the file again", file=str(path)) from error


def sha256_bytes(data: bytes) -> str:
    import hashlib  # loads OpenSSL, which validate has no use for

    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    """SHA-256 of a file, read in chunks so that large files are not held in memory."""
    import hashlib  # loads OpenSSL, which validate has no use for

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()
