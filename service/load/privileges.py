"""What a datasource's database users may do, against what they need: the reader only
SELECT, the writer only SELECT, INSERT and UPDATE on the writable tables. Whatever goes beyond
is a warning at start (the service still runs: the pre-check and the transactions are walls
too, but one wall fewer than there should be)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from service.datasources import Datasource, DatasourceRegistry, describe_db_error
from service.domain.imports import is_writable

log = logging.getLogger(__name__)

WRITER_NEEDS = frozenset({"SELECT", "INSERT", "UPDATE"})
_READ_ONLY = frozenset({"SELECT", "USAGE", "SHOW VIEW", "SHOW DATABASES", "PROCESS"})
_GRANT = re.compile(r"^GRANT (.+?) ON (\S+) TO ", re.IGNORECASE)


def audit(registry: DatasourceRegistry) -> list[str]:
    """Warnings for every configured datasource whose users may do more than they need."""
    findings: list[str] = []
    for ds in registry.all():
        if ds.backend == "sqlite":
            continue
        findings += _audit_user(ds, registry.engine(ds), "reader (url)", writer=False)
        if ds.write_url is not None:
            findings += _audit_user(
                ds, registry.writer_engine(ds), "writer (write_url)", writer=True
            )
    return findings


def log_audit(registry: DatasourceRegistry) -> None:
    for finding in audit(registry):
        log.warning("%s", finding)


def _audit_user(ds: Datasource, engine: Engine, role: str, *, writer: bool) -> list[str]:
    try:
        with engine.connect() as conn:
            if ds.backend == "postgresql":
                grants, powers = _pg_grants(conn)
            else:
                grants, powers = _mysql_grants(conn)
    except sa.exc.SQLAlchemyError as exc:
        return [
            f"datasource {ds.name}: could not read the {role} user's privileges: "
            f"{describe_db_error(exc)}"
        ]
    where = f"datasource {ds.name}: the {role} user"
    found = [f"{where} {p}; give it a plain user" for p in powers]
    for schema, table, privilege in grants:
        if privilege in _READ_ONLY:
            continue
        target = f"{schema}.{table}"
        if not writer:
            found.append(f"{where} may {privilege} on {target}; exports need SELECT only")
        elif table == "*" or not is_writable(
            ds.writable_tables, schema, table, ds.default_database()
        ):
            found.append(f"{where} may {privilege} on {target}, which is not in writable_tables")
        elif privilege not in WRITER_NEEDS:
            found.append(
                f"{where} may {privilege} on {target}; imports need SELECT, INSERT, UPDATE only"
            )
    return found


def _pg_grants(conn: sa.Connection) -> tuple[list[tuple[str, str, str]], list[str]]:
    role = conn.execute(
        sa.text(
            "SELECT rolsuper, rolcreaterole, rolcreatedb, rolbypassrls FROM pg_roles "
            "WHERE rolname = current_user"
        )
    ).one()
    powers = [
        text
        for flag, text in zip(
            role,
            ("is a superuser", "may create roles", "may create databases", "bypasses row security"),
            strict=True,
        )
        if flag
    ]
    rows = conn.execute(
        sa.text(
            "SELECT table_schema, table_name, privilege_type "
            "FROM information_schema.table_privileges WHERE grantee IN (current_user, 'PUBLIC') "
            "AND table_schema NOT IN ('pg_catalog', 'information_schema')"
        )
    ).all()
    return [(str(s), str(t), str(p).upper()) for s, t, p in rows], powers


def _mysql_grants(conn: sa.Connection) -> tuple[list[tuple[str, str, str]], list[str]]:
    grants: list[tuple[str, str, str]] = []
    powers: list[str] = []
    for (line,) in conn.exec_driver_sql("SHOW GRANTS"):
        m = _GRANT.match(str(line))
        if not m:
            continue
        privileges, on = m.group(1), m.group(2).replace("`", "")
        schema, _, table = on.partition(".")
        for privilege in _split(privileges):
            if schema == "*":
                if privilege not in _READ_ONLY:
                    powers.append(f"may {privilege} on every database")
            else:
                grants.append((schema, table, privilege))
    return grants, powers


def _split(privileges: str) -> Iterable[str]:
    for part in privileges.split(","):
        name = part.strip().upper()
        if name == "ALL PRIVILEGES":
            name = "ALL"
        if name:
            yield re.sub(r"\s*\(.*\)$", "", name)  # column lists: the privilege is what counts
