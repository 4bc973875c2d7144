r"""Vectorized forms of each key's common shapes, in polars.

A fast path takes a frame with the raw text `v` (and the member's upper-case country `c` for
country-dependent keys) and returns it with `norm`, `reason`, `pre` (pre-hashed) and `done`. It only
claims rows whose answer it can give exactly as the scalar normalizer would, in the shapes it knows:
text in any script, as long as every character is one on which polars, Arrow and Python agree
(`charsets`: all that Python's Unicode version assigns, checked at first use). NFC is Arrow's, run
only on the values it can change; whitespace is Python's own list; letters and marks are Rust's
`\p{L}` and `\p{M}`, checked equal to Python's categories. Every other row is left `done = false`
and goes through the scalar normalizer, once per distinct value. Queries use the `_seq` forms of
`select` and `with_columns` (see `vectorized`: the keys already run one per core).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import polars as pl
import pyarrow.compute as pc
from anyascii import anyascii

from audiencesync.matchkeys.charsets import SPACE, SPACE_CLASS, dash_class, nfc, nfc_expr, unicode_tables
from audiencesync.matchkeys.context import DateOrder
from audiencesync.matchkeys.dates import MONTHS
from audiencesync.matchkeys.errors import (
    NO_LETTERS,
    NOT_A_UUID,
    NOT_AN_EMAIL,
    NOTHING_LEFT,
    OUT_OF_RANGE,
    TWO_DIGIT_YEAR,
    ZERO_MADID,
)
from audiencesync.matchkeys.geo import us_states
from audiencesync.matchkeys.text import MADID_PATTERN, ZERO_MADID_PATTERN

# Python's str.strip()/\s on ASCII: these eight, including the four information separators.
ASCII_WHITESPACE = "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f "
WS = SPACE_CLASS
"""Python's whitespace (`str.isspace`, `re`'s `\\s`) as a regex class body."""
_EMAIL = rf"^[^@{WS}]+@[^@.{WS}]+(?:\.[^@.{WS}]+)+$"
_NOT_LETTER_OR_MARK = r"[^\p{L}\p{M}]+"


@dataclass(frozen=True, slots=True)
class FastContext:
    date_order: DateOrder
    current_year: int


FastPath = Callable[[pl.LazyFrame, FastContext], pl.LazyFrame]

V = pl.col("v")
T = pl.col("t")
ASCII = pl.col("_ascii")
SURE = pl.col("_sure")
PLAIN = pl.col("_plain")
EMPTY = pl.col("_empty")
PRE = pl.col("_pre")
CLAIMED = V.is_null() | SURE
T_NUMBER = pl.col("_tn")
HEX = pl.col("_hex")


def prepare(frame: pl.DataFrame) -> pl.LazyFrame:
    """Cleaned text `t` (NFC, then trimmed of Python's whitespace: `clean_text`) and the flags every
    rule reads, each computed once (polars does not share sub-expressions reliably, and these run
    over every row). `_sure` is false for text with a character the fast paths leave to Python.

    Only non-ASCII rows are normalized and checked, so an ASCII column never pays for Unicode."""
    values = frame.get_column("v")
    ascii_rows = (values.str.len_bytes() == values.str.len_chars()).fill_null(True)
    if ascii_rows.all():
        staged = frame.with_columns_seq(_n=values, _ascii=ascii_rows, _sure=pl.lit(True), _plain=pl.lit(True))
        space = ASCII_WHITESPACE
    else:
        tables = unicode_tables()
        rows = (~ascii_rows).arg_true()
        text = values.gather(rows)
        # One pass finds the few values that are not plain; then each class on those only.
        flagged = text.str.contains(f"[{tables.flagged}]")
        rows, text = rows.filter(flagged), text.filter(flagged)
        unsure = text.str.contains(f"[{tables.unsure}]")
        every = pl.repeat(True, len(values), dtype=pl.Boolean, eager=True)
        staged = frame.with_columns_seq(
            _n=values.clone().scatter(rows, nfc(text)) if len(rows) else values,
            _ascii=ascii_rows,
            _sure=every.clone().scatter(rows.filter(unsure), False) if unsure.any() else every,
            _plain=every.clone().scatter(rows, False) if len(rows) else every,
        )
        space = SPACE
    staged = staged.lazy().with_columns_seq(t=pl.col("_n").str.strip_chars(space))
    return staged.with_columns_seq(
        _empty=V.is_null() | (T.str.len_bytes() == 0),
        _hex=T.map_batches(_prehashed, return_dtype=pl.String, is_elementwise=True),
        _tn=T.map_batches(_float_suffix_dropped, return_dtype=pl.String, is_elementwise=True),
    ).with_columns_seq(_pre=HEX.is_not_null())


def lowercase(text: pl.Series) -> pl.Series:
    """`str.lower`: Arrow's ASCII kernel for ASCII values (six times faster than polars' Unicode
    one, and the same answer on them), polars for the others."""
    lowered = pl.Series(text.name, pc.ascii_lower(text.to_arrow()), dtype=pl.String)
    rows = (text.str.len_bytes() != text.str.len_chars()).fill_null(False).arg_true()
    if not len(rows):
        return lowered
    return lowered.scatter(rows, text.gather(rows).str.to_lowercase())


def _lowered() -> pl.Expr:
    return T.map_batches(lowercase, return_dtype=pl.String, is_elementwise=True)


def _prehashed(text: pl.Series) -> pl.Series:
    """Lowercased where the text is 64 hex digits (a hash made elsewhere), null elsewhere: only the
    values of length 64 are looked at."""
    where = (text.str.len_bytes() == 64).fill_null(False).arg_true()
    hexes = pl.repeat(None, len(text), dtype=pl.String, eager=True).alias(text.name)
    if not len(where):
        return hexes
    candidates = text.gather(where)
    found = candidates.str.contains(r"^[0-9A-Fa-f]{64}$")
    return hexes.scatter(where.filter(found), candidates.filter(found).str.to_lowercase())


def _float_suffix_dropped(text: pl.Series) -> pl.Series:
    """`values.drop_float_suffix`: `4155550199.0` is a number that went through a float column; the
    pattern runs only on the values that end so (a suffix search is faster than a search for `.`,
    and phone numbers written `415.555.0100` have dots)."""
    rows = text.str.contains(r"\.0+$").fill_null(False)
    if not rows.any():
        return text
    where = rows.arg_true()
    part = text.gather(where)
    return text.clone().scatter(where, part.str.extract(r"^(\+?[0-9]+)\.0+$", 1).fill_null(part))


def _finish(frame: pl.LazyFrame, norm: pl.Expr, reason: pl.Expr, *, hashed: bool = True) -> pl.LazyFrame:
    """Empty and pre-hashed are decided here once, so each key only describes its own rule."""
    pre = (~EMPTY & PRE) if hashed else pl.lit(False)
    return frame.with_columns_seq(
        norm=pl.when(EMPTY).then(None).when(pre).then(HEX).otherwise(norm),
        reason=pl.when(EMPTY | pre).then(None).otherwise(reason),
        pre=pre.fill_null(False),
        done=CLAIMED.fill_null(True),
    )


def email_fast(frame: pl.LazyFrame, ctx: FastContext) -> pl.LazyFrame:
    """`text.email`: lowercase, NFC again (lowercasing can decompose), then the address shape."""
    frame = frame.with_columns_seq(_low=nfc_expr(_lowered(), PLAIN)).with_columns_seq(
        _ok=pl.col("_low").str.contains(_EMAIL)
    )
    valid = pl.col("_ok")
    return _finish(frame, pl.when(valid).then(pl.col("_low")), pl.when(~valid).then(pl.lit(NOT_AN_EMAIL)))


def _name_letters(frame: pl.LazyFrame) -> pl.LazyFrame:
    """`text.name`: lowercase and NFC, keep letters and marks of any script, NFC again (dropping a
    character between a letter and a mark can make them compose). `_has` says a letter is left."""
    lowered = nfc_expr(_lowered(), PLAIN)
    frame = frame.with_columns_seq(_letters=nfc_expr(lowered.str.replace_all(_NOT_LETTER_OR_MARK, ""), PLAIN))
    return frame.with_columns_seq(_has=pl.col("_letters").str.contains(r"\p{L}"))


def name_fast(frame: pl.LazyFrame, ctx: FastContext) -> pl.LazyFrame:
    frame = _name_letters(frame)
    letters, present = pl.col("_letters"), pl.col("_has")
    return _finish(frame, pl.when(present).then(letters), pl.when(~present).then(pl.lit(NO_LETTERS)))


def first_initial_fast(frame: pl.LazyFrame, ctx: FastContext) -> pl.LazyFrame:
    """`text.first_initial`: the first letter (not mark) of the normalized name."""
    frame = _name_letters(frame)
    present = pl.col("_has")
    initial = pl.col("_letters").str.extract(r"(\p{L})", 1)
    return _finish(frame, pl.when(present).then(initial), pl.when(~present).then(pl.lit(NO_LETTERS)))


def _transliterated_letters(frame: pl.LazyFrame) -> pl.LazyFrame:
    """`geo._ascii_letters`: letters and marks, transliterated by anyascii, lowercased, `a-z` only.

    anyascii maps each code point on its own, so the distinct non-ASCII characters of the column are
    looked up once and replaced in one pass."""
    frame = frame.with_columns_seq(_kept=T.str.replace_all(_NOT_LETTER_OR_MARK, "")).collect(engine="in-memory").lazy()
    kept = pl.col("_kept")
    foreign = frame.select_seq(kept.str.extract_all(r"[^\x00-\x7F]").explode().drop_nulls().unique())
    foreign = foreign.collect(engine="in-memory")
    chars = foreign.to_series().to_list()
    ascii_kept = kept.str.replace_many({ch: anyascii(ch) for ch in chars}) if chars else kept
    return frame.with_columns_seq(_ascii_letters=ascii_kept.str.to_lowercase().str.replace_all(r"[^a-z]+", ""))


def city_fast(frame: pl.LazyFrame, ctx: FastContext) -> pl.LazyFrame:
    frame = _transliterated_letters(frame)
    letters = pl.col("_ascii_letters")
    present = letters.str.len_bytes() > 0
    return _finish(frame, pl.when(present).then(letters), pl.when(~present).then(pl.lit(NO_LETTERS)))


def state_fast(frame: pl.LazyFrame, ctx: FastContext) -> pl.LazyFrame:
    """`geo.state`: the letters as CT has them; in the US (or with no country) a USPS code or a
    state's name becomes the code."""
    codes, names = us_states()
    frame = _transliterated_letters(frame)
    letters = pl.col("_ascii_letters")
    present = letters.str.len_bytes() > 0
    us = pl.col("c").is_null() | (pl.col("c") == "US")
    coded = pl.when(letters.is_in(list(codes))).then(letters).otherwise(letters.replace(names))
    norm = pl.when(present & us).then(coded).when(present).then(letters)
    return _finish(frame, norm, pl.when(~present).then(pl.lit(NO_LETTERS)))


