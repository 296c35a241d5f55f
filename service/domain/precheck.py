"""Pre-check rules: may this export run at all? Pure functions over the request and the schema.

SQL is judged on sqlglot's AST, never by pattern matching on the text: a keyword inside a
string literal is data, and a comment cannot hide a statement from a parser. Where the
tokenizer and the database could read the same text differently (MySQL executable comments,
backslashes before quotes), the text is rejected rather than guessed at. The read-only
transaction and statement timeout at execution are the second wall, not the first.
"""

from __future__ import annotations

import difflib
import itertools
import re
import unicodedata
from collections.abc import Collection, Iterator, Mapping, Sequence

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ParseError, SqlglotError, TokenError
from sqlglot.tokens import Token, TokenType

from service.domain import placeholders
from service.domain.filters import filter_problems
from service.domain.functions import judge_mysql_functions, mysql_calls, read_pg_statement
from service.domain.model import ExportSpec

SUPPORTED_DIALECTS = ("sqlite", "postgres", "mysql")
DIALECT_NAMES = {"sqlite": "SQLite", "postgres": "PostgreSQL", "mysql": "MySQL"}

# Large enough for a query with an IN list of tens of thousands of ids; sqlglot parses about
# 300 kB a second, so this also bounds how long a pre-check can take.
MAX_STATEMENT_CHARS = 1_000_000
MAX_PROBLEMS = 20

READ_ONLY = "only read-only queries (SELECT / WITH … SELECT) can be exported"

# Statement nodes that write, change the session or run something other than a query.
# Checked anywhere in the tree, so a DELETE inside a CTE is found as well as a top-level one.
_STATEMENT_NAMES: dict[type[exp.Expression], str] = {
    exp.Insert: "INSERT",
    exp.Update: "UPDATE",
    exp.Delete: "DELETE",
    exp.Merge: "MERGE",
    exp.Copy: "COPY",
    exp.Create: "CREATE",
    exp.Drop: "DROP",
    exp.Alter: "ALTER",
    exp.AlterRename: "ALTER … RENAME",
    exp.TruncateTable: "TRUNCATE",
    exp.Set: "SET",
    exp.Grant: "GRANT",
    exp.Revoke: "REVOKE",
    exp.Pragma: "PRAGMA",
    exp.Attach: "ATTACH",
    exp.Detach: "DETACH",
    exp.Transaction: "BEGIN",
    exp.Commit: "COMMIT",
    exp.Rollback: "ROLLBACK",
    exp.Use: "USE",
    exp.LoadData: "LOAD DATA",
    exp.Cache: "CACHE",
    exp.Uncache: "UNCACHE",
    exp.Analyze: "ANALYZE",
    exp.Describe: "DESCRIBE",
    exp.Show: "SHOW",
    exp.Summarize: "SUMMARIZE",
    exp.Kill: "KILL",
    exp.Refresh: "REFRESH",
    exp.Comment: "COMMENT",
    exp.Execute: "EXECUTE",
    exp.ExecuteSql: "EXECUTE",
    exp.Export: "EXPORT",
    exp.Declare: "DECLARE",
    exp.Install: "INSTALL",
    exp.Put: "PUT",
    exp.Get: "GET",
    exp.Undrop: "UNDROP",
    exp.SwapTable: "SWAP",
    exp.LockingStatement: "LOCKING",
    exp.StoredProcedure: "EXEC",
    exp.IfBlock: "IF",
    exp.WhileBlock: "WHILE",
    exp.LoopBlock: "LOOP",
    exp.RepeatBlock: "REPEAT",
    exp.Block: "BEGIN … END",
    exp.Return: "RETURN",
}

