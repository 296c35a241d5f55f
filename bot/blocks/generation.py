"""Block Kit for test-data generations: what approvers approve (table, rows, mode, seed, every
column's generator, the first rows exactly as they will be written). Pure functions, clipped
to Slack's limits."""

from __future__ import annotations

from bot.blocks.common import (
    EXECUTOR_LABELS,
    SECTION_TEXT,
    Block,
    clip,
    clip_escaped,
    code_block,
    escape,
    fields,
    section,
)
from bot.blocks.imports import MODE_LABELS, preview_grid
from woxqaq.generator_rules import ColumnGenerator, format_rule
from woxqaq.v1 import task_service_pb2 as pb


def is_generate(task: pb.TaskListData) -> bool:
    return task.HasField("dgd")


def generate_summary(task: pb.TaskListData, preview: pb.TaskPreview | None) -> list[Block]:
    """Target table, rows, mode, seed, executor; then the generators and the first rows."""
    g = task.dgd
    target = f"{g.database}.{g.table}" if g.database else g.table
    blocks: list[Block] = [
        fields(
            ("Into table", f"`{escape(clip(target, 200))}`"),
            ("Rows", f"{g.rows:,}"),
            ("Mode", MODE_LABELS.get(g.mode, "insert")),
            ("Seed", str(g.seed) if g.seed else "—"),
            ("Runs", EXECUTOR_LABELS.get(g.exector, EXECUTOR_LABELS[pb.EXEC_AUTO])),
        )
    ]
    if g.columns:
        rules = "\n".join(
            format_rule(ColumnGenerator(c.column, c.kind, dict(c.params), c.null_ratio))
            for c in g.columns
        )
        blocks.append(section("*Generators*\n" + code_block(rules, SECTION_TEXT - 20)[0]))
    if preview is not None and preview.rows:
        blocks.append(section(code_block(preview_grid(preview), SECTION_TEXT)[0]))
    return blocks


def generate_reason(task: pb.TaskListData, limit: int = 1500) -> str:
    text, _ = clip_escaped(task.dgd.generate_reason.strip() or "(no reason given)", limit)
    return "\n".join(f"> {line}" for line in text.splitlines()) or "> "
