"""STRUCT content: the DDL of tables, or the column names and types of a query's result.

MySQL/MariaDB and SQLite describe a table in their own words (`SHOW CREATE TABLE`, the
`sql` column of sqlite_master); PostgreSQL has no such statement, so its DDL is compiled
from reflection.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.schema import CreateIndex, CreateTable

from service.export.sources import ColumnInfo, ReadOnlySession


def table_ddl(session: ReadOnlySession, table: sa.Table) -> str:
    """CREATE statements (table, then indexes) for a reflected table, `;`-terminated."""
    if session.backend == "mysql":
        quote = session.dialect.identifier_preparer.quote
        name = f"{quote(table.schema)}.{quote(table.name)}" if table.schema else quote(table.name)
        rows = session.catalog_rows(f"SHOW CREATE TABLE {name}")
        return f"{rows[0][1]};\n" if rows else ""
    if session.backend == "sqlite":
        rows = session.catalog_rows(
            "SELECT sql FROM sqlite_master WHERE tbl_name = ? AND sql IS NOT NULL "
            "ORDER BY type = 'table' DESC, name",
            (table.name,),
        )
        return "".join(f"{r[0]};\n" for r in rows)
    statements = [str(CreateTable(table).compile(dialect=session.dialect)).strip()]
    for index in sorted(table.indexes, key=lambda i: i.name or ""):
        statements.append(str(CreateIndex(index).compile(dialect=session.dialect)).strip())
    return "".join(f"{s};\n" for s in statements)


def result_ddl(name: str, columns: Sequence[ColumnInfo], dialect: sa.Dialect) -> str:
    """The query result's columns as a CREATE TABLE a user could run."""
    quote = dialect.identifier_preparer.quote_identifier
    lines = [f"  {quote(c.name)} {c.type_name}".rstrip() for c in columns]
    body = ",\n".join(lines)
    return f"-- columns of the query result\nCREATE TABLE {quote(name)} (\n{body}\n);\n"


def schema_document(parts: Sequence[tuple[str, str]]) -> str:
    """schema.sql: each part's DDL under a comment naming it."""
    return "\n".join(f"-- {title}\n{ddl}" for title, ddl in parts)