# Keywords that start a statement which is not a query; names the statement when sqlglot
# cannot parse it (LOAD DATA, HANDLER) or parses it as something odd (LISTEN as an alias).
_STATEMENT_KEYWORDS = frozenset(
    {
        "ALTER",
        "ANALYZE",
        "ATTACH",
        "BEGIN",
        "CALL",
        "CHECKPOINT",
        "CHECKSUM",
        "CLOSE",
        "CLUSTER",
        "COMMENT",
        "COMMIT",
        "COPY",
        "CREATE",
        "DEALLOCATE",
        "DECLARE",
        "DELETE",
        "DESC",
        "DESCRIBE",
        "DETACH",
        "DISCARD",
        "DO",
        "DROP",
        "EXECUTE",
        "EXPLAIN",
        "FETCH",
        "FLUSH",
        "GRANT",
        "HANDLER",
        "IMPORT",
        "INSERT",
        "INSTALL",
        "KILL",
        "LISTEN",
        "LOAD",
        "LOCK",
        "MERGE",
        "MOVE",
        "NOTIFY",
        "OPTIMIZE",
        "PRAGMA",
        "PREPARE",
        "PURGE",
        "REASSIGN",
        "REFRESH",
        "REINDEX",
        "RELEASE",
        "RENAME",
        "REPAIR",
        "REPLACE",
        "RESET",
        "REVOKE",
        "ROLLBACK",
        "SAVEPOINT",
        "SECURITY",
        "SET",
        "SHOW",
        "SHUTDOWN",
        "START",
        "TRUNCATE",
        "UNINSTALL",
        "UNLISTEN",
        "UNLOCK",
        "UPDATE",
        "UPSERT",
        "USE",
        "VACUUM",
    }
)

# Functions an export must never call, by what they do. Checked on every function node after
# Unicode normalisation and lower-casing, whether sqlglot knows the function or not.
_SLEEPS = "sleeps or waits"
_FILES = "reads or writes files on the database server"
_NETWORK = "opens network connections"
_LOCKS = "takes or releases locks"
_STATE = "changes sequences or transaction state"
_ADMIN = "changes server settings or other sessions"
_DYNAMIC = "runs SQL given as text, which cannot be checked"
_NOTIFY = "sends notifications"
_NATIVE = "loads or runs native code"

_DENIED_FUNCTIONS: dict[str, str] = {
    **dict.fromkeys(
        [
            "pg_sleep",
            "pg_sleep_for",
            "pg_sleep_until",
            "sleep",
            "benchmark",
            "master_pos_wait",
            "source_pos_wait",
            "wait_for_executed_gtid_set",
            "wait_until_sql_thread_after_gtids",
        ],
        _SLEEPS,
    ),
    **dict.fromkeys(
        [
            "pg_read_file",
            "pg_read_binary_file",
            "pg_stat_file",
            "pg_logdir_ls",
            "loread",
            "lowrite",
            "load_file",
            "readfile",
            "writefile",
            "edit",
            "fsdir",
            "zipfile",
        ],
        _FILES,
    ),
    **dict.fromkeys(["dblink", "http"], _NETWORK),
    **dict.fromkeys(
        ["get_lock", "release_lock", "release_all_locks", "is_free_lock", "is_used_lock"], _LOCKS
    ),
    **dict.fromkeys(
        [
            "nextval",
            "setval",
            "currval",
            "lastval",
            "last_insert_id",
            "txid_current",
            "txid_current_if_assigned",
            "pg_current_xact_id",
            "pg_current_xact_id_if_assigned",
            "pg_export_snapshot",
            "setseed",
        ],
        _STATE,
    ),
    **dict.fromkeys(
        [
            "set_config",
            "pg_terminate_backend",
            "pg_cancel_backend",
            "pg_reload_conf",
            "pg_rotate_logfile",
            "pg_promote",
            "pg_log_backend_memory_contexts",
            "pg_import_system_collations",
            "pg_prewarm",
            "pg_truncate_visibility_map",
        ],
        _ADMIN,
    ),
    **dict.fromkeys(["ts_stat", "eval", "xmlquery"], _DYNAMIC),
    **dict.fromkeys(["pg_notify"], _NOTIFY),
    **dict.fromkeys(
        [
            "load_extension",
            "fts3_tokenizer",
            "sys_exec",
            "sys_eval",
            "sys_get",
            "sys_set",
            "sys_bineval",
            "lib_mysqludf_sys_info",
            "xp_cmdshell",
        ],
        _NATIVE,
    ),
}

