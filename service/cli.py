"""`woxqaq`: the command-line client of the task service, for people and scripts.

Every command is one or two gRPC calls, as whoever --token (or a client certificate) proves,
or as --user (metadata x-woxqaq-user) where the service lets the caller say. Readable tables
by default, --json for scripts. Exit codes: 0 done, 1 the service refused (the message says
why), 2 bad usage, 3 the task failed its pre-check or its export failed, 4 service unreachable,
130 interrupted (Ctrl-C), 141 the output's reader went away (`woxqaq list | head -1`). No
input ends in a traceback: every failure is one line on stderr, chosen in `main`.
"""

from __future__ import annotations

import argparse
import getpass
import io
import json
import os
import shutil
import ssl
import sys
import tempfile
import traceback
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC
from importlib import metadata
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import grpc
from google.protobuf.json_format import MessageToDict

from woxqaq.generator_rules import ColumnGenerator, RuleError, format_rule, parse_rules
from woxqaq.v1 import datasource_service_pb2 as dpb
from woxqaq.v1 import datasource_service_pb2_grpc as dpb_grpc
from woxqaq.v1 import identity_service_pb2 as ipb
from woxqaq.v1 import identity_service_pb2_grpc as ipb_grpc
from woxqaq.v1 import task_service_pb2 as pb
from woxqaq.v1 import task_service_pb2_grpc as pb_grpc
from woxqaq.v1 import upload_service_pb2 as upload_pb
from woxqaq.v1 import upload_service_pb2_grpc as upload_grpc

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_FAILED, EXIT_UNREACHABLE = 0, 1, 2, 3, 4
EXIT_INTERRUPTED, EXIT_BROKEN_PIPE = 130, 141  # as a shell reports SIGINT and SIGPIPE
CRON_EXAMPLE = "0 9 * * MON-FRI"
LIVE_SCHEDULE = (pb.TASK_STATUS_APPROVING, pb.TASK_STATUS_APPROVED)

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
MODES = {
    "insert": pb.IMPORT_MODE_INSERT,
    "skip-existing": pb.IMPORT_MODE_SKIP_EXISTING,
    "upsert": pb.IMPORT_MODE_UPSERT,
}
RULE_FORMS = "rules read 'email=faker:email', 'age=int:18:80' or 'status: choice a,b weights 9,1'"
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
        self.datasources = dpb_grpc.DatasourceServiceStub(self.channel)
        # No user named: the service takes the one the credentials prove.
        self.metadata: list[tuple[str, str]] = [("x-woxqaq-user", args.user)] if args.user else []
        if args.token:
            self.metadata.append(("authorization", f"Bearer {args.token}"))
        # The file store's links are HTTPS beyond loopback: trust the same CA as the service.
        self.https: dict[str, Any] = (
            {"context": ssl.create_default_context(cafile=args.ca_file)} if args.ca_file else {}
        )

    def upload(self, path: Path) -> str:
        """PreSign, then PUT the file; returns its object key for the import's dimd."""
        content_type = "text/csv" if path.suffix.lower() == ".csv" else "application/octet-stream"
        uploads = upload_grpc.UploadServiceStub(self.channel)
        link = uploads.PreSign(
            upload_pb.PreSignRequest(filename=path.name, content_type=content_type),
            metadata=self.metadata,
            timeout=30,
        )
        with path.open("rb") as body:
            put = urllib.request.Request(
                link.url,
                data=body,
                method="PUT",
                headers={
                    "Content-Type": content_type,
                    "Content-Length": str(path.stat().st_size),
                },
            )
            with urllib.request.urlopen(put, timeout=600, **self.https):
                pass
        return link.object_key

    def __getattr__(self, method: str) -> Any:
        stubs = (self.stub, self.identity, self.datasources)
        rpc = getattr(next((s for s in stubs if hasattr(s, method)), self.stub), method)
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
        return _cut(" ".join(ded.ebs.statement.split()), 60)
    if ded.eatt.export_all:
        return "all tables"
    return ", ".join(o.table for o in ded.eatt.option)


def _enum(enum: Any, value: int, prefix: str) -> str:
    return enum.Name(value).removeprefix(prefix) if value in enum.values() else str(value)


