"""The local store and its download endpoint, over real HTTP on a loopback port."""

from __future__ import annotations

import http.client
import logging
import os
import socket
import stat
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

import pytest
import requests

from service.config import parse_config
from service.storage import LocalStore, ObjectStore, build_object_store
from service.storage.base import content_disposition

KEY = "tasks/42/runs/7/orders.csv"
DATA = b"id,amount\n" + b"".join(f"{i},{i * 3}\n".encode() for i in range(2000))


def _put(store: LocalStore, tmp_path: Path, key: str = KEY, data: bytes = DATA, **kw: str) -> int:
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    return store.put_file(
        key,
        src,
        filename=kw.get("filename", "orders.csv"),
        content_type=kw.get("content_type", "text/csv"),
    )


def _raw(url: str, method: str = "GET", path: str | None = None) -> tuple[int, bytes]:
    """Send the request line exactly as given: no client-side normalisation of `..`."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        target = path if path is not None else f"{parts.path}?{parts.query}"
        conn.putrequest(method, target, skip_accept_encoding=True)
        conn.endheaders()
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def _raw_line(url: str, request_line: bytes) -> bytes:
    """Send one request whose first line may be anything at all; returns the raw response."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(request_line + b"\r\nHost: x\r\nConnection: close\r\n\r\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def _with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query.update(changes)
    return parts._replace(query="&".join(f"{k}={v}" for k, v in query.items())).geturl()


def test_local_store_satisfies_the_interface(local_store: LocalStore) -> None:
    assert isinstance(local_store, ObjectStore)


