"""kill -9 of the service in the middle of an import, on PostgreSQL and MariaDB: the table is
as it was, the run is failed with its reason once a service runs again, and executing it again
writes every row."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from fault_support import ServiceProcess, reliability_config, wait_for
from import_support import Target, import_request, target_table, upload
from sqlalchemy.engine import URL

from woxqaq.v1 import task_service_pb2 as pb

pytestmark = pytest.mark.slow
ROWS = 150_000


def writer_sessions(target: Target) -> list[str]:
    """The statements of the writer's sessions (the user is the test's own)."""
    if target.backend == "postgresql":
        sql = "SELECT coalesce(query, '') FROM pg_stat_activity WHERE usename = :u"
    else:
        sql = "SELECT coalesce(info, '') FROM information_schema.processlist WHERE user = :u"
    with target.admin.connect() as conn:
        return [q for (q,) in conn.execute(sa.text(sql), {"u": target.writer.name})]


def writing(target: Target) -> bool:
    """The import's open transaction is putting rows into the table: COPY on PostgreSQL,
    INSERT on MariaDB. (Not InnoDB's own row count: information_schema.innodb_trx is a cache
    that is not refreshed while it is read more often than every 0.1 s.)"""
    verb = "COPY" if target.backend == "postgresql" else "INSERT"
    return any(verb in q for q in writer_sessions(target))


def test_kill_9_mid_import_leaves_the_table_unchanged(
    writable_db_url: URL,
    scratch_store: str,
    tmp_path: Path,
    service_process: Callable[..., ServiceProcess],
) -> None:
    with target_table(writable_db_url) as target:
        target.insert("('KEEP', 1.00, NULL, 'before')")
        config = reliability_config(
            tmp_path,
            scratch_store,
            target.reader.url.render_as_string(hide_password=False),
        )
        config["datasources"]["pg"] |= {
            "write_url": target.writer.url.render_as_string(hide_password=False),
            "writable_tables": [target.table],
        }
        svc = service_process(config)
        data = "code,discount,note\n" + "".join(f"K{i},{i % 999}.25,row {i}\n" for i in range(ROWS))
        key = upload(svc.channel, data.encode())
        resp = svc.caller("alice", timeout=120).SubmitTask(
            import_request(target.table, key, dsn="pg", exector=pb.EXEC_COMMITTER)
        )
        assert resp.ok, svc.detail(resp.task_id).precheck_messages
        task_id = int(resp.task_id)
        svc.caller("bob").Approve(pb.ApproveRequest(task_id=task_id, approver="bob"))
        svc.caller("alice").Execute(pb.ExecuteRequest(task_id=task_id, executor="alice"))

        wait_for(lambda: writing(target), timeout=60, what="the import's rows being written")
        svc.kill()
        wait_for(
            lambda: not writer_sessions(target),
            timeout=30,
            what="the killed writer's session to end",
        )
        assert target.rows() == [("KEEP", 1, None, "before")]

        svc.start()  # a new process recovers the run the dead one left
        failed = wait_for(
            lambda: (d := svc.detail(task_id)).task.status == pb.TASK_STATUS_EXECUTE_FAILED and d,
            timeout=30,
            what="the killed run recovered as failed",
        )
        assert "service stopped" in failed.runs[0].error

        svc.caller("alice").Execute(pb.ExecuteRequest(task_id=task_id, executor="alice"))
        done = wait_for(
            lambda: (d := svc.detail(task_id)).task.status == pb.TASK_STATUS_EXECUTE_SUCCESS and d,
            timeout=120,
            what="the import executed again",
        )
        assert done.runs[0].rows == ROWS
        assert len(target.rows()) == ROWS + 1