# Whole families share a prefix (dblink_exec, lo_export, pg_advisory_xact_lock_shared, …).
_DENIED_PREFIXES: tuple[tuple[str, str], ...] = (
    ("pg_sleep", _SLEEPS),
    ("pg_ls_", _FILES),
    ("pg_read_", _FILES),
    ("pg_file_", _FILES),
    ("lo_", _FILES),
    ("dblink_", _NETWORK),
    ("http_", _NETWORK),
    ("pg_advisory", _LOCKS),
    ("pg_try_advisory", _LOCKS),
    ("pg_stat_reset", _ADMIN),
    ("pg_stat_statements_reset", _ADMIN),
    ("pg_create_", _ADMIN),
    ("pg_drop_replication", _ADMIN),
    ("pg_copy_", _ADMIN),
    ("pg_replication_", _ADMIN),
    ("pg_logical_", _ADMIN),
    ("pg_wal_", _ADMIN),
    ("pg_switch_", _ADMIN),
    ("pg_backup_", _ADMIN),
    ("pg_start_backup", _ADMIN),
    ("pg_stop_backup", _ADMIN),
    ("query_to_xml", _DYNAMIC),
    ("cursor_to_xml", _DYNAMIC),
    ("table_to_xml", _DYNAMIC),
    ("schema_to_xml", _DYNAMIC),
    ("database_to_xml", _DYNAMIC),
)


def check_export(
    spec: ExportSpec,
    dialect: str,
    schema: Mapping[str, Sequence[str]] | None,
    allowed_functions: Collection[str] = (),
) -> list[str]:
    """All pre-check problems of an export request; an empty list means it may go to approval.

    `schema` (table -> column names of the live database) is needed in table mode only;
    `allowed_functions` names the stored functions the datasource allows (MySQL/MariaDB).
    """
    _require_dialect(dialect)
    if spec.is_sql:
        problems = []
        if spec.tables:
            problems.append(
                "the request has both a SQL statement and tables: "
                "give either a SQL query or a list of tables, not both"
            )
        if spec.export_all:
            problems.append(
                "the request has both a SQL statement and export_all: "
                "turn export_all off to export the query's result, or leave the SQL empty"
            )
        return problems + check_sql(spec.statement, dialect, allowed_functions)
    if schema is None:
        raise ValueError("table mode needs the live schema of the database")
    return check_table_export(spec, schema, dialect)


