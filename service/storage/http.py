"""The download endpoint for the local store: signed, expiring links over plain HTTP.

    GET|HEAD /files/<key>?exp=<unix>&sig=<hex>    download (single Range supported)
    PUT      /files/<key>?exp=<unix>&sig=<hex>    upload through a presign_put link

Checks run in a fixed order so that nothing leaks to someone without a valid link: a malformed
request is 400, then a bad or expired signature 403, and only then may an unknown key be 404.
There is no listing; keys are validated before they touch the filesystem.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import socket
import socketserver
import ssl
import sys
import threading
from collections.abc import Callable, Iterator
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import parse_qsl, unquote, urlsplit

from service.storage.base import LINK_EXPIRED, UploadTooLarge, content_disposition, validate_key

if TYPE_CHECKING:
    from service.storage.local import LocalStore, StoredObject

log = logging.getLogger(__name__)

_PREFIX = "/files/"
_CHUNK = 64 * 1024
_SIG_QUERY = re.compile(r"(sig=)[^&\s'\"]*", re.IGNORECASE)
_RANGE = re.compile(r"\s*(\d*)\s*-\s*(\d*)\s*")
_CONTENT_TYPE = re.compile(r"[\x21-\x7e][\x20-\x7e]*")


def parse_listen(listen: str) -> tuple[str, int]:
    """ "host:port" or "[v6]:port" to (host, port); ValueError names the expected form."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"listen address {listen!r} is not host:port (e.g. 127.0.0.1:8780)")
    return host.strip("[]"), int(port)


class _Unsatisfiable(Exception):
    pass


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """The inclusive byte range a Range header asks for, None to send the whole object.

    Only one range is honoured; a list of ranges or a header we cannot read is ignored, as
    RFC 9110 allows. Raises _Unsatisfiable when the range lies beyond the end.
    """
    unit, sep, spec = header.partition("=")
    if not sep or unit.strip().lower() != "bytes" or "," in spec:
        return None
    m = _RANGE.fullmatch(spec)
    if not m or not (m.group(1) or m.group(2)):
        return None
    first, last = m.group(1), m.group(2)
    if not first:  # suffix: the last N bytes
        n = int(last)
        if n == 0 or size == 0:
            raise _Unsatisfiable
        return max(0, size - n), size - 1
    start = int(first)
    if last and int(last) < start:
        return None  # not a valid range: ignored
    if start >= size:
        raise _Unsatisfiable
    return start, min(int(last) if last else size - 1, size - 1)


