"""Amazon S3, or any S3-compatible store (MinIO, Ceph, R2...) through boto3.

Credentials come from boto3's default chain (environment, shared config, instance role) and
never appear in a message we raise or log. Every failure of the store itself surfaces as
`Unavailable` with one line naming the bucket and endpoint.
"""

from __future__ import annotations

import io
import logging
import mimetypes
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO, cast
from urllib.parse import urlsplit, urlunsplit

import boto3
from boto3.exceptions import Boto3Error
from boto3.s3.transfer import TransferConfig
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from service.domain.errors import Unavailable
from service.storage.base import (
    SignedUrl,
    StreamWriter,
    content_disposition,
    missing_object,
    validate_expires_in,
    validate_key,
)

log = logging.getLogger(__name__)

MIB = 1024 * 1024
PART_SIZE = 8 * MIB
PRESIGN_MAX_S = 7 * 24 * 3600  # SigV4 presigned links live at most a week
_DELETE_BATCH = 1000  # S3's limit per DeleteObjects call

_HINTS = {
    "NoSuchBucket": "create the bucket or fix storage.s3.bucket",
    "AccessDenied": "grant the service's credentials s3:GetObject, PutObject, DeleteObject and "
    "ListBucket on the bucket",
    "InvalidAccessKeyId": "check the AWS credentials the service runs with",
    "SignatureDoesNotMatch": "check the AWS credentials the service runs with",
    "ExpiredToken": "refresh the AWS credentials the service runs with",
    "PermanentRedirect": "set storage.s3.region to the bucket's region",
    "AuthorizationHeaderMalformed": "set storage.s3.region to the bucket's region",
}


