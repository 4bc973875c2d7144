"""The characters the vectorized paths may treat as Python does, and the classes they need.

The scalar normalizers are the reference, and they are Python: `str.lower`, `str.strip`, `re`'s `\\s`,
`unicodedata.normalize` and `unicodedata.category`, all at Python's own Unicode version. The fast
paths use polars (Rust's Unicode tables) and Arrow (utf8proc) kernels, usually at a newer version.
For a character both sides know, they agree: canonical decompositions, combining classes and case
pairs of an assigned character never change (Unicode's stability policies). That is not taken on
trust: at first use, every character below U+30000 that Python's version assigns is run through
both sides (lowercasing, alone and in the final-sigma contexts, NFC, letter and mark classes) and
any character on which they differ joins the *unsure* class, as do the characters Python's version
does not assign and everything from U+30000 up. A value with an unsure character goes to the scalar
path. Nothing here is a copied table: every class is derived from the installed Python, polars and
pyarrow, so an upgrade of any of them can move values between the paths but never change an answer.

The check costs a few tenths of a second once per process, and only a column that holds non-ASCII
text pays it (`unicode_tables`); ASCII text needs only `SPACE`.
"""

from __future__ import annotations

import threading
import unicodedata
from dataclasses import dataclass
from functools import cache

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

ALPHA, SIGMA = "\u0391", "\u03a3"
LIMIT = 0x30000
"""Characters from here up (CJK extensions G and later, tags, variation selectors supplement, private
use planes) are left to the scalar path without a check."""


def _ranges(codes: list[int]) -> str:
    """A regex class body (`\\x{..}-\\x{..}` ranges) for sorted code points."""
    parts: list[str] = []
    start = previous = None
    for code in codes:
        if previous is not None and code == previous + 1:
            previous = code
            continue
        if start is not None:
            parts.append(_span(start, previous))
        start = previous = code
    if start is not None:
        parts.append(_span(start, previous))
    return "".join(parts)


def _span(start: int, stop: int | None) -> str:
    return f"\\x{{{start:X}}}" if stop == start else f"\\x{{{start:X}}}-\\x{{{stop:X}}}"


SPACE: str = "".join(chr(code) for code in range(0x10000) if chr(code).isspace())
"""What `str.strip()` removes and `re`'s `\\s` matches: every character `str.isspace` accepts (all of
them are in the BMP; anything past it that Python's version might add is unsure, see below)."""
SPACE_CLASS: str = _ranges([ord(ch) for ch in SPACE])
"""SPACE as a regex class body."""


@cache
def dash_class() -> str:
    """Dash punctuation (category Pd), which ZIP codes drop, as a regex class body; cheap enough for
    ASCII columns too (characters past `LIMIT` are unsure anyway)."""
    return _ranges([code for code in range(LIMIT) if unicodedata.category(chr(code)) == "Pd"])


@dataclass(frozen=True, slots=True)
class UnicodeTables:
    """Regex class bodies (without brackets) over the characters Python's Unicode version assigns."""

    unsure: str
    """Characters whose values go to the scalar path (see the module docstring)."""
    nfc: str
    """Characters whose presence means NFC may change a text: those NFC changes by themselves, every
    character with a non-zero combining class (reordering), and every character that can be the
    second of a canonical composition pair (combining marks, Hangul vowel and final jamo, Indic
    length marks). Text with none of them is already NFC, so only the rest is normalized."""
    flagged: str
    """`unsure`, `nfc` and the characters whose lowercase has an `nfc` character (`İ` gives `i` and a
    combining dot). Text with none of them is *plain*: NFC, and still NFC after lowercasing and after
    dropping any of its characters, so the fast paths' later NFC steps skip it."""
    disagreements: tuple[str, ...]
    """Assigned characters on which polars or pyarrow and Python differ (unsure as well); expected
    empty, kept for tests and for a person wondering why a value went the slow way."""


SEP = "\x00"
"""Joins characters into one text for the bulk probes: neither cased nor case-ignorable, a starter
that composes with nothing, so no rule looks across it and each piece is the character's own answer."""


def _differing(chars: list[str], python: str, ours: str) -> set[str]:
    """The characters whose piece differs between two answers for `SEP.join`-ed probes."""
    if python == ours:
        return set()
    pieces = zip(python.split(SEP), ours.split(SEP), strict=True)
    return {ch for ch, (left, right) in zip(chars, pieces, strict=True) if left != right}