def check_sql(statement: str, dialect: str, allowed_functions: Collection[str] = ()) -> list[str]:
    """Problems that keep `statement` from being exported; an empty list means it is accepted.

    Accepted is exactly one read-only query: SELECT, WITH … SELECT, UNION / INTERSECT /
    EXCEPT of those, each possibly in parentheses. On PostgreSQL the statement must also
    read so to PostgreSQL's own parser, and the names it calls are checked as that parser
    decodes them (the catalog's verdict on them is the adapter's part); on MySQL/MariaDB
    only built-in functions and those in `allowed_functions` may be called.
    """
    _require_dialect(dialect)
    if not statement.strip():
        return ["the SQL statement is empty: write one SELECT query"]
    if len(statement) > MAX_STATEMENT_CHARS:
        return [
            f"the SQL statement is {len(statement):,} characters long, more than the "
            f"{MAX_STATEMENT_CHARS:,} allowed: shorten it (for a long list of values, "
            "export the table with a filter instead)"
        ]
    if "\x00" in statement:
        return ["the SQL statement contains a NUL character: remove it"]
    problems = _placeholder_problems(statement)
    statement = placeholders.for_parsing(statement)
    pg = read_pg_statement(statement) if dialect == "postgres" else None
    if pg is not None and pg.syntax_error:
        return [*problems, pg.syntax_error]  # the server's own parser, in its words
    d = Dialect.get_or_raise(dialect)
    try:
        tokens = d.tokenize(statement)
    except TokenError as exc:
        return [
            f"the SQL could not be read as {DIALECT_NAMES[dialect]} SQL ({_short(exc)}): "
            "check for an unclosed quote or comment"
        ]
    except (SqlglotError, RecursionError, ValueError):
        return [f"the SQL could not be read as {DIALECT_NAMES[dialect]} SQL: check its syntax"]

    problems += _comment_problems(tokens)
    problems += _quoted_placeholder_problems(tokens)
    if dialect in ("mysql", "postgres"):
        problems += _ambiguous_string_problems(tokens, statement, dialect)
    statements = _split_statements(tokens)
    if not statements:
        return [*problems, "the SQL statement holds no query, only comments or semicolons"]
    if len(statements) > 1:
        problems.append(
            f"the SQL holds {len(statements)} statements: submit exactly one query, "
            "without anything after its semicolon"
        )
    # Only as many statements as there can be messages: thousands would be parsed for nothing.
    for number, chunk in enumerate(statements[:MAX_PROBLEMS], 1):
        problems += _statement_problems(number, chunk, statement, d, dialect, allowed_functions)
    if pg is not None:  # names as PostgreSQL decodes them, even where sqlglot gave up
        denied = [
            f"the query calls {fn}(), which {reason}: remove the call; an export may only read data"
            for fn in pg.functions
            if (reason := _denied_reason(normalize_name(fn.name))) is not None
            and not any(f" calls {fn.name}()" in p for p in problems)  # named already
        ]
        problems = denied + problems + (list(pg.problems) if not problems else [])
    return _unique(problems)[:MAX_PROBLEMS]


def _placeholder_problems(statement: str) -> list[str]:
    known = ", ".join(f"{{{{{n}}}}}" for n in placeholders.NAMES)
    return [
        f"{{{{{name}}}}} is not a placeholder: use {known}"
        for name in placeholders.unknown(statement)
    ]


def _quoted_placeholder_problems(tokens: list[Token]) -> list[str]:
    """A placeholder inside quotes would stay text; it must stand where a value stands."""
    found = []
    for token in tokens:
        if token.token_type is not TokenType.VAR:  # strings, quoted names, dollar quotes
            found += [n for n in placeholders.NAMES if placeholders.stand_in(n) in token.text]
    return [
        f"{{{{{name}}}}} is inside quotes, where it would stay text: write it without quotes "
        "(it is bound as a date or time value)"
        for name in _unique(found)
    ]


def check_table_export(
    spec: ExportSpec, schema: Mapping[str, Sequence[str]], dialect: str
) -> list[str]:
    """Table mode: the tables, fields and filters of `spec` against the live `schema`."""
    _require_dialect(dialect)
    where = f"database {spec.database!r}" if spec.database else "the default database"
    problems: list[str] = []
    if not spec.tables and not spec.export_all:
        problems.append(
            "no table chosen: choose at least one table, or set export_all "
            f"to export every table of {where}"
        )
    if spec.export_all and not schema:
        problems.append(f"{where} has no tables, so export_all has nothing to export")
    seen: set[str] = set()
    for number, option in enumerate(spec.tables, 1):
        name = option.table
        if not name.strip():
            problems.append(f"table {number} of the request has no name: name the table")
            continue
        if name in seen:
            problems.append(f"table {name!r} is listed twice: list each table once")
            continue
        seen.add(name)
        columns = schema.get(name)
        if columns is None:
            problems.append(
                f"table {name!r} does not exist in {where}{_suggest(name, list(schema), 'tables')}"
            )
            continue
        if not option.all_fields:
            problems += _field_problems(name, option.fields, columns)
        if option.filter.strip():
            problems += filter_problems(option.filter, columns, dialect, name)
    return _unique(problems)


