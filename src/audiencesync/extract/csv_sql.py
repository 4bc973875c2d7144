"""Find the CSV reads in a user's query, and write them back with more options.

Why the AST, and why the text is still the user's: DuckDB serializes a query's syntax tree with
`json_serialize_sql`; every `read_csv`/`read_csv_auto` table function and every bare `'file.csv'`
(a replacement scan) is a node there, with its arguments as values and its place in the query text.
Turning the tree back into SQL (`json_deserialize_sql`) would re-print the whole query in DuckDB's
own words, and any construct that does not round-trip would silently change it. So the tree is only
read: the options go into the original text, just before the call's closing parenthesis (found with
DuckDB's own tokenizer, so parentheses in strings and comments do not count), and a bare file name
becomes `read_csv('file.csv', …) AS "file"` (the alias DuckDB's replacement scan would have given).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

import duckdb

READERS = frozenset({"read_csv", "read_csv_auto"})
# The names DuckDB's CSV replacement scan answers to (`FROM 'customers.csv'`).
_CSV_FILE = re.compile(r"\.(csv|tsv)(\.(gz|zst))?$", re.IGNORECASE)


class QueryShapeError(ValueError):
    """The query reads a CSV file in a way that cannot be checked (the message says which)."""


class NotLiteral(ValueError):
    """An argument is an expression, not a constant."""


@dataclass(frozen=True)
class Expression:
    """An option the user gave as an expression; its value is not known before DuckDB runs it."""


@dataclass(frozen=True)
class CsvRead:
    """One CSV read in the query: where it is, what it reads, with which of the user's options.

    `start:end` is the text the rewritten call replaces; `head` is the call up to (not including)
    its closing parenthesis; `suffix` follows the call (the alias a replacement scan needs).
    """

    start: int
    end: int
    head: str
    needs_comma: bool
    files: tuple[str, ...]
    options: dict[str, object] = field(default_factory=dict)
    suffix: str = ""

    @property
    def label(self) -> str:
        return ", ".join(self.files)

    def call(self, extra: dict[str, object]) -> str:
        """The table function call with `extra` options after the user's."""
        added = ", ".join(f"{k} = {sql_value(v)}" for k, v in extra.items())
        sep = ", " if added and self.needs_comma else ""
        return f"{self.head}{sep}{added})"

    def table(self, extra: dict[str, object]) -> str:
        """The text that replaces `start:end` in the query."""
        return self.call(extra) + self.suffix


def find_csv_reads(con: duckdb.DuckDBPyConnection, query: str) -> list[CsvRead]:
    """The query's CSV reads in text order. A query DuckDB cannot parse gives none (running it
    reports the syntax error); one it cannot serialize (not a plain SELECT) is refused if it
    mentions CSV at all, since its reads could not be checked."""
    tree = _serialize(con, query)
    if tree is None:
        return []
    tokens = _tokens(query)
    reads = [r for node in _table_refs(tree) if (r := _read(con, query, tokens, node)) is not None]
    return sorted(reads, key=lambda r: r.start)


def splice(query: str, reads: list[CsvRead], texts: list[str]) -> str:
    """The query with each read's span replaced by its text (from the end, so offsets hold)."""
    for read, text in sorted(zip(reads, texts, strict=True), key=lambda p: p[0].start, reverse=True):
        query = query[: read.start] + text + query[read.end :]
    return query


def sql_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if value == "\t":
        return "'\\t'"  # read_csv reads the two characters \t as a tab
    return "'" + str(value).replace("'", "''") + "'"


# -- the tree ---------------------------------------------------------------------------------


def _serialize(con: duckdb.DuckDBPyConnection, query: str) -> dict[str, Any] | None:
    tree = json.loads(con.execute("SELECT json_serialize_sql(?)", [query]).fetchone()[0])
    if not tree.get("error"):
        return tree
    if str(tree.get("error_type", "")).lower() == "parser":
        return None
    if "csv" in query.lower():
        raise QueryShapeError(
            "the query reads CSV but is not a plain SELECT, so its CSV reads cannot be checked; "
            "wrap it as `select * from (…)` or read the file in a CTE"
        )
    return None


def _table_refs(node: object) -> Iterator[dict[str, Any]]:
    """Every table reference anywhere in the tree (FROM, joins, CTEs, subqueries in any clause)."""
    if isinstance(node, dict):
        if node.get("type") in ("TABLE_FUNCTION", "BASE_TABLE"):
            yield node
        for value in node.values():
            yield from _table_refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _table_refs(value)


def _read(con: duckdb.DuckDBPyConnection, query: str, tokens: list[Token], node: dict[str, Any]) -> CsvRead | None:
    if node["type"] == "TABLE_FUNCTION":
        fn = node.get("function") or {}
        if str(fn.get("function_name", "")).lower() in READERS:
            return _function_read(query, tokens, node)
        return None
    if _is_csv_file(con, node):
        return _replacement_read(query, node)
    return None


def _is_csv_file(con: duckdb.DuckDBPyConnection, node: dict[str, Any]) -> bool:
    """A bare `'x.csv'` that DuckDB answers with a replacement scan (not a table of that name)."""
    name = str(node.get("table_name", ""))
    if node.get("schema_name") or node.get("catalog_name") or not _CSV_FILE.search(name):
        return False
    exists = con.execute(
        "SELECT count(*) FROM (SELECT table_name AS n FROM duckdb_tables() UNION ALL "
        "SELECT view_name FROM duckdb_views()) WHERE n = ?",
        [name],
    ).fetchone()[0]
    return exists == 0