def _disagreements(chars: list[str], categories: list[str]) -> set[str]:
    """Characters on which polars' lowercasing (alone and in three final-sigma contexts, which pin down
    the Case_Ignorable and Cased properties the rule reads), Arrow's NFC, or polars' `\\p{L}` and
    `\\p{M}` differ from Python's."""
    probes = {
        "alone": SEP.join(chars),
        "after": ALPHA + (SIGMA + SEP + ALPHA).join(chars) + SIGMA,
        "before": (SIGMA + SEP).join(chars) + SIGMA,
        "inside": ALPHA + SIGMA + (SEP + ALPHA + SIGMA).join(chars),
    }
    lowered = pl.Series(list(probes.values()), dtype=pl.String).str.to_lowercase().to_list()
    found: set[str] = set()
    for probe, ours in zip(probes.values(), lowered, strict=True):
        found |= _differing(chars, probe.lower(), ours)
    joined = probes["alone"]
    arrow_nfc = pc.utf8_normalize(pa.array([joined]), "NFC")[0].as_py()
    found |= _differing(chars, unicodedata.normalize("NFC", joined), arrow_nfc)
    for flag in "LM":
        python = SEP.join([ch if cat[0] == flag else "" for ch, cat in zip(chars, categories, strict=True)])
        kept = pl.Series([joined]).str.replace_all(f"[^\\p{{{flag}}}{SEP}]", "").item()
        found |= _differing(chars, python, kept)
    return found


_BUILDING = threading.Lock()


def unicode_tables() -> UnicodeTables:
    """The tables, built once per process by the first thread that needs them (the others wait)."""
    with _BUILDING:
        return _unicode_tables()


@cache
def _unicode_tables() -> UnicodeTables:
    codes = [code for code in range(0x80, LIMIT) if not 0xD800 <= code < 0xE000]
    chars = list(map(chr, codes))
    categories = list(map(unicodedata.category, chars))
    known = [(ch, cat) for ch, cat in zip(chars, categories, strict=True) if cat != "Cn"]
    assigned = [ch for ch, _ in known]
    disagreements = _disagreements(assigned, [cat for _, cat in known])
    unsure = {ord(ch) for ch, cat in zip(chars, categories, strict=True) if cat == "Cn"} | set(map(ord, disagreements))
    sensitive = _nfc_sensitive(assigned)
    lowered = dict(zip(assigned, SEP.join(assigned).lower().split(SEP), strict=True))
    lower_sensitive = {ord(ch) for ch, low in lowered.items() if any(ord(x) in sensitive for x in low)}
    return UnicodeTables(
        unsure=_ranges(sorted(unsure)) + _span(LIMIT, 0x10FFFF),
        nfc=_ranges(sorted(sensitive)),
        flagged=_ranges(sorted(unsure | sensitive | lower_sensitive)) + _span(LIMIT, 0x10FFFF),
        disagreements=tuple(sorted(disagreements)),
    )


def _nfc_sensitive(assigned: list[str]) -> set[int]:
    composed = unicodedata.normalize("NFC", SEP.join(assigned)).split(SEP)
    found = {ord(ch) for ch, nfc in zip(assigned, composed, strict=True) if nfc != ch}
    found.update(ord(ch) for ch in assigned if unicodedata.combining(ch))
    for ch in assigned:
        decomposition = unicodedata.decomposition(ch)
        if decomposition and decomposition[0] != "<":
            parts = decomposition.split()
            if len(parts) == 2:
                found.add(int(parts[1], 16))
    found.update(range(0x1161, 0x1176))  # Hangul vowel jamo: L + V composes
    found.update(range(0x11A8, 0x11C3))  # Hangul final jamo: LV + T composes
    return found


def nfc(values: pl.Series) -> pl.Series:
    """NFC, computed by Arrow only for the values that can change (see `UnicodeTables.nfc`); ASCII
    text is NFC already, so only non-ASCII values are even looked at."""
    non_ascii = (values.str.len_bytes() != values.str.len_chars()).fill_null(False)
    if not non_ascii.any():
        return values
    rows = non_ascii.arg_true()
    text = values.gather(rows)
    needs = text.str.contains(f"[{unicode_tables().nfc}]")
    if not needs.any():
        return values
    rows, text = rows.filter(needs), text.filter(needs)
    fixed = pl.Series(pc.utf8_normalize(text.to_arrow(), "NFC"), dtype=pl.String)
    return values.clone().scatter(rows, fixed)


def _nfc_unless_plain(pair: pl.Series) -> pl.Series:
    text, plain = pair.struct.field("text"), pair.struct.field("plain")
    rows = (~plain.fill_null(True)).arg_true()
    if not len(rows):
        return text
    return text.clone().scatter(rows, nfc(text.gather(rows)))


def nfc_expr(expr: pl.Expr, plain: pl.Expr) -> pl.Expr:
    """NFC of `expr`, for the rows where `plain` (see `UnicodeTables.flagged`) is false."""
    pair = pl.struct(expr.alias("text"), plain.alias("plain"))
    return pair.map_batches(_nfc_unless_plain, return_dtype=pl.String, is_elementwise=True)


__all__ = ["LIMIT", "SPACE", "SPACE_CLASS", "UnicodeTables", "dash_class", "nfc", "nfc_expr", "unicode_tables"]