def _field_problems(table: str, fields: Sequence[str], columns: Sequence[str]) -> list[str]:
    if not fields:
        return [f"table {table!r}: no fields chosen: choose some fields or export all fields"]
    problems = []
    seen: set[str] = set()
    for name in fields:
        if name in seen:
            problems.append(f"table {table!r}: field {name!r} is listed twice: list it once")
        elif name not in columns:
            problems.append(
                f"table {table!r} has no field {name!r}{_suggest(name, list(columns), 'fields')}"
            )
        seen.add(name)
    return problems


def _suggest(name: str, choices: list[str], what: str) -> str:
    """'; did you mean …?' for close names, else the available names (a few of them)."""
    folded = [c for c in choices if c.casefold() == name.casefold()]
    close = folded or difflib.get_close_matches(name, choices, n=3, cutoff=0.6)
    if close:
        return "; did you mean " + " or ".join(repr(c) for c in close) + "?"
    if not choices:
        return f" (it has no {what})"
    shown = sorted(choices)[:30]
    more = f" and {len(choices) - len(shown)} more" if len(choices) > len(shown) else ""
    return f"; its {what} are: {', '.join(shown)}{more}"


# --- SQL checks --------------------------------------------------------------------------


def _require_dialect(dialect: str) -> None:
    if dialect not in SUPPORTED_DIALECTS:
        raise ValueError(f"unsupported dialect {dialect!r}; expected one of {SUPPORTED_DIALECTS}")


def _comment_problems(tokens: list[Token]) -> list[str]:
    """MySQL runs the text of /*! … */ and /*M! … */ and obeys /*+ … */ hints.

    sqlglot attaches comments to tokens without their delimiters, so a comment starting with
    '!' or '+' is one of these. They are refused in every dialect: a MariaDB server behind a
    datasource would run them whatever the dialect is called.
    """
    problems = []
    for token in tokens:
        if token.token_type == TokenType.HINT:
            problems.append(_hint_problem(token.line))
        for comment in token.comments:
            if comment.startswith(("!", "M!")):
                problems.append(
                    f"the SQL contains a MySQL executable comment (/*! … */) near line "
                    f"{token.line}: MySQL runs the text inside it, so it cannot be checked; "
                    "remove the comment"
                )
            elif comment.startswith("+"):
                problems.append(_hint_problem(token.line))
    return problems


def _hint_problem(line: int) -> str:
    return (
        f"the SQL contains an optimizer hint (/*+ … */) near line {line}: "
        "hints are not allowed in exports; remove it"
    )


def _ambiguous_string_problems(tokens: list[Token], sql: str, dialect: str) -> list[str]:
    """A backslash before a quote ends the string or not depending on server settings
    (MySQL's NO_BACKSLASH_ESCAPES, PostgreSQL's standard_conforming_strings), so the server
    could see code where the check saw a string."""
    setting = "NO_BACKSLASH_ESCAPES" if dialect == "mysql" else "standard_conforming_strings"
    problems = []
    for token in tokens:
        if token.token_type not in (TokenType.STRING, TokenType.NATIONAL_STRING):
            continue
        raw = sql[token.start : token.end + 1]
        quote = next((c for c in raw if c in "'\""), "'")
        if "\\" + quote in raw:
            problems.append(
                f"the string literal at line {token.line}, column {token.col} has a backslash "
                f"before a quote, which the server reads differently depending on {setting}: "
                f"write the quote twice ({quote}{quote}) instead"
            )
    return problems


def _split_statements(tokens: list[Token]) -> list[list[Token]]:
    """Token lists of the statements between semicolons, empty ones left out."""
    statements: list[list[Token]] = []
    current: list[Token] = []
    for token in tokens:
        if token.token_type == TokenType.SEMICOLON:
            if current:
                statements.append(current)
            current = []
        else:
            current.append(token)
    if current:
        statements.append(current)
    return statements


