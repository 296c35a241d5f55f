"""Generator rules as people write them: one line per column, parsed to ColumnGenerator.

The kinds and parameters of CONTRACT §12 and their written syntax belong to the contract,
not to the service: the Slack modal and the CLI read rules with this module alone, so they
stay clients of the service (they import nothing of it).

Line form (the Slack modal, `--rules-file`, `--rule`)::

    email: faker email zh_CN
    age: int 18 80
    status: choice paid,refunded weights 9,1
    note: null 0.3                      # the proposed generator, NULL in 30 % of rows
    code: text min_len=4 max_len=8      # parameters may also be named
    created_at: timestamp 2025-01-01T00:00:00 2025-06-30T23:59:59 null 0.1

Short form (the CLI's `--rule`): `COLUMN=KIND[:ARGS]`, the same arguments after the first
colon, separated by spaces or colons: `email=faker:email`, `age=int:18:80`,
`status=choice:paid,refunded:weights:9,1`. Times hold colons, so a timestamp's arguments are
separated by spaces: `created_at=timestamp:2025-01-01T00:00 2025-06-30T00:00`.

Arguments are taken positionally in the order of the kind's parameters (CONTRACT §12), or
as `name=value`; `null R` at the end sets the share of NULLs; `#` starts a comment.
Whether values fit the column is the pre-check's question; this only reads the words.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

PARAMS: dict[str, tuple[str, ...]] = {
    "sequence": ("start", "step"),
    "int": ("min", "max"),
    "decimal": ("min", "max", "scale"),
    "choice": ("values", "weights"),
    "date": ("start", "end"),
    "timestamp": ("start", "end"),
    "text": ("min_len", "max_len"),
    "uuid": (),
    "constant": ("value",),
    "faker": ("provider", "locale"),
    "ref": ("table", "column"),
}

KINDS = tuple(PARAMS)


class RuleError(ValueError):
    """A rule that cannot be read; the message says what to write instead."""


@dataclass(frozen=True)
class ColumnGenerator:
    """How one column's test values are made (the wire's ColumnGenerator, CONTRACT §12).
    An empty `kind` asks for the generator the service proposes, e.g. with a null_ratio."""

    column: str
    kind: str
    params: Mapping[str, str] = field(default_factory=dict)
    null_ratio: float = 0.0

    def describe(self) -> str:
        """`email: faker provider=email locale=zh_CN null 0.1`, for people."""
        params = " ".join(f"{k}={v}" for k, v in self.params.items())
        text = f"{self.column}: {self.kind or 'proposed'}" + (f" {params}" if params else "")
        return text + (f" null {self.null_ratio:g}" if self.null_ratio else "")


MAX_RULES = 1000
_SHORT = re.compile(r"^\s*([^\s:=]+)\s*=\s*([A-Za-z_]+)\s*(?::(.*))?$", re.DOTALL)
_LINE = re.compile(r"^\s*([^\s:=]+)\s*:\s*(.*)$", re.DOTALL)
# Kinds whose arguments may hold colons, so the short form splits them by spaces only.
_COLON_VALUES = frozenset({"timestamp", "constant"})

SYNTAX_HINT = (
    "write `column: kind args`, e.g. `age: int 18 80`, `email: faker email zh_CN`, "
    "`status: choice paid,refunded weights 9,1`, `note: null 0.3`"
)


def parse_rules(lines: Iterable[str]) -> list[ColumnGenerator]:
    """Every rule of `lines` (blank and `#` lines skipped); RuleError lists every bad one."""
    rules: list[ColumnGenerator] = []
    problems: list[str] = []
    for number, line in enumerate(lines, start=1):
        if not _strip_comment(line).strip():
            continue
        try:
            rules.append(parse_rule(line))
        except RuleError as exc:
            problems.append(f"rule {number}: {exc}")
    if problems:
        raise RuleError("; ".join(problems[:20]))
    if len(rules) > MAX_RULES:
        raise RuleError(f"{len(rules)} rules given; the limit is {MAX_RULES}")
    return rules


def parse_rule(text: str) -> ColumnGenerator:
    """One rule in the line form or the short form."""
    body = _strip_comment(text).strip()
    short = _SHORT.match(body)
    if short:
        column, kind, rest = short.group(1), short.group(2).lower(), short.group(3) or ""
        words = _words(rest, body)
        if len(words) == 1 and kind not in _COLON_VALUES:
            words = [w for w in words[0].split(":") if w]
        return _build(column, [kind, *words], body)
    line = _LINE.match(body)
    if not line:
        raise RuleError(f"`{_clip(body)}` is not a rule: {SYNTAX_HINT}")
    return _build(line.group(1), _words(line.group(2), body), body)


def _build(column: str, words: list[str], body: str) -> ColumnGenerator:
    if not words:
        raise RuleError(f"`{_clip(body)}` names no kind: {SYNTAX_HINT}")
    kind = words[0].lower()
    args = words[1:]
    null_ratio = 0.0
    if kind == "null":  # `note: null 0.3`: the proposed generator with NULLs
        return ColumnGenerator(column, "", {}, _ratio(args, body))
    if kind not in KINDS:
        raise RuleError(
            f"`{_clip(body)}`: kind {words[0]!r} is not known; use one of: {', '.join(KINDS)}"
        )
    at = _null_at(kind, args)
    if at is not None:
        null_ratio = _ratio(args[at + 1 :], body)
        args = args[:at]
    params: dict[str, str] = {}
    lowered = [a.lower() for a in args]
    if kind == "choice" and "weights" in lowered:
        at = lowered.index("weights")
        if at + 1 >= len(args):
            raise RuleError(f"`{_clip(body)}`: weights needs numbers, e.g. weights 9,1")
        params["weights"] = " ".join(args[at + 1 :])
        args = args[:at]
    positional: list[str] = []
    for arg in args:
        name, eq, value = arg.partition("=")
        if eq and name in PARAMS[kind]:
            params[name] = value
        else:
            positional.append(arg)
    _place_positional(kind, positional, params, body)
    return ColumnGenerator(column, kind, ordered_params(kind, params), null_ratio)


def _place_positional(kind: str, args: list[str], params: dict[str, str], body: str) -> None:
    if kind == "constant" and args:  # the rest of the line is the value, spaces included
        params.setdefault("value", " ".join(args))
        return
    if kind == "choice" and args:  # `choice a, b, c` is one list, however it is spaced
        params.setdefault("values", " ".join(args))
        return
    if kind == "ref" and len(args) == 1 and "." in args[0]:
        table, _, column = args[0].rpartition(".")
        args = [table, column]
    free = [p for p in PARAMS[kind] if p not in params]
    if len(args) > len(free):
        takes = " ".join(PARAMS[kind]) or "no arguments"
        raise RuleError(
            f"`{_clip(body)}`: {kind} takes {takes}; {' '.join(args[len(free) :])!r} is extra"
        )
    params.update(zip(free, args, strict=False))


def _null_at(kind: str, args: list[str]) -> int | None:
    """Where a trailing `null R` (or a last `null`) starts; a constant's value may say null."""
    if len(args) >= 2 and args[-2].lower() == "null" and _is_number(args[-1]):
        return len(args) - 2
    if args and args[-1].lower() == "null" and kind != "constant":
        return len(args) - 1
    return None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _ratio(args: list[str], body: str) -> float:
    if not args:
        return 1.0  # `note: null`: always NULL
    if len(args) > 1:
        raise RuleError(f"`{_clip(body)}`: null takes one share, e.g. null 0.3")
    try:
        ratio = float(args[0])
    except ValueError:
        ratio = -1.0
    if not 0.0 <= ratio <= 1.0:
        raise RuleError(
            f"`{_clip(body)}`: null {args[0]!r} is not a share between 0 and 1, e.g. null 0.3"
        )
    return ratio


def _words(text: str, body: str) -> list[str]:
    try:
        return shlex.split(text, posix=True)
    except ValueError:
        raise RuleError(f"`{_clip(body)}` has a quote that is not closed") from None


def _strip_comment(line: str) -> str:
    """Text before a `#` that is not inside quotes."""
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#":
            return line[:i]
    return line


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def ordered_params(kind: str, params: Mapping[str, str]) -> dict[str, str]:
    """Parameters in the order of CONTRACT §12 (a wire map has none), unknown ones last."""
    known = PARAMS.get(kind, ())
    order = {name: i for i, name in enumerate(known)}
    return dict(sorted(params.items(), key=lambda kv: (order.get(kv[0], len(known)), kv[0])))


def format_rule(gen: ColumnGenerator) -> str:
    """The line form of a generator, which parse_rule reads back to the same generator."""
    words = [gen.kind] if gen.kind else []
    for name, value in ordered_params(gen.kind, gen.params).items():
        words.append(shlex.quote(f"{name}={value}"))
    if gen.null_ratio or not gen.kind:
        words.append(f"null {gen.null_ratio:g}")
    return f"{gen.column}: {' '.join(words)}"
