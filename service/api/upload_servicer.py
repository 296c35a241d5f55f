"""woxqaq.v1.UploadService: presigned PUT links for new objects in the object store."""

from __future__ import annotations

import uuid

import grpc

from service.api import convert
from service.api.errors import maps_errors
from service.app.runs import safe_name
from service.config import Config
from service.domain.errors import InvalidRequest
from service.storage.base import ObjectStore
from woxqaq.v1 import upload_service_pb2 as pb
from woxqaq.v1 import upload_service_pb2_grpc as pb_grpc


class UploadServicer(pb_grpc.UploadServiceServicer):
    def __init__(self, config: Config, objects: ObjectStore) -> None:
        self.config = config
        self.objects = objects

    @maps_errors
    def PreSign(
        self, request: pb.PreSignRequest, context: grpc.ServicerContext
    ) -> pb.PreSignResponse:
        if len(request.filename) > 255 or len(request.content_type) > 255:
            raise InvalidRequest("filename and content_type are limited to 255 characters")
        stem, dot, ext = request.filename.strip().rpartition(".")
        name = (
            f"{safe_name(stem)}.{safe_name(ext, 10)}"
            if dot and stem
            else safe_name(request.filename)
        )
        content_type = request.content_type.strip() or "application/octet-stream"
        # It becomes a signed header: the object stores take printable ASCII only.
        if not (content_type.isascii() and content_type.isprintable()):
            raise InvalidRequest(
                f"content_type {content_type[:40]!r} is not a media type: use printable "
                "ASCII such as text/csv"
            )
        key = f"uploads/{uuid.uuid4().hex}/{name}"
        link = self.objects.presign_put(
            key,
            content_type=content_type,
            expires_in=self.config.storage.link_ttl_s,
        )
        return pb.PreSignResponse(
            url=link.url, object_key=key, expire_time=convert.timestamp(link.expires_at)
        )
