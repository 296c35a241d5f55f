"""How a task is described wherever it appears: what it exports, who voted, its summary."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.blocks.common import (
    CONTENT_LABELS,
    ENCODING_LABELS,
    EXECUTOR_LABELS,
    FORMAT_LABELS,
    SECTION_TEXT,
    Block,
    as_datetime,
    clip_escaped,
    code_block,
    escape,
    own_words,
    section,
    when,
)
from woxqaq.v1 import task_service_pb2 as pb

SQL_PREVIEW = 2400  # leaves room in a 50-block message; the rest is behind "Show full SQL"


@dataclass(frozen=True)
class Vote:
    voter: str
    approve: bool
    comment: str
    time: datetime | None


def votes(events: Sequence[pb.TaskEvent]) -> list[Vote]:
    return [
        Vote(e.actor, e.action == "approve", own_words(e.comment), as_datetime(e.time))
        for e in events
        if e.action in ("approve", "reject")
    ]


def last_event(events: Sequence[pb.TaskEvent], *actions: str) -> pb.TaskEvent | None:
    for e in reversed(events):
        if e.action in actions:
            return e
    return None


def is_sql(ded: pb.DataExportDetail) -> bool:
    return bool(ded.ebs.statement.strip())


def what(ded: pb.DataExportDetail, *, sql_limit: int = SQL_PREVIEW) -> tuple[list[Block], bool]:
    """Blocks saying what is exported; True when the SQL had to be shortened."""
    if is_sql(ded):
        text, cut = code_block(ded.ebs.statement, sql_limit)
        return [section(f"*SQL*\n{text}")], cut
    eatt = ded.eatt
    if eatt.export_all:
        return [section("*Tables*\nevery table of the database")], False
    lines: list[str] = []
    for opt in eatt.option:
        cols = "all fields" if opt.all_field or not opt.fields else ", ".join(opt.fields)
        line = f"• `{opt.table}`: {cols}"
        if opt.filter:
            line += f" where `{opt.filter}`"
        lines.append(line)
    body, cut = clip_escaped("\n".join(lines), SECTION_TEXT - 20)
    return [section(f"*Tables*\n{body}")], cut


def format_line(ded: pb.DataExportDetail) -> str:
    fmt = FORMAT_LABELS.get(ded.type, "CSV")
    enc = ENCODING_LABELS.get(ded.encoding, "UTF-8")
    content = CONTENT_LABELS.get(ded.eatt.content, "data")
    return f"{fmt}, {enc}, {content}"


def executor_line(ded: pb.DataExportDetail) -> str:
    return EXECUTOR_LABELS.get(ded.exector, EXECUTOR_LABELS[pb.EXEC_AUTO])


def schedule_line(task: pb.TaskListData) -> str:
    s = task.schedule
    if s.trigger != pb.TRIGGER_KIND_CRON:
        return "once"
    where = f" to <#{s.channel}>" if s.channel.isalnum() and s.channel else ""
    return f"`{escape(s.cron)}` ({escape(s.timezone or 'UTC')}){where}"


def next_runs(task: pb.TaskListData, count: int = 3) -> str:
    """The schedule's next firings, as the service computed them, as dates Slack shows in
    the reader's time zone."""
    s = task.schedule
    if s.trigger != pb.TRIGGER_KIND_CRON:
        return ""
    return ", ".join(when(t) for t in s.next_fire_times[:count]) or "—"


def reason(ded: pb.DataExportDetail, limit: int = 1500) -> str:
    text, _ = clip_escaped(ded.export_reason.strip() or "(no reason given)", limit)
    return "\n".join(f"> {line}" for line in text.splitlines()) or "> "
