"""`woxqaq`: the command-line client of the task service, for people and scripts.

Every command is one or two gRPC calls, as whoever --token (or a client certificate) proves,
or as --user (metadata x-woxqaq-user) where the service lets the caller say. Readable tables
by default, --json for scripts. Exit codes: 0 done, 1 the service refused (the message says
why), 2 bad usage, 3 the task failed its pre-check or its export failed, 4 service unreachable.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import ssl
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from datetime import UTC
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import grpc
from google.protobuf.json_format import MessageToDict

from woxqaq.v1 import identity_service_pb2 as ipb
from woxqaq.v1 import identity_service_pb2_grpc as ipb_grpc
from woxqaq.v1 import task_service_pb2 as pb
from woxqaq.v1 import task_service_pb2_grpc as pb_grpc

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_FAILED, EXIT_UNREACHABLE = 0, 1, 2, 3, 4

FORMATS = {"csv": pb.EXPORT_TYPE_CSV, "excel": pb.EXPORT_TYPE_EXCEL, "xlsx": pb.EXPORT_TYPE_EXCEL}
ENCODINGS = {
    "utf8": pb.ENCODING_UTF8,
    "utf-8": pb.ENCODING_UTF8,
    "utf8-bom": pb.ENCODING_UTF8_BOM,
    "gbk": pb.ENCODING_GBK,
}
CONTENTS = {
    "data": pb.EXPORT_CONTENT_DATA,
    "struct": pb.EXPORT_CONTENT_STRUCT,
    "all": pb.EXPORT_CONTENT_ALL,
}
EXECUTORS = {"auto": pb.EXEC_AUTO, "committer": pb.EXEC_COMMITTER, "approver": pb.EXEC_APPROVER}
ROLES: dict[str, Any] = {
    "committer": pb.TASK_ROLE_COMMITTER,
    "to-approve": pb.TASK_ROLE_TO_APPROVE,
    "to-execute": pb.TASK_ROLE_TO_EXECUTE,
    "approved": pb.TASK_ROLE_APPROVED,
    "executed": pb.TASK_ROLE_EXECUTED,
}
STATUSES: dict[str, Any] = {
    pb.TaskStatus.Name(v).removeprefix("TASK_STATUS_").lower().replace("_", "-"): v
    for v in pb.TaskStatus.values()
    if v
}


def status_name(value: int) -> str:
    return (
        pb.TaskStatus.Name(value).removeprefix("TASK_STATUS_")
        if value in pb.TaskStatus.values()
        else str(value)
    )


class Client:
    def __init__(self, args: argparse.Namespace) -> None:
        self.channel = _channel(args)
        self.stub = pb_grpc.TaskServiceStub(self.channel)
        self.identity = ipb_grpc.IdentityServiceStub(self.channel)
        # No user named: the service takes the one the credentials prove.
        self.metadata: list[tuple[str, str]] = [("x-woxqaq-user", args.user)] if args.user else []
        if args.token:
            self.metadata.append(("authorization", f"Bearer {args.token}"))

    def __getattr__(self, method: str) -> Any:
        rpc = getattr(self.identity if method == "WhoAmI" else self.stub, method)
        return lambda request, **kw: rpc(
            request, metadata=self.metadata, timeout=kw.pop("timeout", 120), **kw
        )


def _channel(args: argparse.Namespace) -> grpc.Channel:
    """TLS when a CA file or a client certificate is given (the system's CAs otherwise)."""
    if not (args.ca_file or args.cert):
        return grpc.insecure_channel(args.addr)
    if bool(args.cert) != bool(args.key):
        raise UsageError("--cert and --key go together: the client certificate and its key")
    try:
        credentials = grpc.ssl_channel_credentials(
            root_certificates=Path(args.ca_file).read_bytes() if args.ca_file else None,
            private_key=Path(args.key).read_bytes() if args.key else None,
            certificate_chain=Path(args.cert).read_bytes() if args.cert else None,
        )
    except OSError as exc:
        raise UsageError(f"cannot read {exc.filename}: {exc.strerror}") from None
    return grpc.secure_channel(args.addr, credentials)


# -- output -------------------------------------------------------------------------------


def emit(args: argparse.Namespace, message: Any, text: str) -> None:
    if args.json:
        print(
            json.dumps(
                MessageToDict(message, preserving_proto_field_name=True),
                ensure_ascii=False,
                indent=2,
            )
        )
    else:
        print(text)


def table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _next_runs(s: pb.Schedule) -> str:
    """The next firings as the service computed them, in the schedule's own timezone."""
    try:
        zone = ZoneInfo(s.timezone or "UTC")
    except (ValueError, KeyError):
        zone = ZoneInfo("UTC")
    return (
        ", ".join(
            t.ToDatetime(tzinfo=UTC).astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")
            for t in s.next_fire_times
        )
        or "never"
    )


def _when(ts: Any) -> str:
    return ts.ToDatetime().strftime("%Y-%m-%d %H:%M:%S") if ts.seconds else ""


def describe_spec(ded: pb.DataExportDetail) -> str:
    if ded.ebs.statement:
        what = " ".join(ded.ebs.statement.split())
        return what if len(what) <= 60 else what[:57] + "..."
    if ded.eatt.export_all:
        return "all tables"
    return ", ".join(o.table for o in ded.eatt.option)


def render_detail(resp: pb.GetTaskDetailResponse) -> str:
    t = resp.task
    fmt = pb.ExportType.Name(t.ded.type).removeprefix("EXPORT_TYPE_")
    lines = [
        f"Task {t.id}: {status_name(t.status)}",
        f"  datasource  {t.dsn}  database {t.database or '(default)'}",
        f"  submitter   {t.submitter}   created {_when(t.create_time)} UTC",
        f"  export      {fmt}, {pb.Encoding.Name(t.ded.encoding).removeprefix('ENCODING_')}, "
        f"executor {pb.Exec.Name(t.ded.exector).removeprefix('EXEC_')}",
        f"  reason      {t.ded.export_reason}",
    ]
    if t.ded.ebs.statement:
        lines += ["  sql", *("    " + line for line in t.ded.ebs.statement.splitlines())]
    for o in t.ded.eatt.option:
        fields = "all fields" if o.all_field else ", ".join(o.fields)
        lines.append(
            f"  table       {o.table} ({fields}){' where ' + o.filter if o.filter else ''}"
        )
    if t.schedule.trigger == pb.TRIGGER_KIND_CRON:
        lines.append(
            f"  schedule    {t.schedule.cron} ({t.schedule.timezone}) -> {t.schedule.channel}"
        )
        if t.status in (pb.TASK_STATUS_APPROVING, pb.TASK_STATUS_APPROVED):
            lines.append(f"  next runs   {_next_runs(t.schedule)}")
    if resp.precheck_messages:
        lines += ["  pre-check failed:", *(f"    - {m}" for m in resp.precheck_messages)]
    if resp.events:
        lines.append("  history")
        lines += [
            f"    {_when(e.time)}  {e.actor:<14} {e.action:<16} {e.comment}".rstrip()
            for e in resp.events
        ]
    if resp.runs:
        lines.append("  runs")
        for r in resp.runs:
            outcome = r.error or f"{r.rows} rows, {r.bytes} bytes, {r.filename}"
            lines.append(f"    #{r.id} {status_name(r.status):<16} by {r.executor}: {outcome}")
    return "\n".join(lines)


# -- commands -----------------------------------------------------------------------------


def cmd_submit(args: argparse.Namespace, client: Client) -> int:
    ded = pb.DataExportDetail(
        database=args.database,
        type=FORMATS[args.format],
        encoding=ENCODINGS[args.encoding],
        export_reason=args.reason,
        exector=EXECUTORS[args.executor],
    )
    ded.eatt.content = CONTENTS[args.content]
    sql = Path(args.sql_file).read_text(encoding="utf-8") if args.sql_file else args.sql
    if sql:
        ded.ebs.statement = sql
    elif args.all_tables:
        ded.eatt.export_all = True
    else:
        if (args.fields or args.filter) and len(args.table) != 1:
            raise UsageError("--fields and --filter go with exactly one --table")
        for name in args.table:
            fields = [f.strip() for f in (args.fields or "").split(",") if f.strip()]
            ded.eatt.option.add(
                table=name, all_field=not fields, fields=fields, filter=args.filter or ""
            )
    request = pb.SubmitTaskRequest(
        name=args.name, kind=pb.TASK_KIND_DATA_EXPORT, dsn=args.dsn, ded=ded
    )
    if args.cron:
        request.schedule.CopyFrom(
            pb.Schedule(
                trigger=pb.TRIGGER_KIND_CRON, cron=args.cron, timezone=args.tz, channel=args.channel
            )
        )
    resp = client.SubmitTask(request)
    detail = client.GetTaskDetail(pb.GetTaskDetailRequest(task_id=resp.task_id))
    if resp.ok:
        status = status_name(detail.task.status)
        text = f"Task {resp.task_id} submitted: {status} (waiting for approval)"
    else:
        text = f"Task {resp.task_id} failed its pre-check:\n" + "\n".join(
            f"  - {m}" for m in detail.precheck_messages
        )
    emit(args, detail, text)
    return EXIT_OK if resp.ok else EXIT_FAILED


def cmd_list(args: argparse.Namespace, client: Client) -> int:
    resp = client.ListTaskDetail(
        pb.ListTaskRequest(
            current=args.page,
            page_size=args.page_size,
            status=STATUSES[args.status] if args.status else None,
            dsn=args.dsn,
            role=ROLES[args.role] if args.role else None,
        )
    )
    rows = [
        (
            t.id,
            status_name(t.status),
            t.dsn,
            t.submitter,
            _when(t.create_time),
            describe_spec(t.ded),
        )
        for t in resp.data
    ]
    pages = max(1, -(-resp.total // max(resp.page_size, 1)))
    text = table(rows, ("ID", "STATUS", "DATASOURCE", "SUBMITTER", "CREATED (UTC)", "EXPORT"))
    emit(args, resp, f"{text}\n{resp.total} task(s), page {args.page or 1} of {pages}")
    return EXIT_OK


def cmd_show(args: argparse.Namespace, client: Client) -> int:
    resp = client.GetTaskDetail(pb.GetTaskDetailRequest(task_id=str(_id(args.task_id))))
    emit(args, resp, render_detail(resp))
    return EXIT_OK


def cmd_whoami(args: argparse.Namespace, client: Client) -> int:
    me = client.WhoAmI(ipb.WhoAmIRequest())
    if not me.principal:
        text = f"{me.user or '(nobody named)'} (the service checks no credentials)"
    elif me.user != me.principal:
        text = f"{me.user}, via {me.principal} ({me.method})"
    else:
        text = f"{me.user} ({me.method})"
    emit(args, me, text)
    return EXIT_OK


def cmd_approve(args: argparse.Namespace, client: Client) -> int:
    resp = client.Approve(
        pb.ApproveRequest(task_id=_id(args.task_id), approver=args.user, comment=args.comment)
    )
    emit(args, resp, f"Approved task {args.task_id}.")
    return EXIT_OK


def cmd_reject(args: argparse.Namespace, client: Client) -> int:
    resp = client.Reject(
        pb.RejectRequest(task_id=_id(args.task_id), approver=args.user, comment=args.comment)
    )
    emit(args, resp, f"Rejected task {args.task_id}.")
    return EXIT_OK


def cmd_cancel(args: argparse.Namespace, client: Client) -> int:
    resp = client.Cancel(
        pb.CancelRequest(task_id=_id(args.task_id), operator=args.user, comment=args.comment)
    )
    emit(args, resp, f"Canceled task {args.task_id}.")
    return EXIT_OK


def cmd_execute(args: argparse.Namespace, client: Client) -> int:
    resp = client.Execute(pb.ExecuteRequest(task_id=_id(args.task_id), executor=args.user))
    emit(
        args,
        resp,
        f"Started run {resp.run_id} of task {args.task_id}; "
        f"follow it with: woxqaq watch {args.task_id}",
    )
    return EXIT_OK


def cmd_watch(args: argparse.Namespace, client: Client) -> int:
    last = None
    request = pb.WatchTaskRequest(task_id=str(_id(args.task_id)))
    for p in client.WatchTask(request, timeout=None):
        last = p
        if args.json:
            print(
                json.dumps(MessageToDict(p, preserving_proto_field_name=True), ensure_ascii=False),
                flush=True,
            )
        else:
            line = (
                f"\rrun {p.run_id or '-'}  {status_name(p.status):<16} {p.rows:>12,} rows "
                f"{p.bytes / 1e6:>10.1f} MB  {p.message[:60]}"
            )
            print(line.ljust(100), end="", flush=True)
    if not args.json:
        # A task with no run gets no progress at all: say so rather than print nothing.
        print("" if last is not None else f"Task {args.task_id} has no run to watch.")
    return (
        EXIT_FAILED
        if last is not None
        and last.status in (pb.TASK_STATUS_EXECUTE_FAILED, pb.TASK_STATUS_CANCELED)
        else EXIT_OK
    )


def _link(args: argparse.Namespace, client: Client) -> pb.GetDownloadUrlResponse:
    return client.GetDownloadUrl(
        pb.GetDownloadUrlRequest(
            task_id=str(_id(args.task_id)), run_id=args.run or "", expires_in=args.expires_in
        )
    )


def cmd_url(args: argparse.Namespace, client: Client) -> int:
    resp = _link(args, client)
    emit(args, resp, f"{resp.url}\n{resp.filename}, valid until {_when(resp.expire_time)} UTC")
    return EXIT_OK


def cmd_download(args: argparse.Namespace, client: Client) -> int:
    if args.output and not Path(args.output).is_dir() and not Path(args.output).parent.is_dir():
        raise UsageError(f"cannot save to {args.output}: its directory does not exist")
    resp = _link(args, client)
    filename = Path(resp.filename).name  # the service names the file; never a path
    target = Path(args.output or filename)
    if target.is_dir():
        target = target / filename
    partial = target.with_name(target.name + ".part")
    try:
        # The service's own CA also signs its download endpoint's certificate.
        tls: dict[str, Any] = (
            {"context": ssl.create_default_context(cafile=args.ca_file)} if args.ca_file else {}
        )
        with (
            urllib.request.urlopen(resp.url, timeout=60, **tls) as src,
            partial.open("wb") as out,
        ):
            while chunk := src.read(1 << 20):
                out.write(chunk)
        partial.replace(target)
    except OSError as exc:  # HTTPError and URLError are OSErrors too
        partial.unlink(missing_ok=True)  # a half file is never left to pass for the result
        message, code = _download_failure(exc, target)
        print(f"woxqaq: {message}", file=sys.stderr)
        return code
    size = target.stat().st_size
    if args.json:
        print(json.dumps({"path": str(target), "bytes": size, "filename": filename}))
    else:
        print(f"Saved {target} ({size:,} bytes)")
    return EXIT_OK


def _download_failure(exc: OSError, target: Path) -> tuple[str, int]:
    """What went wrong with a download, in one line, and its exit code."""
    if isinstance(exc, urllib.error.HTTPError):
        return f"the file server refused the download: HTTP {exc.code} {exc.reason}", EXIT_REFUSED
    if isinstance(exc, urllib.error.URLError):
        return f"cannot reach the file server: {exc.reason}", EXIT_UNREACHABLE
    return f"cannot save {target}: {exc.strerror or exc}", EXIT_REFUSED


class UsageError(Exception):
    pass


def _id(text: str) -> int:
    text = text.strip()
    if not (text.isascii() and text.isdigit()):  # "²".isdigit() is True, int("²") fails
        raise UsageError(f"{text!r} is not a task id (a number)")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="woxqaq", description="Submit, approve and run data exports.")
    p.add_argument(
        "--addr",
        default=os.environ.get("WOXQAQ_SERVICE_ADDR", "127.0.0.1:50051"),
        help="service address (env WOXQAQ_SERVICE_ADDR)",
    )
    p.add_argument(
        "--token",
        default=os.environ.get("WOXQAQ_TOKEN") or os.environ.get("WOXQAQ_SERVICE_TOKEN", ""),
        help="your bearer token or identity-provider JWT (env WOXQAQ_TOKEN)",
    )
    p.add_argument(
        "--ca-file",
        default=os.environ.get("WOXQAQ_CA_FILE", ""),
        help="CA certificate(s) the service's TLS certificate is checked with (env WOXQAQ_CA_FILE)",
    )
    p.add_argument(
        "--cert", default=os.environ.get("WOXQAQ_CERT", ""), help="client certificate (mutual TLS)"
    )
    p.add_argument("--key", default=os.environ.get("WOXQAQ_KEY", ""), help="its private key")
    p.add_argument(
        "--user",
        default=None,
        help="who you act as (env WOXQAQ_USER; default: who your credentials prove, "
        "else your login)",
    )
    p.add_argument("--json", action="store_true", help="print JSON for scripts")
    # --json also after the command (`woxqaq list --json`); SUPPRESS keeps a subcommand
    # from resetting a --json given before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="print JSON for scripts"
    )
    sub = p.add_subparsers(dest="command", required=True)

    def command(name: str, **kw: Any) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[common], **kw)

    s = command("submit", help="submit an export task")
    s.add_argument("--dsn", required=True, help="datasource name")
    s.add_argument("--database", default="", help="database / schema (default: the datasource's)")
    what = s.add_mutually_exclusive_group(required=True)
    what.add_argument("--sql", help="one SELECT statement")
    what.add_argument("--sql-file", help="file holding one SELECT statement")
    what.add_argument("--table", action="append", default=[], help="table to export (repeatable)")
    what.add_argument("--all-tables", action="store_true", help="every table of the database")
    s.add_argument("--fields", help="comma-separated fields of the one --table (default: all)")
    s.add_argument(
        "--filter", help="boolean filter over the one --table's columns, e.g. \"status = 'paid'\""
    )
    s.add_argument("--format", choices=sorted(FORMATS), default="csv")
    s.add_argument(
        "--encoding",
        choices=sorted(ENCODINGS),
        default="utf8",
        help="CSV text encoding; utf8-bom starts the file with a byte-order mark for Excel",
    )
    s.add_argument("--content", choices=sorted(CONTENTS), default="data")
    s.add_argument("--executor", choices=sorted(EXECUTORS), default="auto")
    s.add_argument("--reason", default="", help="why you need the data (shown to approvers)")
    s.add_argument("--name", default="")
    s.add_argument("--cron", default="", help="run on this five-field cron schedule")
    s.add_argument("--tz", default="UTC", help="IANA timezone of --cron")
    s.add_argument("--channel", default="", help="Slack channel id each scheduled run goes to")
    s.set_defaults(func=cmd_submit)

    s = command("list", help="list tasks, newest first")
    s.add_argument("--status", choices=sorted(STATUSES))
    s.add_argument("--role", choices=sorted(ROLES))
    s.add_argument("--dsn", default="")
    s.add_argument("--page", type=int, default=1)
    s.add_argument("--page-size", type=int, default=20)
    s.set_defaults(func=cmd_list)

    command("whoami", help="who the service thinks you are").set_defaults(func=cmd_whoami)
    for name, func, helptext in (
        ("show", cmd_show, "show a task with its history and runs"),
        ("execute", cmd_execute, "start an approved task"),
        ("watch", cmd_watch, "follow a task's running export"),
    ):
        s = command(name, help=helptext)
        s.add_argument("task_id")
        s.set_defaults(func=func)
    for name, func, helptext in (
        ("approve", cmd_approve, "approve a task"),
        ("reject", cmd_reject, "reject a task"),
        ("cancel", cmd_cancel, "cancel your task"),
    ):
        s = command(name, help=helptext)
        s.add_argument("task_id")
        s.add_argument(
            "--comment",
            "-m",
            default="",
            required=name == "reject",
            help="why (required to reject)" if name == "reject" else "comment",
        )
        s.set_defaults(func=func)
    for name, func, helptext in (
        ("url", cmd_url, "print a download link"),
        ("download", cmd_download, "download the file"),
    ):
        s = command(name, help=helptext)
        s.add_argument("task_id")
        s.add_argument("--run", default="", help="run id (default: the newest successful run)")
        s.add_argument("--expires-in", type=int, default=0, help="link lifetime in seconds")
        if name == "download":
            s.add_argument("--output", "-o", help="file or directory to save to")
        s.set_defaults(func=func)
    return p


