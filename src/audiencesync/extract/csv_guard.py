"""CSV reads that either give the file's rows exactly or fail, naming the file, the line and why.

Why: DuckDB's CSV sniffer chooses the dialect from a sample of the file. One unterminated `"`
makes it turn quoting off (every value keeps its quotes), and a ragged row can make it choose no
delimiter at all (every line one column). The query still succeeds, the sync then sees a different
table, removes the real members from Facebook and uploads garbage. So every CSV read in a source's
query is checked before anything is read, and rewritten so the read that follows is the checked one:

1. The dialect is pinned where the user did not set it: the delimiter from the header line (see
   `csv_file.header_delimiter`), `quote='"'`, `escape='"'`, `header=true`, `skip=0`, `comment=''`,
   `strict_mode=true`. Nothing is left for the sniffer to re-decide but line endings and types.
2. The file is read once with those options and `store_rejects`: DuckDB's own strict reader lists
   each bad row (line, kind, column; the row's content is never fetched) and counts and
   fingerprints the good ones (`hash(*COLUMNS(*))`, which also makes it convert every column).
3. With bad rows and `bad_rows="fail"` (the default) that is an error. With `bad_rows="skip"`
   the rows are set aside and counted, and the read gets `ignore_errors=true`: the same reader
   with the same options skips exactly the rows it listed. An unterminated quote is never set
   aside: it hides where the following rows begin, so "the rest goes on" would not hold.
4. The rewritten read runs once more and must give the same count and fingerprint; else the file
   changed under us (or a read differs from its check), and that is an error too.

DuckDB's strict reader refuses some files as a whole with no line number: a sniffer that finds no
dialect (an unterminated quote early on), or line endings that change within the file (\\r\\n
and \\n mixed). Then Python's strict `csv` reader scans the file row by row (`csv_file.strict_scan`):
bad rows are reported by line; a file it finds clean is read with `strict_mode=false` (which
accepts mixed line endings) and must give the row count Python found. Rows of such a file cannot be
set aside (the non-strict reader would cut a long row short rather than skip it), so there any bad
row is an error, in both modes.

An option the user set is never overridden. `ignore_errors` and `store_rejects` are refused (they
would drop rows without a count: that is what `bad_rows="skip"` is for).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal

import duckdb

from audiencesync.extract import csv_file
from audiencesync.extract.csv_file import Dialect, Unreadable, is_local, width_reason
from audiencesync.extract.csv_sql import CsvRead, Expression, QueryShapeError, find_csv_reads, splice
from audiencesync.extract.masking import mask_error

BadRowsMode = Literal["fail", "skip"]

# Row-local problems: skipping the row leaves every other row as it was.
SKIPPABLE = frozenset({"too_many_values", "too_few_values", "not_convertible", "invalid_encoding"})

_DELIM = ("delim", "sep", "delimiter")
_OWN_ERROR_HANDLING = ("ignore_errors", "store_rejects", "rejects_table", "rejects_scan", "rejects_limit")
_REJECTS, _SCANS = "__audiencesync_csv_rejects", "__audiencesync_csv_scans"
_EXAMPLES = 5
_QUOTING = frozenset({"unterminated_quote", "text_after_quote"})


class CsvCheckError(ValueError):
    """A CSV read that cannot be trusted; the message names the file, the line and the reason."""


@dataclass(frozen=True)
class BadRow:
    """A row that was not read: where it is and why. Never its content."""

    file: str
    line: int
    reason: str  # a stable code: too_many_values, too_few_values, unterminated_quote, ...
    detail: str  # a sentence for people, e.g. "4 values where the header has 3"


@dataclass(frozen=True)
class GuardedQuery:
    query: str
    set_aside: tuple[BadRow, ...]


@dataclass(frozen=True)
class _Checked:
    pins: dict[str, object]
    rows: int
    fingerprint: int
    bad: tuple[BadRow, ...]


def guard_csv_reads(con: duckdb.DuckDBPyConnection, query: str, *, bad_rows: BadRowsMode = "fail") -> GuardedQuery:
    """Check every CSV read in `query` and return the query rewritten to read exactly what was
    checked, with the rows set aside (only ever non-empty with `bad_rows="skip"`)."""
    try:
        reads = find_csv_reads(con, query)
        checked = [_check_read(con, read, bad_rows) for read in reads]
    except QueryShapeError as e:
        raise CsvCheckError(str(e)) from None
    except duckdb.Error as e:
        raise CsvCheckError(mask_error(e)) from None
    texts = [text for text, _ in checked]
    aside = tuple(row for _, rows in checked for row in rows)
    return GuardedQuery(splice(query, reads, texts), aside)


def _check_read(con: duckdb.DuckDBPyConnection, read: CsvRead, mode: BadRowsMode) -> tuple[str, tuple[BadRow, ...]]:
    _refuse_own_error_handling(read)
    files = _expand(con, read)
    dialect = _dialect(read, files[0])
    checked = _validate(con, read, _pins(read, dialect), files, dialect, mode)
    refused = [b for b in checked.bad if mode == "fail" or b.reason not in SKIPPABLE]
    if refused:
        raise CsvCheckError(bad_rows_message(refused, len(refused), mode))
    extra = {**checked.pins, **({"ignore_errors": True} if checked.bad else {})}
    _confirm(con, read, extra, checked)
    return read.table(extra), checked.bad


# -- options ----------------------------------------------------------------------------------


def _refuse_own_error_handling(read: CsvRead) -> None:
    own = [name for name in _OWN_ERROR_HANDLING if name in read.options]
    if own:
        raise CsvCheckError(
            f"{read.label}: read_csv's {own[0]} would drop bad rows without counting them; remove it "
            "and set `bad_rows: skip` on the source instead"
        )


def _expand(con: duckdb.DuckDBPyConnection, read: CsvRead) -> list[str]:
    files: list[str] = []
    for pattern in read.files:
        if not is_local(pattern):
            files.append(pattern)
            continue
        found = [r[0] for r in con.execute("SELECT file FROM glob(?)", [pattern]).fetchall()]
        if not found:
            raise CsvCheckError(f"{pattern}: no such file")
        files.extend(found)
    return files


def _option(read: CsvRead, names: tuple[str, ...], default: object) -> object:
    for name in names:
        if name in read.options:
            value = read.options[name]
            if isinstance(value, Expression):
                raise CsvCheckError(f"{read.label}: give read_csv's {name} as a constant, so the file can be checked")
            return value
    return default


def _dialect(read: CsvRead, first: str) -> Dialect:
    quote = str(_option(read, ("quote",), '"') or "")
    d = Dialect(
        delim=_unescape(str(_option(read, _DELIM, "") or "")),
        quote=quote,
        escape=str(_option(read, ("escape",), quote) or ""),
        header=bool(_option(read, ("header",), True)),
        skip=int(str(_option(read, ("skip",), 0) or 0)),
        encoding=str(_option(read, ("encoding",), "utf-8")),
        compression=str(_option(read, ("compression",), "auto")),
    )
    return d if d.delim else replace(d, delim=_header_delimiter(first, d))


def _unescape(text: str) -> str:
    return text.replace("\\t", "\t")


def _header_delimiter(path: str, d: Dialect) -> str:
    try:
        return csv_file.header_delimiter(path, replace(d, delim=","))
    except Unreadable:
        raise CsvCheckError(
            f"{path}: set delim in read_csv (the delimiter is taken from the header of local files only)"
        ) from None
    except UnicodeDecodeError:
        return ","  # DuckDB reports the encoding error, with its line
    except OSError as e:
        raise CsvCheckError(f"{path}: cannot read the file ({e.strerror or type(e).__name__})") from None


def _pins(read: CsvRead, d: Dialect) -> dict[str, object]:
    pins: dict[str, object] = {}
    if not any(name in read.options for name in _DELIM):
        pins["delim"] = d.delim
    defaults: dict[str, object] = {
        "quote": d.quote,
        "escape": d.escape,
        "header": d.header,
        "skip": d.skip,
        "comment": "",
        "strict_mode": True,
    }
    pins.update({k: v for k, v in defaults.items() if k not in read.options})
    return pins


# -- checking ---------------------------------------------------------------------------------


def _validate(
    con: duckdb.DuckDBPyConnection,
    read: CsvRead,
    pins: dict[str, object],
    files: list[str],
    d: Dialect,
    mode: BadRowsMode,
) -> _Checked:
    try:
        return _duckdb_check(con, read, pins, d)
    except duckdb.Error as e:
        refused = e
    return _python_check(con, read, pins, (files, d), refused, mode)


def _duckdb_check(con: duckdb.DuckDBPyConnection, read: CsvRead, pins: dict[str, object], d: Dialect) -> _Checked:
    """One strict read that lists the bad rows and counts and fingerprints the good ones."""
    options = {**pins, "store_rejects": True, "rejects_table": _REJECTS, "rejects_scan": _SCANS}
    _drop_rejects(con)
    try:
        rows, fingerprint = _fingerprint(con, read.call(options))
        bad = _rejects(con, d)
    finally:
        _drop_rejects(con)
    return _Checked(pins, rows, fingerprint, bad)


def _python_check(
    con: duckdb.DuckDBPyConnection,
    read: CsvRead,
    pins: dict[str, object],
    where: tuple[list[str], Dialect],
    refused: duckdb.Error,
    mode: BadRowsMode,
) -> _Checked:
    """DuckDB refused the file as a whole: find the bad rows with Python, or read it non-strictly."""
    files, d = where
    scans = {f: _scan(f, d, refused) for f in files}
    bad = [csv_row(f, p) for f, s in scans.items() for p in s.problems]
    if bad:
        raise CsvCheckError(bad_rows_message(bad, sum(s.total for s in scans.values()), mode, settable=False))
    if "strict_mode" in read.options:
        raise CsvCheckError(f"{read.label}: {mask_error(refused)}")
    try:
        checked = _duckdb_check(con, read, {**pins, "strict_mode": False}, d)
    except duckdb.Error as e:
        raise CsvCheckError(f"{read.label}: {mask_error(e)}") from None
    expected = sum(s.records for s in scans.values())
    if checked.bad or checked.rows != expected:
        raise CsvCheckError(
            f"{read.label}: DuckDB reads {checked.rows:,} rows where a strict reading finds {expected:,}; "
            "nothing was read"
        )
    return checked


def _scan(path: str, d: Dialect, refused: duckdb.Error) -> csv_file.Scan:
    try:
        return csv_file.strict_scan(path, d)
    except Unreadable:
        raise CsvCheckError(f"{path}: {mask_error(refused)}") from None
    except OSError as e:
        raise CsvCheckError(f"{path}: cannot read the file ({e.strerror or type(e).__name__})") from None


def csv_row(file: str, p: csv_file.Problem) -> BadRow:
    return BadRow(file, p.line, p.reason, p.detail)


def _confirm(con: duckdb.DuckDBPyConnection, read: CsvRead, extra: dict[str, object], checked: _Checked) -> None:
    """The read the query will run gives the rows that were checked: same count, same fingerprint."""
    try:
        rows, fingerprint = _fingerprint(con, read.call(extra))
    except duckdb.Error as e:
        raise CsvCheckError(f"{read.label}: {mask_error(e)}") from None
    if (rows, fingerprint) != (checked.rows, checked.fingerprint):
        raise CsvCheckError(
            f"{read.label}: a second read gave other rows ({rows:,}, checked {checked.rows:,}); "
            "was the file being written? Nothing was read"
        )


def _fingerprint(con: duckdb.DuckDBPyConnection, call: str) -> tuple[int, int]:
    """Hashing every column makes DuckDB convert every value (a bare count(*) would skip that)."""
    row = con.execute(f"SELECT count(*), coalesce(sum(hash(*COLUMNS(*))::HUGEINT), 0) FROM {call}").fetchall()[0]
    return int(row[0]), int(row[1])


# -- DuckDB's rejects -------------------------------------------------------------------------


def _drop_rejects(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"DROP TABLE IF EXISTS temp.{_REJECTS}")
    con.execute(f"DROP TABLE IF EXISTS temp.{_SCANS}")


def _rejects(con: duckdb.DuckDBPyConnection, d: Dialect) -> tuple[BadRow, ...]:
    """One entry per bad row (DuckDB may list a row once per bad column). Only the kind of error,
    the column name and the numbers in a column-count message are fetched, never the row."""
    rows = con.execute(
        f"""SELECT s.file_path, e.line, e.line_byte_position, e.error_type, e.column_name,
                   regexp_extract(e.error_message, 'Expected Number of Columns: (\\d+)', 1),
                   regexp_extract(e.error_message, 'Found: (\\d+)', 1)
            FROM temp.{_REJECTS} e JOIN temp.{_SCANS} s ON e.scan_id = s.scan_id AND e.file_id = s.file_id
            ORDER BY s.file_path, e.line, e.column_idx"""
    ).fetchall()
    seen: dict[tuple[str, int], tuple[str, int, str, str]] = {}
    for file, line, offset, kind, column, expected, found in rows:
        seen.setdefault((file, line), (file, offset, *_reason(kind, column, expected, found)))
    lines = _editor_lines(d, [(f, o) for f, o, _, _ in seen.values()])
    return tuple(
        BadRow(file, lines.get((file, offset), line), code, detail)
        for (_, line), (file, offset, code, detail) in seen.items()
    )


def _reason(kind: str, column: str | None, expected: str, found: str) -> tuple[str, str]:
    kind = kind.upper()
    if kind in ("TOO MANY COLUMNS", "MISSING COLUMNS") and expected and found:
        return width_reason(int(found), int(expected))
    reasons: dict[str, Callable[[], tuple[str, str]]] = {
        "TOO MANY COLUMNS": lambda: ("too_many_values", "more values than the header has"),
        "MISSING COLUMNS": lambda: ("too_few_values", "fewer values than the header has"),
        "UNQUOTED VALUE": lambda: (
            "unterminated_quote",
            "a quoted value is not closed properly (unterminated quote, or text after the closing quote)",
        ),
        "CAST": lambda: ("not_convertible", f"the value in column {column!r} does not convert to the column's type"),
        "INVALID ENCODING": lambda: ("invalid_encoding", "not valid text in the file's encoding"),
        "INVALID UNICODE": lambda: ("invalid_encoding", "not valid text in the file's encoding"),
        "LINE SIZE OVER MAXIMUM": lambda: ("line_too_long", "the line is longer than max_line_size"),
    }
    return reasons.get(kind, lambda: ("unreadable_row", kind.lower()))()


def _editor_lines(d: Dialect, where: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
    """DuckDB numbers rows (a quoted value spanning lines counts once); people see lines. Mapped
    from each row's byte offset where Python can read the file's bytes, else DuckDB's number."""
    if d.encoding.lower() not in ("utf-8", "utf8", "latin-1", "latin1"):
        return {}
    out: dict[tuple[str, int], int] = {}
    for file in {f for f, _ in where}:
        try:
            found = csv_file.physical_lines(file, d, [o for f, o in where if f == file])
        except OSError:
            continue
        out.update({(file, o): line for o, line in found.items()})
    return out


