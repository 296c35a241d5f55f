"""Which functions an export may call, judged by what the database itself says they are.

A list of bad names always misses a spelling (`U&"\\0064blink_exec"` is dblink_exec to
PostgreSQL), so names are read as the server reads them and the rules go the other way:

- PostgreSQL: the statement is parsed by PostgreSQL's own parser (libpg_query, through
  pglast), which decodes Unicode escapes and folds case exactly as the server does. Every
  called name is then looked up in the live catalog (an adapter's job); here the catalog's
  answers are judged: a VOLATILE built-in is refused unless it is on a short list, a
  function someone created (an extension's, a user's, in any language) is refused unless the
  datasource allows it by name, an unknown name is refused.
- MySQL/MariaDB: built-in functions come from an allowlist; any other name, quoted or
  qualified, is a stored or loadable function and is refused unless allowed by name.

Pure: no database access; the adapter passes in what the catalog said.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlglot import exp
from sqlglot.tokens import Token, TokenType

# Volatile built-ins that read nothing and change nothing outside their own result.
PG_VOLATILE_ALLOWED = frozenset(
    {"random", "random_normal", "clock_timestamp", "timeofday", "gen_random_uuid", "uuidv4",
     "uuidv7"}
)  # fmt: skip

ALLOW_KEY = "datasources.NAME.allowed_functions"


@dataclass(frozen=True, order=True)
class FunctionName:
    """A called name as the server reads it: decoded, case-folded, maybe schema-qualified."""

    schema: str | None
    name: str

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}" if self.schema else self.name


@dataclass(frozen=True)
class CatalogFunction:
    """One pg_proc entry the server could resolve a called name (or operator) to."""

    schema: str
    name: str
    builtin: bool  # created by initdb, not by an extension or a user
    volatility: str  # pg_proc.provolatile: 'i'mmutable, 's'table, 'v'olatile
    language: str

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}"


@dataclass(frozen=True)
class PgStatement:
    """What PostgreSQL's parser read: the functions and operators the statement calls, or
    the problems that keep it from being an export at all."""

    functions: tuple[FunctionName, ...] = ()
    operators: tuple[FunctionName, ...] = ()
    problems: tuple[str, ...] = ()
    syntax_error: str | None = None


def allowed(name: FunctionName, allowed_functions: Collection[str]) -> bool:
    """`allowed_functions` entries name a function as `name` or `schema.name`."""
    wanted = {a.strip().casefold() for a in allowed_functions}
    return name.name.casefold() in wanted or str(name).casefold() in wanted


# --- PostgreSQL ------------------------------------------------------------------------------


def read_pg_statement(sql: str) -> PgStatement:
    """Parse `sql` with PostgreSQL's own parser; the called names as the server decodes them."""
    from pglast.parser import ParseError, parse_sql_json

    try:
        tree = json.loads(parse_sql_json(sql))
    except ParseError as exc:
        return PgStatement(syntax_error=pg_syntax_problem(sql, exc))
    except RecursionError:  # the parser's tree is deeper than Python reads JSON
        return PgStatement(
            syntax_error="the statement is nested too deeply to be checked: flatten its "
            "parentheses and subqueries (a CTE helps)"
        )
    statements = tree.get("stmts", [])
    if len(statements) != 1:
        return PgStatement(
            problems=(f"PostgreSQL reads {len(statements)} statements: submit exactly one query",)
        )
    stmt = statements[0].get("stmt", {})
    problems = list(_pg_statement_problems(stmt))
    functions: set[FunctionName] = set()
    operators: set[FunctionName] = set()
    for key, node in _walk(stmt):
        if key == "FuncCall":
            functions.add(_qualified(node.get("funcname", [])))
        elif key == "A_Expr" and "name" in node:
            operators.add(_qualified(node["name"]))
    return PgStatement(tuple(sorted(functions)), tuple(sorted(operators)), tuple(problems))


def pg_syntax_problem(sql: str, exc: Exception) -> str:
    """'syntax error at or near "FROM"' with its line and column, in words."""
    message = str(exc.args[0]) if exc.args else "syntax error"
    offset = exc.args[1] if len(exc.args) > 1 else None
    where = ""
    if isinstance(offset, int) and offset >= 0:
        # libpg_query counts bytes of the UTF-8 text
        index = len(sql.encode()[:offset].decode(errors="ignore"))
        line = sql.count("\n", 0, index) + 1
        column = index - (sql.rfind("\n", 0, index) + 1) + 1
        where = f" at line {line}, column {column}"
    message = message.split(", at index", 1)[0].split(", at location", 1)[0]
    return (
        f"the statement is not valid PostgreSQL SQL: {message}{where}; "
        "fix the syntax and submit again"
    )


_PG_QUERY = "SelectStmt"