def _resolve_user(given: str | None, *, credentials: bool) -> str:
    """--user, else WOXQAQ_USER; else "" with credentials (the service knows who they
    prove), else the login name (a service that checks none needs to be told)."""
    user = given if given is not None else os.environ.get("WOXQAQ_USER", "")
    if given is None and not user.strip() and credentials:
        return ""
    if given is None and not user.strip():
        try:
            user = getpass.getuser()
        except Exception:  # no login name (a container's bare uid): OSError, KeyError
            user = ""
    if not user.strip():
        raise UsageError("say who you are: --user NAME (or set WOXQAQ_USER)")
    return user.strip()


# How grpc's transport words UNAVAILABLE; the service's own UNAVAILABLE answers ("datasource
# 'x' could not be read: ...") come from a reachable service and are refusals.
TRANSPORT_FAILURES = (
    "failed to connect",
    "errors resolving",
    "dns resolution failed",
    "socket closed",
    "connection reset",
)


def _unreachable(exc: grpc.RpcError) -> bool:
    """UNAVAILABLE raised by the transport (no connection, no such host), not the service."""
    details = (exc.details() or "").lower()  # type: ignore[attr-defined]
    return exc.code() == grpc.StatusCode.UNAVAILABLE and details.startswith(  # type: ignore[attr-defined]
        TRANSPORT_FAILURES
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.user = _resolve_user(args.user, credentials=bool(args.token or args.cert))
        client = Client(args)
    except UsageError as exc:
        print(f"woxqaq: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.func(args, client))
    except UsageError as exc:
        print(f"woxqaq: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except grpc.RpcError as exc:
        code = exc.code()  # type: ignore[attr-defined]
        if _unreachable(exc):
            print(
                f"woxqaq: cannot reach the service at {args.addr}; is it running?", file=sys.stderr
            )
            return EXIT_UNREACHABLE
        print(f"woxqaq: {code.name}: {exc.details()}", file=sys.stderr)  # type: ignore[attr-defined]
        return EXIT_REFUSED
    except KeyboardInterrupt:
        return 130
    finally:
        client.channel.close()


if __name__ == "__main__":
    sys.exit(main())