def test_signed_link_downloads_the_bytes_with_the_real_filename(
    local_store: LocalStore, tmp_path: Path
) -> None:
    name = "订单 2024年.csv"
    assert _put(local_store, tmp_path, filename=name) == len(DATA)
    link = local_store.presign_get(KEY, filename=name, expires_in=600)

    resp = requests.get(link.url, timeout=10)

    assert resp.status_code == 200
    assert resp.content == DATA
    assert resp.headers["Content-Length"] == str(len(DATA))
    assert resp.headers["Content-Type"] == "text/csv"
    disposition = resp.headers["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert f"filename*=UTF-8''{quote(name)}" in disposition
    assert unquote(disposition.split("UTF-8''", 1)[1]) == name
    assert resp.headers["Accept-Ranges"] == "bytes"
    assert abs((link.expires_at - datetime.now(UTC)).total_seconds() - 600) < 5


def test_head_sends_the_headers_without_a_body(local_store: LocalStore, tmp_path: Path) -> None:
    _put(local_store, tmp_path)
    link = local_store.presign_get(KEY, filename="orders.csv", expires_in=60)

    resp = requests.head(link.url, timeout=10)

    assert resp.status_code == 200
    assert resp.headers["Content-Length"] == str(len(DATA))
    assert resp.content == b""


def test_expired_link_is_refused_as_expired(local_store: LocalStore, tmp_path: Path) -> None:
    _put(local_store, tmp_path)
    link = local_store.presign_get(KEY, filename="orders.csv", expires_in=1)
    time.sleep(2)

    resp = requests.get(link.url, timeout=10)

    assert resp.status_code == 403
    assert "link expired" in resp.text
    assert DATA[:20] not in resp.content


@pytest.mark.parametrize("tamper", ["sig", "exp", "key", "method"])
def test_tampered_link_is_refused_as_invalid(
    local_store: LocalStore, tmp_path: Path, tamper: str
) -> None:
    _put(local_store, tmp_path)
    _put(local_store, tmp_path, key="tasks/43/runs/1/other.csv", data=b"secret,other\n")
    url = local_store.presign_get(KEY, filename="orders.csv", expires_in=60).url
    query = parse_qs(urlsplit(url).query)
    if tamper == "sig":
        sig = query["sig"][0]
        url = _with_query(url, sig=("0" if sig[0] != "0" else "1") + sig[1:])
    elif tamper == "exp":
        url = _with_query(url, exp=str(int(query["exp"][0]) + 3600))
    elif tamper == "key":
        url = url.replace("tasks/42/runs/7/orders.csv", "tasks/43/runs/1/other.csv")
    else:  # a download link used to upload
        resp = requests.put(
            url, data=b"overwrite", headers={"Content-Type": "text/csv"}, timeout=10
        )
        assert resp.status_code == 403
        assert "invalid signature" in resp.text
        assert requests.get(url, timeout=10).content == DATA
        return

    resp = requests.get(url, timeout=10)

    assert resp.status_code == 403
    assert "invalid signature" in resp.text
    assert b"secret" not in resp.content and DATA[:20] not in resp.content


def test_unknown_key_with_a_valid_signature_is_404(local_store: LocalStore) -> None:
    link = local_store.presign_get("tasks/1/runs/1/missing.csv", filename="x.csv", expires_in=60)

    resp = requests.get(link.url, timeout=10)

    assert resp.status_code == 404


@pytest.mark.parametrize(
    "query", ["", "exp=99999999999", "sig=abc", "exp=soon&sig=abc", "exp=1&exp=2&sig=abc"]
)
def test_link_without_a_readable_expiry_and_signature_is_400(
    local_store: LocalStore, tmp_path: Path, query: str
) -> None:
    _put(local_store, tmp_path)
    status, body = _raw(local_store.base_url, path=f"/files/{KEY}?{query}")
    assert status == 400
    assert DATA[:20] not in body


@pytest.mark.parametrize(
    "path",
    [
        "/files/../signing.key",
        "/files/%2e%2e/signing.key",
        "/files/%2E%2E%2Fsigning.key",
        "/files/..%2fsigning.key",
        "/files/..%5csigning.key",
        "/files/%252e%252e/signing.key",
        "/files/tasks/../../signing.key",
        "/files//etc/passwd",
        "/files/%2fetc%2fpasswd",
        "/files/tasks%00/x",
        "/../signing.key",
        "/signing.key",
        "/files/",
        "/files",
        "/",
        "/files/tasks/",
    ],
)
def test_traversal_attempts_are_refused_and_never_leak(
    local_store: LocalStore, tmp_path: Path, path: str
) -> None:
    _put(local_store, tmp_path)
    secret = (tmp_path / "signing.key").read_bytes()
    # A genuine signature for a real key rides along, to show it opens nothing but that key.
    query = urlsplit(local_store.presign_get(KEY, filename="o.csv", expires_in=60).url).query

    for target in (path, f"{path}?{query}"):
        status, body = _raw(local_store.base_url, path=target)
        assert status in (400, 403, 404), target
        assert secret not in body and secret.hex().encode() not in body
        assert DATA[:20] not in body
        assert b"orders.csv" not in body  # no listing


def test_symlink_planted_in_the_store_does_not_lead_outside(
    local_store: LocalStore, tmp_path: Path
) -> None:
    (local_store.root / "objects" / "planted.txt").symlink_to(tmp_path / "signing.key")
    link = local_store.presign_get("planted.txt", filename="planted.txt", expires_in=60)

    resp = requests.get(link.url, timeout=10)

    assert resp.status_code == 404
    assert (tmp_path / "signing.key").read_bytes() not in resp.content


def test_a_folder_is_not_listed(local_store: LocalStore, tmp_path: Path) -> None:
    _put(local_store, tmp_path)
    link = local_store.presign_get("tasks/42/runs/7", filename="x", expires_in=60)

    resp = requests.get(link.url, timeout=10)

    assert resp.status_code == 404
    assert b"orders" not in resp.content


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-9", 0, 9),
        ("bytes=100-", 100, None),
        ("bytes=-25", -25, None),
        ("bytes=5-10", 5, 10),
    ],
)
def test_range_request_gets_206_with_that_slice(
    local_store: LocalStore, tmp_path: Path, header: str, start: int, end: int | None
) -> None:
    _put(local_store, tmp_path)
    url = local_store.presign_get(KEY, filename="orders.csv", expires_in=60).url

    resp = requests.get(url, headers={"Range": header}, timeout=10)

    expected = DATA[start : None if end is None else end + 1]
    first = start if start >= 0 else len(DATA) + start
    assert resp.status_code == 206
    assert resp.content == expected
    assert resp.headers["Content-Length"] == str(len(expected))
    last = first + len(expected) - 1
    assert resp.headers["Content-Range"] == f"bytes {first}-{last}/{len(DATA)}"


