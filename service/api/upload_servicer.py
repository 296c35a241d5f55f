"""woxqaq.v1.UploadService: presigned PUT links for new objects in the object store."""

from __future__ import annotations

import grpc

from service.api import convert
from service.api.errors import maps_errors
from service.app.uploads import Uploads
from woxqaq.v1 import upload_service_pb2 as pb
from woxqaq.v1 import upload_service_pb2_grpc as pb_grpc


class UploadServicer(pb_grpc.UploadServiceServicer):
    def __init__(self, uploads: Uploads) -> None:
        self.uploads = uploads

    @maps_errors
    def PreSign(
        self, request: pb.PreSignRequest, context: grpc.ServicerContext
    ) -> pb.PreSignResponse:
        link = self.uploads.presign(request.filename, request.content_type)
        return pb.PreSignResponse(
            url=link.url, object_key=link.object_key, expire_time=convert.timestamp(link.expires_at)
        )
