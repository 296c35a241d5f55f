"""The `/export` modal, and reading its submission back into a SubmitTaskRequest.

Both modes' fields share one view; the mode switch rebuilds the view (views.update) with the
mode's fields. Block ids equal the field names, so an error lands on its field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.blocks.common import (
    EXPORT_MODE,
    MAX_OPTIONS,
    Block,
    actions,
    clip,
    context,
    escape,
    option,
    plain,
    section,
)
from woxqaq.generator_rules import ColumnGenerator, RuleError, parse_rules
from woxqaq.v1 import notification_service_pb2 as npb
from woxqaq.v1 import task_service_pb2 as pb

CALLBACK = "export_submit"
MODE_SQL, MODE_TABLES, MODE_IMPORT, MODE_GENERATE = "sql", "tables", "import", "generate"
MODES = (MODE_SQL, MODE_TABLES, MODE_IMPORT, MODE_GENERATE)
IMPORT_MODES = {
    "insert": pb.IMPORT_MODE_INSERT,
    "skip": pb.IMPORT_MODE_SKIP_EXISTING,
    "upsert": pb.IMPORT_MODE_UPSERT,
}
# The field a mode's problems are shown on when no other field is named.
MAIN_BLOCK = {MODE_SQL: "sql", MODE_TABLES: "tables", MODE_IMPORT: "file", MODE_GENERATE: "rules"}
MAX_INPUT = 3000  # Slack's plain_text_input max_length
METADATA_LIMIT = 3000

FORMATS = {"csv": pb.EXPORT_TYPE_CSV, "excel": pb.EXPORT_TYPE_EXCEL}
ENCODINGS = {"utf8": pb.ENCODING_UTF8, "utf8-bom": pb.ENCODING_UTF8_BOM, "gbk": pb.ENCODING_GBK}
CONTENTS = {
    "data": pb.EXPORT_CONTENT_DATA,
    "struct": pb.EXPORT_CONTENT_STRUCT,
    "all": pb.EXPORT_CONTENT_ALL,
}
EXECUTORS = {"auto": pb.EXEC_AUTO, "committer": pb.EXEC_COMMITTER, "approver": pb.EXEC_APPROVER}
_IDENT = re.compile(r"^[^\s,:;]+$")


@dataclass(frozen=True)
class Metadata:
    """What the modal carries between requests (private_metadata, ≤ 3000 characters)."""

    mode: str = MODE_SQL
    channel: str = ""
    response_url: str = ""

    def dump(self) -> str:
        data = {"mode": self.mode, "channel": self.channel, "response_url": self.response_url}
        text = json.dumps(data, separators=(",", ":"))
        if len(text) > METADATA_LIMIT:  # the confirmation then goes by DM instead
            text = json.dumps({"mode": self.mode, "channel": self.channel[:100]})
        return text

    @classmethod
    def load(cls, text: str) -> Metadata:
        try:
            data = json.loads(text or "{}")
        except ValueError:
            data = {}
        mode = data.get("mode") if data.get("mode") in MODES else MODE_SQL
        return cls(
            mode=mode,
            channel=str(data.get("channel", "")),
            response_url=str(data.get("response_url", "")),
        )


def _input(
    block_id: str,
    label: str,
    element: dict[str, Any],
    *,
    optional: bool = False,
    hint: str = "",
) -> Block:
    block: Block = {
        "type": "input",
        "block_id": block_id,
        "label": plain(label, 2000),
        "element": {**element, "action_id": block_id},
        "optional": optional,
    }
    if hint:
        block["hint"] = plain(hint, 2000)
    return block


def _text(
    placeholder: str = "", *, multiline: bool = False, max_length: int = MAX_INPUT
) -> dict[str, Any]:
    el: dict[str, Any] = {
        "type": "plain_text_input",
        "multiline": multiline,
        "max_length": max_length,
    }
    if placeholder:
        el["placeholder"] = plain(placeholder, 150)
    return el


def _select(options: Sequence[tuple[str, str]], initial: str | None = None) -> dict[str, Any]:
    opts = [option(text, value) for text, value in options[:MAX_OPTIONS]]
    el: dict[str, Any] = {"type": "static_select", "options": opts}
    chosen = next((o for o in opts if o["value"] == initial), None)
    if chosen:
        el["initial_option"] = chosen
    return el


def export_modal(
    datasources: Sequence[npb.Datasource], meta: Metadata, *, problem: str = ""
) -> dict[str, Any]:
    names = [(clip(d.name, 75), d.name[:150]) for d in datasources]
    blocks: list[Block] = []
    if problem:
        blocks.append(section(f":warning: {escape(problem)}"))
    if not names:
        blocks.append(section(":warning: The service has no datasource configured."))
    else:
        blocks.append(
            _input(
                "datasource",
                "Datasource",
                _select(names, names[0][1] if len(names) == 1 else None),
                hint=_datasource_hint(datasources),
            )
        )
        if len(datasources) > MAX_OPTIONS:
            blocks.append(context(f"Only the first {MAX_OPTIONS} datasources are listed."))
    blocks.append(
        _input(
            "database",
            "Database (schema)",
            _text("empty: the datasource's default", max_length=200),
            optional=True,
        )
    )
    radio: dict[str, Any] = {
        "type": "radio_buttons",
        "action_id": EXPORT_MODE,
        "options": [
            option("Export: SQL query", MODE_SQL),
            option("Export: tables", MODE_TABLES),
            option("Import a file", MODE_IMPORT),
            option("Generate test data", MODE_GENERATE),
        ],
    }
    radio["initial_option"] = radio["options"][MODES.index(meta.mode)]
    blocks.append(actions("mode", radio))
    if meta.mode == MODE_IMPORT:
        blocks += _import_fields()
        return _modal(meta, blocks, "New import")
    if meta.mode == MODE_GENERATE:
        blocks += _generate_fields()
        return _modal(meta, blocks, "New test data")
    if meta.mode == MODE_SQL:
        blocks.append(
            _input(
                "sql",
                "SQL",
                _text("SELECT order_no, amount FROM orders WHERE …", multiline=True),
                hint="Exactly one read-only query (SELECT or WITH … SELECT).",
            )
        )
    else:
        blocks += [
            _input(
                "tables",
                "Tables",
                _text("orders, customers", max_length=MAX_INPUT),
                optional=True,
                hint="Comma-separated; leave empty and tick below to export every table.",
            ),
            _input(
                "export_all",
                "Every table",
                {
                    "type": "checkboxes",
                    "options": [option("Export every table of the database", "all")],
                },
                optional=True,
            ),
            _input(
                "fields",
                "Fields",
                _text(
                    "order_no, amount   (or, per table:  orders: order_no, amount)", multiline=True
                ),
                optional=True,
                hint="Empty: all fields. With several tables write one line per table: "
                "`table: field, field`.",
            ),
            _input(
                "filter",
                "Filter",
                _text("status = 'paid' AND amount > 50", multiline=True),
                optional=True,
                hint="One condition over the table's own columns. With several tables: one line "
                "per table, `table: condition`.",
            ),
        ]
    blocks += [
        _input(
            "format",
            "Format",
            _select([("CSV", "csv"), ("Excel", "excel")], "csv"),
        ),
        _input(
            "encoding",
            "Encoding",
            _select(
                [("UTF-8", "utf8"), ("UTF-8 with BOM (for Excel)", "utf8-bom"), ("GBK", "gbk")],
                "utf8",
            ),
        ),
        _input(
            "content",
            "Content",
            _select(
                [("Data", "data"), ("Structure", "struct"), ("Structure and data", "all")], "data"
            ),
        ),
        _input(
            "reason",
            "Why do you need this data?",
            _text("Approvers read this", multiline=True),
        ),
        _executor_input(),
        _input(
            "schedule",
            "Schedule",
            {"type": "checkboxes", "options": [option("Run on a schedule", "cron")]},
            optional=True,
        ),
        _input(
            "cron",
            "Cron",
            _text("0 9 * * MON-FRI", max_length=200),
            optional=True,
            hint="Five fields: minute hour day-of-month month day-of-week. Only with a schedule.",
        ),
        _input("timezone", "Time zone", _text("UTC", max_length=64), optional=True),
        _input(
            "channel",
            "Post each run to",
            {"type": "conversations_select", "filter": {"include": ["public", "private"]}},
            optional=True,
        ),
    ]
    return _modal(meta, blocks, "New export")


def _modal(meta: Metadata, blocks: list[Block], title: str) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": CALLBACK,
        "private_metadata": meta.dump(),
        "title": plain(title, 24),
        "submit": plain("Submit", 24),
        "close": plain("Cancel", 24),
        "blocks": blocks,
    }


def _executor_input() -> Block:
    return _input(
        "executor",
        "Run it",
        _select(
            [
                ("Automatically after approval", "auto"),
                ("By me, when I click Execute", "committer"),
                ("By an approver", "approver"),
            ],
            "auto",
        ),
    )


def _import_fields() -> list[Block]:
    """An uploaded CSV or XLSX file into one table; the bot fetches the file on submit."""
    return [
        _input("table", "Into table", _text("promo_codes", max_length=200)),
        _input(
            "file",
            "File",
            {"type": "file_input", "filetypes": ["csv", "xlsx"], "max_files": 1},
            hint="CSV (UTF-8 or GBK) or Excel .xlsx, with a header row naming the columns.",
        ),
        _write_mode("import"),
        _input("encoding", "Encoding (CSV)", _select([("UTF-8", "utf8"), ("GBK", "gbk")], "utf8")),
        _input("sheet", "Sheet (Excel)", _text("empty: the first", max_length=200), optional=True),
        _input(
            "reason", "Why are these rows needed?", _text("Approvers read this", multiline=True)
        ),
        _executor_input(),
    ]


def _generate_fields() -> list[Block]:
    """Made-up rows into one table: how many, and one rule per column (the rest proposed)."""
    return [
        _input("table", "Into table", _text("users", max_length=200)),
        _input("rows", "Rows", _text("100000", max_length=20)),
        _input(
            "rules",
            "Column rules",
            _text("email: faker email zh_CN\nage: int 18 80", multiline=True),
            hint="One line per column: `email: faker email zh_CN`, `age: int 18 80`, "
            "`status: choice paid,refunded weights 9,1`, `note: null 0.3`. Columns without a "
            "rule get one proposed from their type and name; approvers see every one.",
            optional=True,
        ),
        _input("seed", "Seed", _text("empty: picked for you", max_length=20), optional=True),
        _write_mode("generation"),
        _input(
            "reason", "What is the test data for?", _text("Approvers read this", multiline=True)
        ),
        _executor_input(),
    ]


def _write_mode(what: str) -> Block:
    return _input(
        "import_mode",
        "Rows whose key exists",
        _select(
            [
                (f"Fail the {what}", "insert"),
                ("Skip them", "skip"),
                ("Update them (the old rows are saved)", "upsert"),
            ],
            "insert",
        ),
    )


def _datasource_hint(datasources: Sequence[npb.Datasource]) -> str:
    parts = []
    for d in datasources[:10]:
        extra = f" — {d.description}" if d.description else ""
        parts.append(f"{d.name}{extra}")
    return clip("; ".join(parts), 1900) if any(d.description for d in datasources) else ""


def message_modal(title: str, text: str) -> dict[str, Any]:
    """A modal showing one message (the outcome of a submission, or that it is being checked)."""
    return {
        "type": "modal",
        "title": plain(clip(title, 24), 24),
        "close": plain("Close", 24),
        "blocks": [section(text)],
    }


# -- reading a submission ----------------------------------------------------------------


@dataclass(frozen=True)
class Parsed:
    request: pb.SubmitTaskRequest | None
    errors: dict[str, str] = field(default_factory=dict)
    file_id: str = ""  # an import's Slack file, to fetch and upload before submitting


def _value(values: dict[str, Any], block: str) -> Any:
    return values.get(block, {}).get(block, {})


def _text_of(values: dict[str, Any], block: str) -> str:
    return (_value(values, block).get("value") or "").strip()


def _choice(values: dict[str, Any], block: str, default: str = "") -> str:
    selected = _value(values, block).get("selected_option") or {}
    return selected.get("value", default)


def _checked(values: dict[str, Any], block: str) -> bool:
    return bool(_value(values, block).get("selected_options"))


def _split(text: str) -> list[str]:
    return [p.strip() for p in re.split(r"[,\n]", text) if p.strip()]


def _per_table(text: str, tables: list[str], what: str) -> tuple[dict[str, str], str]:
    """`table: value` lines, or one bare value when there is one table; (mapping, error)."""
    if not text:
        return {}, ""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    prefixed = {}
    for line in lines:
        head, sep, rest = line.partition(":")
        if sep and head.strip() in tables:
            prefixed[head.strip()] = rest.strip()
    if prefixed and len(prefixed) == len(lines):
        return prefixed, ""
    if len(tables) == 1:
        return {tables[0]: " ".join(lines) if what == "filter" else ", ".join(lines)}, ""
    return {}, f"With several tables write one line per table: `table: {what}`."


def parse_submission(values: dict[str, Any], meta: Metadata) -> Parsed:
    """The request the form describes, or the errors to show on its fields."""
    errors: dict[str, str] = {}
    dsn = _choice(values, "datasource")
    if not dsn:
        errors["datasource"] = "Choose a datasource."
    reason = _text_of(values, "reason")
    if not reason:
        errors["reason"] = "Say why you need this data; approvers decide on it."
    if meta.mode == MODE_IMPORT:
        return _parse_import(values, dsn, reason, errors)
    if meta.mode == MODE_GENERATE:
        return _parse_generate(values, dsn, reason, errors)
    ded = pb.DataExportDetail(
        database=_text_of(values, "database"),
        type=FORMATS.get(_choice(values, "format", "csv"), pb.EXPORT_TYPE_CSV),
        encoding=ENCODINGS.get(_choice(values, "encoding", "utf8"), pb.ENCODING_UTF8),
        export_reason=reason,
        exector=EXECUTORS.get(_choice(values, "executor", "auto"), pb.EXEC_AUTO),
    )
    ded.eatt.content = CONTENTS.get(_choice(values, "content", "data"), pb.EXPORT_CONTENT_DATA)
    if meta.mode == MODE_SQL:
        sql = _text_of(values, "sql")
        if not sql:
            errors["sql"] = "Write the query to export."
        ded.ebs.statement = sql
    else:
        tables = _split(_text_of(values, "tables"))
        export_all = _checked(values, "export_all")
        bad = [t for t in tables if not _IDENT.match(t)]
        if bad:
            errors["tables"] = f"Not a table name: {clip(bad[0], 100)}"
        elif not tables and not export_all:
            errors["tables"] = "Name at least one table, or tick “Export every table”."
        elif tables and export_all:
            errors["tables"] = "Either name tables or tick “Export every table”, not both."
        fields_by_table, err = _per_table(_text_of(values, "fields"), tables, "field, field")
        if err:
            errors["fields"] = err
        filters, err = _per_table(_text_of(values, "filter"), tables, "condition")
        if err:
            errors["filter"] = err
        ded.eatt.export_all = export_all
        for table in tables:
            cols = _split(fields_by_table.get(table, ""))
            ded.eatt.option.add(
                table=table, all_field=not cols, fields=cols, filter=filters.get(table, "")
            )
    schedule = pb.Schedule(trigger=pb.TRIGGER_KIND_CURRENT)
    cron = _text_of(values, "cron")
    if _checked(values, "schedule"):
        channel = _value(values, "channel").get("selected_conversation") or ""
        if not cron:
            errors["cron"] = "Give the cron expression of the schedule, e.g. `0 9 * * MON-FRI`."
        if not channel:
            errors["channel"] = "Choose the channel each run is posted to."
        schedule = pb.Schedule(
            trigger=pb.TRIGGER_KIND_CRON,
            cron=cron,
            timezone=_text_of(values, "timezone") or "UTC",
            channel=channel,
        )
    elif cron:
        errors["schedule"] = "Tick “Run on a schedule” to use the cron expression, or clear it."
    if errors:
        return Parsed(None, errors)
    request = pb.SubmitTaskRequest(
        name=clip(reason.splitlines()[0], 200),
        kind=pb.TASK_KIND_DATA_EXPORT,
        dsn=dsn,
        ded=ded,
        schedule=schedule,
    )
    return Parsed(request)


def _parse_import(values: dict[str, Any], dsn: str, reason: str, errors: dict[str, str]) -> Parsed:
    table = _text_of(values, "table")
    if not table:
        errors["table"] = "Name the table the rows go into."
    files = _value(values, "file").get("files") or []
    if not files:
        errors["file"] = "Attach the CSV or Excel file to import."
    if errors:
        return Parsed(None, errors)
    name = str(files[0].get("name", ""))
    dimd = pb.DataImportDetail(
        database=_text_of(values, "database"),
        table=table,
        format=pb.EXPORT_TYPE_EXCEL if name.lower().endswith(".xlsx") else pb.EXPORT_TYPE_CSV,
        encoding=ENCODINGS.get(_choice(values, "encoding", "utf8"), pb.ENCODING_UTF8),
        mode=IMPORT_MODES.get(_choice(values, "import_mode", "insert"), pb.IMPORT_MODE_INSERT),
        sheet=_text_of(values, "sheet"),
        import_reason=reason,
        exector=EXECUTORS.get(_choice(values, "executor", "auto"), pb.EXEC_AUTO),
    )
    request = pb.SubmitTaskRequest(
        name=clip(reason.splitlines()[0], 200), kind=pb.TASK_KIND_DATA_IMPORT, dsn=dsn, dimd=dimd
    )
    return Parsed(request, file_id=str(files[0].get("id", "")))


def _parse_generate(
    values: dict[str, Any], dsn: str, reason: str, errors: dict[str, str]
) -> Parsed:
    table = _text_of(values, "table")
    if not table:
        errors["table"] = "Name the table to fill."
    rows_text = _text_of(values, "rows").replace(",", "").replace("_", "")
    if not rows_text.isdigit() or int(rows_text) < 1:
        errors["rows"] = "Give the number of rows to write, e.g. 100000."
    seed_text = _text_of(values, "seed")
    if seed_text and not seed_text.lstrip("-").isdigit():
        errors["seed"] = "A seed is a whole number; leave it empty to have one picked."
    rules: list[ColumnGenerator] = []
    try:
        rules = parse_rules(_text_of(values, "rules").splitlines())
    except RuleError as exc:
        errors["rules"] = clip(str(exc), 1500)
    if errors:
        return Parsed(None, errors)
    dgd = pb.DataGenerateDetail(
        database=_text_of(values, "database"),
        table=table,
        rows=min(int(rows_text), 2**62),
        seed=int(seed_text) if seed_text else 0,
        mode=IMPORT_MODES.get(_choice(values, "import_mode", "insert"), pb.IMPORT_MODE_INSERT),
        generate_reason=reason,
        exector=EXECUTORS.get(_choice(values, "executor", "auto"), pb.EXEC_AUTO),
        columns=[
            pb.ColumnGenerator(
                column=g.column, kind=g.kind, params=dict(g.params), null_ratio=g.null_ratio
            )
            for g in rules
        ],
    )
    request = pb.SubmitTaskRequest(
        name=clip(reason.splitlines()[0], 200), kind=pb.TASK_KIND_DATA_GENERATE, dsn=dsn, dgd=dgd
    )
    return Parsed(request)


def precheck_errors(messages: Sequence[str], meta: Metadata, scheduled: bool) -> dict[str, str]:
    """The service's pre-check messages placed on the fields they are about."""
    by_block: dict[str, list[str]] = {}
    main = MAIN_BLOCK[meta.mode]
    for msg in messages:
        low = msg.lower()
        if scheduled and "timezone" in low:
            block = "timezone"
        elif scheduled and "channel" in low:
            block = "channel"
        elif scheduled and ("cron" in low or "schedule" in low):
            block = "cron"
        elif meta.mode == MODE_TABLES and "filter" in low:
            block = "filter"
        elif meta.mode == MODE_TABLES and ("field" in low or "column" in low):
            block = "fields"
        elif meta.mode in (MODE_IMPORT, MODE_GENERATE) and (
            "writ" in low or "allow_generate" in low or ("table" in low and "exist" in low)
        ):
            block = "table"
        elif meta.mode == MODE_GENERATE and "max_rows" in low:
            block = "rows"
        elif "database" in low and "does not exist" in low:
            block = "database"
        else:
            block = main
        by_block.setdefault(block, []).append(msg)
    return {block: clip(" ".join(msgs), 1500) for block, msgs in by_block.items()}