def test_range_beyond_the_end_is_416(local_store: LocalStore, tmp_path: Path) -> None:
    _put(local_store, tmp_path)
    url = local_store.presign_get(KEY, filename="orders.csv", expires_in=60).url

    resp = requests.get(url, headers={"Range": f"bytes={len(DATA)}-"}, timeout=10)

    assert resp.status_code == 416
    assert resp.headers["Content-Range"] == f"bytes */{len(DATA)}"


def test_several_ranges_or_a_stale_if_range_get_the_whole_file(
    local_store: LocalStore, tmp_path: Path
) -> None:
    _put(local_store, tmp_path)
    url = local_store.presign_get(KEY, filename="orders.csv", expires_in=60).url

    several = requests.get(url, headers={"Range": "bytes=0-1,5-6"}, timeout=10)
    stale = requests.get(url, headers={"Range": "bytes=0-1", "If-Range": '"old"'}, timeout=10)
    current = requests.get(
        url, headers={"Range": "bytes=0-1", "If-Range": several.headers["ETag"]}, timeout=10
    )

    assert (several.status_code, several.content) == (200, DATA)
    assert (stale.status_code, stale.content) == (200, DATA)
    assert (current.status_code, current.content) == (206, DATA[:2])


def test_presigned_put_uploads_a_file_that_then_downloads(local_store: LocalStore) -> None:
    key = "uploads/2024/报表.xlsx"
    ct = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    link = local_store.presign_put(key, content_type=ct, expires_in=60)
    payload = os.urandom(300_000)

    resp = requests.put(link.url, data=payload, headers={"Content-Type": ct}, timeout=10)

    assert resp.status_code == 200
    assert local_store.exists(key)
    got = requests.get(local_store.presign_get(key, filename="报表.xlsx", expires_in=60).url)
    assert got.content == payload
    assert got.headers["Content-Type"] == ct
    assert f"filename*=UTF-8''{quote('报表.xlsx')}" in got.headers["Content-Disposition"]


def test_presigned_put_accepts_a_chunked_body(local_store: LocalStore) -> None:
    key = "uploads/chunked.bin"
    link = local_store.presign_put(key, content_type="application/octet-stream", expires_in=60)
    parts = [os.urandom(70_000) for _ in range(5)]

    resp = requests.put(
        link.url,
        data=iter(parts),  # a generator body goes out with Transfer-Encoding: chunked
        headers={"Content-Type": "application/octet-stream"},
        timeout=10,
    )

    assert resp.status_code == 200
    got = requests.get(local_store.presign_get(key, filename="c.bin", expires_in=60).url)
    assert got.content == b"".join(parts)


def test_presigned_put_with_another_content_type_or_expired_is_refused(
    local_store: LocalStore,
) -> None:
    key = "uploads/a.csv"
    link = local_store.presign_put(key, content_type="text/csv", expires_in=1)

    wrong = requests.put(link.url, data=b"x", headers={"Content-Type": "text/html"}, timeout=10)
    time.sleep(2)
    late = requests.put(link.url, data=b"x", headers={"Content-Type": "text/csv"}, timeout=10)

    assert wrong.status_code == 403 and "invalid signature" in wrong.text
    assert late.status_code == 403 and "link expired" in late.text
    assert not local_store.exists(key)


def test_upload_over_the_size_limit_is_refused_and_not_stored(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "files", signing_key=b"k" * 32, max_upload_bytes=1000)
    store.serve("127.0.0.1", 0)
    try:
        link = store.presign_put("u/big.bin", content_type="text/plain", expires_in=60)
        hdrs = {"Content-Type": "text/plain"}
        declared = requests.put(link.url, data=b"x" * 1001, headers=hdrs, timeout=10)
        chunked = requests.put(link.url, data=iter([b"x" * 600] * 2), headers=hdrs, timeout=10)
        assert declared.status_code == 413
        assert chunked.status_code == 413
        assert not store.exists("u/big.bin")
        assert list((tmp_path / "files" / "tmp").iterdir()) == []
    finally:
        store.close()


