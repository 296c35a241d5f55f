"""Reader audit: can the datasource's database user do more than read?

The pre-check and the read-only transaction are two walls; a user that may only SELECT is
the third, and the one that holds when the other two are wrong. A superuser can change its
own session, read and write server files and reach other databases; a user with write
grants needs only one mistake. The audit asks the server what the connected user may do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy.engine import Connection, Engine

READER_FIX = {
    "postgresql": (
        "connect the datasource as a role with only SELECT (see the README: "
        "CREATE ROLE … LOGIN; GRANT SELECT ON ALL TABLES IN SCHEMA …)"
    ),
    "mysql": (
        "connect the datasource as a user with only SELECT (see the README: "
        "CREATE USER …; GRANT SELECT ON db.* TO …)"
    ),
}

# Functions that reach past the database: other connections, files on the server.
_PG_RISKY_FUNCTIONS = """
SELECT DISTINCT p.proname FROM pg_proc p
WHERE (p.proname LIKE 'dblink%%' OR p.proname IN ('lo_import', 'lo_export'))
  AND has_function_privilege(p.oid, 'EXECUTE')
ORDER BY 1
"""

_PG_ROLE = """
SELECT current_user, rolsuper, rolbypassrls, rolcreaterole FROM pg_roles
WHERE rolname = current_user
"""

_PG_FILE_ROLES = """
SELECT r FROM unnest(ARRAY['pg_read_server_files', 'pg_write_server_files',
                           'pg_execute_server_program']) AS r
WHERE pg_has_role(current_user, r, 'MEMBER')
"""

_PG_WRITE_GRANTS = """
SELECT w.privilege, count(*), min(quote_ident(n.nspname) || '.' || quote_ident(c.relname))
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN unnest(ARRAY['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']) AS w(privilege)
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%%'
  AND has_table_privilege(c.oid, w.privilege)
GROUP BY w.privilege ORDER BY w.privilege
"""

# MariaDB/MySQL grants that make a reader more than a reader.
_MYSQL_RISKY = ("ALL PRIVILEGES", "SUPER", "FILE", "INSERT", "UPDATE", "DELETE", "CREATE",
                "DROP", "ALTER")  # fmt: skip


@dataclass(frozen=True)
class ReaderAudit:
    """What the audit found for one datasource; `privileges` empty means a plain reader."""

    datasource: str
    user: str = ""
    privileges: tuple[str, ...] = ()
    allowed: bool = False  # allow_privileged_reader is set for the datasource
    error: str = ""  # the audit could not run (datasource unreachable)
    checked: bool = True  # False for a backend without users (SQLite)

    @property
    def privileged(self) -> bool:
        return bool(self.privileges)

    def findings(self, backend: str) -> tuple[str, ...]:
        """For listings: each privilege, then what it means for exports; or why the audit
        could not run."""
        if self.error:
            return (f"the reader audit could not run: {self.error}",)
        if not self.privileged:
            return ()
        verdict = (
            "exports run anyway: allow_privileged_reader is set"
            if self.allowed
            else f"exports fail the pre-check: {READER_FIX.get(backend, 'use a read-only user')}"
        )
        return (*self.privileges, verdict)

    def problem(self, backend: str) -> str | None:
        """The pre-check problem of a privileged reader, None when exports may go ahead."""
        if not self.privileged or self.allowed:
            return None
        return (
            f"datasource {self.datasource!r} connects as {self.user!r}, which can do more than "
            f"read: {'; '.join(self.privileges)}. Exports on it are refused: "
            f"{READER_FIX.get(backend, 'use a read-only user')}, or set "
            f"datasources.{self.datasource}.allow_privileged_reader = true to accept the risk"
        )


def audit_reader(engine: Engine, backend: str, datasource: str, allowed: bool) -> ReaderAudit:
    """Ask the server what the datasource's user may do. Connection errors propagate."""
    if backend not in ("postgresql", "mysql"):
        return ReaderAudit(datasource, allowed=allowed, checked=False)
    with engine.connect() as conn:
        try:
            if backend == "postgresql":
                user, privileges = _pg_privileges(conn)
            else:
                user, privileges = _mysql_privileges(conn)
        finally:
            conn.rollback()
    return ReaderAudit(datasource, user, tuple(privileges), allowed)


def _pg_privileges(conn: Connection) -> tuple[str, list[str]]:
    user, superuser, bypassrls, createrole = conn.exec_driver_sql(_PG_ROLE).one()
    if superuser:  # may do everything: listing it all would say nothing more
        return str(user), ["it is a superuser"]
    found = []
    if bypassrls:
        found.append("it has BYPASSRLS")
    if createrole:
        found.append("it has CREATEROLE")
    for (role,) in conn.exec_driver_sql(_PG_FILE_ROLES):
        found.append(f"it is a member of {role}")
    for privilege, tables, example in conn.exec_driver_sql(_PG_WRITE_GRANTS):
        found.append(f"it has {privilege} on {tables} table(s), e.g. {example}")
    functions = [name for (name,) in conn.exec_driver_sql(_PG_RISKY_FUNCTIONS)]
    if functions:
        found.append(f"it may EXECUTE {', '.join(functions[:6])}")
    return str(user), found


def _mysql_privileges(conn: Connection) -> tuple[str, list[str]]:
    user = str(conn.exec_driver_sql("SELECT CURRENT_USER()").scalar())
    found: dict[str, str] = {}
    for (grant,) in conn.exec_driver_sql("SHOW GRANTS"):
        match = re.match(r"GRANT (.+?) ON (\S+) TO ", str(grant))
        if not match:
            continue  # GRANT role TO user, PROXY: the role's own grants are listed as well
        on = match.group(2)
        for privilege in (p.strip().upper() for p in match.group(1).split(",")):
            risky = next((r for r in _MYSQL_RISKY if privilege.startswith(r)), None)
            if risky is not None:
                found.setdefault(privilege, on)
    return user, [f"it has {p} on {on}" for p, on in found.items()]
