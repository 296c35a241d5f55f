"""Block Kit for imports: what approvers approve (table, mode, rows, columns, first rows,
SHA-256) and what a finished import wrote. Pure functions, clipped to Slack's limits."""

from __future__ import annotations

from bot.blocks.common import (
    EXECUTOR_LABELS,
    SECTION_TEXT,
    Block,
    clip,
    clip_escaped,
    code_block,
    context,
    escape,
    fields,
    section,
)
from woxqaq.v1 import task_service_pb2 as pb

MODE_LABELS = {
    pb.IMPORT_MODE_UNSPECIFIED: "insert new rows (an existing key fails it)",
    pb.IMPORT_MODE_INSERT: "insert new rows (an existing key fails it)",
    pb.IMPORT_MODE_SKIP_EXISTING: "insert new rows, skip existing keys",
    pb.IMPORT_MODE_UPSERT: "insert new rows, update existing keys (old rows saved first)",
}
PREVIEW_ROWS = 5
CELL_CHARS = 20


def is_import(task: pb.TaskListData) -> bool:
    return task.HasField("dimd")


def is_write(task: pb.TaskListData) -> bool:
    """An import or a generation: it writes rows, and approvers see its preview."""
    return task.HasField("dimd") or task.HasField("dgd")


def kind_of(task: pb.TaskListData) -> str:
    """ "Import", "Generation" or "Export", for titles."""
    if is_import(task):
        return "Import"
    return "Generation" if task.HasField("dgd") else "Export"


def executor_of(task: pb.TaskListData) -> int:
    """Who runs the task (`exector`), whichever kind it is."""
    if is_import(task):
        return task.dimd.exector
    return task.dgd.exector if task.HasField("dgd") else task.ded.exector


def import_summary(task: pb.TaskListData, preview: pb.TaskPreview | None) -> list[Block]:
    """Target table, mode, file, rows, SHA-256 prefix, executor; then columns and first rows."""
    d = task.dimd
    target = f"{d.database}.{d.table}" if d.database else d.table
    file_name = d.object_key.rsplit("/", 1)[-1]
    rows = f"{preview.total_rows:,}" if preview is not None and preview.sha256 else "—"
    sha = f"`{preview.sha256[:12]}…`" if preview is not None and preview.sha256 else "—"
    blocks: list[Block] = [
        fields(
            ("Into table", f"`{escape(clip(target, 200))}`"),
            ("Mode", MODE_LABELS.get(d.mode, "insert")),
            ("File", escape(clip(file_name, 200)) + (f", sheet {escape(d.sheet)}" * bool(d.sheet))),
            ("Rows", rows),
            ("SHA-256", sha),
            ("Runs", EXECUTOR_LABELS.get(d.exector, EXECUTOR_LABELS[pb.EXEC_AUTO])),
        )
    ]
    if preview is not None and preview.columns:
        columns, _ = clip_escaped(", ".join(preview.columns), 1500)
        blocks.append(context(f"Columns: {columns}"))
        if preview.rows:
            blocks.append(section(code_block(preview_grid(preview), SECTION_TEXT)[0]))
    return blocks


def preview_grid(preview: pb.TaskPreview) -> str:
    """The first rows as a fixed-width table that fits one section."""

    def cell(c: pb.PreviewCell) -> str:
        text = "NULL" if c.null else c.text.replace("\n", " ").replace("\r", " ")
        return text if len(text) <= CELL_CHARS else text[: CELL_CHARS - 1] + "…"

    header = [clip(c, CELL_CHARS) for c in preview.columns]
    rows = [[cell(c) for c in r.cells] for r in preview.rows[:PREVIEW_ROWS]]
    widths = [max(len(r[i]) for r in [header, *rows] if i < len(r)) for i in range(len(header))]
    lines = [
        " | ".join(v.ljust(w) for v, w in zip(r, widths, strict=False)).rstrip()
        for r in [header, *rows]
    ]
    text = "\n".join(lines)
    if preview.total_rows > len(rows):
        text += f"\n… {preview.total_rows - len(rows):,} more rows"
    return text


def import_reason(task: pb.TaskListData, limit: int = 1500) -> str:
    text, _ = clip_escaped(task.dimd.import_reason.strip() or "(no reason given)", limit)
    return "\n".join(f"> {line}" for line in text.splitlines()) or "> "


def written_fields(run: pb.TaskRun) -> Block:
    return fields(
        ("Written", f"{run.rows:,}"),
        ("Skipped", f"{run.rows_skipped:,}"),
        ("Updated", f"{run.rows_updated:,}"),
        ("Replaced rows saved", escape(run.backup_filename) if run.backup_filename else "—"),
    )