def _pg_statement_problems(stmt: Mapping[str, Any]) -> Iterator[str]:
    if set(stmt) != {_PG_QUERY}:
        kind = next(iter(stmt), "nothing").removesuffix("Stmt")
        yield f"PostgreSQL reads this as a {kind} statement, not a query: write one SELECT"
        return
    for key, node in _walk(stmt):
        if key.endswith("Stmt") and key != _PG_QUERY:
            yield (
                f"PostgreSQL reads a {key.removesuffix('Stmt')} statement inside the query: "
                "only read-only queries can be exported"
            )
        elif key == "SelectStmt" and "intoClause" in node:
            yield "the query uses SELECT … INTO, which creates a table: remove the INTO clause"
        elif key == "LockingClause":
            yield "the query is a locking read (FOR UPDATE / FOR SHARE): remove the clause"


def _qualified(parts: Sequence[Mapping[str, Any]]) -> FunctionName:
    names = [str(p.get("String", {}).get("sval", "")) for p in parts]
    if len(names) == 1:
        return FunctionName(None, names[0])
    return FunctionName(".".join(names[:-1]), names[-1])


def _walk(node: Any, key: str = "") -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every (node type, fields) pair in libpg_query's JSON tree, depth first, no recursion
    limit (a hostile query may nest thousands of levels)."""
    stack: list[tuple[str, Any]] = [(key, node)]
    while stack:
        key, node = stack.pop()
        if isinstance(node, dict):
            if key:
                yield key, node
            stack.extend(node.items())
        elif isinstance(node, list):
            stack.extend(("", item) for item in node)


def judge_pg_functions(
    calls: Sequence[FunctionName],
    candidates: Mapping[FunctionName, Sequence[CatalogFunction]],
    allowed_functions: Collection[str],
) -> list[str]:
    """Problems with the called functions, given every pg_proc entry each name may resolve
    to (all overloads in the schemas the server searches: refusing one refuses the name)."""
    problems = []
    for call in calls:
        if allowed(call, allowed_functions):
            continue
        found = candidates.get(call, ())
        if not found:
            problems.append(
                f"the query calls {call}(), which the database does not know: check its name "
                "and schema"
            )
            continue
        for fn in found:
            problem = _function_problem(str(call), fn, allowed_functions)
            if problem:
                problems.append(problem)
                break
    return problems


def judge_pg_operators(
    operators: Sequence[FunctionName],
    candidates: Mapping[FunctionName, Sequence[CatalogFunction]],
) -> list[str]:
    """An operator runs a function too: one that may write or change state is refused.

    Operators are judged by volatility only: extensions' operators (citext, hstore,
    pg_trgm) are ordinary reads, and the set a name resolves to depends on argument types."""
    problems = []
    for op in operators:
        for fn in candidates.get(op, ()):
            if fn.volatility == "v" and fn.name not in PG_VOLATILE_ALLOWED:
                problems.append(
                    f"the query uses operator {op}, which runs {fn}(), a VOLATILE function "
                    "(it may change data or the server's state): rewrite it without the operator"
                )
                break
    return problems


def _function_problem(
    spelled: str, fn: CatalogFunction, allowed_functions: Collection[str]
) -> str | None:
    if not fn.builtin:
        if allowed(FunctionName(fn.schema, fn.name), allowed_functions):
            return None
        return (
            f"the query calls {spelled}(), which resolves to {fn}(), a function created in the "
            f"database (language {fn.language}), not a built-in one: exports may call it only "
            f"when {ALLOW_KEY} names it"
        )
    if fn.volatility == "v" and fn.name not in PG_VOLATILE_ALLOWED:
        return (
            f"the query calls {spelled}(), which resolves to {fn}(), a VOLATILE function "
            "(it may change data, files or the server's state): remove the call; an export "
            "may only read data"
        )
    return None


# --- MySQL / MariaDB -------------------------------------------------------------------------

# Built-in functions of MySQL 8 and MariaDB 10.6+ that only compute a value from their
# arguments or read the session's own state. Missing on purpose: SLEEP, BENCHMARK, locks,
# LOAD_FILE, waits for replication, sequences (NEXTVAL, SETVAL, LASTVAL), LAST_INSERT_ID.
MYSQL_BUILTINS = frozenset(
    """
    abs acos adddate addtime aes_decrypt aes_encrypt any_value ascii asin atan atan2 avg
    bin bin_to_uuid binary bit_and bit_count bit_length bit_or bit_xor cast ceil ceiling
    char char_length character_length charset chr coalesce coercibility collation
    column_check column_create column_exists column_get column_json column_list compress
    concat concat_ws connection_id conv convert convert_tz cos cot count crc32 crc32c
    cume_dist curdate current_date current_role current_time current_timestamp
    current_user curtime database date date_add date_format date_sub datediff day
    dayname dayofmonth dayofweek dayofyear decode default degrees dense_rank elt encode
    exp export_set extract extractvalue field find_in_set first_value floor format
    format_bytes format_pico_time found_rows from_base64 from_days from_unixtime
    get_format greatest group_concat hex hour if ifnull inet6_aton inet6_ntoa inet_aton
    inet_ntoa insert instr interval is_ipv4 is_ipv4_compat is_ipv4_mapped is_ipv6
    is_uuid isnull json_array json_array_append json_array_insert json_arrayagg
    json_compact json_contains json_contains_path json_depth json_detailed json_equals
    json_exists json_extract json_insert json_keys json_length json_loose json_merge
    json_merge_patch json_merge_preserve json_normalize json_object json_objectagg
    json_overlaps json_pretty json_query json_quote json_remove json_replace
    json_schema_valid json_search json_set json_storage_size json_table json_type
    json_unquote json_valid json_value lag last_day last_value lcase lead least left
    length ln localtime localtimestamp locate log log10 log2 lower lpad ltrim make_set
    makedate maketime match max md5 median microsecond mid min minute mod month
    monthname natural_sort_key now nth_value ntile nullif oct octet_length ord
    percent_rank percentile_cont percentile_disc period_add period_diff pi position pow
    power quarter quote radians rand random_bytes rank regexp_instr regexp_like
    regexp_replace regexp_substr repeat replace reverse right round row_number rpad
    rtrim schema sec_to_time second session_user sformat sha sha1 sha2 sign sin soundex
    space sqrt std stddev stddev_pop stddev_samp str_to_date strcmp subdate substr
    substring substring_index subtime sum sys_guid sysdate system_user tan time
    time_format time_to_sec timediff timestamp timestampadd timestampdiff to_base64
    to_char to_days to_seconds trim truncate ucase uncompress uncompressed_length unhex
    unix_timestamp upper user utc_date utc_time utc_timestamp uuid uuid_short
    uuid_to_bin var_pop var_samp variance version week weekday weekofyear weight_string
    year yearweek
    """.split()  # noqa: SIM905 - a word list reads better as words
)

# Words that stand before "(" without calling anything: syntax, and type names in CAST.
_MYSQL_SYNTAX_BEFORE_PAREN = frozenset(
    """
    against all and any as between by case columns dec decimal distinct distinctrow div
    double else escape except exists float force from group having ignore in index
    intersect is join key lateral like limit nchar not numeric offset on or over
    partition recursive regexp rlike row rows select some then union use using values
    varchar when where window with xor
    """.split()  # noqa: SIM905 - a word list reads better as words
) | {"member of"}  # one token to sqlglot


@dataclass(frozen=True)
class MysqlCall:
    name: FunctionName
    quoted: bool  # `name`( is never a built-in: MySQL looks for a stored function

    @property
    def builtin_candidate(self) -> bool:
        return self.name.schema is None and not self.quoted


def mysql_calls(tokens: Sequence[Token], tree: exp.Expression) -> list[MysqlCall]:
    """Names called as functions, read from the tokens: a name (quoted or not, maybe
    `db.name`) right before "(". Table aliases with column lists (`AS q(a, b)`, CTEs) are
    the only other names before "(", recognised by their place in the parsed tree."""
    declared = {
        node.this.meta.get("start")
        for node in tree.find_all(exp.TableAlias, exp.CTE)
        if isinstance(node.this, exp.Identifier)
    }
    calls = []
    for i, (token, following) in enumerate(itertools.pairwise(tokens)):
        if following.token_type is not TokenType.L_PAREN or token.start in declared:
            continue
        if token.token_type in (TokenType.STRING, TokenType.NUMBER, TokenType.R_PAREN):
            continue
        if token.token_type is not TokenType.IDENTIFIER and not any(
            c.isalnum() or c in "_$" for c in token.text
        ):
            continue  # punctuation and operators: ",(" "=(" "+(", never a name ($fn, 9fn)
        word = token.text.casefold()
        if token.token_type is not TokenType.IDENTIFIER and word in _MYSQL_SYNTAX_BEFORE_PAREN:
            continue
        qualified = i >= 2 and tokens[i - 1].token_type is TokenType.DOT
        schema = tokens[i - 2].text if qualified else None
        quoted = token.token_type is TokenType.IDENTIFIER
        calls.append(MysqlCall(FunctionName(schema, token.text if quoted else word), quoted))
    return calls


def judge_mysql_functions(
    calls: Sequence[MysqlCall], allowed_functions: Collection[str], normalize: Any
) -> list[str]:
    problems = []
    for call in dict.fromkeys(calls):
        if allowed(call.name, allowed_functions):
            continue
        if call.builtin_candidate and normalize(call.name.name) in MYSQL_BUILTINS:
            continue
        problems.append(
            f"the query calls {call.name}(), which is not a built-in function exports may use "
            f"(a stored or loadable function, or one that sleeps, locks or reads files): "
            f"remove the call, or name it in {ALLOW_KEY} if it is a safe stored function"
        )
    return problems
