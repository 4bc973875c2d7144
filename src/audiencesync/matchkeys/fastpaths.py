"""Vectorized forms of each key's common shapes, in polars.

A fast path takes a frame with the raw text `v` (and the member's upper-case country `c` for
country-dependent keys) and returns it with `norm`, `reason`, `pre` (pre-hashed) and `done`. It only
claims rows whose answer it can give exactly as the scalar normalizer would: ASCII text (where
Python's and Rust's notions of whitespace, case and NFC coincide) in the shapes it knows. Every other
row is left `done = false` and goes through the scalar normalizer, once per distinct value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

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
from audiencesync.matchkeys.text import MADID_PATTERN, ZERO_MADID_PATTERN

# Python's str.strip()/\s on ASCII: these eight, including the four information separators.
ASCII_WHITESPACE = "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f "
WS = r"\t\n\x0b\x0c\r\x1c-\x1f "
_EMAIL = rf"^[^@{WS}]+@[^@.{WS}]+(?:\.[^@.{WS}]+)+$"


@dataclass(frozen=True, slots=True)
class FastContext:
    date_order: DateOrder
    current_year: int


FastPath = Callable[[pl.LazyFrame, FastContext], pl.LazyFrame]

V = pl.col("v")
T = pl.col("t")
ASCII = pl.col("_ascii")
EMPTY = pl.col("_empty")
PRE = pl.col("_pre")
CLAIMED = V.is_null() | ASCII
T_NUMBER = pl.col("_tn")


def prepare(frame: pl.DataFrame) -> pl.LazyFrame:
    """Trimmed text and the flags every rule reads, each computed once (polars does not share
    sub-expressions reliably, and these run over every row)."""
    trimmed = V.str.strip_chars(ASCII_WHITESPACE)
    staged = frame.lazy().with_columns(t=trimmed, _ascii=V.str.len_bytes() == V.str.len_chars())
    return staged.with_columns(
        _empty=V.is_null() | (T.str.len_bytes() == 0),
        _pre=(T.str.len_bytes() == 64) & T.str.contains(r"^[0-9A-Fa-f]{64}$"),
        _tn=pl.coalesce(T.str.extract(r"^(\+?[0-9]+)\.0+$", 1), T),
    )


def _finish(frame: pl.LazyFrame, norm: pl.Expr, reason: pl.Expr, *, hashed: bool = True) -> pl.LazyFrame:
    """Empty and pre-hashed are decided here once, so each key only describes its own rule."""
    pre = (~EMPTY & PRE) if hashed else pl.lit(False)
    return frame.with_columns(
        norm=pl.when(EMPTY).then(None).when(pre).then(T.str.to_lowercase()).otherwise(norm),
        reason=pl.when(EMPTY | pre).then(None).otherwise(reason),
        pre=pre.fill_null(False),
        done=CLAIMED.fill_null(True),
    )


def email_fast(frame: pl.LazyFrame, ctx: FastContext) -> pl.LazyFrame:
    frame = frame.with_columns(_low=T.str.to_lowercase()).with_columns(_ok=pl.col("_low").str.contains(_EMAIL))
    valid = pl.col("_ok")
    return _finish(frame, pl.when(valid).then(pl.col("_low")), pl.when(~valid).then(pl.lit(NOT_AN_EMAIL)))


def _letters_only(frame: pl.LazyFrame) -> pl.LazyFrame:
    frame = frame.with_columns(_letters=T.str.to_lowercase().str.replace_all(r"[^a-z]+", ""))
    letters = pl.col("_letters")
    present = letters.str.len_bytes() > 0
    return _finish(frame, pl.when(present).then(letters), pl.when(~present).then(pl.lit(NO_LETTERS)))


def name_fast(frame: pl.LazyFrame, ctx: FastContext) -> pl.LazyFrame:
    return _letters_only(frame)


def city_fast(frame: pl.LazyFrame, ctx: FastContext) -> pl.LazyFrame:
    """For ASCII input transliteration is the identity, so CT is the same rule as a name."""
    return _letters_only(frame)


def zip_fast(frame: pl.LazyFrame, ctx: FastContext) -> pl.LazyFrame:
    frame = frame.with_columns(_compact=T_NUMBER.str.replace_all(f"[{WS}]+", "")).with_columns(
        _generic=pl.col("_compact").str.to_lowercase().str.replace_all("-", "", literal=True)
    )
    compact, generic = pl.col("_compact"), pl.col("_generic")
    country = pl.col("c")
    us = country.fill_null("") == "US"
    us_digits = pl.when(us & compact.str.contains(r"^[0-9-]+$")).then(compact.str.replace_all("-", "", literal=True))
    frame = frame.with_columns(_us=us_digits)
    us_digits = pl.col("_us")
    norm = (
        pl.when(us_digits.str.len_bytes() >= 5)
        .then(us_digits.str.slice(0, 5))
        .when(us_digits.str.len_bytes() >= 3)
        .then(us_digits.str.zfill(5))
        .when(country.is_null() & compact.str.contains(r"^[0-9]{5}-[0-9]{4}$"))
        .then(compact.str.slice(0, 5))
        .when(generic.str.len_bytes() > 0)
        .then(generic)
    )
    return _finish(frame, norm, pl.when(norm.is_null()).then(pl.lit(NOTHING_LEFT)))


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
    staged = frame.with_columns(
        _iso=T.str.extract_groups(r"^([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})$"),
        _sl=T.str.extract_groups(r"^([0-9]{1,2})/([0-9]{1,2})/([0-9]{4})$"),
        _nm=T.str.to_lowercase().str.extract_groups(r"^([0-9]{1,2}) ([a-z]+) ([0-9]{4})$"),
        _tn=T_NUMBER,
        _eight=T.str.contains(r"^[0-9]{8}$"),
    )
    iso, slashed, named = pl.col("_iso").struct, pl.col("_sl").struct, pl.col("_nm").struct
    named_month = named.field("2").replace_strict(MONTHS, default=None, return_dtype=pl.Int32)
    first, second = slashed.field("1").cast(pl.Int32), slashed.field("2").cast(pl.Int32)
    bare = pl.col("_tn").str.contains(r"^[0-9]{1,7}$") & ~pl.col("_eight")
    staged = staged.with_columns(
        _y=pl.coalesce(
            iso.field("1"), slashed.field("3"), pl.when(named_month.is_not_null()).then(named.field("3"))
        ).cast(pl.Int64),
        _m=pl.coalesce(iso.field("2").cast(pl.Int32), first if month_first else second, named_month),
        _d=pl.coalesce(
            iso.field("3").cast(pl.Int32), second if month_first else first, named.field("1").cast(pl.Int32)
        ),
        _bare=bare,
        _digits=pl.when(bare).then(pl.col("_tn").str.len_bytes()).otherwise(4),
    )
    year, month, day = pl.col("_y"), pl.col("_m"), pl.col("_d")
    real_day = (year >= 1) & month.is_between(1, 12) & day.is_between(1, 31) & (day <= _days_in_month(year, month))
    staged = staged.with_columns(
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
    return out.with_columns(done=pl.col("done") & (EMPTY | PRE | known).fill_null(True))


def madid_fast(frame: pl.LazyFrame, ctx: FastContext) -> pl.LazyFrame:
    """The scalar rule's two checks in its order: all-zero first, then the UUID shape."""
    frame = frame.with_columns(_low=T.str.to_lowercase())
    lowered = pl.col("_low")
    frame = frame.with_columns(
        _zero=lowered.str.contains(f"^{ZERO_MADID_PATTERN}$"), _uuid=lowered.str.contains(f"^{MADID_PATTERN}$")
    )
    zero, uuid = pl.col("_zero"), pl.col("_uuid")
    reason = pl.when(zero).then(pl.lit(ZERO_MADID)).when(~uuid).then(pl.lit(NOT_A_UUID))
    return _finish(frame, pl.when(~zero & uuid).then(lowered), reason, hashed=False)


def extern_id_fast(frame: pl.LazyFrame, ctx: FastContext) -> pl.LazyFrame:
    return _finish(frame, T, pl.lit(None, pl.String), hashed=False)