def _statement_problems(
    number: int,
    tokens: list[Token],
    sql: str,
    d: Dialect,
    dialect: str,
    allowed_functions: Collection[str],
) -> list[str]:
    label = f"statement {number}"
    try:
        parsed = d.parser().parse(tokens, sql)
    except RecursionError:
        return [
            f"{label} is nested too deeply to be checked: "
            "flatten its parentheses and subqueries (a CTE helps)"
        ]
    except ParseError as exc:
        return [_keyword_problem(label, tokens) or _parse_problem(label, exc, dialect)]
    except (SqlglotError, ValueError, TypeError, KeyError, AttributeError):
        # sqlglot raises more than ParseError on hostile input; any failure is a rejection.
        return [
            _keyword_problem(label, tokens)
            or f"{label} could not be parsed as {DIALECT_NAMES[dialect]} SQL: check its syntax"
        ]
    tree = parsed[0] if parsed else None
    if tree is None:
        return []
    if not isinstance(tree, exp.Expression):  # fail closed on anything unexpected
        return [f"{label} could not be checked: write it as a plain SELECT query"]
    try:
        problems = _tree_problems(label, tree, tokens)
    except RecursionError:
        return [f"{label} is nested too deeply to be checked: flatten it"]
    if dialect == "mysql":  # denied names were named above; the rest must be built-ins
        calls = [
            c
            for c in mysql_calls(tokens, tree)
            if _denied_reason(normalize_name(c.name.name)) is None
        ]
        problems += judge_mysql_functions(calls, allowed_functions, normalize_name)
    return problems


def _keyword_problem(label: str, tokens: list[Token]) -> str | None:
    """Names statements that sqlglot cannot parse, by their tokens."""
    for before, after in itertools.pairwise(tokens):
        if before.text.upper() == "INTO" and after.text.upper() in ("OUTFILE", "DUMPFILE"):
            return (
                f"{label} writes a file on the server (INTO {after.text.upper()}): "
                "remove the INTO clause; the export itself writes the file"
            )
    first = tokens[0].text.upper() if tokens else ""
    if first in ("SELECT", "WITH", "(") and any(t.text.upper() == "INTO" for t in tokens):
        return (
            f"{label} uses SELECT … INTO, which writes to a table, a file or variables: "
            "remove the INTO clause; the export itself writes the file"
        )
    if first == "LOAD":
        return f"{label} is a LOAD DATA statement: {READ_ONLY}"
    if first in _STATEMENT_KEYWORDS:
        return f"{label} is {_a(first)} statement: {READ_ONLY}"
    return None


def _parse_problem(label: str, exc: ParseError, dialect: str) -> str:
    error = exc.errors[0] if exc.errors else {}
    description = str(error.get("description") or "syntax error")
    description = description.split(" but got <Token", 1)[0].split(" <Token", 1)[0]
    description = _SQLGLOT_CLASS.sub(lambda m: _node_words(m.group(1)), description)
    where = ""
    if error.get("line"):
        where = f" at line {error['line']}, column {error.get('col', '?')}"
    near = str(error.get("highlight") or "")
    near = f" near {near[:40]!r}" if near else ""
    return (
        f"{label} is not valid {DIALECT_NAMES[dialect]} SQL: {description}{near}{where}; "
        "fix the syntax and submit again"
    )


_SQLGLOT_CLASS = re.compile(r"<class 'sqlglot\.[\w.]*?\.(\w+)'>")
_NODE_WORDS = {"Mul": "*", "Div": "/", "Add": "+", "Sub": "-", "Mod": "%", "EQ": "=",
               "NEQ": "<>", "GT": ">", "LT": "<", "GTE": ">=", "LTE": "<=", "And": "AND",
               "Or": "OR", "Not": "NOT", "Is": "IS", "Like": "LIKE", "In": "IN"}  # fmt: skip


def _node_words(name: str) -> str:
    """sqlglot names the expression class that misses a part: say it as the SQL does."""
    if name in _NODE_WORDS:
        return f"the operator {_NODE_WORDS[name]}"
    return re.sub(r"(?<!^)(?=[A-Z])", " ", name).upper()