def _dropped(text: pl.Series, pattern: str, ascii_members: str) -> pl.Series:
    """The characters of the class `pattern` removed, rewriting only the values that hold one: a
    search costs a third of a replace, and most postal codes have no space or dash. When those
    values are all ASCII, only the class's ASCII members (`ascii_members`) can be in them, and a
    literal replace of those is three times faster than the regex."""
    rows = text.str.contains(pattern).fill_null(False).arg_true()
    if not len(rows):
        return text
    held = text.gather(rows)
    if not (held.str.len_bytes() == held.str.len_chars()).all():
        fixed = held.str.replace_all(pattern, "")
    elif len(ascii_members) == 1:
        fixed = held.str.replace_all(ascii_members, "", literal=True)
    else:
        fixed = held.str.replace_many(dict.fromkeys(ascii_members, ""))
    return text.clone().scatter(rows, fixed)


def zip_fast(frame: pl.LazyFrame, ctx: FastContext) -> pl.LazyFrame:
    """`geo.postal_code`: whitespace out; US digits cut or padded; with no country a ZIP+4 cut;
    elsewhere lowercase, no dashes. Each rule runs on the rows it is for only."""
    staged = frame.collect(engine="in-memory")
    compact = _dropped(staged.get_column("_tn"), f"[{WS}]+", ASCII_WHITESPACE)
    country = staged.get_column("c")
    norm = pl.repeat(None, staged.height, dtype=pl.String, eager=True)
    settled = pl.repeat(False, staged.height, dtype=pl.Boolean, eager=True)
    us_rows = (country == "US").fill_null(False).arg_true()
    if len(us_rows):
        undashed = _dropped(compact.gather(us_rows), f"[{dash_class()}]", "-")
        shaped = undashed.str.contains(r"^[0-9]+$").fill_null(False)
        digits, rows = undashed.filter(shaped), us_rows.filter(shaped)
        length = digits.str.len_bytes()
        five = pl.select(
            pl.when(pl.lit(length) >= 5)
            .then(pl.lit(digits).str.slice(0, 5))
            .when(pl.lit(length) >= 3)
            .then(pl.lit(digits).str.zfill(5))
        ).to_series()
        known = five.is_not_null()
        norm, settled = norm.scatter(rows.filter(known), five.filter(known)), settled.scatter(rows.filter(known), True)
    unknown_rows = country.is_null().arg_true()
    if len(unknown_rows):
        text = compact.gather(unknown_rows)
        plus_four = text.str.contains(r"^[0-9]{5}-[0-9]{4}$").fill_null(False)
        rows = unknown_rows.filter(plus_four)
        norm, settled = norm.scatter(rows, text.filter(plus_four).str.slice(0, 5)), settled.scatter(rows, True)
    rest = (~settled).arg_true()
    generic = nfc(_dropped(lowercase(compact.gather(rest)), f"[{dash_class()}]", "-"))
    norm = norm.scatter(rest, pl.select(pl.when(pl.lit(generic).str.len_bytes() > 0).then(pl.lit(generic))).to_series())
    staged = staged.with_columns_seq(_zip=norm)
    zip_code = pl.col("_zip")
    return _finish(staged.lazy(), zip_code, pl.when(zip_code.is_null()).then(pl.lit(NOTHING_LEFT)))


