"""The values of a one-column MySQL/MariaDB result, read in bulk off PyMySQL's connection.

A server-rendered CSV export reads one binary value a row (`sources._mysql_csv`). PyMySQL's
unbuffered cursor spends some two microseconds of Python on each: a packet object, a
sequence check, a row tuple, a batch list. Here the rows come a socket read at a time (up
to a mebibyte, thousands of rows) and each value is one slice of it, which halves the
client's CPU: on a machine whose cores the database server and other work share, that is
time the server gets back. What is not a plain row (an error, the end of the result, a
value of 16 MiB or more) goes through PyMySQL's own packet code.
"""

from __future__ import annotations

import errno
from collections.abc import Generator
from typing import Any

from pymysql import err
from pymysql.connections import MAX_PACKET_LEN, MysqlPacket
from pymysql.constants import CR

_READ_SIZE = 1 << 20
_NULL = 0xFB
_EOF = 0xFE
_ERROR = 0xFF


class NullValue(Exception):
    """A value was NULL: for a CONCAT, the server's sign that it outgrew max_allowed_packet.

    `before` counts the values of the result read ahead of it."""

    def __init__(self, before: int) -> None:
        super().__init__(before)
        self.before = before


def single_values(cursor: Any) -> Generator[list[bytes]]:
    """The values of the one-column result that `cursor` (an SSCursor) has just executed,
    in batches of a socket read each, as bytes.

    Errors the server sends (a KILL QUERY, the statement timeout) are raised as PyMySQL
    raises them. A batch loop that stops early closes the connection, whose result is then
    half read: the session that owns it must drop it (`sources.release` does)."""
    conn = cursor.connection
    result = conn._result
    if result is None or not result.unbuffered_active or len(result.fields) != 1:
        raise ValueError("single_values needs an unbuffered result of one column")
    rfile = conn._rfile
    seq = conn._next_seq_id
    rest = b""
    long_value: list[bytes] = []  # the packets of a value of 16 MiB or more
    finished = False
    yielded = 0
    try:
        while True:
            buf = rest + _read(conn, rfile) if rest else _read(conn, rfile)
            end = len(buf)
            pos = 0
            values: list[bytes] = []
            while pos + 4 <= end:
                length = buf[pos] | buf[pos + 1] << 8 | buf[pos + 2] << 16
                stop = pos + 4 + length
                if stop > end:
                    break
                if buf[pos + 3] != seq or not (length or long_value):
                    conn._force_close()
                    if buf[pos + 3] == 0:  # MariaDB's error packet when it shuts down
                        raise err.OperationalError(
                            CR.CR_SERVER_LOST, "Lost connection to MySQL server during query"
                        )
                    raise err.InternalError(
                        f"Unexpected packet in a result: number {buf[pos + 3]} of {length} bytes, "
                        f"where number {seq} was due"
                    )
                seq = (seq + 1) & 0xFF
                first = buf[pos + 4] if length else _NULL
                if first < _NULL and not long_value:  # a row of one value under 251 bytes
                    values.append(buf[pos + 5 : stop])
                    pos = stop
                    continue
                long_value.append(buf[pos + 4 : stop])
                pos = stop
                if length == MAX_PACKET_LEN:
                    continue  # the payload goes on in the next packet
                packet = MysqlPacket(b"".join(long_value), conn.encoding)
                long_value.clear()
                conn._next_seq_id = seq
                if packet.is_error_packet():
                    result.unbuffered_active = False
                    packet.raise_for_error()
                if result._check_packet_is_eof(packet):
                    finished = True
                    result.unbuffered_active = False
                    result.connection = None
                    result.rows = None
                    if values:
                        yield values
                    return
                value = packet.read_length_coded_string()
                if value is None:
                    raise NullValue(yielded + len(values))
                values.append(value)
            rest = buf[pos:]
            conn._next_seq_id = seq
            if values:
                yielded += len(values)
                yield values
    finally:
        if not finished and result.unbuffered_active:
            # Bytes of the result sit in this reader's buffer, not the driver's: nobody
            # can read the connection on from here.
            result.unbuffered_active = False
            conn._force_close()


def _read(conn: Any, rfile: Any) -> bytes:
    while True:
        try:
            data = rfile.read1(_READ_SIZE)
            break
        except OSError as exc:
            if exc.errno == errno.EINTR:
                continue
            conn._force_close()
            raise err.OperationalError(
                CR.CR_SERVER_LOST, f"Lost connection to MySQL server during query ({exc})"
            ) from None
    if not data:
        conn._force_close()
        raise err.OperationalError(
            CR.CR_SERVER_LOST, "Lost connection to MySQL server during query"
        )
    return data  # type: ignore[no-any-return]
