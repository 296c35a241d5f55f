"""Imports against real databases: a target table with a reader and a writer user of its own,
the datasource config that uses them, and the upload → submit → approve steps over gRPC."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import grpc
import requests
import sqlalchemy as sa
from db_users import DbUser, db_user
from sqlalchemy.engine import URL

from woxqaq.v1 import task_service_pb2 as pb
from woxqaq.v1 import upload_service_pb2 as upload_pb
from woxqaq.v1 import upload_service_pb2_grpc as upload_grpc

PROMO_DDL = {
    "postgresql": (
        "CREATE TABLE {t} (code varchar(12) PRIMARY KEY, discount numeric(5,2) NOT NULL, "
        "valid_until date, note text)"
    ),
    "mysql": (
        "CREATE TABLE {t} (code varchar(12) PRIMARY KEY, discount decimal(5,2) NOT NULL, "
        "valid_until date, note text)"
    ),
}
WRITER_PRIVILEGES = ("SELECT", "INSERT", "UPDATE")


@dataclass
class Target:
    """A table in a scratch database, with a SELECT-only reader and a writer of its own."""

    backend: str
    table: str
    admin: sa.Engine
    reader: DbUser
    writer: DbUser

    def datasource(self, **extra: Any) -> dict[str, Any]:
        """The `shop` datasource's config keys for this table (password apart from the URL)."""
        return {
            "url": self.reader.url.set(password=None).render_as_string(hide_password=False),
            "password": self.reader.password,
            "write_url": self.writer.url.set(password=None).render_as_string(hide_password=False),
            "write_password": self.writer.password,
            "writable_tables": [self.table],
        } | extra

    def rows(self) -> list[tuple[Any, ...]]:
        with self.admin.connect() as conn:
            return [
                tuple(r) for r in conn.exec_driver_sql(f"SELECT * FROM {self.table} ORDER BY 1")
            ]

    def insert(self, sql_values: str) -> None:
        with self.admin.begin() as conn:
            conn.exec_driver_sql(f"INSERT INTO {self.table} VALUES {sql_values}")


@contextmanager
def target_table(admin_url: URL, ddl: str = "") -> Iterator[Target]:
    backend = "postgresql" if admin_url.get_backend_name() == "postgresql" else "mysql"
    table = f"promo_{secrets.token_hex(4)}"
    admin = sa.create_engine(admin_url)
    with admin.begin() as conn:
        conn.exec_driver_sql((ddl or PROMO_DDL[backend]).format(t=table))
    try:
        with ExitStack() as stack:
            reader = stack.enter_context(db_user(admin_url, tables=[table]))
            writer = stack.enter_context(
                db_user(admin_url, tables=[table], privileges=WRITER_PRIVILEGES)
            )
            yield Target(backend, table, admin, reader, writer)
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
        admin.dispose()


def upload(channel: grpc.Channel, data: bytes, filename: str = "codes.csv") -> str:
    """PreSign, then PUT the bytes as the CLI and the bot do; returns the object key."""
    content_type = "text/csv" if filename.endswith(".csv") else "application/octet-stream"
    stub = upload_grpc.UploadServiceStub(channel)
    link = stub.PreSign(
        upload_pb.PreSignRequest(filename=filename, content_type=content_type), timeout=10
    )
    put = requests.put(link.url, data=data, headers={"Content-Type": content_type}, timeout=30)
    put.raise_for_status()
    return link.object_key


def import_request(table: str, object_key: str, **dimd: Any) -> pb.SubmitTaskRequest:
    return pb.SubmitTaskRequest(
        kind=pb.TASK_KIND_DATA_IMPORT,
        dsn=dimd.pop("dsn", "shop"),
        dimd=pb.DataImportDetail(
            table=table, object_key=object_key, import_reason="promo codes for May", **dimd
        ),
    )