class _LinkError(Exception):
    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _ClientGone(Exception):
    """The uploader disconnected before sending the whole body."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, and Range clients expect it
    server_version = "woxqaq-files"
    sys_version = ""
    timeout = 60  # per socket operation: a stalled client does not hold a thread for ever
    server: _Server

    # -- routing ---------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._guarded(lambda: self._download(head=False))

    def do_HEAD(self) -> None:
        self._guarded(lambda: self._download(head=True))

    def do_PUT(self) -> None:
        self._guarded(self._upload)

    def _guarded(self, handle: Callable[[], None]) -> None:
        """A fault of ours is a 500 and a log line, never a dropped connection or a traceback."""
        try:
            handle()
        except Exception:
            log.exception("download endpoint failed on %s", urlsplit(self.path).path)
            self.close_connection = True
            with contextlib.suppress(Exception):
                self._reply(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error: try again later")

    def _not_allowed(self) -> None:
        self.close_connection = True  # we do not read the body, so the connection is spent
        self._reply(
            HTTPStatus.METHOD_NOT_ALLOWED,
            "method not allowed: use GET or HEAD to download, PUT to upload",
            {"Allow": "GET, HEAD, PUT"},
        )

    do_POST = do_DELETE = do_PATCH = do_OPTIONS = _not_allowed

    def handle_expect_100(self) -> bool:
        # Decided in do_PUT once the link is checked, so a refused upload never sends its body.
        return True

    def _link(self, method: str, content_type: str = "") -> str:
        """The checked key of this request's link; _LinkError otherwise."""
        parts = urlsplit(self.path)
        if not parts.path.startswith(_PREFIX):
            raise _LinkError(HTTPStatus.NOT_FOUND, "not found")
        try:
            key = validate_key(unquote(parts.path[len(_PREFIX) :], errors="strict"))
        except (ValueError, UnicodeDecodeError):
            raise _LinkError(
                HTTPStatus.BAD_REQUEST, "malformed link: the file name is not valid"
            ) from None
        params: dict[str, str] = {}
        for name, value in parse_qsl(parts.query, keep_blank_values=True):
            if name in params:
                raise _LinkError(HTTPStatus.BAD_REQUEST, f"malformed link: {name} given twice")
            params[name] = value
        exp, sig = params.get("exp", ""), params.get("sig", "")
        if not sig or not exp.isascii() or not exp.isdigit() or len(exp) > 12:
            raise _LinkError(
                HTTPStatus.BAD_REQUEST, "malformed link: exp and sig are missing or not valid"
            )
        problem = self.server.store.verify(method, key, int(exp), sig, content_type=content_type)
        if problem is not None:
            raise _LinkError(HTTPStatus.FORBIDDEN, _explain(problem, method))
        return key

    # -- download --------------------------------------------------------------------------

    def _download(self, *, head: bool) -> None:
        try:
            key = self._link("GET")
        except _LinkError as err:
            self._reply(err.status, err.message)
            return
        obj = self.server.store.open_object(key)
        if obj is None:
            self._reply(
                HTTPStatus.NOT_FOUND,
                "no such file: it may have been removed by retention; run the export again",
            )
            return
        with obj.file:
            self._send_object(obj, head=head)

    def _send_object(self, obj: StoredObject, *, head: bool) -> None:
        etag = f'"{int(obj.mtime * 1e6):x}-{obj.size:x}"'
        last_modified = formatdate(obj.mtime, usegmt=True)
        headers = {
            "Content-Type": obj.content_type,
            "Content-Disposition": content_disposition(obj.filename),
            "Accept-Ranges": "bytes",
            "ETag": etag,
            "Last-Modified": last_modified,
            "Cache-Control": "private, no-cache",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        }
        start, end, status = 0, obj.size - 1, HTTPStatus.OK
        range_header = self.headers.get("Range")
        if_range = self.headers.get("If-Range")
        if range_header and (if_range is None or if_range.strip() in (etag, last_modified)):
            try:
                wanted = parse_range(range_header, obj.size)
            except _Unsatisfiable:
                self._reply(
                    HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE,
                    f"range not satisfiable: the file has {obj.size} bytes",
                    {"Content-Range": f"bytes */{obj.size}"},
                )
                return
            if wanted is not None:
                start, end = wanted
                status = HTTPStatus.PARTIAL_CONTENT
                headers["Content-Range"] = f"bytes {start}-{end}/{obj.size}"
        length = end - start + 1
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        if not head:
            self._stream(obj.file, start, length)

    def _stream(self, file: BinaryIO, start: int, length: int) -> None:
        file.seek(start)
        remaining = length
        try:
            while remaining > 0:
                chunk = file.read(min(_CHUNK, remaining))
                if not chunk:  # cannot happen for a published object: it is never rewritten
                    break
                self.wfile.write(chunk)
                remaining -= len(chunk)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            log.debug("client went away mid-download")
        if remaining:
            self.close_connection = True

    # -- upload ----------------------------------------------------------------------------

    def _upload(self) -> None:
        content_type = (self.headers.get("Content-Type") or "").strip()
        try:
            key = self._link("PUT", content_type)
            if not _CONTENT_TYPE.fullmatch(content_type):
                raise _LinkError(HTTPStatus.BAD_REQUEST, "Content-Type is missing or not valid")
            body = self._body_reader()
        except _LinkError as err:
            self.close_connection = True  # the body stays unread
            self._reply(err.status, err.message)
            return
        if self.headers.get("Expect", "").lower() == "100-continue":
            self.send_response_only(HTTPStatus.CONTINUE)
            self.end_headers()
        store = self.server.store
        try:
            with store.open_upload(key, content_type=content_type) as out:
                for chunk in body:
                    out.write(chunk)
        except _ClientGone:
            self.close_connection = True
            log.info("upload of %s abandoned by the client; nothing was stored", key)
            return
        except _LinkError as err:
            self.close_connection = True
            self._reply(err.status, err.message)
            return
        except UploadTooLarge as err:
            self.close_connection = True
            self._reply(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"upload refused: {err}")
            return
        except ValueError as err:  # the key clashes with an existing key's folder
            self.close_connection = True
            self._reply(HTTPStatus.CONFLICT, f"upload refused: {err}")
            return
        self._reply(HTTPStatus.OK, "")

    def _body_reader(self) -> _Body:
        limit = self.server.store.max_upload_bytes
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return _Body(self.rfile, None, limit)
        length = self.headers.get("Content-Length")
        if length is None:
            raise _LinkError(HTTPStatus.LENGTH_REQUIRED, "Content-Length required")
        if not length.strip().isdigit():
            raise _LinkError(HTTPStatus.BAD_REQUEST, "Content-Length is not a number")
        if int(length) > limit:
            raise _LinkError(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"upload is larger than {limit} bytes"
            )
        return _Body(self.rfile, int(length), limit)

    # -- responses and logs ----------------------------------------------------------------

    def _reply(
        self, status: HTTPStatus, message: str, headers: dict[str, str] | None = None
    ) -> None:
        body = f"{message}\n".encode() if message else b""
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if body and self.command != "HEAD":
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # The path only: the query holds the signature, which is as good as the file.
        path = urlsplit(self.path).path if hasattr(self, "path") else "-"
        log.info("%s %s %s %s", self.client_address[0], self.command or "-", path, code)

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s %s", self.client_address[0], _SIG_QUERY.sub(r"\1***", format % args))