def _function_read(query: str, tokens: list[Token], node: dict[str, Any]) -> CsvRead:
    fn = node["function"]
    start = int(node["query_location"])
    end_of_ref = start + int(node["query_location_length"])
    close, needs_comma = _closing_paren(tokens, start, end_of_ref)
    files, options = _arguments(fn.get("arguments") or [])
    return CsvRead(start, close + 1, query[start:close], needs_comma, files, options)


def _replacement_read(query: str, node: dict[str, Any]) -> CsvRead:
    start = int(node["query_location"])
    if start >= len(query) or query[start] not in "'\"":
        raise QueryShapeError(f"cannot find the file name {node['table_name']!r} in the query text")
    end = _quoted_end(query, start)
    name = str(node["table_name"])
    suffix = "" if node.get("alias") else " AS " + _ident(PurePosixPath(name.replace("\\", "/")).name.split(".")[0])
    return CsvRead(start, end, f"read_csv({sql_value(name)}", True, (name,), {}, suffix)


def _arguments(arguments: list[dict[str, Any]]) -> tuple[tuple[str, ...], dict[str, object]]:
    files: tuple[str, ...] = ()
    options: dict[str, object] = {}
    for arg in arguments:
        name, expr = _named(arg)
        if name is None and not files:
            files = _files(expr)
        elif name is not None:
            options[name.lower()] = _value_or_expression(expr)
    if not files:
        raise QueryShapeError("read_csv needs the file name as its first argument")
    return files, options


def _named(arg: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """`name := value` has a name; `name = value` arrives as a comparison with a column on the left."""
    expr = arg["expression"]
    if arg.get("name"):
        return str(arg["name"]), expr
    left = expr.get("left") or {}
    if expr.get("type") == "COMPARE_EQUAL" and left.get("class") == "COLUMN_REF" and len(left["column_names"]) == 1:
        return str(left["column_names"][0]), expr["right"]
    return None, expr


def _files(expr: dict[str, Any]) -> tuple[str, ...]:
    try:
        value = literal(expr)
    except NotLiteral:
        raise QueryShapeError("give read_csv its file name(s) as text, so the file can be checked") from None
    names = value if isinstance(value, list) else [value]
    if not names or not all(isinstance(n, str) for n in names):
        raise QueryShapeError("give read_csv its file name(s) as text, so the file can be checked")
    return tuple(names)


def _value_or_expression(expr: dict[str, Any]) -> object:
    try:
        return literal(expr)
    except NotLiteral:
        return Expression()


def literal(expr: dict[str, Any]) -> object:
    """A constant's Python value (text, bool, int, None, or a list of them); else NotLiteral."""
    cls = expr.get("class")
    if cls == "CONSTANT":
        return _constant(expr)
    if cls == "FUNCTION" and expr.get("function_name") == "list_value":
        return [literal(a["expression"]) for a in expr.get("arguments") or []]
    raise NotLiteral


def _constant(expr: dict[str, Any]) -> object:
    if "literal" in expr:  # DuckDB 2.x: {"kind": "STRING", "text": "x.csv"}
        kind, text = str(expr["literal"].get("kind", "")), expr["literal"].get("text")
        if kind == "NULL_LITERAL":
            return None
        if kind == "BOOLEAN":
            return str(text).lower() == "true"
        if kind in ("INTEGER", "BIGINT", "HUGEINT", "UBIGINT", "SMALLINT", "TINYINT"):
            return int(str(text))
        return text
    value = expr.get("value") or {}  # DuckDB 1.x: {"type": {...}, "is_null": false, "value": ...}
    return None if value.get("is_null") else value.get("value")


# -- the text ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    pos: int
    operator: bool
    comment: bool
    text: str


def _tokens(query: str) -> list[Token]:
    """DuckDB's tokens; an operator's text is what lies between it and the next token."""
    raw = duckdb.tokenize(query)
    out: list[Token] = []
    for i, (pos, kind) in enumerate(raw):
        nxt = raw[i + 1][0] if i + 1 < len(raw) else len(query)
        op, comment = kind == duckdb.token_type.operator, kind == duckdb.token_type.comment
        out.append(Token(pos, op, comment, query[pos:nxt].strip() if op else ""))
    return out


def _closing_paren(tokens: list[Token], start: int, end: int) -> tuple[int, bool]:
    """Where the call starting at `start` closes, and whether an added option needs a comma
    (not after the opening parenthesis, nor after a trailing comma the user left)."""
    depth, last = 0, ""
    for tok in tokens:
        if tok.pos < start or tok.pos >= end or tok.comment:
            continue
        for offset, ch in enumerate(tok.text if tok.operator else ""):
            if ch == "(":
                depth += 1
            elif ch == ")" and depth == 1:
                return tok.pos + offset, last not in ("(", ",")
            elif ch == ")":
                depth -= 1
            last = ch
        if not tok.operator:
            last = "value"
    raise QueryShapeError("cannot find where the read_csv call ends in the query text")


def _quoted_end(query: str, start: int) -> int:
    """The end of the quoted literal or identifier at `start` (a doubled quote stays inside)."""
    q, i = query[start], start + 1
    while True:
        j = query.find(q, i)
        if j < 0:
            raise QueryShapeError("cannot find the end of a file name in the query text")
        if query[j + 1 : j + 2] == q:
            i = j + 2
            continue
        return j + 1


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