def _tree_problems(label: str, tree: exp.Expression, tokens: list[Token]) -> list[str]:
    root = tree
    while isinstance(root, exp.Subquery) and isinstance(root.this, exp.Expression):
        root = root.this
    if not isinstance(root, (exp.Select, exp.SetOperation)):
        return [_not_a_query(label, root, tokens)]

    problems = []
    for node in tree.walk():
        if node is tree:
            continue
        kind = _statement_kind(node)
        if kind is not None:
            place = "inside a CTE" if _inside_cte(node) else "inside the query"
            problems.append(f"{label} contains {kind} {place}: {READ_ONLY}")
        elif isinstance(node, exp.Lock):
            clause = "FOR UPDATE" if node.args.get("update") else "FOR SHARE / LOCK IN SHARE MODE"
            problems.append(
                f"{label} is a locking read ({clause}): an export never locks rows; "
                "remove the locking clause"
            )
        elif isinstance(node, exp.Into):
            problems.append(
                f"{label} uses SELECT … INTO, which writes to a table, a file or variables: "
                "remove the INTO clause; the export itself writes the file"
            )
        elif isinstance(node, exp.Placeholder) or (
            isinstance(node, exp.Parameter) and isinstance(node.this, exp.Literal)
        ):
            problems.append(
                f"{label} has a parameter placeholder, but an export has no values to bind: "
                "write the values into the query"
            )
        elif isinstance(node, exp.PropertyEQ):
            problems.append(
                f"{label} assigns a variable (:=): remove the assignment; "
                "an export may only read data"
            )
        elif isinstance(node, exp.Func):
            problems += _function_problems(label, node)
    return problems


def _not_a_query(label: str, root: exp.Expression, tokens: list[Token]) -> str:
    if isinstance(root, exp.Values):
        return (
            f"{label} is a bare VALUES list: write it as SELECT * FROM (VALUES …) AS v(…) "
            "to export it"
        )
    kind = _statement_kind(root)
    if kind is None and tokens and tokens[0].text.upper() in _STATEMENT_KEYWORDS:
        kind = tokens[0].text.upper()
    if kind is not None:
        return f"{label} is {_a(kind)} statement: {READ_ONLY}"
    first = tokens[0].text[:40] if tokens else ""
    return f"{label} is not a query (it starts with {first!r}): {READ_ONLY}"


def _a(keyword: str) -> str:
    article = "an" if keyword[:1] in "AEIOU" and keyword != "USE" else "a"
    return f"{article} {keyword}"


def _statement_kind(node: exp.Expr) -> str | None:
    if isinstance(node, exp.Command):
        return str(node.this or "command").upper()
    for cls, name in _STATEMENT_NAMES.items():
        if isinstance(node, cls):
            return name
    return None


def _inside_cte(node: exp.Expr) -> bool:
    parent = node.parent
    while parent is not None:
        if isinstance(parent, exp.CTE):
            return True
        parent = parent.parent
    return False


def _function_problems(label: str, node: exp.Func) -> list[str]:
    for name in _function_names(node):
        reason = _denied_reason(name)
        if reason is not None:
            return [
                f"{label} calls {name}(), which {reason}: remove the call; "
                "an export may only read data"
            ]
    return []


def _function_names(node: exp.Func) -> Iterator[str]:
    if isinstance(node, exp.Anonymous):
        yield normalize_name(node.name)
    else:
        # A function sqlglot knows under another spelling is checked under all of them.
        for name in type(node).sql_names():
            yield normalize_name(name)


def normalize_name(name: str) -> str:
    """The name a database would resolve: look-alike letters folded, invisible marks and
    whitespace dropped, lower case (quoted `"PG_SLEEP"` is refused as well as pg_sleep)."""
    folded = unicodedata.normalize("NFKC", name)
    kept = (c for c in folded if not c.isspace() and unicodedata.category(c) != "Cf")
    return "".join(kept).casefold()


def _denied_reason(name: str) -> str | None:
    reason = _DENIED_FUNCTIONS.get(name)
    if reason is not None:
        return reason
    for prefix, prefix_reason in _DENIED_PREFIXES:
        if name.startswith(prefix):
            return prefix_reason
    return None


def _short(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 120 else text[:117] + "…"


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))