# -- messages ---------------------------------------------------------------------------------


def bad_rows_message(bad: list[BadRow], total: int, mode: BadRowsMode, *, settable: bool = True) -> str:
    """`customers.csv, line 3: <reason>; 2 more bad rows (line 7, line 9). Nothing was read: …`"""
    first = bad[0]
    text = f"{first.file}, line {first.line}: {first.detail}"
    if total > 1:
        where = ", ".join(_where(b, first.file) for b in bad[1:_EXAMPLES])
        more = f" ({where}{', …' if total > _EXAMPLES else ''})" if where else ""
        text += f"; {total - 1:,} more bad row{'s' if total > 2 else ''}{more}"
    if mode == "skip":
        text += f". {_why_not_set_aside(bad, settable)}"
    text += ". Nothing was read: fix the file"
    if mode == "fail" and settable and all(b.reason in SKIPPABLE for b in bad):
        text += ", or set `bad_rows: skip` on the source to set such rows aside and count them"
    return text


def _where(row: BadRow, file: str) -> str:
    at = f"line {row.line}" if row.file == file else f"{row.file} line {row.line}"
    return f"{at}: {row.reason.replace('_', ' ')}"


def _why_not_set_aside(bad: list[BadRow], settable: bool) -> str:
    if any(b.reason in _QUOTING for b in bad):
        return "A quoting error hides where the next rows begin, so it is never set aside"
    if not settable:
        return (
            "DuckDB's strict reader refuses this file as a whole (are its line endings mixed?), "
            "so its rows cannot be set aside"
        )
    return "Rows like this cannot be set aside"