def test_an_exception_in_the_writer_publishes_nothing(
    local_store: LocalStore, tmp_path: Path
) -> None:
    with (
        pytest.raises(RuntimeError, match="query failed"),
        local_store.open_writer(KEY, filename="orders.csv", content_type="text/csv") as out,
    ):
        out.write(DATA)
        raise RuntimeError("query failed")

    assert not local_store.exists(KEY)
    assert list((local_store.root / "tmp").iterdir()) == []
    assert not (local_store.root / "objects" / "tasks").exists()


def test_writer_publishes_only_when_the_block_ends(local_store: LocalStore) -> None:
    with local_store.open_writer(KEY, filename="orders.csv", content_type="text/csv") as out:
        out.write(DATA[:100])
        assert not local_store.exists(KEY)
        out.write(DATA[100:])
        assert out.tell() == len(DATA)
        assert not out.seekable()

    assert local_store.exists(KEY)
    resp = requests.get(local_store.presign_get(KEY, filename="o.csv", expires_in=60).url)
    assert resp.content == DATA


def test_overwrite_replaces_the_object_whole(local_store: LocalStore, tmp_path: Path) -> None:
    _put(local_store, tmp_path, data=b"first version\n")
    _put(local_store, tmp_path, data=b"second\n", filename="second.csv")

    resp = requests.get(local_store.presign_get(KEY, filename="x", expires_in=60).url)

    assert resp.content == b"second\n"
    assert "second.csv" in resp.headers["Content-Disposition"]


def test_retention_deletes_old_objects_with_their_sidecars(
    local_store: LocalStore, tmp_path: Path
) -> None:
    old_key, new_key = "tasks/1/runs/1/old.csv", "tasks/2/runs/1/new.csv"
    _put(local_store, tmp_path, key=old_key)
    _put(local_store, tmp_path, key=new_key)
    ten_days_ago = time.time() - 10 * 86400
    os.utime(local_store.root / "objects" / old_key, (ten_days_ago, ten_days_ago))

    assert local_store.delete_older_than(timedelta(days=7)) == 1

    assert not local_store.exists(old_key)
    assert local_store.exists(new_key)
    assert not (local_store.root / "meta" / "tasks" / "1").exists()
    assert not (local_store.root / "objects" / "tasks" / "1").exists()
    assert (local_store.root / "meta" / (new_key + ".json")).exists()
    # With the clock a month ahead, the rest goes too.
    assert (
        local_store.delete_older_than(timedelta(days=7), now=datetime.now(UTC) + timedelta(30)) == 1
    )
    assert list((local_store.root / "meta").iterdir()) == []


def test_delete_removes_the_object_and_is_quiet_when_missing(
    local_store: LocalStore, tmp_path: Path
) -> None:
    _put(local_store, tmp_path)
    local_store.delete(KEY)
    local_store.delete(KEY)
    assert not local_store.exists(KEY)
    assert not (local_store.root / "meta" / (KEY + ".json")).exists()


@pytest.mark.parametrize(
    "key",
    ["", "/abs/key", "../up", "tasks/../../x", "a\\b", "nul\x00byte", "a//b", "./a", "a/", "t\nx"],
)
def test_a_bad_key_is_a_value_error(local_store: LocalStore, tmp_path: Path, key: str) -> None:
    src = tmp_path / "f"
    src.write_bytes(b"x")
    with pytest.raises(ValueError):
        local_store.put_file(key, src, filename="f", content_type="text/plain")
    with pytest.raises(ValueError):
        local_store.presign_get(key, filename="f", expires_in=60)
    with pytest.raises(ValueError):
        local_store.presign_put(key, content_type="text/plain", expires_in=60)
    with pytest.raises(ValueError), local_store.open_writer(key, filename="f", content_type="x/y"):
        pass


def test_signing_key_is_generated_once_private_and_reused(tmp_path: Path) -> None:
    config = parse_config({"server": {"data_dir": str(tmp_path)}})
    first = build_object_store(config)
    key_file = tmp_path / "signing.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    url = first.presign_get(KEY, filename="o.csv", expires_in=60).url

    again = build_object_store(config)
    assert isinstance(again, LocalStore)
    q = parse_qs(urlsplit(url).query)
    assert again.verify("GET", KEY, int(q["exp"][0]), q["sig"][0]) is None
    other = LocalStore(tmp_path / "other", signing_key=os.urandom(32))
    assert other.verify("GET", KEY, int(q["exp"][0]), q["sig"][0]) == "invalid signature"


