"""The keys a file has shown so far, kept on disk: checking that each key of an uploaded file
appears once takes the same memory at ten million rows as at ten.

A key is held as its 64-bit digest (Python's `hash` of the key's values, so keys that compare
equal, NULLs included, are one key) in a private SQLite file whose table is the B-tree of
those digests. Rows are checked a batch at a time, sorted, in one statement: the B-tree is
walked in order once per batch instead of once per row.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

# Pages of 16 KiB and a 16 MiB page cache: a pre-check of ten million rows peaks under 170 MB
# (bench/import_keys_bench.py); caches of 32 to 128 MiB bought little speed for their memory.
PAGE_BYTES = 16 * 1024
CACHE_KIB = 16 * 1024
# Inserts the digests of a batch that are not there yet, and returns those it inserted.
_INSERT_NEW = (
    "INSERT INTO seen (digest) SELECT value FROM json_each(?) WHERE true "
    "ON CONFLICT DO NOTHING RETURNING digest"
)


class SeenKeys:
    """Digests of the keys seen so far, in a SQLite file in `work_dir` that exists only
    while this is open (its name is removed at once, so a killed process leaves none)."""

    def __init__(self, work_dir: Path) -> None:
        self.work_dir = work_dir
        self._db: sqlite3.Connection | None = None

    def __enter__(self) -> SeenKeys:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self.work_dir, prefix="import-keys-", suffix=".sqlite")
        os.close(fd)
        try:
            # The file is thrown away after one read of one file: no journal, no fsync, and
            # one transaction never committed, so pages are written only when the cache spills.
            db = sqlite3.connect(name, isolation_level=None, check_same_thread=False)
            try:
                db.execute(f"PRAGMA page_size = {PAGE_BYTES}")
                db.execute("PRAGMA journal_mode = OFF")
                db.execute("PRAGMA synchronous = OFF")
                db.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
                db.execute("CREATE TABLE seen (digest INTEGER PRIMARY KEY)")
                db.execute("BEGIN")
            except BaseException:
                db.close()
                raise
        finally:
            os.unlink(name)  # open, SQLite keeps using the file; closed, it is gone
        self._db = db
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def repeated(self, digests: Sequence[int]) -> list[bool]:
        """For each digest in order: whether it came before, earlier in `digests` or in an
        earlier call. Every digest is remembered."""
        assert self._db is not None, "use SeenKeys as a context manager"
        in_batch: set[int] = set()
        earlier_in_batch = []
        for digest in digests:
            earlier_in_batch.append(digest in in_batch)
            in_batch.add(digest)
        if not in_batch:
            return earlier_in_batch
        # Sorted, the batch's inserts walk the B-tree's leaves in order.
        ordered = json.dumps(sorted(in_batch))
        new = {digest for (digest,) in self._db.execute(_INSERT_NEW, (ordered,))}
        return [
            earlier or digest not in new
            for digest, earlier in zip(digests, earlier_in_batch, strict=True)
        ]
