"""What Python reads of a CSV file itself: the header line, line numbers, and a strict scan.

DuckDB does the reading; this module only answers what DuckDB cannot tell reliably:

- which delimiter the header line uses (DuckDB's sniffer judges it from a sample of rows, so one
  ragged row can make it choose "no delimiter" and read each line as one column);
- the line of a bad row as an editor shows it (DuckDB counts rows, and a quoted value that spans
  lines counts once);
- where and why a file that DuckDB's strict reader refuses as a whole (a line ending that changes
  within the file, a sniffer that finds no dialect) breaks, row by row, with Python's `csv` module
  in strict mode (RFC 4180 quoting; any of \\n, \\r\\n, \\r ends a line).

Only local files, plain or gzip, are read here.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TextIO

DELIMITERS = (",", "|", ";", "\t")  # DuckDB's sniffer's candidates, in its order
_HEAD_CHARS = 1 << 16
_EXAMPLES = 5


class Unreadable(OSError):
    """Python cannot open this file (remote, or compressed in a way the standard library cannot read)."""


@dataclass(frozen=True)
class Dialect:
    delim: str
    quote: str = '"'
    escape: str = '"'
    header: bool = True
    skip: int = 0
    encoding: str = "utf-8"
    compression: str = "auto"


@dataclass(frozen=True)
class Problem:
    """A bad row found by the strict scan: its first line, a reason code, and a safe detail."""

    line: int
    reason: str
    detail: str


@dataclass
class Scan:
    records: int = 0
    problems: list[Problem] = field(default_factory=list)
    total: int = 0


def is_local(path: str) -> bool:
    return "://" not in path


def header_delimiter(path: str, dialect: Dialect) -> str:
    """The candidate delimiter that splits the first record into the most fields (',' on a tie or
    when none occurs): the header decides, so a bad row further down cannot change the dialect."""
    with open_text(path, dialect) as f:
        _skip_lines(f, dialect.skip)
        head = f.read(_HEAD_CHARS)
    if not head.strip():
        return ","
    best, width = ",", 0
    for delim in DELIMITERS:
        fields = _first_record_width(head, Dialect(delim, dialect.quote, dialect.escape))
        if fields > width:
            best, width = delim, fields
    return best


def _first_record_width(head: str, dialect: Dialect) -> int:
    try:
        return len(next(csv.reader(io.StringIO(head, newline=""), **_csv_args(dialect)), []))
    except csv.Error:
        return 0


def physical_lines(path: str, dialect: Dialect, offsets: list[int]) -> dict[int, int]:
    """The 1-based line (counting '\\n') at which each byte offset of the file lies."""
    wanted = sorted(set(offsets))
    found: dict[int, int] = {}
    line, pos = 1, 0
    with _open_bytes(path, dialect) as f:
        while wanted and (chunk := f.read(1 << 20)):
            while wanted and wanted[0] < pos + len(chunk):
                found[wanted[0]] = line + chunk.count(b"\n", 0, wanted[0] - pos)
                wanted.pop(0)
            line += chunk.count(b"\n")
            pos += len(chunk)
    return found


def strict_scan(path: str, dialect: Dialect) -> Scan:
    """Every record checked: RFC 4180 quoting and as many fields as the first record. The scan
    stops at a quoting error (after it, where rows begin is unknown); problems keep the first few."""
    scan = Scan()
    with _field_limit(), open_text(path, dialect) as f:
        _skip_lines(f, dialect.skip)
        reader = csv.reader(f, strict=True, **_csv_args(dialect))
        width: int | None = None
        while True:
            start = reader.line_num + dialect.skip + 1
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as e:
                _note(scan, Problem(start, *_quote_reason(str(e))))
                break
            except UnicodeDecodeError:
                _note(scan, Problem(start, "invalid_encoding", f"not valid {dialect.encoding} text"))
                break
            if not row:
                continue
            if width is None:
                width = len(row)
                if dialect.header:
                    continue
            if len(row) != width:
                _note(scan, Problem(start, *width_reason(len(row), width)))
            else:
                scan.records += 1
    return scan


def width_reason(found: int, expected: int) -> tuple[str, str]:
    code = "too_many_values" if found > expected else "too_few_values"
    return code, f"{found} values where the header has {expected}"


def _note(scan: Scan, problem: Problem) -> None:
    scan.total += 1
    if len(scan.problems) < _EXAMPLES:
        scan.problems.append(problem)


def _quote_reason(message: str) -> tuple[str, str]:
    if "unexpected end of data" in message:
        return "unterminated_quote", "a quoted value is never closed (unterminated quote)"
    if "expected after" in message:
        return "text_after_quote", "text follows the closing quote of a value"
    if "field larger than field limit" in message:
        return "line_too_long", "a value is longer than the largest value allowed"
    return "unreadable_row", "the row cannot be read as CSV"


def _csv_args(d: Dialect) -> dict[str, object]:
    if not d.quote:
        return {"delimiter": d.delim, "quoting": csv.QUOTE_NONE, "escapechar": d.escape or None}
    doubled = d.escape in ("", d.quote)
    return {
        "delimiter": d.delim,
        "quotechar": d.quote,
        "doublequote": doubled,
        "escapechar": None if doubled else d.escape,
    }


def _skip_lines(f: TextIO, n: int) -> None:
    for _ in range(n):
        f.readline()


@contextmanager
def open_text(path: str, dialect: Dialect) -> Iterator[TextIO]:
    encoding = {"utf-8": "utf-8-sig", "utf8": "utf-8-sig"}.get(dialect.encoding.lower(), dialect.encoding)
    with _open_bytes(path, dialect) as raw, io.TextIOWrapper(raw, encoding=encoding, newline="") as f:
        yield f


@contextmanager
def _open_bytes(path: str, dialect: Dialect) -> Iterator[IO[bytes]]:
    comp = dialect.compression.lower()
    if not is_local(path) or comp not in ("auto", "none", "gzip") or (comp == "auto" and path.endswith(".zst")):
        raise Unreadable(path)
    gz = comp == "gzip" or (comp == "auto" and path.endswith(".gz"))
    with gzip.open(path, "rb") if gz else Path(path).open("rb") as f:
        yield f


@contextmanager
def _field_limit() -> Iterator[None]:
    """Python's csv refuses values over 128 KiB by default; DuckDB reads lines up to 2 MB."""
    old = csv.field_size_limit()
    csv.field_size_limit(max(old, 1 << 26))
    try:
        yield
    finally:
        csv.field_size_limit(old)