def describe_import(resp: pb.GetTaskDetailResponse) -> list[str]:
    """What an approver approves: table, mode, file, rows, column mapping, first rows."""
    d, preview = resp.task.dimd, resp.preview
    fmt = _enum(pb.ExportType, d.format, "EXPORT_TYPE_")
    lines = [
        f"  import      into {d.table}, mode {_enum(pb.ImportMode, d.mode, 'IMPORT_MODE_')}, "
        f"{fmt} file {d.object_key.rsplit('/', 1)[-1]}"
        + (f" (sheet {d.sheet})" if d.sheet else ""),
        f"  executor    {_enum(pb.Exec, d.exector, 'EXEC_')}",
        f"  reason      {d.import_reason}",
    ]
    if preview.sha256:
        lines.append(f"  file        {preview.total_rows:,} rows, SHA-256 {preview.sha256[:16]}…")
        lines.append(f"  columns     {', '.join(preview.columns)}")
        rows = [[c.text if not c.null else "NULL" for c in r.cells] for r in preview.rows]
        if rows:
            shown = [[v if len(v) <= 24 else v[:23] + "…" for v in r] for r in rows]
            lines += [
                "  first rows",
                *("    " + x for x in table(shown, preview.columns).split("\n")),
            ]
    return lines


def render_detail(resp: pb.GetTaskDetailResponse) -> str:
    t = resp.task
    lines = [
        f"Task {t.id}: {status_name(t.status)}",
        f"  datasource  {t.dsn}  database {t.database or '(default)'}",
        f"  submitter   {t.submitter}   created {_when(t.create_time)} UTC",
    ]
    if t.kind == pb.TASK_KIND_DATA_GENERATE:
        lines += _generate_lines(t.dgd, resp.preview)
    elif t.HasField("dimd"):
        lines += describe_import(resp)
    else:
        fmt = pb.ExportType.Name(t.ded.type).removeprefix("EXPORT_TYPE_")
        lines += [
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
        lines.append(f"  schedule    {t.schedule.cron} ({t.schedule.timezone}) -> {_delivery(t)}")
        if t.status in (pb.TASK_STATUS_APPROVING, pb.TASK_STATUS_APPROVED):
            lines.append(f"  next runs   {_next_runs(t.schedule)}")
    if resp.HasField("preview") and resp.preview.estimated_rows:
        rows = resp.preview.estimated_rows
        lines.append(f"  estimate    about {rows:,} row(s), by the database's plan")
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
        lines += [
            f"    #{r.id} {status_name(r.status):<16} by {r.executor}: {_outcome(r, t)}"
            for r in resp.runs
        ]
    return "\n".join(lines)


def _delivery(t: pb.TaskListData) -> str:
    if t.schedule.channel:
        return t.schedule.channel
    return f"no channel: each run is kept for `woxqaq download {t.id} --run RUN`"


def _outcome(r: pb.TaskRun, t: pb.TaskListData) -> str:
    if r.error:  # whole, however long: it says what to fix
        return r.error
    if r.status == pb.TASK_STATUS_EXECUTING:
        return f"{r.rows} rows, {r.bytes} bytes so far"
    if t.HasField("dimd") or t.HasField("dgd"):  # a write: what happened to the rows
        return f"{r.rows} rows written, {r.rows_skipped} skipped, {r.rows_updated} updated" + (
            f"; replaced rows saved in {r.backup_filename}" if r.backup_filename else ""
        )
    return f"{r.rows} rows, {r.bytes} bytes, {r.filename}"


def _generate_lines(dgd: pb.DataGenerateDetail, preview: pb.TaskPreview) -> list[str]:
    mode = pb.ImportMode.Name(dgd.mode or pb.IMPORT_MODE_INSERT).removeprefix("IMPORT_MODE_")
    executor = pb.Exec.Name(dgd.exector).removeprefix("EXEC_")
    lines = [
        f"  generate    {dgd.rows:,} rows into {dgd.table}, {mode}, "
        f"seed {dgd.seed or '(not yet)'}, executor {executor}",
        f"  reason      {dgd.generate_reason}",
        "  generators",
    ]
    lines += [
        "    " + format_rule(ColumnGenerator(g.column, g.kind, dict(g.params), g.null_ratio))
        for g in dgd.columns
    ]
    if preview.columns:
        cells = [["NULL" if c.null else c.text for c in r.cells] for r in preview.rows]
        shown = [[c if len(c) <= 30 else c[:29] + "…" for c in row] for row in cells]
        lines.append(f"  preview (first {len(cells)} of {preview.total_rows:,} rows)")
        lines += ["    " + line for line in table(shown, list(preview.columns)).splitlines()]
    return lines


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
    sql = _statement(args)
    if (args.fields is not None or args.filter is not None) and len(args.table) != 1:
        raise UsageError(
            "--fields and --filter go with exactly one --table "
            "(not with --sql, --sql-file or --all-tables)"
        )
    if sql is not None:
        ded.ebs.statement = sql
    elif args.all_tables:
        ded.eatt.export_all = True
    else:
        fields = _fields(args.fields)
        for name in args.table:
            if not name.strip():
                raise UsageError("--table is empty: name a table of the datasource")
            ded.eatt.option.add(
                table=name.strip(), all_field=not fields, fields=fields, filter=args.filter or ""
            )
    request = pb.SubmitTaskRequest(
        name=args.name, kind=pb.TASK_KIND_DATA_EXPORT, dsn=args.dsn, ded=ded
    )
    schedule = _schedule(args)
    if schedule is not None:
        request.schedule.CopyFrom(schedule)
    return _submitted(args, client, client.SubmitTask(request))


def cmd_import(args: argparse.Namespace, client: Client) -> int:
    path = Path(args.file)
    if not path.is_file():
        raise UsageError(f"cannot read {args.file}: no such file")
    fmt = args.format or ("excel" if path.suffix.lower() in (".xlsx", ".xlsm") else "csv")
    columns = [c.strip() for c in args.columns.split(",")] if args.columns else []
    if args.no_header and not columns:
        raise UsageError("--no-header needs --columns: the table column of each file column")
    key = client.upload(path)
    dimd = pb.DataImportDetail(
        database=args.database,
        table=args.table,
        object_key=key,
        format=FORMATS[fmt],
        encoding=ENCODINGS[args.encoding],
        mode=MODES[args.mode],
        columns=columns,
        no_header=args.no_header,
        sheet=args.sheet,
        import_reason=args.reason,
        exector=EXECUTORS[args.executor],
    )
    request = pb.SubmitTaskRequest(
        name=args.name, kind=pb.TASK_KIND_DATA_IMPORT, dsn=args.dsn, dimd=dimd
    )
    return _submitted(args, client, client.SubmitTask(request))


def _submitted(
    args: argparse.Namespace, client: Client, resp: pb.SubmitTaskResponse, *, show: bool = False
) -> int:
    """Print the outcome of a submit's pre-check (with the task when `show`)."""
    detail = client.GetTaskDetail(pb.GetTaskDetailRequest(task_id=resp.task_id))
    if resp.ok:
        status = status_name(detail.task.status)
        text = f"Task {resp.task_id} submitted: {status} (waiting for approval)"
        if show:
            text += "\n" + render_detail(detail)
    else:
        text = f"Task {resp.task_id} failed its pre-check:\n" + "\n".join(
            f"  - {m}" for m in detail.precheck_messages
        )
    emit(args, detail, text)
    return EXIT_OK if resp.ok else EXIT_FAILED


def cmd_generate(args: argparse.Namespace, client: Client) -> int:
    lines = list(args.rule)
    if args.rules_file:
        lines += Path(args.rules_file).read_text(encoding="utf-8").splitlines()
    try:
        rules = parse_rules(lines)
    except RuleError as exc:
        raise UsageError(f"{exc} ({RULE_FORMS})") from None
    dgd = pb.DataGenerateDetail(
        database=args.database,
        table=args.table,
        rows=args.rows,
        seed=args.seed,
        mode=MODES[args.mode],
        generate_reason=args.reason,
        exector=EXECUTORS[args.executor],
        columns=[
            pb.ColumnGenerator(
                column=g.column, kind=g.kind, params=dict(g.params), null_ratio=g.null_ratio
            )
            for g in rules
        ],
    )
    request = pb.SubmitTaskRequest(
        name=args.name, kind=pb.TASK_KIND_DATA_GENERATE, dsn=args.dsn, dgd=dgd
    )
    return _submitted(args, client, client.SubmitTask(request), show=True)


def _statement(args: argparse.Namespace) -> str | None:
    """The SQL of --sql or --sql-file; None in table mode."""
    if args.sql_file is not None:
        sql = _read_sql_file(args.sql_file)
        option = f"--sql-file {args.sql_file}"
    elif args.sql is not None:
        sql, option = args.sql, "--sql"
    else:
        return None
    if not sql.strip():
        raise UsageError(f"{option} is empty: give one SELECT statement")
    return sql


def _read_sql_file(name: str) -> str:
    """The statement in the file `name` (`-`: standard input), as UTF-8 text."""
    where = f"--sql-file {name}"
    try:
        data = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{where}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"{where} is a directory: name the file holding the statement") from None
    except OSError as exc:
        raise UsageError(f"{where} cannot be read: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8-sig")  # a byte-order mark (Windows editors) is not SQL
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"{where} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            f"save it as UTF-8, e.g. iconv -f GBK -t UTF-8 {name} > query.sql"
        ) from None


