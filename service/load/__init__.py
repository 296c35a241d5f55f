"""Writing rows into a datasource's table, all or nothing: the one write path of imports and
test-data generation.

    from service.load import LoadTarget, load_rows

    result = load_rows(
        writer_engine,                      # the datasource's writer credentials
        LoadTarget(table="promo_codes", columns=("code", "discount")),
        rows,                               # Iterable[tuple]: Python values, in column order
        mode=ImportMode.UPSERT,
        statement_timeout_s=300,
        cancelled=stop_event.is_set,        # polled; also stops a running statement
        backup=lambda: store.open_writer(key, filename="backup.csv", content_type="text/csv"),
    )
    result.written, result.skipped, result.updated

Everything happens in one transaction on one connection; any exception (a duplicate key in
INSERT mode, a timeout, a cancel, a dead process) leaves the table as it was. Rows are
consumed once, streaming: memory does not grow with their number. PostgreSQL copies them
into a temporary table with `COPY` and writes them with one `INSERT … SELECT … ON CONFLICT`;
MySQL/MariaDB gets one `LOAD DATA LOCAL` fed with the rows (INSERT, SKIP_EXISTING; when the
engine came from `service.datasources.offer_local_infile` and the server allows it), else
batched multi-row `INSERT [IGNORE] … [ON DUPLICATE KEY UPDATE]`. UPSERT
first writes the rows it will replace as CSV into `backup()`'s stream, which is closed (so
published) before the transaction commits.
"""

from service.load.writer import (
    PG_READS_TEXT,
    LoadCanceled,
    LoadError,
    LoadResult,
    LoadTarget,
    conflict_key,
    load_rows,
)

__all__ = [
    "PG_READS_TEXT",
    "LoadCanceled",
    "LoadError",
    "LoadResult",
    "LoadTarget",
    "conflict_key",
    "load_rows",
]
