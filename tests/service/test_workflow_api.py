"""The export workflow over the real gRPC API, on SQLite and PostgreSQL task stores."""

from __future__ import annotations

import grpc
import pytest

from woxqaq.v1 import task_service_pb2 as pb

COMMITTER = pb.EXEC_COMMITTER  # approval does not start an export by itself
SQL = "SELECT id, name, city FROM customers WHERE city IS NOT NULL"


def code_of(call) -> tuple[grpc.StatusCode, str]:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value.code(), info.value.details()


def events(svc, task_id: str) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    return [(e.actor, e.action) for e in svc.detail(task_id).events]


def test_submit_passes_precheck_and_waits_for_approval(svc) -> None:  # type: ignore[no-untyped-def]
    resp = svc.submit("zoe", sql=SQL, exector=COMMITTER)
    assert resp.ok and resp.task_id.isdigit()
    detail = svc.detail(resp.task_id)
    assert detail.ok
    assert detail.task.status == pb.TASK_STATUS_APPROVING
    assert detail.task.submitter == "zoe"
    assert detail.task.dsn == "shop"
    assert detail.ded.ebs.statement == SQL
    assert detail.ded.exector == COMMITTER
    assert detail.ded.type == pb.EXPORT_TYPE_CSV  # defaults filled in
    assert detail.ded.encoding == pb.ENCODING_UTF8
    assert list(detail.precheck_messages) == []
    assert events(svc, resp.task_id) == [("zoe", "submit"), ("pre-check", "precheck_passed")]
    assert detail.events[0].time.seconds > 0


def test_precheck_failure_is_recorded_with_messages(svc) -> None:  # type: ignore[no-untyped-def]
    resp = svc.submit("zoe", sql="DELETE FROM orders")
    assert not resp.ok and resp.task_id
    detail = svc.detail(resp.task_id)
    assert detail.task.status == pb.TASK_STATUS_PRE_CHECK_FAILED
    assert any("DELETE" in m for m in detail.precheck_messages)
    assert events(svc, resp.task_id)[-1] == ("pre-check", "precheck_failed")


def test_table_mode_precheck_names_unknown_table_and_field(svc) -> None:  # type: ignore[no-untyped-def]
    resp = svc.submit(
        "zoe", tables=[{"table": "ordres"}, {"table": "customers", "fields": ["id", "nme"]}]
    )
    assert not resp.ok
    messages = " ".join(svc.detail(resp.task_id).precheck_messages)
    assert "ordres" in messages and "orders" in messages  # suggests the close name
    assert "nme" in messages


def test_table_mode_with_filter_passes(svc) -> None:  # type: ignore[no-untyped-def]
    resp = svc.submit(
        "zoe",
        tables=[
            {
                "table": "orders",
                "fields": ["id", "amount"],
                "filter": "status = 'paid' AND amount > 10",
            }
        ],
    )
    assert resp.ok, svc.detail(resp.task_id).precheck_messages


def test_approval_by_an_approver_approves(svc) -> None:  # type: ignore[no-untyped-def]
    task_id = svc.submit("zoe", sql=SQL, exector=COMMITTER).task_id
    assert (
        svc.as_user("alice")
        .Approve(pb.ApproveRequest(task_id=int(task_id), approver="alice", comment="ok"))
        .ok
    )
    detail = svc.detail(task_id)
    assert detail.task.status == pb.TASK_STATUS_APPROVED
    approve = [e for e in detail.events if e.action == "approve"]
    assert [(e.actor, e.comment) for e in approve] == [("alice", "ok")]


def test_submitter_cannot_approve_own_task(svc) -> None:  # type: ignore[no-untyped-def]
    task_id = int(svc.submit("alice", sql=SQL).task_id)
    code, message = code_of(
        lambda: svc.as_user("alice").Approve(pb.ApproveRequest(task_id=task_id, approver="alice"))
    )
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert "submitted" in message