def _days_in_month(year: pl.Expr, month: pl.Expr) -> pl.Expr:
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    return (
        pl.when(month == 2)
        .then(pl.when(leap).then(29).otherwise(28))
        .when(month.is_in([4, 6, 9, 11]))
        .then(30)
        .otherwise(31)
    )


def birth_year_fast(frame: pl.LazyFrame, ctx: FastContext) -> pl.LazyFrame:
    """Plain years, ISO dates, slashed dates and `7 April 1990` with four-digit years; other shapes
    (two-digit years, times, odd separators) go scalar. Stages are materialized so each regex runs once."""
    month_first = ctx.date_order == "MDY"
    # One pass for the three shapes: ISO (groups 1-3), slashed (4-6), `7 April 1990` (7-9). The month
    # name is matched in ASCII letters only: `dates` lowercases first and then wants `a-z`, and only
    # ASCII letters lowercase into those alone (a Kelvin sign does too, so such text goes scalar).
    shapes = (
        r"^(?:([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})|([0-9]{1,2})/([0-9]{1,2})/([0-9]{4})"
        r"|([0-9]{1,2}) ([A-Za-z]+) ([0-9]{4}))$"
    )
    staged = frame.with_columns_seq(_g=T.str.extract_groups(shapes), _tn=T_NUMBER)
    group = pl.col("_g").struct
    named_month = group.field("8").str.to_lowercase().replace_strict(MONTHS, default=None, return_dtype=pl.Int32)
    first, second = group.field("4").cast(pl.Int32), group.field("5").cast(pl.Int32)
    bare = pl.col("_tn").str.contains(r"^[0-9]{1,7}$")
    staged = staged.with_columns_seq(
        _y=pl.coalesce(
            group.field("1"), group.field("6"), pl.when(named_month.is_not_null()).then(group.field("9"))
        ).cast(pl.Int64),
        _m=pl.coalesce(group.field("2").cast(pl.Int32), first if month_first else second, named_month),
        _d=pl.coalesce(
            group.field("3").cast(pl.Int32), second if month_first else first, group.field("7").cast(pl.Int32)
        ),
        _bare=bare,
        _digits=pl.when(bare).then(pl.col("_tn").str.len_bytes()).otherwise(4),
    )
    year, month, day = pl.col("_y"), pl.col("_m"), pl.col("_d")
    real_day = (year >= 1) & month.is_between(1, 12) & day.is_between(1, 31) & (day <= _days_in_month(year, month))
    staged = staged.with_columns_seq(
        _known=pl.col("_bare") | (year.is_not_null() & real_day),
        _year=pl.coalesce(year, pl.when(pl.col("_bare")).then(pl.col("_tn").cast(pl.Int64, strict=False))),
    )
    year, digits, known = pl.col("_year"), pl.col("_digits"), pl.col("_known")
    in_range = year.is_between(1900, ctx.current_year) & (digits == 4)
    reason = (
        pl.when(~known)
        .then(None)
        .when(digits == 2)
        .then(pl.lit(TWO_DIGIT_YEAR))
        .when(~in_range)
        .then(pl.lit(OUT_OF_RANGE))
    )
    out = _finish(staged, pl.when(known & in_range).then(year.cast(pl.String).str.zfill(4)), reason)
    return out.with_columns_seq(done=pl.col("done") & (EMPTY | PRE | known).fill_null(True))


def madid_fast(frame: pl.LazyFrame, ctx: FastContext) -> pl.LazyFrame:
    """The scalar rule's two checks in its order: all-zero first, then the UUID shape."""
    frame = frame.with_columns_seq(_low=_lowered())
    lowered = pl.col("_low")
    frame = frame.with_columns_seq(
        _zero=lowered.str.contains(f"^{ZERO_MADID_PATTERN}$"), _uuid=lowered.str.contains(f"^{MADID_PATTERN}$")
    )
    zero, uuid = pl.col("_zero"), pl.col("_uuid")
    reason = pl.when(zero).then(pl.lit(ZERO_MADID)).when(~uuid).then(pl.lit(NOT_A_UUID))
    return _finish(frame, pl.when(~zero & uuid).then(lowered), reason, hashed=False)


def extern_id_fast(frame: pl.LazyFrame, ctx: FastContext) -> pl.LazyFrame:
    return _finish(frame, T, pl.lit(None, pl.String), hashed=False)