def _redact_endpoint(url: str) -> str:
    """The endpoint without any user:password@ part."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


class _MultipartWriter(StreamWriter):
    """Buffers one part at a time; starts a multipart upload only once a part is full.

    A small object therefore costs one PutObject and never leaves an upload to abort.
    """

    def __init__(self, store: S3Store, key: str, extra: dict[str, Any]) -> None:
        super().__init__()
        self._store = store
        self._key = key
        self._extra = extra
        self._buffer = bytearray()
        self._part_size = PART_SIZE
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []

    def _write(self, data: memoryview) -> None:
        self._buffer += data
        while len(self._buffer) >= self._part_size:
            self._upload_part(bytes(self._buffer[: self._part_size]))
            del self._buffer[: self._part_size]

    def _upload_part(self, body: bytes) -> None:
        s3, bucket = self._store._client, self._store.bucket
        with self._store._errors("start a multipart upload of", self._key):
            if self._upload_id is None:
                created = s3.create_multipart_upload(Bucket=bucket, Key=self._key, **self._extra)
                self._upload_id = created["UploadId"]
            number = len(self._parts) + 1
            part = s3.upload_part(
                Bucket=bucket, Key=self._key, UploadId=self._upload_id, PartNumber=number, Body=body
            )
        self._parts.append({"ETag": part["ETag"], "PartNumber": number})
        # Parts may differ in size: grow them so that 10,000 parts still hold a very large file.
        if number % 1000 == 0:
            self._part_size *= 2

    def finish(self) -> None:
        s3, bucket = self._store._client, self._store.bucket
        if self._upload_id is None:
            with self._store._errors("upload", self._key):
                s3.put_object(Bucket=bucket, Key=self._key, Body=bytes(self._buffer), **self._extra)
            return
        if self._buffer or not self._parts:
            self._upload_part(bytes(self._buffer))
            self._buffer.clear()
        with self._store._errors("complete the upload of", self._key):
            s3.complete_multipart_upload(
                Bucket=bucket,
                Key=self._key,
                UploadId=self._upload_id,
                MultipartUpload={"Parts": self._parts},
            )

    def abort(self) -> None:
        self._buffer.clear()
        if self._upload_id is None:
            return
        try:
            self._store._client.abort_multipart_upload(
                Bucket=self._store.bucket, Key=self._key, UploadId=self._upload_id
            )
        except (BotoCoreError, ClientError) as exc:
            # Retention's sweep of stale uploads will remove it; the original error matters more.
            log.warning(
                "could not abort the multipart upload of %s: %s", self._key, type(exc).__name__
            )


class _BodyReader(io.RawIOBase):
    """A botocore StreamingBody as a readable stream (read errors become Unavailable)."""

    def __init__(self, body: Any) -> None:
        super().__init__()
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        try:
            data = self._body.read(len(view))
        except (BotoCoreError, OSError) as exc:
            raise Unavailable(f"reading from S3 failed: {type(exc).__name__}") from None
        view[: len(data)] = data
        return len(data)


class S3Store:
    def __init__(
        self,
        *,
        bucket: str,
        prefix: str = "",
        region: str = "",
        endpoint_url: str = "",
        client: Any | None = None,
    ) -> None:
        if not bucket:
            raise ValueError("S3 bucket name is empty: set storage.s3.bucket")
        self.bucket = bucket
        prefix = prefix.lstrip("/")
        self.prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"
        self._where = f"S3 bucket {bucket!r}" + (
            f" at {_redact_endpoint(endpoint_url)}" if endpoint_url else ""
        )
        if client is None:
            boto_config = BotoConfig(
                signature_version="s3v4",
                # S3-compatible stores generally want path-style addressing and skip the newer
                # default checksums that some of them reject.
                s3={"addressing_style": "path" if endpoint_url else "auto"},
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                retries={"max_attempts": 3, "mode": "standard"},
                connect_timeout=5,
                read_timeout=60,
            )
            client = boto3.session.Session().client(
                "s3",
                region_name=region or None,
                endpoint_url=endpoint_url or None,
                config=boto_config,
            )
        self._client = client
        self._transfer = TransferConfig(
            multipart_threshold=PART_SIZE, multipart_chunksize=PART_SIZE
        )

    def _key(self, key: str) -> str:
        return self.prefix + validate_key(key)

    @contextmanager
    def _errors(self, action: str, key: str | None = None) -> Iterator[None]:
        """Turn boto failures into one-line Unavailable errors without credentials in them."""
        what = f"object {key} in {self._where}" if key else self._where
        try:
            yield
        except (ClientError, Boto3Error) as exc:
            # upload_file wraps the ClientError it met in S3UploadFailedError.
            cause = exc if isinstance(exc, ClientError) else exc.__context__
            error = cause.response.get("Error", {}) if isinstance(cause, ClientError) else {}
            code = str(error.get("Code", type(exc).__name__))
            hint = _HINTS.get(code, "check the bucket, endpoint and the service's permissions")
            raise Unavailable(f"could not {action} {what}: {code}; {hint}") from None
        except BotoCoreError as exc:
            # botocore's messages name endpoints and config keys, never secret values.
            reason = type(exc).__name__
            raise Unavailable(
                f"could not {action} {what}: {reason}; check that the endpoint is reachable and "
                "credentials are configured"
            ) from None

    @staticmethod
    def _extra_args(filename: str, content_type: str) -> dict[str, Any]:
        # Stored on the object too, so a download without our link still gets the real name.
        return {"ContentType": content_type, "ContentDisposition": content_disposition(filename)}

    def put_file(self, key: str, path: Path, *, filename: str, content_type: str) -> int:
        full = self._key(key)
        size = Path(path).stat().st_size
        with self._errors("upload", key):
            self._client.upload_file(
                str(path),
                self.bucket,
                full,
                ExtraArgs=self._extra_args(filename, content_type),
                Config=self._transfer,
            )
        return size

    def open_writer(
        self, key: str, *, filename: str, content_type: str
    ) -> AbstractContextManager[BinaryIO]:
        return self._writer(self._key(key), filename, content_type)

    @contextmanager
    def _writer(self, full_key: str, filename: str, content_type: str) -> Iterator[BinaryIO]:
        writer = _MultipartWriter(self, full_key, self._extra_args(filename, content_type))
        try:
            try:
                yield cast(BinaryIO, writer)
            finally:
                writer.close()
            writer.finish()
        except BaseException:
            writer.abort()
            raise

    def presign_get(self, key: str, *, filename: str, expires_in: int) -> SignedUrl:
        validate_expires_in(expires_in, maximum=PRESIGN_MAX_S)
        content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        return self._presign(
            "get_object",
            {
                "Key": self._key(key),
                "ResponseContentDisposition": content_disposition(filename),
                "ResponseContentType": content_type,
            },
            expires_in,
        )

    def presign_put(self, key: str, *, content_type: str, expires_in: int) -> SignedUrl:
        validate_expires_in(expires_in, maximum=PRESIGN_MAX_S)
        return self._presign(
            "put_object", {"Key": self._key(key), "ContentType": content_type}, expires_in
        )

    def _presign(self, method: str, params: dict[str, str], expires_in: int) -> SignedUrl:
        # Taken before signing and rounded down, so the link never outlives what we report.
        now = datetime.now(UTC).replace(microsecond=0)
        with self._errors("sign a link to", params["Key"]):
            url = self._client.generate_presigned_url(
                method, Params={"Bucket": self.bucket, **params}, ExpiresIn=expires_in
            )
        return SignedUrl(url=url, expires_at=now + timedelta(seconds=expires_in))

    @contextmanager
    def open_reader(self, key: str) -> Iterator[BinaryIO]:
        full = self._key(key)
        with self._errors("read", key):
            try:
                body = self._client.get_object(Bucket=self.bucket, Key=full)["Body"]
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                    raise missing_object(key) from None
                raise
        try:
            yield cast(BinaryIO, _BodyReader(body))
        finally:
            body.close()

    def exists(self, key: str) -> bool:
        full = self._key(key)
        with self._errors("look up", key):
            try:
                self._client.head_object(Bucket=self.bucket, Key=full)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                    return False
                raise
        return True

    def delete(self, key: str) -> None:
        full = self._key(key)
        with self._errors("delete", key):
            self._client.delete_object(Bucket=self.bucket, Key=full)

    def delete_older_than(self, age: timedelta, *, now: datetime | None = None) -> int:
        cutoff = (now or datetime.now(UTC)) - age
        deleted = 0
        batch: list[dict[str, str]] = []
        with self._errors("apply retention to"):
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix
            )
            for page in pages:
                for obj in page.get("Contents", []):
                    if obj["LastModified"] < cutoff:
                        batch.append({"Key": obj["Key"]})
                    if len(batch) == _DELETE_BATCH:
                        deleted += self._delete_batch(batch)
                        batch = []
            if batch:
                deleted += self._delete_batch(batch)
            self._abort_stale_uploads(cutoff)
        if deleted:
            log.info(
                "retention removed %d objects older than %s from %s", deleted, age, self._where
            )
        return deleted

    def _delete_batch(self, batch: list[dict[str, str]]) -> int:
        result = self._client.delete_objects(
            Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
        )
        errors = result.get("Errors", [])
        for err in errors[:5]:
            log.warning("retention could not delete %s: %s", err.get("Key"), err.get("Code"))
        return len(batch) - len(errors)

    def _abort_stale_uploads(self, cutoff: datetime) -> None:
        # Uploads a crash left unfinished cost storage without ever showing up as objects.
        pages = self._client.get_paginator("list_multipart_uploads").paginate(
            Bucket=self.bucket, Prefix=self.prefix
        )
        for page in pages:
            for upload in page.get("Uploads", []):
                if upload["Initiated"] < cutoff:
                    self._client.abort_multipart_upload(
                        Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                    )

    def close(self) -> None:
        self._client.close()
