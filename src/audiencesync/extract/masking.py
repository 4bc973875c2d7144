"""Error text from DuckDB and database drivers, made safe to print: no value from the data survives.

Source errors reach the terminal, the report and `st.runs`, and the values in them are customers'
personal data. DuckDB quotes offending values in single quotes (`Could not convert string '…'`),
in double quotes (`Could not parse string "10/14/1955"`), or not at all (`with value 4155550100`),
and a CSV error carries the raw row on the lines after the first (`Original Line: …`, which may
itself span lines). So: only the first line is kept, every quoted text in it is masked unless the
word before it says it names a column, file or other part of the schema, bare values that look like
data are masked, and from the later lines only a few known sentences are kept (the reason of a CSV
error, the file it names). File names, line numbers, column names and the reason survive.
"""

from __future__ import annotations

import re

MASK = "…"
_MAX = 400

_QUOTED = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"")
# Quoted text right after one of these words names part of the schema, not a value.
_NAMES = re.compile(
    r"\b(?:column|columns|file|files|pattern|table|tables|function|functions|type|catalog|schema|setting|option|"
    r"parameter|view|macro|database)\s*:?\s*$",
    re.IGNORECASE,
)
_BARE = [
    re.compile(r"(?<=\bwith value )\S+", re.IGNORECASE),
    re.compile(r"[^\s'\"]+@[^\s'\"]+"),
    # Four or more digits, maybe with separators (phones, dates, ids), unless it is a line or row number.
    re.compile(r"(?<![\w.])(?<!line )(?<!line: )(?<!row )(?<!rows )\+?\d[\d\-/.() ]{2,}\d(?![\w])", re.IGNORECASE),
]
# Sentences from the later lines of a DuckDB CSV error that carry the reason and never a value.
_SAFE_LATER = [
    re.compile(r"Expected Number of Columns: \d+ Found: \d+"),
    re.compile(r"Value with unterminated quote found\."),
    re.compile(r"Invalid unicode \(byte sequence mismatch\) detected\."),
    re.compile(r"Maximum line size of \d+ bytes exceeded\."),
    re.compile(r"Error when converting column \"[^\"\n]*\""),
    re.compile(r"It was not possible to automatically detect the CSV parsing dialect"),
]
_FILE_LINE = re.compile(r"^\s*file = (.+)$", re.MULTILINE)


def mask_error(error: BaseException | str) -> str:
    """One line, at most 400 characters, with every data value masked (see the module docstring)."""
    text = str(error)
    lines = text.splitlines() or [""]
    first = mask_values(lines[0])
    later = "\n".join(lines[1:])
    extra = [m.group(0) for pattern in _SAFE_LATER if (m := pattern.search(later))]
    file = _FILE_LINE.search(later)
    if file and file.group(1).strip() not in first:
        extra.append(f"file {file.group(1).strip()}")
    return "; ".join([first, *extra])[:_MAX]


def mask_values(line: str) -> str:
    """Mask quoted values (keeping quoted schema names) and, outside quotes, bare values that look like data."""
    out: list[str] = []
    pos = 0
    for m in _QUOTED.finditer(line):
        out.append(_mask_bare(line[pos : m.start()]))
        out.append(m.group(0) if _NAMES.search(line[: m.start()]) else f"{m.group(0)[0]}{MASK}{m.group(0)[0]}")
        pos = m.end()
    out.append(_mask_bare(line[pos:]))
    return "".join(out)


def _mask_bare(text: str) -> str:
    for pattern in _BARE:
        text = pattern.sub(MASK, text)
    return text
