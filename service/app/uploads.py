"""Uploads: a presigned PUT link for a new object, where a file to import is put first."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from service.app.runs import safe_name
from service.domain.errors import InvalidRequest
from service.storage.base import ObjectStore

MAX_NAME_CHARS = 255


@dataclass(frozen=True)
class UploadLink:
    object_key: str
    url: str
    expires_at: datetime


class Uploads:
    def __init__(self, objects: ObjectStore, *, link_ttl_s: int) -> None:
        self.objects = objects
        self.link_ttl_s = link_ttl_s

    def presign(self, filename: str, content_type: str) -> UploadLink:
        """A link to PUT one file under a key of its own, named after `filename`."""
        if len(filename) > MAX_NAME_CHARS or len(content_type) > MAX_NAME_CHARS:
            raise InvalidRequest("filename and content_type are limited to 255 characters")
        stem, dot, ext = filename.strip().rpartition(".")
        name = f"{safe_name(stem)}.{safe_name(ext, 10)}" if dot and stem else safe_name(filename)
        content_type = content_type.strip() or "application/octet-stream"
        # It becomes a signed header: the object stores take printable ASCII only.
        if not (content_type.isascii() and content_type.isprintable()):
            raise InvalidRequest(
                f"content_type {content_type[:40]!r} is not a media type: use printable "
                "ASCII such as text/csv"
            )
        key = f"uploads/{uuid.uuid4().hex}/{name}"
        link = self.objects.presign_put(key, content_type=content_type, expires_in=self.link_ttl_s)
        return UploadLink(object_key=key, url=link.url, expires_at=link.expires_at)