def test_non_approver_is_denied(svc) -> None:  # type: ignore[no-untyped-def]
    task_id = int(svc.submit("zoe", sql=SQL).task_id)
    code, message = code_of(
        lambda: svc.as_user("mallory").Approve(
            pb.ApproveRequest(task_id=task_id, approver="mallory")
        )
    )
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert "not an approver" in message
    code, _ = code_of(
        lambda: svc.as_user("mallory").Reject(pb.RejectRequest(task_id=task_id, approver="mallory"))
    )
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert svc.detail(str(task_id)).task.status == pb.TASK_STATUS_APPROVING


def test_approving_twice_is_a_failed_precondition(svc) -> None:  # type: ignore[no-untyped-def]
    task_id = int(svc.submit("zoe", sql=SQL, exector=COMMITTER).task_id)
    alice = svc.as_user("alice")
    alice.Approve(pb.ApproveRequest(task_id=task_id, approver="alice"))
    code, message = code_of(
        lambda: alice.Approve(pb.ApproveRequest(task_id=task_id, approver="alice"))
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert "approved" in message


def test_header_user_must_match_named_actor(svc) -> None:  # type: ignore[no-untyped-def]
    task_id = int(svc.submit("zoe", sql=SQL).task_id)
    code, message = code_of(
        lambda: svc.as_user("mallory").Approve(pb.ApproveRequest(task_id=task_id, approver="alice"))
    )
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert "mallory" in message and "alice" in message
    assert svc.detail(str(task_id)).task.status == pb.TASK_STATUS_APPROVING


def test_any_reject_ends_the_vote(store_url, start_service) -> None:  # type: ignore[no-untyped-def]
    svc = start_service(store_url=store_url, shop={"required_approvals": 2})
    task_id = int(svc.submit("zoe", sql=SQL).task_id)
    svc.as_user("alice").Approve(pb.ApproveRequest(task_id=task_id, approver="alice"))
    assert svc.detail(str(task_id)).task.status == pb.TASK_STATUS_APPROVING
    svc.as_user("bob").Reject(
        pb.RejectRequest(task_id=task_id, approver="bob", comment="too broad")
    )
    detail = svc.detail(str(task_id))
    assert detail.task.status == pb.TASK_STATUS_NOT_APPROVED
    assert ("bob", "reject") in [(e.actor, e.action) for e in detail.events]
    assert [e.comment for e in detail.events if e.action == "reject"] == ["too broad"]
    code, _ = code_of(
        lambda: svc.as_user("carol").Approve(pb.ApproveRequest(task_id=task_id, approver="carol"))
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION


def test_quorum_needs_required_approvals(store_url, start_service) -> None:  # type: ignore[no-untyped-def]
    svc = start_service(store_url=store_url, shop={"required_approvals": 2})
    task_id = int(svc.submit("zoe", sql=SQL, exector=COMMITTER).task_id)
    svc.as_user("alice").Approve(pb.ApproveRequest(task_id=task_id, approver="alice"))
    assert svc.detail(str(task_id)).task.status == pb.TASK_STATUS_APPROVING
    svc.as_user("bob").Approve(pb.ApproveRequest(task_id=task_id, approver="bob"))
    assert svc.detail(str(task_id)).task.status == pb.TASK_STATUS_APPROVED


def test_cancel_by_submitter_only_and_before_execution(svc) -> None:  # type: ignore[no-untyped-def]
    task_id = int(svc.submit("zoe", sql=SQL, exector=COMMITTER).task_id)
    code, _ = code_of(
        lambda: svc.as_user("alice").Cancel(pb.CancelRequest(task_id=task_id, operator="alice"))
    )
    assert code == grpc.StatusCode.PERMISSION_DENIED
    svc.as_user("alice").Approve(pb.ApproveRequest(task_id=task_id, approver="alice"))
    assert (
        svc.as_user("zoe")
        .Cancel(pb.CancelRequest(task_id=task_id, operator="zoe", comment="not needed"))
        .ok
    )
    assert svc.detail(str(task_id)).task.status == pb.TASK_STATUS_CANCELED
    code, message = code_of(
        lambda: svc.as_user("zoe").Cancel(pb.CancelRequest(task_id=task_id, operator="zoe"))
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert "canceled" in message
    code, _ = code_of(
        lambda: svc.as_user("bob").Approve(pb.ApproveRequest(task_id=task_id, approver="bob"))
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION


def test_execute_before_approval_is_refused(svc) -> None:  # type: ignore[no-untyped-def]
    task_id = int(svc.submit("zoe", sql=SQL, exector=COMMITTER).task_id)
    code, message = code_of(
        lambda: svc.as_user("zoe").Execute(pb.ExecuteRequest(task_id=task_id, executor="zoe"))
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert "not approved" in message


def test_executing_as_the_wrong_person_is_denied(svc) -> None:  # type: ignore[no-untyped-def]
    task_id = int(svc.submit("zoe", sql=SQL, exector=COMMITTER).task_id)
    svc.as_user("alice").Approve(pb.ApproveRequest(task_id=task_id, approver="alice"))
    code, message = code_of(
        lambda: svc.as_user("alice").Execute(pb.ExecuteRequest(task_id=task_id, executor="alice"))
    )
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert "submitter" in message


@pytest.mark.parametrize(
    ("request_", "code", "words"),
    [
        (
            pb.SubmitTaskRequest(
                dsn="shop", ded=pb.DataExportDetail(ebs=pb.ExportBySQL(statement="SELECT 1"))
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "kind",
        ),
        (
            pb.SubmitTaskRequest(kind=pb.TASK_KIND_DATA_EXPORT, dsn="shop"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "ded",
        ),
        (
            pb.SubmitTaskRequest(
                kind=pb.TASK_KIND_DATA_EXPORT,
                dsn="nope",
                ded=pb.DataExportDetail(ebs=pb.ExportBySQL(statement="SELECT 1")),
            ),
            grpc.StatusCode.NOT_FOUND,
            "shop",
        ),
        (
            pb.SubmitTaskRequest(
                kind=pb.TASK_KIND_DATA_EXPORT,
                dsn="",
                ded=pb.DataExportDetail(ebs=pb.ExportBySQL(statement="SELECT 1")),
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "dsn",
        ),
        (
            pb.SubmitTaskRequest(
                kind=pb.TASK_KIND_DATA_EXPORT,
                dsn="postgresql://u:hunter2@db/x",
                ded=pb.DataExportDetail(ebs=pb.ExportBySQL(statement="SELECT 1")),
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "raw database URLs are not allowed",
        ),
        (
            pb.SubmitTaskRequest(
                kind=pb.TASK_KIND_DATA_EXPORT,
                dsn="shop",
                ded=pb.DataExportDetail(type=7, ebs=pb.ExportBySQL(statement="SELECT 1")),
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "ded.type",
        ),
        (
            pb.SubmitTaskRequest(
                kind=99,
                dsn="shop",
                ded=pb.DataExportDetail(ebs=pb.ExportBySQL(statement="SELECT 1")),
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "kind",
        ),
        (
            pb.SubmitTaskRequest(
                kind=pb.TASK_KIND_DATA_EXPORT, dsn="shop", ded=pb.DataExportDetail()
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "nothing to export",
        ),
    ],
    ids=[
        "kind-unspecified",
        "no-ded",
        "unknown-datasource",
        "empty-dsn",
        "raw-url",
        "bad-type",
        "unknown-kind",
        "empty-ded",
    ],
)
def test_malformed_submissions_are_refused(svc, request_, code, words) -> None:  # type: ignore[no-untyped-def]
    got, message = code_of(lambda: svc.as_user("zoe").SubmitTask(request_))
    assert got == code
    assert words in message
    assert "hunter2" not in message


def test_submit_needs_a_user(svc) -> None:  # type: ignore[no-untyped-def]
    req = pb.SubmitTaskRequest(
        kind=pb.TASK_KIND_DATA_EXPORT,
        dsn="shop",
        ded=pb.DataExportDetail(ebs=pb.ExportBySQL(statement="SELECT 1")),
    )
    code, message = code_of(lambda: svc.as_user(None).SubmitTask(req))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "x-woxqaq-user" in message


@pytest.mark.parametrize(
    ("task_id", "code"),
    [
        ("abc", grpc.StatusCode.INVALID_ARGUMENT),
        ("-1", grpc.StatusCode.INVALID_ARGUMENT),
        ("", grpc.StatusCode.INVALID_ARGUMENT),
        ("1.5", grpc.StatusCode.INVALID_ARGUMENT),
        ("99999999", grpc.StatusCode.NOT_FOUND),
        ("18446744073709551615", grpc.StatusCode.NOT_FOUND),
        ("18446744073709551616", grpc.StatusCode.INVALID_ARGUMENT),
        ("١٢", grpc.StatusCode.INVALID_ARGUMENT),
    ],
)
def test_task_ids_are_decimal_uint64(svc, task_id, code) -> None:  # type: ignore[no-untyped-def]
    got, message = code_of(lambda: svc.detail(task_id))
    assert got == code
    assert message


def test_unknown_uint64_task_is_not_found_for_every_action(svc) -> None:  # type: ignore[no-untyped-def]
    alice = svc.as_user("alice")
    for call in (
        lambda: alice.Approve(pb.ApproveRequest(task_id=2**64 - 1, approver="alice")),
        lambda: alice.Reject(pb.RejectRequest(task_id=424242, approver="alice")),
        lambda: alice.Cancel(pb.CancelRequest(task_id=424242, operator="alice")),
        lambda: alice.Execute(pb.ExecuteRequest(task_id=424242, executor="alice")),
    ):
        assert code_of(call)[0] == grpc.StatusCode.NOT_FOUND
    assert (
        code_of(lambda: alice.Approve(pb.ApproveRequest(task_id=0, approver="alice")))[0]
        == grpc.StatusCode.INVALID_ARGUMENT
    )


def test_list_pages_newest_first_with_total(svc) -> None:  # type: ignore[no-untyped-def]
    ids = [
        int(svc.submit("zoe" if i % 2 else "yan", sql=f"SELECT {i} AS n").task_id)
        for i in range(25)
    ]
    lister = svc.as_user("zoe")
    first = lister.ListTaskDetail(pb.ListTaskRequest())
    assert first.ok and first.total == 25 and first.page_size == 20
    assert [int(t.id) for t in first.data] == sorted(ids, reverse=True)[:20]
    second = lister.ListTaskDetail(pb.ListTaskRequest(current=2))
    assert [int(t.id) for t in second.data] == sorted(ids, reverse=True)[20:]
    capped = lister.ListTaskDetail(pb.ListTaskRequest(page_size=1000))
    assert capped.page_size == 100 and len(capped.data) == 25
    small = lister.ListTaskDetail(pb.ListTaskRequest(page_size=3, current=3))
    assert [int(t.id) for t in small.data] == sorted(ids, reverse=True)[6:9]
    assert lister.ListTaskDetail(pb.ListTaskRequest(current=99)).data == []
    mine = lister.ListTaskDetail(pb.ListTaskRequest(role=pb.TASK_ROLE_COMMITTER))
    assert mine.total == 12 and all(t.submitter == "zoe" for t in mine.data)
    one = lister.ListTaskDetail(pb.ListTaskRequest(task_id=str(ids[3])))
    assert [int(t.id) for t in one.data] == [ids[3]]
    assert (
        code_of(lambda: lister.ListTaskDetail(pb.ListTaskRequest(current=-1)))[0]
        == grpc.StatusCode.INVALID_ARGUMENT
    )


def test_list_filters_by_status_and_datasource(svc) -> None:  # type: ignore[no-untyped-def]
    good = svc.submit("zoe", sql=SQL).task_id
    bad = svc.submit("zoe", sql="DROP TABLE orders").task_id
    lister = svc.as_user("zoe")
    failed = lister.ListTaskDetail(pb.ListTaskRequest(status=pb.TASK_STATUS_PRE_CHECK_FAILED))
    assert [t.id for t in failed.data] == [bad]
    waiting = lister.ListTaskDetail(pb.ListTaskRequest(status=pb.TASK_STATUS_APPROVING, dsn="shop"))
    assert [t.id for t in waiting.data] == [good]
    assert lister.ListTaskDetail(pb.ListTaskRequest(dsn="other")).total == 0
    assert lister.ListTaskDetail(pb.ListTaskRequest(kind=pb.TASK_KIND_DATA_EXPORT)).total == 2
    code, _ = code_of(lambda: lister.ListTaskDetail(pb.ListTaskRequest(status=42)))
    assert code == grpc.StatusCode.INVALID_ARGUMENT


def test_list_roles_are_relative_to_the_caller(store_url, start_service) -> None:  # type: ignore[no-untyped-def]
    svc = start_service(store_url=store_url, shop={"required_approvals": 2})
    t_waiting = svc.submit("zoe", sql="SELECT 1 AS a", exector=COMMITTER).task_id
    t_alice_voted = svc.submit("zoe", sql="SELECT 2 AS b", exector=COMMITTER).task_id
    t_by_alice = svc.submit("alice", sql="SELECT 3 AS c", exector=COMMITTER).task_id
    t_approved = svc.submit("zoe", sql="SELECT 4 AS d", exector=pb.EXEC_APPROVER).task_id
    for voter in ("alice",):
        svc.as_user(voter).Approve(pb.ApproveRequest(task_id=int(t_alice_voted), approver=voter))
    for voter in ("bob", "carol"):
        svc.as_user(voter).Approve(pb.ApproveRequest(task_id=int(t_approved), approver=voter))

    def ids(user: str, role: int) -> set[str]:
        return {
            t.id
            for t in svc.as_user(user)
            .ListTaskDetail(pb.ListTaskRequest(role=role, page_size=100))
            .data
        }

    assert ids("alice", pb.TASK_ROLE_TO_APPROVE) == {t_waiting}  # not her own, not already voted
    assert ids("bob", pb.TASK_ROLE_TO_APPROVE) == {t_waiting, t_alice_voted, t_by_alice}
    assert ids("zoe", pb.TASK_ROLE_TO_APPROVE) == set()  # not an approver
    assert ids("alice", pb.TASK_ROLE_APPROVED) == {t_alice_voted}
    assert ids("bob", pb.TASK_ROLE_APPROVED) == {t_approved}
    assert ids("alice", pb.TASK_ROLE_COMMITTER) == {t_by_alice}
    assert ids("dave", pb.TASK_ROLE_TO_EXECUTE) == {t_approved}  # EXEC_APPROVER: any approver
    assert ids("zoe", pb.TASK_ROLE_TO_EXECUTE) == set()
    assert ids("zoe", pb.TASK_ROLE_EXECUTED) == set()
    code, message = code_of(
        lambda: svc.as_user(None).ListTaskDetail(pb.ListTaskRequest(role=pb.TASK_ROLE_COMMITTER))
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "x-woxqaq-user" in message


def test_restricted_visibility_hides_other_datasources_tasks(store_url, start_service) -> None:  # type: ignore[no-untyped-def]
    svc = start_service(
        store_url=store_url, server={"restrict_visibility": True}, shop={"viewers": ["vic"]}
    )
    task_id = svc.submit("zoe", sql=SQL).task_id
    assert svc.detail(task_id, user="vic").ok
    assert svc.detail(task_id, user="alice").ok  # approvers see their datasource
    assert svc.detail(task_id, user="zoe").ok  # submitters see their own
    code, _ = code_of(lambda: svc.detail(task_id, user="eve"))
    assert code == grpc.StatusCode.NOT_FOUND
    assert svc.as_user("eve").ListTaskDetail(pb.ListTaskRequest()).total == 0
    assert svc.as_user("vic").ListTaskDetail(pb.ListTaskRequest()).total == 1