def test_public_url_is_where_links_point(tmp_path: Path) -> None:
    config = parse_config(
        {
            "server": {"data_dir": str(tmp_path)},
            "storage": {"local": {"public_url": "https://files.example.com/woxqaq/"}},
        }
    )
    store = build_object_store(config)
    url = store.presign_get("tasks/1/runs/2/a b.csv", filename="a b.csv", expires_in=60).url
    assert url.startswith("https://files.example.com/woxqaq/files/tasks/1/runs/2/a%20b.csv?exp=")


@pytest.fixture
def access_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    with caplog.at_level(logging.DEBUG, logger="service.storage"):
        yield caplog


def test_access_log_never_shows_the_signature(
    local_store: LocalStore, tmp_path: Path, access_log: pytest.LogCaptureFixture
) -> None:
    _put(local_store, tmp_path)
    url = local_store.presign_get(KEY, filename="o.csv", expires_in=60).url
    sig = parse_qs(urlsplit(url).query)["sig"][0]

    requests.get(url, timeout=10)
    _raw_line(local_store.base_url, f"GET /files/{KEY}?exp=1&sig={sig} HTTP/9.9 junk".encode())
    requests.get(_with_query(url, sig="f" * 64), timeout=10)

    ours = "\n".join(
        r.getMessage() for r in access_log.records if r.name.startswith("service.storage")
    )
    assert "/files/tasks/42/runs/7/orders.csv" in ours
    assert sig not in ours
    assert "f" * 64 not in ours


def test_content_disposition_has_an_ascii_fallback_and_the_utf8_name() -> None:
    header = content_disposition('季度 "报表"\r\n.csv')
    assert header.isascii()
    assert "\r" not in header and "\n" not in header
    fallback = header.split('filename="', 1)[1].split('"', 1)[0]
    assert fallback.endswith(".csv") and '"' not in fallback
    assert unquote(header.split("UTF-8''", 1)[1]) == '季度 "报表".csv'


def test_upload_expecting_100_continue_is_told_before_sending_the_body(
    local_store: LocalStore,
) -> None:
    good = urlsplit(
        local_store.presign_put("u/e.txt", content_type="text/plain", expires_in=60).url
    )
    parts = urlsplit(local_store.base_url)

    def head(target: str) -> bytes:
        return (
            f"PUT {target} HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
            "Content-Length: 5\r\nExpect: 100-continue\r\n\r\n"
        ).encode()

    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(head(f"{good.path}?{good.query}"))
        assert sock.recv(1024).startswith(b"HTTP/1.1 100")
        sock.sendall(b"hello")
        assert sock.recv(1024).startswith(b"HTTP/1.1 200")
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(head(f"{good.path}?{_with_query(good.geturl(), sig='0' * 64).split('?')[1]}"))
        assert sock.recv(1024).startswith(b"HTTP/1.1 403")  # refused without the body

    assert (
        requests.get(local_store.presign_get("u/e.txt", filename="e", expires_in=60).url).content
        == b"hello"
    )


def test_a_key_that_needs_another_key_as_a_folder_is_refused(
    local_store: LocalStore, tmp_path: Path
) -> None:
    _put(local_store, tmp_path, key="tasks/5/report")
    with pytest.raises(ValueError, match="clashes"):
        _put(local_store, tmp_path, key="tasks/5/report/part.csv")
    _put(local_store, tmp_path, key="tasks/6/runs/1/a.csv")
    with pytest.raises(ValueError, match="clashes"):
        _put(local_store, tmp_path, key="tasks/6/runs")

    assert list((local_store.root / "tmp").iterdir()) == []
    assert not (local_store.root / "meta" / "tasks/5/report/part.csv.json").exists()
    assert not (local_store.root / "meta" / "tasks/6/runs.json").exists()
    assert local_store.exists("tasks/5/report") and local_store.exists("tasks/6/runs/1/a.csv")
