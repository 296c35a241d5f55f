"""Who may do what: tokens, the acting user, approvers, executors, restricted visibility, and
Slack requests that are forged, stale, or carry another user's click or another task's id."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from bot_support import APPROVAL_CHANNEL, Bot, sign, wait_for
from bot_support import shop_config as bot_shop_config
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message_factory import GetMessageClass
from grpc_health.v1 import health_pb2, health_pb2_grpc
from service_support import Caller, Running
from slack_standin import SlackStandIn

from service.config import ConfigError, parse_config
from service.demo import ensure_demo_database
from service.server import Service
from woxqaq.v1 import identity_service_pb2 as ipb
from woxqaq.v1 import identity_service_pb2_grpc as ipb_grpc
from woxqaq.v1 import notification_service_pb2 as npb
from woxqaq.v1 import notification_service_pb2_grpc as npb_grpc
from woxqaq.v1 import task_service_pb2 as pb
from woxqaq.v1 import upload_service_pb2 as upb

TOKEN = "authz-token"
METHODS: list[MethodDescriptor] = [
    m
    for module, name in (
        (pb, "TaskService"),
        (upb, "UploadService"),
        (npb, "NotificationService"),
        (ipb, "IdentityService"),
    )
    for m in module.DESCRIPTOR.services_by_name[name].methods
]
S = pb  # status names read better as S.TASK_STATUS_…


def start(tmp: Path, auth: dict[str, Any] | None = None, **server: Any) -> Running:
    """shop: approvers alice and bob, viewer vera; vault: approver carol, no viewers."""
    db = tmp / "shop.db"
    ensure_demo_database(db)
    ds = {"url": f"sqlite:///{db}", "required_approvals": 1}
    cfg = parse_config(
        {
            "server": {"data_dir": str(tmp / "data"), "token": TOKEN, **server},
            "storage": {"local": {"http_listen": "127.0.0.1:0"}},
            "task_store": {"url": f"sqlite:///{tmp / 'tasks.db'}"},
            "auth": auth or {},
            "datasources": {
                "shop": {**ds, "approvers": ["alice", "bob"], "viewers": ["vera"]},
                "vault": {**ds, "approvers": ["carol"]},
            },
        }
    )
    service = Service(cfg, listen="127.0.0.1:0")
    port = service.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    grpc.channel_ready_future(channel).result(timeout=10)
    return Running(service, cfg, channel, f"127.0.0.1:{port}", TOKEN)


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    running = start(tmp_path_factory.mktemp("authz"), restrict_visibility=True)
    yield running
    running.channel.close()
    running.service.stop(grace_s=5)


def code_of(call: Any) -> grpc.StatusCode:
    try:
        result = call()
        if hasattr(result, "__iter__") and not hasattr(result, "ok"):
            list(result)
    except grpc.RpcError as exc:
        assert exc.details().strip()
        return exc.code()
    return grpc.StatusCode.OK


def call_empty(channel: grpc.Channel, method: MethodDescriptor, metadata: list) -> None:  # type: ignore[type-arg]
    """Call `method` with an empty request message, reading a stream to its end."""
    path = f"/{method.containing_service.full_name}/{method.name}"
    kw = {
        "request_serializer": lambda m: m.SerializeToString(),
        "response_deserializer": GetMessageClass(method.output_type).FromString,
    }
    request = GetMessageClass(method.input_type)()
    if method.server_streaming:
        list(channel.unary_stream(path, **kw)(request, metadata=metadata, timeout=10))
    else:
        channel.unary_unary(path, **kw)(request, metadata=metadata, timeout=10)


def submit(svc: Running, user: str, dsn: str = "shop", **ded: Any) -> str:
    resp = svc.submit(user, dsn=dsn, sql="SELECT order_no FROM orders", **ded)
    assert resp.ok
    return resp.task_id


def state(svc: Running, task_id: str) -> tuple[int, int, int]:
    """Status, number of events and of runs: what any accepted action would change (read
    as the approvers, who between them see every task)."""
    for reader in ("alice", "carol"):
        try:
            d = svc.as_user(reader).GetTaskDetail(pb.GetTaskDetailRequest(task_id=task_id))
        except grpc.RpcError:
            continue
        return d.task.status, len(d.events), len(d.runs)
    raise AssertionError(f"task {task_id} is visible to no approver")


# -- the token ------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS, ids=lambda m: f"{m.containing_service.name}.{m.name}")
@pytest.mark.parametrize(
    "metadata",
    [
        [],
        [("authorization", "Bearer wrong")],
        [("authorization", TOKEN)],  # no scheme
        [("authorization", f"Bearer {TOKEN} ")],
        [("authorization", f"bearer {TOKEN}x")],
    ],
    ids=["none", "wrong", "no-scheme", "trailing-space", "longer"],
)
def test_every_method_needs_the_token(
    svc: Running, method: MethodDescriptor, metadata: list
) -> None:
    with pytest.raises(grpc.RpcError) as info:
        call_empty(svc.channel, method, [*metadata, ("x-woxqaq-user", "alice")])
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert TOKEN not in info.value.details()
    health = health_pb2_grpc.HealthStub(svc.channel)  # probes stay open
    assert health.Check(health_pb2.HealthCheckRequest(), timeout=5).status == 1


# -- the acting user ------------------------------------------------------------------------


def test_header_user_must_be_the_named_actor_for_every_action(svc: Running) -> None:
    task = submit(svc, "zoe")
    before = state(svc, task)
    tid = int(task)
    for caller, call in (
        ("bob", lambda c: c.Approve(pb.ApproveRequest(task_id=tid, approver="alice"))),
        ("bob", lambda c: c.Reject(pb.RejectRequest(task_id=tid, approver="alice"))),
        ("bob", lambda c: c.Cancel(pb.CancelRequest(task_id=tid, operator="zoe"))),
        ("zoe", lambda c: c.Execute(pb.ExecuteRequest(task_id=tid, executor="alice"))),
        ("ALICE", lambda c: c.Approve(pb.ApproveRequest(task_id=tid, approver="alice"))),
    ):
        assert code_of(lambda: call(svc.as_user(caller))) == grpc.StatusCode.PERMISSION_DENIED
    assert state(svc, task) == before
    # Without a header, the named actor still has to be entitled.
    anonymous = svc.as_user(None)
    assert (
        code_of(lambda: anonymous.Approve(pb.ApproveRequest(task_id=tid, approver="zoe")))
        == grpc.StatusCode.PERMISSION_DENIED
    )
    assert code_of(lambda: anonymous.SubmitTask(pb.SubmitTaskRequest())) in (
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert state(svc, task) == before


def test_votes_by_the_submitter_a_stranger_or_twice_change_nothing(svc: Running) -> None:
    # An approver submitting is still not her own approver; COMMITTER: no run changes it after.
    task = submit(svc, "alice", exector=pb.EXEC_COMMITTER)
    tid = int(task)

    def vote(user: str, approve: bool = True) -> grpc.StatusCode:
        c = svc.as_user(user)
        req = (pb.ApproveRequest if approve else pb.RejectRequest)(task_id=tid, approver=user)
        return code_of(lambda: (c.Approve if approve else c.Reject)(req))

    before = state(svc, task)
    assert vote("alice") == grpc.StatusCode.PERMISSION_DENIED
    assert vote("alice", approve=False) == grpc.StatusCode.PERMISSION_DENIED
    assert vote("carol") == grpc.StatusCode.PERMISSION_DENIED  # vault's approver, not shop's
    assert vote("vera") == grpc.StatusCode.PERMISSION_DENIED  # a viewer is no approver
    assert state(svc, task) == before
    assert vote("bob") == grpc.StatusCode.OK
    approved = state(svc, task)
    assert vote("bob") == grpc.StatusCode.FAILED_PRECONDITION
    assert vote("bob", approve=False) == grpc.StatusCode.FAILED_PRECONDITION
    assert state(svc, task)[:2] == approved[:2]


@pytest.mark.parametrize(
    "mode, allowed, denied",
    [
        (pb.EXEC_COMMITTER, "zoe", ["alice", "bob", "carol", "mallory"]),
        (pb.EXEC_APPROVER, "bob", ["zoe", "carol", "vera", "mallory"]),
        (pb.EXEC_AUTO, None, ["zoe", "alice", "bob", "mallory"]),
    ],
    ids=["committer", "approver", "auto"],
)
def test_only_the_executor_of_each_mode_may_execute(
    svc: Running, mode: int, allowed: str | None, denied: list[str]
) -> None:
    task = submit(svc, "zoe", exector=mode)
    tid = int(task)

    def execute(user: str) -> grpc.StatusCode:
        c = svc.as_user(user)
        return code_of(lambda: c.Execute(pb.ExecuteRequest(task_id=tid, executor=user)))

    # Before approval nobody may: the task is in the wrong state.
    assert execute(allowed or "zoe") == grpc.StatusCode.FAILED_PRECONDITION
    svc.as_user("alice").Approve(pb.ApproveRequest(task_id=tid, approver="alice"))
    if mode == pb.EXEC_AUTO:  # it runs by itself; a hand may not start another run
        wait_for(lambda: state(svc, task)[0] == S.TASK_STATUS_EXECUTE_SUCCESS, what="auto run")
    before = state(svc, task)
    for user in denied:
        assert execute(user) in (
            grpc.StatusCode.PERMISSION_DENIED,
            grpc.StatusCode.FAILED_PRECONDITION,
        ), user
        if mode != pb.EXEC_AUTO:
            assert execute(user) == grpc.StatusCode.PERMISSION_DENIED, user
    assert state(svc, task) == before
    if allowed:
        assert execute(allowed) == grpc.StatusCode.OK


def test_cancel_is_the_submitters_alone(svc: Running) -> None:
    task = submit(svc, "zoe")
    tid = int(task)
    before = state(svc, task)
    for user in ("alice", "carol", "mallory"):
        c = svc.as_user(user)
        assert (
            code_of(lambda: c.Cancel(pb.CancelRequest(task_id=tid, operator=user)))
            == grpc.StatusCode.PERMISSION_DENIED
        )
    assert state(svc, task) == before


# -- restricted visibility -------------------------------------------------------------------


def test_other_datasources_tasks_are_invisible_everywhere(svc: Running) -> None:
    vault = submit(svc, "dave", dsn="vault")
    svc.as_user("carol").Approve(pb.ApproveRequest(task_id=int(vault), approver="carol"))
    wait_for(lambda: state(svc, vault)[0] == S.TASK_STATUS_EXECUTE_SUCCESS, what="vault export")
    shop = submit(svc, "dave", dsn="shop")

    def reads(user: str, task_id: str) -> list[grpc.StatusCode]:
        c = svc.as_user(user)
        return [
            code_of(lambda: c.GetTaskDetail(pb.GetTaskDetailRequest(task_id=task_id))),
            code_of(lambda: c.GetDownloadUrl(pb.GetDownloadUrlRequest(task_id=task_id))),
            code_of(lambda: c.WatchTask(pb.WatchTaskRequest(task_id=task_id))),
        ]

    def listed(user: str, task_id: str) -> bool:
        c = svc.as_user(user)
        everything = c.ListTaskDetail(pb.ListTaskRequest(page_size=100))
        by_id = c.ListTaskDetail(pb.ListTaskRequest(task_id=task_id))
        by_dsn = c.ListTaskDetail(pb.ListTaskRequest(dsn="vault", page_size=100))
        return any(t.id == task_id for page in (everything, by_id, by_dsn) for t in page.data)

    for outsider in ("mallory", "vera", "alice", ""):  # vera views shop only; alice approves shop
        assert reads(outsider, vault) == [grpc.StatusCode.NOT_FOUND] * 3, outsider
        assert not listed(outsider, vault), outsider
    # The same answer as for a task that does not exist: nothing tells the two apart.
    assert reads("mallory", "999999") == [grpc.StatusCode.NOT_FOUND] * 3
    for insider in ("carol", "dave"):  # vault's approver, the submitter
        assert reads(insider, vault)[0] == grpc.StatusCode.OK
        assert listed(insider, vault)
    assert reads("vera", shop)[0] == grpc.StatusCode.OK


# -- Slack ---------------------------------------------------------------------------------


@pytest.fixture
def slack_bot(tmp_path: Path) -> Iterator[tuple[Bot, SlackStandIn, Running]]:
    slack = SlackStandIn().start()
    data = bot_shop_config(tmp_path)
    # shop's approvers are alice, bob and carol; vault's is erin alone.
    vault = {**data["datasources"]["shop"], "approvers": ["erin"], "approval_channel": "C_VAULT"}
    data["datasources"]["vault"] = vault
    cfg = parse_config(data)
    service = Service(cfg, listen="127.0.0.1:0")
    port = service.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    running = Running(service, cfg, channel, f"127.0.0.1:{port}", cfg.server.token)
    bot = Bot(slack, running.addr, cfg.server.token)
    bot.start_delivery()
    yield bot, slack, running
    bot.stop()
    channel.close()
    service.stop(grace_s=5)
    slack.stop()


@pytest.mark.parametrize(
    "kind, headers",
    [
        ("interaction", {"secret": "not-the-secret"}),
        ("interaction", {"timestamp": int(time.time()) - 5 * 60 - 30}),
        ("interaction", {"timestamp": int(time.time()) + 10 * 60}),
        ("event", {"secret": "not-the-secret"}),
        ("event", {"timestamp": int(time.time()) - 6 * 60}),
        ("command", {"secret": "test-signing-secreT"}),
    ],
    ids=[
        "forged-click",
        "stale-click",
        "future-click",
        "forged-event",
        "stale-event",
        "empty-secret",
    ],
)
def test_forged_or_stale_slack_requests_are_refused(
    slack_bot: tuple[Bot, SlackStandIn, Running], kind: str, headers: dict[str, Any]
) -> None:
    bot, slack, svc = slack_bot
    task = svc.submit("dave", sql="SELECT 1 AS a").task_id
    before = state(svc, task)
    if kind == "interaction":
        resp = bot.click(
            "alice", "approve_task", task, channel=APPROVAL_CHANNEL, ts="1.1", **headers
        )
    elif kind == "event":
        resp = bot.event({"type": "app_home_opened", "user": "alice", "tab": "home"}, **headers)
    else:
        resp = bot.command("alice", "list", **headers)
    assert resp.status_code == 401
    time.sleep(0.3)
    assert state(svc, task) == before
    assert not slack.of("views.publish") and not slack.of("response_url")


def test_unsigned_and_body_swapped_requests_are_refused(
    slack_bot: tuple[Bot, SlackStandIn, Running],
) -> None:
    bot, _, svc = slack_bot
    task = svc.submit("dave", sql="SELECT 1 AS a").task_id
    before = state(svc, task)
    resp = bot.session.post(bot.url, data=b"payload=%7B%7D", timeout=10)
    assert resp.status_code == 401
    # A genuine signature over another body: the body is what is signed.
    headers = {"Content-Type": "application/x-www-form-urlencoded", **sign("payload=%7B%7D")}
    body = f"command=/export&text=&user_id=alice&team_id=T1&trigger_id=t&x={task}"
    resp = bot.session.post(bot.url, data=body.encode(), headers=headers, timeout=10)
    assert resp.status_code == 401
    assert state(svc, task) == before


def told(slack: SlackStandIn) -> str:
    return " ".join(c.params.get("text", "") for c in slack.of("response_url"))


def test_a_click_acts_as_the_clicker_and_the_service_rechecks(
    slack_bot: tuple[Bot, SlackStandIn, Running],
) -> None:
    bot, slack, svc = slack_bot
    task = svc.submit("dave", sql="SELECT 1 AS a").task_id
    msg = wait_for(lambda: slack.in_channel(APPROVAL_CHANNEL), what="approval request")[0]
    before = state(svc, task)
    # Whoever the message was meant for, the signed payload's user is who acts.
    for user in ("mallory", "dave", "erin"):
        answers = len(slack.of("response_url"))
        assert (
            bot.click(user, "approve_task", task, channel=msg.channel, ts=msg.ts).status_code == 200
        )
        wait_for(lambda: len(slack.of("response_url")) > answers, what=f"an answer to {user}")
        assert "can't" in slack.of("response_url")[-1].params["text"], user
    assert state(svc, task) == before
    # The approver's own click counts; the message is then updated by the delivery.
    assert (
        bot.click("alice", "approve_task", task, channel=msg.channel, ts=msg.ts).status_code == 200
    )
    wait_for(lambda: state(svc, task)[0] != S.TASK_STATUS_APPROVING, what="approval")
    # The history has the clicker, and the bot's principal that acted for her.
    events = svc.as_user("alice").GetTaskDetail(pb.GetTaskDetailRequest(task_id=task)).events
    approve = next(e for e in events if e.action == "approve")
    assert approve.actor == "alice" and approve.comment.startswith("[via server.token]")


def test_a_button_edited_to_another_task_acts_only_where_the_clicker_may(
    slack_bot: tuple[Bot, SlackStandIn, Running], caplog: pytest.LogCaptureFixture
) -> None:
    bot, slack, svc = slack_bot
    shop = svc.submit("dave", sql="SELECT 1 AS a").task_id
    vault = svc.submit("dave", sql="SELECT 2 AS b", dsn="vault").task_id
    msg = wait_for(lambda: slack.in_channel(APPROVAL_CHANNEL), what="approval request")[0]
    before = state(svc, vault)
    # alice approves shop, not vault: her click on a button edited to vault's id is refused.
    for action in ("approve_task", "reject_task", "execute_task", "cancel_task"):
        assert bot.click("alice", action, vault, channel=msg.channel, ts=msg.ts).status_code == 200
    wait_for(lambda: told(slack), what="an explanation")
    time.sleep(0.5)
    assert state(svc, vault) == before
    assert not [c for c in slack.of("views.open") if "reject" in str(c.params)]
    # Values that are no task id at all get the same calm answer and change nothing.
    for value in ("", "abc", "-1", "99999999999999999999999", "18446744073709551616", "１"):
        assert (
            bot.click("alice", "approve_task", value, channel=msg.channel, ts=msg.ts).status_code
            == 200
        )
    wait_for(lambda: told(slack).count("task id") == 6, what="an answer to every edited button")
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert state(svc, shop)[0] == S.TASK_STATUS_APPROVING


# -- principals: each user's own token, a bot that acts for users -----------------------------

PRINCIPAL_TOKENS = {
    name: f"{name}-token-{i}"
    for i, name in enumerate(("alice", "bob", "zoe", "vera", "sam", "bot", "desk"))
}
PRINCIPALS = [
    {"name": "alice", "token": PRINCIPAL_TOKENS["alice"]},
    # Only the digest in the file: `printf %s "$TOKEN" | sha256sum`.
    {"name": "bob", "token_sha256": hashlib.sha256(PRINCIPAL_TOKENS["bob"].encode()).hexdigest()},
    {"name": "zoe", "token": PRINCIPAL_TOKENS["zoe"]},
    {"name": "vera", "token": PRINCIPAL_TOKENS["vera"]},
    {"name": "sam", "token": PRINCIPAL_TOKENS["sam"]},
    {"name": "bot", "token": PRINCIPAL_TOKENS["bot"], "acts_for": ["*"]},
    {"name": "desk", "token": PRINCIPAL_TOKENS["desk"], "acts_for": ["zoe"]},
]


@pytest.fixture(scope="module")
def ids(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    running = start(tmp_path_factory.mktemp("principals"), auth={"principals": PRINCIPALS})
    yield running
    running.channel.close()
    running.service.stop(grace_s=5)


def as_principal(svc: Running, principal: str, user: str | None = None) -> Caller:
    """TaskService as `principal` (its own token), naming `user` in x-woxqaq-user if given."""
    return Caller(svc.channel, user, PRINCIPAL_TOKENS[principal])


def whoami(svc: Running, metadata: list[tuple[str, str]]) -> ipb.WhoAmIResponse:
    stub = ipb_grpc.IdentityServiceStub(svc.channel)
    return stub.WhoAmI(ipb.WhoAmIRequest(), metadata=metadata, timeout=10)


def submit_as(svc: Running, principal: str, **ded: Any) -> int:
    req = pb.SubmitTaskRequest(
        kind=pb.TASK_KIND_DATA_EXPORT,
        dsn="shop",
        ded=pb.DataExportDetail(
            export_reason="report", ebs=pb.ExportBySQL(statement="SELECT 1 AS one"), **ded
        ),
    )
    resp = as_principal(svc, principal).SubmitTask(req)
    assert resp.ok
    return int(resp.task_id)


def test_each_token_is_its_principal_and_acts_as_itself(ids: Running) -> None:
    me = whoami(ids, [("authorization", f"Bearer {PRINCIPAL_TOKENS['bob']}")])
    assert (me.principal, me.method, me.user, list(me.acts_for)) == ("bob", "token", "bob", [])
    bot = whoami(
        ids, [("authorization", f"Bearer {PRINCIPAL_TOKENS['bot']}"), ("x-woxqaq-user", "U0APPR1")]
    )
    assert (bot.principal, bot.user, list(bot.acts_for)) == ("bot", "U0APPR1", ["*"])
    task_id = submit_as(ids, "zoe")
    detail = as_principal(ids, "zoe").GetTaskDetail(pb.GetTaskDetailRequest(task_id=str(task_id)))
    assert detail.task.submitter == "zoe"
    assert detail.events[0].comment == "report"  # acting as itself: no "via"


@pytest.mark.parametrize(
    "method",
    [m for m in METHODS if m.containing_service.name in ("TaskService", "UploadService")],
    ids=lambda m: f"{m.containing_service.name}.{m.name}",
)
def test_a_user_token_naming_another_user_is_refused_on_every_method(
    ids: Running, method: MethodDescriptor
) -> None:
    metadata = [("authorization", f"Bearer {PRINCIPAL_TOKENS['zoe']}"), ("x-woxqaq-user", "alice")]
    with pytest.raises(grpc.RpcError) as info:
        call_empty(ids.channel, method, metadata)
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "'zoe'" in info.value.details() and "'alice'" in info.value.details()


def test_an_actor_field_naming_another_user_changes_nothing(ids: Running) -> None:
    task_id = submit_as(ids, "zoe", exector=pb.EXEC_COMMITTER)
    zoe, alice = as_principal(ids, "zoe"), as_principal(ids, "alice")
    before = state(ids, str(task_id))
    for who, call in (
        (zoe, lambda c: c.Approve(pb.ApproveRequest(task_id=task_id, approver="alice"))),
        (zoe, lambda c: c.Reject(pb.RejectRequest(task_id=task_id, approver="bob"))),
        (alice, lambda c: c.Cancel(pb.CancelRequest(task_id=task_id, operator="zoe"))),
        (alice, lambda c: c.Execute(pb.ExecuteRequest(task_id=task_id, executor="zoe"))),
    ):
        assert code_of(lambda: call(who)) == grpc.StatusCode.PERMISSION_DENIED
    assert state(ids, str(task_id)) == before
    # The approver's own token approves; an empty actor field means the caller.
    alice.Approve(pb.ApproveRequest(task_id=task_id))
    detail = zoe.GetTaskDetail(pb.GetTaskDetailRequest(task_id=str(task_id)))
    assert detail.task.status == pb.TASK_STATUS_APPROVED
    assert [e.actor for e in detail.events if e.action == "approve"] == ["alice"]


def test_a_client_acting_for_listed_users_only(ids: Running) -> None:
    for_zoe = as_principal(ids, "desk", "zoe")
    task_id = int(
        for_zoe.SubmitTask(
            pb.SubmitTaskRequest(
                kind=pb.TASK_KIND_DATA_EXPORT,
                dsn="shop",
                ded=pb.DataExportDetail(ebs=pb.ExportBySQL(statement="SELECT 1 AS one")),
            )
        ).task_id
    )
    for_alice = as_principal(ids, "desk", "alice")
    assert (
        code_of(lambda: for_alice.Approve(pb.ApproveRequest(task_id=task_id, approver="alice")))
        == grpc.StatusCode.PERMISSION_DENIED
    )
    detail = for_zoe.GetTaskDetail(pb.GetTaskDetailRequest(task_id=str(task_id)))
    assert detail.task.submitter == "zoe"
    assert detail.events[0].actor == "zoe" and detail.events[0].comment == "[via desk]"


def test_the_bot_acting_for_a_slack_user_is_recorded_with_both(
    ids: Running, caplog: pytest.LogCaptureFixture
) -> None:
    task_id = submit_as(ids, "zoe", exector=pb.EXEC_COMMITTER)
    with caplog.at_level(logging.INFO, logger="service.api.interceptors"):
        as_principal(ids, "bot", "alice").Approve(
            pb.ApproveRequest(task_id=task_id, approver="alice", comment="ok for March")
        )
    detail = as_principal(ids, "zoe").GetTaskDetail(pb.GetTaskDetailRequest(task_id=str(task_id)))
    approve = next(e for e in detail.events if e.action == "approve")
    assert (approve.actor, approve.comment) == ("alice", "[via bot] ok for March")
    logged = [r for r in caplog.records if r.getMessage() == "call Approve"]
    assert [(r.user, r.principal) for r in logged] == [("alice", "bot")]  # type: ignore[attr-defined]
    # The bot is not a person: it cannot vote as itself.
    assert (
        code_of(lambda: as_principal(ids, "bot").Approve(pb.ApproveRequest(task_id=task_id)))
        != grpc.StatusCode.OK
    )


def test_the_outbox_is_for_the_front_end_principal_only(ids: Running) -> None:
    pull = npb.PullRequest(consumer="x", max=1, lease_seconds=30)
    stub = npb_grpc.NotificationServiceStub(ids.channel)
    for principal, expected in (
        ("zoe", grpc.StatusCode.PERMISSION_DENIED),
        ("bot", grpc.StatusCode.OK),
    ):
        md = [("authorization", f"Bearer {PRINCIPAL_TOKENS[principal]}")]
        assert code_of(lambda: stub.Pull(pull, metadata=md, timeout=10)) == expected


def test_a_link_goes_only_to_who_may_have_the_data(ids: Running) -> None:
    task_id = submit_as(ids, "zoe")
    as_principal(ids, "alice").Approve(pb.ApproveRequest(task_id=task_id))  # runs by itself
    reader = as_principal(ids, "zoe")
    deadline = time.monotonic() + 30
    while (
        reader.GetTaskDetail(pb.GetTaskDetailRequest(task_id=str(task_id))).task.status
        != pb.TASK_STATUS_EXECUTE_SUCCESS
    ):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    link = pb.GetDownloadUrlRequest(task_id=str(task_id))
    for principal in ("zoe", "alice", "bob", "vera"):  # submitter, approvers, viewer
        assert as_principal(ids, principal).GetDownloadUrl(link).url
    stranger = as_principal(ids, "sam")
    assert stranger.GetTaskDetail(pb.GetTaskDetailRequest(task_id=str(task_id))).ok  # may see
    assert code_of(lambda: stranger.GetDownloadUrl(link)) == grpc.StatusCode.PERMISSION_DENIED
    # The bot acting for a stranger is the stranger.
    assert (
        code_of(lambda: as_principal(ids, "bot", "sam").GetDownloadUrl(link))
        == grpc.StatusCode.PERMISSION_DENIED
    )


def test_a_wrong_token_or_digest_is_unauthenticated(ids: Running) -> None:
    for token in ("bob", hashlib.sha256(PRINCIPAL_TOKENS["bob"].encode()).hexdigest(), ""):
        md = [("authorization", f"Bearer {token}")]
        with pytest.raises(grpc.RpcError) as info:
            whoami(ids, md)
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert PRINCIPAL_TOKENS["bob"] not in info.value.details()


def test_listening_beyond_loopback_without_authentication_refuses_to_start(tmp_path: Path) -> None:
    data = {
        "server": {"data_dir": str(tmp_path / "data")},
        "storage": {"local": {"http_listen": "127.0.0.1:0"}},
    }
    with pytest.raises(ConfigError) as info:
        Service(parse_config(data), listen="0.0.0.0:0")
    assert "server.allow_unauthenticated" in str(info.value)
    assert "\n" not in str(info.value)
    data["server"]["allow_unauthenticated"] = True
    Service(parse_config(data), listen="0.0.0.0:0").stop(grace_s=0)