def _fields(text: str | None) -> list[str]:
    if text is None:
        return []
    fields = [f.strip() for f in text.split(",") if f.strip()]
    if not fields:
        raise UsageError("--fields names no field: give them comma-separated, e.g. id,amount")
    return fields


def _schedule(args: argparse.Namespace) -> pb.Schedule | None:
    if args.cron is None:
        for option, value in (("--tz", args.tz), ("--channel", args.channel)):
            if value is not None:
                raise UsageError(
                    f"{option} goes with --cron: add the schedule, e.g. --cron '{CRON_EXAMPLE}'"
                )
        return None
    if not args.cron.strip():
        raise UsageError(f"--cron is empty: give five fields, e.g. --cron '{CRON_EXAMPLE}'")
    return pb.Schedule(
        trigger=pb.TRIGGER_KIND_CRON,
        cron=args.cron.strip(),
        timezone=(args.tz or "UTC").strip(),
        channel=(args.channel or "").strip(),
    )


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
            f"import into {t.dimd.table}" if t.HasField("dimd") else describe_spec(t.ded),
        )
        for t in resp.data
    ]
    pages = max(1, -(-resp.total // max(resp.page_size, 1)))
    text = table(rows, ("ID", "STATUS", "DATASOURCE", "SUBMITTER", "CREATED (UTC)", "EXPORT"))
    emit(args, resp, f"{text}\n{resp.total} task(s), page {args.page or 1} of {pages}")
    return EXIT_OK


def cmd_show(args: argparse.Namespace, client: Client) -> int:
    resp = client.GetTaskDetail(pb.GetTaskDetailRequest(task_id=str(_id(args.task_id))))
    text = render_detail(resp)
    if resp.task.status == pb.TASK_STATUS_APPROVING and not args.json:
        head, _, rest = text.partition("\n")
        text = f"{head} ({_approval_progress(client, resp)})\n{rest}"
    emit(args, resp, text)
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
    emit(args, resp, "" if args.json else _approval_state(client, args.task_id))
    return EXIT_OK


def _approval_state(client: Client, task_id: str) -> str:
    """`Approved task 7.` once it is approved; else how many approvals it has and needs."""
    detail = client.GetTaskDetail(pb.GetTaskDetailRequest(task_id=str(_id(task_id))))
    if detail.task.status != pb.TASK_STATUS_APPROVING:
        return f"Approved task {task_id}."
    return f"Approved task {task_id}: {_approval_progress(client, detail)}."


def _approval_progress(client: Client, detail: pb.GetTaskDetailResponse) -> str:
    """`approved 1 of 2 — one more approval needed`, for a task still being approved."""
    approvals = len({e.actor for e in detail.events if e.action == "approve"})
    try:
        listed = client.ListDatasources(dpb.DatasourceQuery()).datasources
    except grpc.RpcError as exc:
        if exc.code() != grpc.StatusCode.UNIMPLEMENTED:  # type: ignore[attr-defined]
            raise
        listed = []  # a service older than DatasourceService: the vote counted all the same
    needed = next((d.required_approvals for d in listed if d.name == detail.task.dsn), 0)
    if needed <= approvals:  # a datasource hidden from the caller, or its quorum changed
        return f"{approvals} approval(s) so far"
    more = needed - approvals
    more_text = "one more approval" if more == 1 else f"{more} more approvals"
    return f"approved {approvals} of {needed} — {more_text} needed"


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
    try:
        for p in client.WatchTask(request, timeout=None):
            last = p
            if args.json:
                print(
                    json.dumps(
                        MessageToDict(p, preserving_proto_field_name=True), ensure_ascii=False
                    ),
                    flush=True,
                )
            else:
                # The line redrawn while the run goes on keeps to one terminal line; the final
                # one carries the whole message, a failure's reason above all.
                running = p.status == pb.TASK_STATUS_EXECUTING
                line = (
                    f"\rrun {p.run_id or '-'}  {status_name(p.status):<16} {p.rows:>12,} rows "
                    f"{p.bytes / 1e6:>10.1f} MB  {p.message[:60] if running else p.message}"
                )
                print(line.ljust(100), end="", flush=True)
    finally:
        if last is not None and not args.json:
            print()  # end the progress line, however the watch ends (Ctrl-C included)
    if last is None and not args.json:
        # A task with no run gets no progress at all: say so rather than print nothing.
        print(f"Task {args.task_id} has no run to watch.")
    return (
        EXIT_FAILED
        if last is not None
        and last.status in (pb.TASK_STATUS_EXECUTE_FAILED, pb.TASK_STATUS_CANCELED)
        else EXIT_OK
    )


def _link(args: argparse.Namespace, client: Client) -> pb.GetDownloadUrlResponse:
    if args.expires_in < 0:
        raise UsageError("--expires-in must not be negative; 0 means the default lifetime")
    return client.GetDownloadUrl(
        pb.GetDownloadUrlRequest(
            task_id=str(_id(args.task_id)),
            run_id=str(_id(args.run, "run id")) if args.run else "",
            expires_in=args.expires_in,
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
    _check_free(target, args.force)
    try:
        # The service's own CA also signs its download endpoint's certificate.
        tls: dict[str, Any] = (
            {"context": ssl.create_default_context(cafile=args.ca_file)} if args.ca_file else {}
        )
        with (
            urllib.request.urlopen(resp.url, timeout=60, **tls) as src,
            _publishing(target, args.force) as out,
        ):
            while chunk := src.read(1 << 20):
                out.write(chunk)
    except FileExistsError:  # it appeared while downloading
        raise UsageError(_taken(target)) from None
    except OSError as exc:  # HTTPError and URLError are OSErrors too
        message, code = _download_failure(exc, target)
        print(f"woxqaq: {message}", file=sys.stderr)
        return code
    size = target.stat().st_size
    if args.json:
        print(json.dumps({"path": str(target), "bytes": size, "filename": filename}))
    else:
        print(f"Saved {target} ({size:,} bytes)")
    return EXIT_OK


def _check_free(target: Path, force: bool) -> None:
    if target.exists() and not (force and target.is_file()):
        raise UsageError(_taken(target))


def _taken(target: Path) -> str:
    if target.is_dir():
        return f"{target} is a directory; name the file to save to with -o"
    return f"{target} exists; name another file with -o, or add --force to replace it"


@contextmanager
def _publishing(target: Path, force: bool) -> Iterator[Any]:
    """A file written next to `target` and put in its place only when complete, so that a half
    download never passes for the result; without `force` an existing file is never replaced."""
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    partial = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
        if force:
            partial.replace(target)
        else:
            _link_new(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def _link_new(src: Path, target: Path) -> None:
    """Give `src`'s content the name `target`, which must not exist (FileExistsError)."""
    try:
        os.link(src, target)
    except FileExistsError:
        raise
    except OSError:  # a file system without hard links (FAT, some network shares)
        with src.open("rb") as data, target.open("xb") as out:
            shutil.copyfileobj(data, out)


def _download_failure(exc: OSError, target: Path) -> tuple[str, int]:
    """What went wrong with a download, in one line, and its exit code."""
    if isinstance(exc, urllib.error.HTTPError):
        return f"the file server refused the download: HTTP {exc.code} {exc.reason}", EXIT_REFUSED
    if isinstance(exc, urllib.error.URLError):
        return f"cannot reach the file server: {exc.reason}", EXIT_UNREACHABLE
    return f"cannot save {target}: {exc.strerror or exc}", EXIT_REFUSED


def cmd_datasources(args: argparse.Namespace, client: Client) -> int:
    resp = client.ListDatasources(dpb.DatasourceQuery(check_reachable=not args.no_check))
    rows = [
        (
            d.name,
            d.dialect,
            ", ".join(d.approvers) or "-",
            str(d.required_approvals),
            _reachable(d),
            str(len(d.audit_findings)) if d.audit_findings else "-",
        )
        for d in resp.datasources
    ]
    header = ("NAME", "DIALECT", "APPROVERS", "APPROVALS", "REACHABLE", "AUDIT")
    lines = [table(rows, header)]
    for d in resp.datasources:
        if d.reachable_checked and not d.reachable:
            lines.append(f"{d.name}: not reachable: {d.unreachable_reason}")
        lines += [f"{d.name}: audit: {finding}" for finding in d.audit_findings]
    emit(args, resp, "\n".join(lines))
    return EXIT_OK


def _reachable(d: dpb.DatasourceInfo) -> str:
    if not d.reachable_checked:
        return "not checked"
    return "yes" if d.reachable else "NO"


def cmd_tables(args: argparse.Namespace, client: Client) -> int:
    resp = client.ListTables(dpb.TableQuery(dsn=args.dsn, database=args.database))
    rows = [(t.name, _cut(", ".join(t.columns), 80)) for t in resp.tables]
    text = table(rows, ("TABLE", "COLUMNS"))
    emit(args, resp, f"{text}\n{len(rows)} table(s) in {args.dsn}, database {resp.database}")
    return EXIT_OK


def cmd_schedules(args: argparse.Namespace, client: Client) -> int:
    found = pb.ListTaskResponse(ok=True, data=_my_schedules(client))
    found.total = found.page_size = len(found.data)
    rows = [
        (
            t.id,
            status_name(t.status),
            t.dsn,
            f"{t.schedule.cron} ({t.schedule.timezone})",
            t.schedule.channel or "-",
            _next_runs(t.schedule) if t.status == pb.TASK_STATUS_APPROVED else "after approval",
        )
        for t in found.data
    ]
    text = table(rows, ("ID", "STATUS", "DATASOURCE", "CRON", "CHANNEL", "NEXT RUNS"))
    emit(args, found, f"{text}\n{len(rows)} schedule(s)")
    return EXIT_OK


def _my_schedules(client: Client) -> Iterator[pb.TaskListData]:
    """The caller's scheduled tasks that still fire (or will, once approved), newest first."""
    page = 1
    while True:
        resp = client.ListTaskDetail(
            pb.ListTaskRequest(current=page, page_size=100, role=pb.TASK_ROLE_COMMITTER)
        )
        for t in resp.data:
            if t.schedule.trigger == pb.TRIGGER_KIND_CRON and t.status in LIVE_SCHEDULE:
                yield t
        if page * 100 >= resp.total or not resp.data:
            return
        page += 1


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


class UsageError(Exception):
    pass


def _id(text: str, what: str = "task id") -> int:
    text = text.strip()
    if not (text.isascii() and text.isdigit()):  # "²".isdigit() is True, int("²") fails
        raise UsageError(f"{text!r} is not a {what} (a number)")
    return int(text)


def _positive(text: str) -> int:
    """argparse type: a whole number from 1 (argparse names the option in its error)."""
    if not (text.strip().isascii() and text.strip().isdigit()) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from 1")
    return int(text)


def _version() -> str:
    try:
        return metadata.version("woxqaq")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="woxqaq",
        description="Submit, approve and run data exports, imports and test-data generations.",
        epilog="Exit codes: 0 done, 1 refused by the service, 2 bad usage, 3 pre-check or "
        "export failed, 4 service unreachable, 130 interrupted, 141 output closed.",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
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
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, **kw: Any) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[common], description=kw.get("help"), **kw)

    s = command("submit", help="submit an export task")
    s.add_argument("--dsn", required=True, help="datasource name (see: woxqaq datasources)")
    s.add_argument("--database", default="", help="database / schema (default: the datasource's)")
    what = s.add_mutually_exclusive_group(required=True)
    what.add_argument("--sql", help="one SELECT statement")
    what.add_argument("--sql-file", help="UTF-8 file holding one SELECT statement (-: stdin)")
    what.add_argument(
        "--table", action="append", default=[], help="table to export (repeatable; see: tables)"
    )
    what.add_argument("--all-tables", action="store_true", help="every table of the database")
    s.add_argument("--fields", help="comma-separated fields of the one --table (default: all)")
    s.add_argument(
        "--filter", help="boolean filter over the one --table's columns, e.g. \"status = 'paid'\""
    )
    s.add_argument("--format", choices=sorted(FORMATS), default="csv", help="file format")
    s.add_argument(
        "--encoding",
        choices=sorted(ENCODINGS),
        default="utf8",
        help="CSV encoding; utf8-bom starts the file with a byte-order mark for Excel",
    )
    s.add_argument(
        "--content",
        choices=sorted(CONTENTS),
        default="data",
        help="rows (data), table definitions (struct) or both (all)",
    )
    s.add_argument(
        "--executor",
        choices=sorted(EXECUTORS),
        default="auto",
        help="who starts the export once approved: nobody (auto), you, or an approver",
    )
    s.add_argument("--reason", default="", help="why you need the data (shown to approvers)")
    s.add_argument("--name", default="", help="a short name for the task")
    s.add_argument("--cron", help=f"run on this five-field cron schedule, e.g. '{CRON_EXAMPLE}'")
    s.add_argument("--tz", help="IANA timezone of --cron, e.g. Asia/Shanghai (default: UTC)")
    s.add_argument(
        "--channel",
        help="Slack channel id each scheduled run is posted to (default: none; runs are kept "
        "for download)",
    )
    s.set_defaults(func=cmd_submit)

    s = command("generate", help="submit a test-data generation into one table")
    s.add_argument("--dsn", required=True, help="datasource name")
    s.add_argument("--database", default="", help="database / schema (default: the datasource's)")
    s.add_argument("--table", required=True, help="the table to fill")
    s.add_argument("--rows", type=int, required=True, help="how many rows to write")
    s.add_argument(
        "--rule",
        action="append",
        default=[],
        help="a column's generator, repeatable: 'email=faker:email' or 'age: int 18 80' "
        "(columns without a rule get one proposed from their type and name)",
    )
    s.add_argument("--rules-file", help="file with one rule per line ('# comments' allowed)")
    s.add_argument("--seed", type=int, default=0, help="the same seed makes the same rows")
    _write_task_options(s, "what the data is for (shown to approvers)")
    s.set_defaults(func=cmd_generate)

    s = command("import", help="upload a CSV or XLSX file and submit its import into a table")
    s.add_argument("--dsn", required=True, help="datasource name")
    s.add_argument("--database", default="", help="database / schema (default: the datasource's)")
    s.add_argument("--table", required=True, help="the table the rows go into")
    s.add_argument("--file", required=True, help="the .csv or .xlsx file")
    s.add_argument("--format", choices=sorted(FORMATS), help="default: from the file's extension")
    s.add_argument("--encoding", choices=sorted(ENCODINGS), default="utf8", help="CSV only")
    s.add_argument("--sheet", default="", help="XLSX: the sheet to read (default: the first)")
    s.add_argument("--columns", default="", help="the table column of each file column, a,b,c")
    s.add_argument("--no-header", action="store_true", help="the file has no header row")
    _write_task_options(s, "why the rows are needed (shown to approvers)")
    s.set_defaults(func=cmd_import)

    s = command("list", help="list tasks, newest first")
    s.add_argument("--status", choices=sorted(STATUSES), help="only tasks in this state")
    s.add_argument("--role", choices=sorted(ROLES), help="only tasks where you have this role")
    s.add_argument("--dsn", default="", help="only tasks of this datasource")
    s.add_argument("--page", type=_positive, default=1, help="page number, from 1")
    s.add_argument("--page-size", type=_positive, default=20, help="tasks per page (at most 100)")
    s.set_defaults(func=cmd_list)

    command("whoami", help="who the service thinks you are").set_defaults(func=cmd_whoami)
    for name, func, helptext in (
        ("show", cmd_show, "show a task with its history and runs"),
        ("execute", cmd_execute, "start an approved task"),
        ("watch", cmd_watch, "follow a task's running export"),
    ):
        s = command(name, help=helptext)
        s.add_argument("task_id", help="the task's id (see: woxqaq list)")
        s.set_defaults(func=func)
    for name, func, helptext in (
        ("approve", cmd_approve, "approve a task"),
        ("reject", cmd_reject, "reject a task"),
        ("cancel", cmd_cancel, "cancel your task"),
    ):
        s = command(name, help=helptext)
        s.add_argument("task_id", help="the task's id (see: woxqaq list)")
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
        ("download", cmd_download, "download the file (never replaces one unless --force)"),
    ):
        s = command(name, help=helptext)
        s.add_argument("task_id", help="the task's id (see: woxqaq list)")
        s.add_argument(
            "--run", default="", help="run id, from show (default: the newest successful run)"
        )
        s.add_argument(
            "--expires-in", type=int, default=0, help="link lifetime in seconds (0: the default)"
        )
        if name == "download":
            s.add_argument(
                "--output", "-o", help="file or directory to save to (default: the file's name)"
            )
            s.add_argument("--force", action="store_true", help="replace an existing file")
        s.set_defaults(func=func)

    s = command("datasources", help="list the datasources you may export from")
    s.add_argument(
        "--no-check", action="store_true", help="do not connect to see whether each answers"
    )
    s.set_defaults(func=cmd_datasources)
    s = command("tables", help="list a datasource's tables and their columns")
    s.add_argument("--dsn", required=True, help="datasource name (see: woxqaq datasources)")
    s.add_argument("--database", default="", help="database / schema (default: the datasource's)")
    s.set_defaults(func=cmd_tables)
    s = command("schedules", help="list your scheduled exports and their next runs")
    s.set_defaults(func=cmd_schedules)
    return p


def _write_task_options(s: argparse.ArgumentParser, reason_help: str) -> None:
    """The options every task that writes rows has (import, generate)."""
    s.add_argument(
        "--mode",
        choices=sorted(MODES),
        default="insert",
        help="rows whose key exists: fail the task (insert), leave them (skip-existing), or "
        "update them, the old rows saved first (upsert)",
    )
    s.add_argument(
        "--executor",
        choices=sorted(EXECUTORS),
        default="auto",
        help="who starts it once approved: nobody (auto), you, or an approver",
    )
    s.add_argument("--reason", default="", help=reason_help)
    s.add_argument("--name", default="", help="a short name for the task")


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
    """Run one command. Every way it can end becomes an exit code and at most one line on
    stderr here, in one place; only argparse's own exits (usage, --help) pass as SystemExit."""
    try:
        return _run(argv)
    except KeyboardInterrupt:
        return _fail("interrupted", EXIT_INTERRUPTED)
    except BrokenPipeError:
        _discard_stdout()
        return EXIT_BROKEN_PIPE


def _run(argv: Sequence[str] | None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit:  # argparse printed help, a version or a usage error
        sys.stdout.flush()  # a closed pipe shows here, where main handles it
        raise
    try:
        args.user = _resolve_user(args.user, credentials=bool(args.token or args.cert))
        client = Client(args)
    except UsageError as exc:
        return _fail(str(exc), EXIT_USAGE)
    try:
        code = int(args.func(args, client))
        sys.stdout.flush()  # a reader that went away shows here, not at interpreter exit
        return code
    except UsageError as exc:
        return _fail(str(exc), EXIT_USAGE)
    except grpc.RpcError as exc:
        if _unreachable(exc):
            return _fail(
                f"cannot reach the service at {args.addr}; is it running?", EXIT_UNREACHABLE
            )
        code = exc.code()  # type: ignore[attr-defined]
        return _fail(f"{code.name}: {exc.details()}", EXIT_REFUSED)  # type: ignore[attr-defined]
    except BrokenPipeError:
        raise
    except Exception as exc:  # a bug: still one line, the traceback only when asked for
        if os.environ.get("WOXQAQ_DEBUG"):
            traceback.print_exc()
        return _fail(
            f"unexpected error ({type(exc).__name__}: {exc}); set WOXQAQ_DEBUG=1 for details "
            "and report it",
            EXIT_REFUSED,
        )
    finally:
        client.channel.close()


def _fail(message: str, code: int) -> int:
    print(f"woxqaq: {message}", file=sys.stderr)
    return code


def _discard_stdout() -> None:
    """After the reader of stdout went away, let the interpreter's final flush go nowhere
    instead of failing again with a traceback."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        pass  # not a real file (a test's captured output): nothing will flush to a pipe


if __name__ == "__main__":
    sys.exit(main())
