"""The default store: a local directory, served by our own endpoint with signed, expiring links.

Layout under the root directory (all on one filesystem, so os.replace publishes atomically):

    objects/<key>        the bytes users download
    meta/<key>.json      the sidecar: real filename and content type
    tmp/                 uploads in progress; nothing here is ever served

Objects and sidecars live in separate trees so that no key can collide with a sidecar and the
endpoint only ever serves from objects/.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import shutil
import ssl
import stat
import tempfile
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO, cast
from urllib.parse import quote

from service.storage.base import (
    INVALID_SIGNATURE,
    LINK_EXPIRED,
    SignedUrl,
    StreamWriter,
    UploadTooLarge,
    clean_filename,
    validate_expires_in,
    validate_key,
)
from service.storage.http import DownloadServer, parse_listen

log = logging.getLogger(__name__)

SIGNING_KEY_BYTES = 32
# Printable ASCII only: the value goes into an HTTP header as it is.
_CONTENT_TYPE = re.compile(r"[\x21-\x7e][\x20-\x7e]*")
_COPY_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class StoredObject:
    """An open object for the download endpoint; the caller closes `file`."""

    file: BinaryIO
    size: int
    mtime: float
    filename: str
    content_type: str


def load_or_create_signing_key(path: Path) -> bytes:
    """Read the link-signing key at `path`, creating it (mode 0600) on first use.

    Created via a temp file and os.link so that two processes starting together agree on one key
    and neither ever reads a half-written file.
    """
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".signing-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(secrets.token_bytes(SIGNING_KEY_BYTES))
                f.flush()
                os.fsync(f.fileno())
            with contextlib.suppress(FileExistsError):  # another process won: use its key
                os.link(tmp, path)
        finally:
            os.unlink(tmp)
        key = path.read_bytes()
    if len(key) < SIGNING_KEY_BYTES:
        raise ValueError(
            f"signing key file {path} is shorter than {SIGNING_KEY_BYTES} bytes: delete it to have "
            "a new one generated (links signed with the old key stop working)"
        )
    if path.stat().st_mode & 0o077:
        log.warning("signing key file %s is readable by others: chmod 600 it", path)
    return key


def _check_content_type(content_type: str) -> str:
    if not _CONTENT_TYPE.fullmatch(content_type or ""):
        raise ValueError(f"content type {content_type!r} is not a printable ASCII media type")
    return content_type


class _FileWriter(StreamWriter):
    def __init__(self, file: BinaryIO, limit: int | None) -> None:
        super().__init__()
        self._file = file
        self._limit = limit

    def _write(self, data: memoryview) -> None:
        if self._limit is not None and self.tell() + data.nbytes > self._limit:
            raise UploadTooLarge(f"upload is larger than the {self._limit}-byte limit")
        self._file.write(data)


class LocalStore:
    """Objects in a local directory, downloaded through `serve()`'s HTTP endpoint."""

    def __init__(
        self,
        root: Path,
        *,
        signing_key: bytes,
        public_url: str = "",
        listen: str = "127.0.0.1:8780",
        max_upload_bytes: int = 5 * 1024**3,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        if len(signing_key) < 16:
            raise ValueError("signing key is shorter than 16 bytes: use 32 random bytes")
        self.root = Path(root)
        self._objects = self.root / "objects"
        self._meta = self.root / "meta"
        self._tmp = self.root / "tmp"
        for d in (self.root, self._objects, self._meta, self._tmp):
            d.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._objects_real = os.path.realpath(self._objects)
        self._key = signing_key
        self._public_url = public_url.rstrip("/")
        self._listen = listen
        self.max_upload_bytes = max_upload_bytes
        self._server: DownloadServer | None = None
        self._tls = tls

    # -- serving ---------------------------------------------------------------------------

    def serve(self, host: str | None = None, port: int | None = None) -> DownloadServer:
        """Start the download endpoint in a daemon thread; default: the configured address."""
        if self._server is not None:
            raise RuntimeError("the download endpoint is already running")
        default_host, default_port = parse_listen(self._listen)
        server = DownloadServer(
            self,
            default_host if host is None else host,
            default_port if port is None else port,
            self._tls,
        )
        server.start()
        self._server = server
        return server

    def shutdown(self) -> None:
        """Stop the download endpoint if it runs."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()

    def close(self) -> None:
        self.shutdown()

    @property
    def base_url(self) -> str:
        """Where links point: the configured public URL, else the running endpoint's address."""
        if self._public_url:
            return self._public_url
        if self._server is not None:
            return self._server.url
        return f"{'https' if self._tls else 'http'}://{self._listen}"

    # -- signing ---------------------------------------------------------------------------

    def _signature(self, method: str, key: str, exp: int, content_type: str = "") -> str:
        # Newline-separated: keys and media types cannot contain one, so fields never run together.
        message = f"{method}\n{key}\n{exp}"
        if method == "PUT":
            message += f"\n{content_type}"
        return hmac.new(self._key, message.encode("utf-8"), hashlib.sha256).hexdigest()

    def _sign(self, method: str, key: str, expires_in: int, content_type: str = "") -> SignedUrl:
        validate_key(key)
        validate_expires_in(expires_in)
        exp = int(time.time()) + expires_in
        sig = self._signature(method, key, exp, content_type)
        url = f"{self.base_url}/files/{quote(key, safe='/')}?exp={exp}&sig={sig}"
        return SignedUrl(url=url, expires_at=datetime.fromtimestamp(exp, UTC))

    def verify(
        self, method: str, key: str, exp: int, sig: str, *, content_type: str = ""
    ) -> str | None:
        """None when the link is good, else why not: LINK_EXPIRED or INVALID_SIGNATURE.

        The signature is checked first so that a tampered expiry reads as tampering.
        """
        expected = self._signature(method, key, exp, content_type)
        if not hmac.compare_digest(expected.encode("ascii"), sig.encode("utf-8", "replace")):
            return INVALID_SIGNATURE
        if exp <= time.time():
            return LINK_EXPIRED
        return None

    def presign_get(self, key: str, *, filename: str, expires_in: int) -> SignedUrl:
        # The filename is served from the sidecar written at upload, which holds the same name.
        return self._sign("GET", key, expires_in)

    def presign_put(self, key: str, *, content_type: str, expires_in: int) -> SignedUrl:
        return self._sign("PUT", key, expires_in, _check_content_type(content_type))

    # -- objects ---------------------------------------------------------------------------

    def _object_path(self, key: str) -> Path:
        return self._objects.joinpath(*validate_key(key).split("/"))

    def _meta_path(self, key: str) -> Path:
        parts = validate_key(key).split("/")
        return self._meta.joinpath(*parts[:-1], parts[-1] + ".json")

    def put_file(self, key: str, path: Path, *, filename: str, content_type: str) -> int:
        with (
            open(path, "rb") as src,
            self.open_writer(key, filename=filename, content_type=content_type) as dst,
        ):
            shutil.copyfileobj(src, dst, _COPY_CHUNK)
            size = dst.tell()
        return size

    def open_writer(
        self, key: str, *, filename: str, content_type: str
    ) -> AbstractContextManager[BinaryIO]:
        return self._writer(key, filename, content_type, limit=None)

    def open_upload(self, key: str, *, content_type: str) -> AbstractContextManager[BinaryIO]:
        """The writer behind a presigned PUT: named after the key, capped at max_upload_bytes."""
        return self._writer(key, "", content_type, limit=self.max_upload_bytes)

    @contextmanager
    def _writer(
        self, key: str, filename: str, content_type: str, *, limit: int | None
    ) -> Iterator[BinaryIO]:
        validate_key(key)
        _check_content_type(content_type)
        meta = {"filename": clean_filename(filename, key.rsplit("/", 1)[-1])}
        meta["content_type"] = content_type
        fd, tmp_name = tempfile.mkstemp(dir=self._tmp, prefix="upload-", suffix=".part")
        tmp = Path(tmp_name)
        file = os.fdopen(fd, "wb")
        writer = _FileWriter(file, limit)
        try:
            try:
                yield cast(BinaryIO, writer)
            finally:
                writer.close()
            file.flush()
            os.fsync(file.fileno())
            file.close()
            self._publish(tmp, key, meta)
        except BaseException:
            file.close()
            tmp.unlink(missing_ok=True)
            raise

    def _publish(self, tmp: Path, key: str, meta: dict[str, str]) -> None:
        target = self._object_path(key)
        meta_target = self._meta_path(key)
        fd, name = tempfile.mkstemp(dir=self._tmp, prefix="meta-", suffix=".json")
        meta_tmp = Path(name)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(meta, f, ensure_ascii=False)
            # The sidecar goes first: a reader that sees the object always finds its name.
            self._replace(meta_tmp, meta_target)
            self._replace(tmp, target)
        except (IsADirectoryError, NotADirectoryError, FileExistsError) as exc:
            meta_tmp.unlink(missing_ok=True)
            if not target.is_file():  # the sidecar may already be in place: don't orphan it
                meta_target.unlink(missing_ok=True)
            raise ValueError(
                f"object key {key!r} clashes with another key used as a folder: choose another"
            ) from exc
        except BaseException:
            meta_tmp.unlink(missing_ok=True)
            raise

    def _replace(self, src: Path, dst: Path) -> None:
        # Retention may remove an emptied folder between mkdir and replace: make it again.
        for attempt in range(3):
            dst.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            try:
                os.replace(src, dst)
                return
            except FileNotFoundError:
                if attempt == 2 or not src.exists():
                    raise

    def open_object(self, key: str) -> StoredObject | None:
        """Open `key` for reading, or None when there is no such object."""
        path = self._object_path(key)
        # Keys are validated, but a symlink planted under objects/ must not lead outside it.
        real = os.path.realpath(path)
        if os.path.commonpath([real, self._objects_real]) != self._objects_real:
            return None
        try:
            fd = os.open(real, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError:  # missing, a folder, a symlink: nothing to serve
            return None
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):  # a folder: there is no listing
            os.close(fd)
            return None
        file = os.fdopen(fd, "rb")
        meta = self._read_meta(key)
        return StoredObject(
            file=file,
            size=st.st_size,
            mtime=st.st_mtime,
            filename=meta.get("filename") or key.rsplit("/", 1)[-1],
            content_type=meta.get("content_type") or "application/octet-stream",
        )

    def _read_meta(self, key: str) -> dict[str, str]:
        try:
            data = json.loads(self._meta_path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return (
            {k: v for k, v in data.items() if isinstance(v, str)} if isinstance(data, dict) else {}
        )

    def exists(self, key: str) -> bool:
        return self._object_path(key).is_file()

    def delete(self, key: str) -> None:
        self._object_path(key).unlink(missing_ok=True)
        self._meta_path(key).unlink(missing_ok=True)

    def delete_older_than(self, age: timedelta, *, now: datetime | None = None) -> int:
        cutoff = (now or datetime.now(UTC)).timestamp() - age.total_seconds()
        deleted = 0
        for path in _files_under(self._objects):
            if _mtime(path) < cutoff:
                key = path.relative_to(self._objects).as_posix()
                path.unlink(missing_ok=True)
                self._meta_path(key).unlink(missing_ok=True)
                deleted += 1
        # Sidecars whose object is gone, and uploads abandoned by a crash.
        for path in _files_under(self._meta):
            key = path.relative_to(self._meta).as_posix().removesuffix(".json")
            if _mtime(path) < cutoff and not (self._objects / key).exists():
                path.unlink(missing_ok=True)
        for path in _files_under(self._tmp):
            if _mtime(path) < cutoff:
                path.unlink(missing_ok=True)
        for top in (self._objects, self._meta):
            _remove_empty_dirs(top)
        if deleted:
            log.info("retention removed %d local objects older than %s", deleted, age)
        return deleted


def _files_under(top: Path) -> Iterator[Path]:
    for dirpath, _dirs, files in os.walk(top):
        for name in files:
            yield Path(dirpath, name)


def _mtime(path: Path) -> float:
    try:
        return path.lstat().st_mtime
    except FileNotFoundError:
        return float("inf")


def _remove_empty_dirs(top: Path) -> None:
    for dirpath, _dirs, _files in os.walk(top, topdown=False):
        if Path(dirpath) != top:
            with contextlib.suppress(OSError):  # not empty, or an upload just made it
                os.rmdir(dirpath)