class _Body:
    """The request body as chunks: Content-Length or chunked transfer coding, capped at `limit`."""

    def __init__(self, rfile: io.BufferedIOBase, length: int | None, limit: int) -> None:
        self._rfile = rfile
        self._length = length
        self._limit = limit

    def __iter__(self) -> Iterator[bytes]:
        if self._length is not None:
            yield from self._exactly(self._length)
            return
        total = 0
        while True:
            line = self._rfile.readline(1024)
            if not line.endswith(b"\n"):
                raise _ClientGone
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _LinkError(HTTPStatus.BAD_REQUEST, "malformed chunked body") from None
            if size == 0:
                while self._rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers: not used
                return
            total += size
            if total > self._limit:
                raise _LinkError(
                    HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                    f"upload is larger than {self._limit} bytes",
                )
            yield from self._exactly(size)
            if self._rfile.readline(3) not in (b"\r\n", b"\n"):
                raise _LinkError(HTTPStatus.BAD_REQUEST, "malformed chunked body")

    def _exactly(self, n: int) -> Iterator[bytes]:
        while n > 0:
            try:
                chunk = self._rfile.read(min(_CHUNK, n))
            except (ConnectionResetError, TimeoutError):
                raise _ClientGone from None
            if not chunk:
                raise _ClientGone
            n -= len(chunk)
            yield chunk


def _explain(problem: str, method: str) -> str:
    if problem == LINK_EXPIRED:
        return f"{problem}: ask for a new link"
    if method == "PUT":
        return (
            f"{problem}: the link was altered, or the upload's Content-Type differs from the one "
            "the link was made for"
        )
    return f"{problem}: the link was altered; copy it again in full"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, address: tuple[str, int], store: LocalStore, tls: ssl.SSLContext | None = None
    ) -> None:
        self.store = store
        self.tls = tls
        super().__init__(address, _Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, addr = super().get_request()
        if self.tls is None:
            return conn, addr
        # The handshake happens on the first read, in the request's own thread: a client
        # that stalls it holds up no one else.
        return self.tls.wrap_socket(conn, server_side=True, do_handshake_on_connect=False), addr

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that fails the TLS handshake (plain HTTP, an untrusted certificate) is
        its own problem: one debug line, not a traceback on stderr."""
        if isinstance(sys.exc_info()[1], ssl.SSLError):
            log.debug("TLS handshake with %s failed: %s", client_address, sys.exc_info()[1])
            return
        super().handle_error(request, client_address)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN, a DNS lookup we do not need.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)


class _Server6(_Server):
    address_family = socket.AF_INET6


class DownloadServer:
    """The endpoint in a daemon thread; binds on construction so `url` is known at once."""

    def __init__(
        self,
        store: LocalStore,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        cls = _Server6 if ":" in host else _Server
        self._httpd = cls((host, port), store, tls)
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._httpd.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        if host in ("", "0.0.0.0"):
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        scheme = "https" if self._httpd.tls else "http"
        return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the download endpoint is already running")
        # A short poll keeps shutdown() quick; the idle cost is a wake-up every 0.1 s.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.1,), name="woxqaq-files", daemon=True
        )
        self._thread.start()
        log.info("download endpoint listening on %s", self.url)

    def shutdown(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=10)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> DownloadServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
