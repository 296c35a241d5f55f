"""The object-store interface that exports are published through, and helpers both backends share.

A key names an object inside the store, e.g. `tasks/42/runs/7/orders.csv`. The backend decides
where that lands (an S3 prefix, a directory); callers never see paths or bucket names.
"""

from __future__ import annotations

import io
import re
import unicodedata
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable
from urllib.parse import quote

from service.domain.errors import NotFound

# S3's limit on a key, in UTF-8 bytes; the local store keeps the same so keys move between them.
MAX_KEY_BYTES = 1024
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

# Why a signed link was refused; the download endpoint's 403 bodies start with these.
LINK_EXPIRED = "link expired"
INVALID_SIGNATURE = "invalid signature"


class UploadTooLarge(ValueError):
    """An upload went past the store's size limit."""


@dataclass(frozen=True)
class SignedUrl:
    url: str
    expires_at: datetime  # UTC


@runtime_checkable
class ObjectStore(Protocol):
    def put_file(self, key: str, path: Path, *, filename: str, content_type: str) -> int:
        """Publish the file at `path` under `key` in one step; returns the bytes stored."""
        ...

    def open_writer(
        self, key: str, *, filename: str, content_type: str
    ) -> AbstractContextManager[BinaryIO]:
        """Stream an object without a full local copy; published only when the block ends cleanly.

        The stream is write-only and not seekable. An exception inside the block discards
        everything written and publishes nothing.
        """
        ...

    def presign_get(self, key: str, *, filename: str, expires_in: int) -> SignedUrl:
        """A link that downloads `key` as `filename` until it expires."""
        ...

    def presign_put(self, key: str, *, content_type: str, expires_in: int) -> SignedUrl:
        """A link that uploads `key` with an HTTP PUT; the upload must send this Content-Type."""
        ...

    def open_reader(self, key: str) -> AbstractContextManager[BinaryIO]:
        """Read `key` as a stream (imports read uploaded files this way); NotFound when
        there is no such object."""
        ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None:
        """Remove `key`; removing a missing key is not an error."""
        ...

    def delete_older_than(self, age: timedelta, *, now: datetime | None = None) -> int:
        """Remove every object last written more than `age` before `now`; returns how many."""
        ...

    def close(self) -> None: ...


def missing_object(key: str) -> NotFound:
    return NotFound(f"object {key} does not exist: upload the file first (UploadService.PreSign)")


def validate_key(key: str) -> str:
    """Return `key` if it is a safe relative object name; ValueError says what is wrong."""
    if not isinstance(key, str) or not key:
        raise ValueError("object key is empty: expected e.g. tasks/<task_id>/runs/<run_id>/<file>")
    if "\x00" in key:
        raise ValueError("object key contains a NUL character")
    if _CONTROL.search(key):
        raise ValueError(f"object key {key!r} contains a control character")
    if "\\" in key:
        raise ValueError(f"object key {key!r} contains a backslash: use / between parts")
    if key.startswith("/"):
        raise ValueError(f"object key {key!r} is absolute: drop the leading /")
    parts = key.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"object key {key!r} has an empty, '.' or '..' part")
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise ValueError(f"object key is longer than {MAX_KEY_BYTES} bytes: shorten the filename")
    return key


def validate_expires_in(expires_in: int, *, maximum: int | None = None) -> int:
    if isinstance(expires_in, bool) or not isinstance(expires_in, int) or expires_in <= 0:
        raise ValueError(f"link lifetime must be a positive number of seconds, not {expires_in!r}")
    if maximum is not None and expires_in > maximum:
        raise ValueError(
            f"link lifetime {expires_in}s is longer than this store allows ({maximum}s)"
        )
    return expires_in


def clean_filename(filename: str, fallback: str = "download") -> str:
    """The last path part of `filename` without control characters, else `fallback`."""
    name = _CONTROL.sub("", filename).replace("\\", "/").rsplit("/", 1)[-1].strip()
    return name if name not in ("", ".", "..") else fallback


def content_disposition(filename: str) -> str:
    """An RFC 6266 attachment header: an ASCII fallback plus the real name as filename*."""
    name = clean_filename(filename)
    ascii_name = unicodedata.normalize("NFKD", name)
    ascii_name = "".join(
        c if c.isascii() and c.isprintable() and c not in '"%;' else "_"
        for c in ascii_name
        if not unicodedata.combining(c)
    )
    # RFC 5987 attr-chars may stay as they are; everything else is percent-encoded UTF-8.
    encoded = quote(name, safe="!#$&+-.^_`|~")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{encoded}"


class StreamWriter(io.RawIOBase):
    """A write-only, non-seekable stream; both backends give callers the same one.

    `tell()` counts the bytes written, which also lets zipfile write to it in streaming mode.
    Closing it early (say, by a wrapping TextIOWrapper) is fine: publishing is up to the
    context manager that handed it out, not to close().
    """

    def __init__(self) -> None:
        super().__init__()
        self._written = 0

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def tell(self) -> int:
        return self._written

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        if self.closed:
            raise ValueError("write to a closed object-store writer")
        view = memoryview(data).cast("B")
        if view.nbytes:
            self._write(view)
            self._written += view.nbytes
        return view.nbytes

    def _write(self, data: memoryview) -> None:
        raise NotImplementedError
