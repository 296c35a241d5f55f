"""Object storage for export results: one interface, an S3 and a local backend.

`build_object_store(config)` picks the backend; the local one serves signed links through
`LocalStore.serve()`.
"""

from service.storage.base import ObjectStore, SignedUrl, UploadTooLarge, validate_key
from service.storage.factory import build_object_store
from service.storage.http import DownloadServer
from service.storage.local import LocalStore
from service.storage.s3 import S3Store

__all__ = [
    "DownloadServer",
    "LocalStore",
    "ObjectStore",
    "S3Store",
    "SignedUrl",
    "UploadTooLarge",
    "build_object_store",
    "validate_key",
]
