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
    NOT_AN_EMAIL,
    NOTHING_LEFT,
    OUT_OF_RANGE,
    TWO_DIGIT_YEAR,
    ZERO_MADID,
)

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
ASCII = V.str.len_bytes() == V.str.len_chars()
EMPTY = V.is_null() | (T.str.len_bytes() == 0)
PRE = (T.str.len_bytes() == 64) & T.str.contains(r"^[0-9A-Fa-f]{64}$")
CLAIMED = V.is_null() | ASCII
T_NUMBER = pl.when(T.str.contains(r"^\+?[0-9]+\.0+$")).then(T.str.replace(r"\.0+$", "")).otherwise(T)


def prepare(frame: pl.DataFrame) -> pl.LazyFrame:
    """The trimmed text `t`, computed once: every rule below reads it."""
    return frame.lazy().with_columns(t=V.str.strip_chars(ASCII_WHITESPACE))


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
    lowered = T.str.to_lowercase()
    valid = lowered.str.contains(_EMAIL)
    return _finish(frame, pl.when(valid).then(lowered), pl.when(~valid).then(pl.lit(NOT_AN_EMAIL)))


def _letters_only(frame: pl.LazyFrame) -> pl.LazyFrame:
    letters = T.str.to_lowercase().str.replace_all(r"[^a-z]+", "")
    present = letters.str.len_bytes() > 0
    return _finish(frame, pl.when(present).then(letters), pl.when(~present).then(pl.lit(NO_LETTERS)))


def name_fast(frame: pl.LazyFrame, ctx: FastContext) -> pl.LazyFrame:
    return _letters_only(frame)


def city_fast(frame: pl.LazyFrame, ctx: FastContext) -> pl.LazyFrame:
    """For ASCII input transliteration is the identity, so CT is the same rule as a name."""
    return _letters_only(frame)


def zip_fast(frame: pl.LazyFrame, ctx: FastContext) -> pl.LazyFrame:
    compact = T_NUMBER.str.replace_all(f"[{WS}]+", "")
    country = pl.col("c")
    us = country.fill_null("") == "US"
    generic = compact.str.to_lowercase().str.replace_all("-", "")
    norm = (
        pl.when(us & compact.str.contains(r"^[0-9]{5}[0-9-]*$"))
        .then(compact.str.slice(0, 5))
        .when(us & compact.str.contains(r"^[0-9]{3,4}$"))
        .then(compact.str.zfill(5))
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
    """Plain years, ISO dates and slashed dates with four-digit years; other shapes go scalar."""
    iso = T.str.extract_groups(r"^([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})$")
    slashed = T.str.extract_groups(r"^([0-9]{1,2})/([0-9]{1,2})/([0-9]{4})$")
    named = T.str.to_lowercase().str.extract_groups(r"^([0-9]{1,2}) ([a-z]+) ([0-9]{4})$")
    named_month = named.struct.field("2").replace_strict(MONTHS, default=None, return_dtype=pl.Int32)
    first, second = slashed.struct.field("1").cast(pl.Int32), slashed.struct.field("2").cast(pl.Int32)
    month_first = ctx.date_order == "MDY"
    year = pl.coalesce(
        iso.struct.field("1"),
        slashed.struct.field("3"),
        pl.when(named_month.is_not_null()).then(named.struct.field("3")),
    ).cast(pl.Int32)
    month = pl.coalesce(iso.struct.field("2").cast(pl.Int32), first if month_first else second, named_month)
    day = pl.coalesce(
        iso.struct.field("3").cast(pl.Int32), second if month_first else first, named.struct.field("1").cast(pl.Int32)
    )
    real_day = (year >= 1) & month.is_between(1, 12) & day.is_between(1, 31) & (day <= _days_in_month(year, month))
    bare = T_NUMBER.str.contains(r"^[0-9]{1,7}$") & ~T.str.contains(r"^[0-9]{8}$")
    bare_year = pl.when(bare).then(T_NUMBER.cast(pl.Int64, strict=False))
    digits = pl.when(bare).then(T_NUMBER.str.len_bytes()).otherwise(4)
    year = pl.coalesce(year.cast(pl.Int64), bare_year)
    in_range = year.is_between(1900, ctx.current_year) & (digits == 4)
    known = bare | (year.is_not_null() & real_day)
    reason = (
        pl.when(~known)
        .then(None)
        .when(digits == 2)
        .then(pl.lit(TWO_DIGIT_YEAR))
        .when(~in_range)
        .then(pl.lit(OUT_OF_RANGE))
    )
    out = _finish(frame, pl.when(known & in_range).then(year.cast(pl.String).str.zfill(4)), reason)
    return out.with_columns(done=pl.col("done") & (EMPTY | PRE | known).fill_null(True))


def madid_fast(frame: pl.LazyFrame, ctx: FastContext) -> pl.LazyFrame:
    lowered = T.str.to_lowercase()
    zero = lowered.str.contains(r"^[0-]*0[0-]*$")
    return _finish(frame, pl.when(~zero).then(lowered), pl.when(zero).then(pl.lit(ZERO_MADID)), hashed=False)


def extern_id_fast(frame: pl.LazyFrame, ctx: FastContext) -> pl.LazyFrame:
    return _finish(frame, T, pl.lit(None, pl.String), hashed=False)
