"""The vectorized phone path: phonenumbers' parse, replayed in polars for the shapes it is sure of.

`phonenumbers.parse` costs 20-40 µs a number, and phone numbers hardly repeat, so on a large list
parsing every one is most of the run time. For input made only of digits and the usual separators,
parsing reduces to a few decisions that depend on the region's metadata: the country code, whether
a trunk prefix is stripped, and whether the length is possible for the country. Those decisions are
taken here with phonenumbers' own metadata (no copied tables), for the cases where the library's
logic is simple: a trunk prefix that is exactly `0` or none, the region's IDD not present, and a
possible length. Anything else (letters, extensions, carrier codes, transform rules, invalid
lengths) is left to the scalar path, which calls phonenumbers itself. Tests compare both paths.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import phonenumbers
import polars as pl
from phonenumbers import PhoneMetadata, ValidationResult
from phonenumbers.phonenumber import PhoneNumber

from audiencesync.matchkeys.errors import NO_DIGITS
from audiencesync.matchkeys.fastpaths import ASCII, EMPTY, PRE, T_NUMBER, FastContext, _finish
from audiencesync.matchkeys.phone import LENGTH_REASONS, phone_region

_NO_STRIP = (ValidationResult.TOO_SHORT, ValidationResult.IS_POSSIBLE_LOCAL_ONLY, ValidationResult.INVALID_LENGTH)
_MAX_NSN = 17


@dataclass(frozen=True, slots=True)
class RegionRules:
    """What parsing a number of one region depends on, read from phonenumbers' metadata."""

    region: str
    country_code: str
    is_main: bool
    idd: str | None
    trunk: str | None
    general: str | None
    possible: frozenset[int]
    keeps_trunk: frozenset[int]
    reasons: dict[int, str]


def _length_result(country_code: int, length: int) -> int:
    number = PhoneNumber(country_code=country_code, national_number=int("1" * length))
    return phonenumbers.is_possible_number_with_reason(number)


@cache
def region_rules(region: str) -> RegionRules | None:
    metadata = PhoneMetadata.metadata_for_region(region, None)
    if metadata is None:
        return None
    code = metadata.country_code
    results = {length: _length_result(code, length) for length in range(2, _MAX_NSN + 1)}
    return RegionRules(
        region=region,
        country_code=str(code),
        is_main=phonenumbers.region_code_for_country_code(code) == region,
        idd=metadata.international_prefix,
        trunk=metadata.national_prefix_for_parsing or None,
        general=metadata.general_desc.national_number_pattern if metadata.general_desc else None,
        possible=frozenset(n for n, result in results.items() if result == ValidationResult.IS_POSSIBLE),
        keeps_trunk=frozenset(n for n, result in results.items() if result in _NO_STRIP),
        reasons={n: reason for n, result in results.items() if (reason := LENGTH_REASONS.get(result)) is not None},
    )


@cache
def _main_regions() -> dict[str, str]:
    """Country calling code → the region whose metadata parse uses for it (geographic codes only)."""
    return {
        str(code): regions[0]
        for code, regions in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.items()
        if regions and regions[0] != "001"
    }


def _country_code_of(digits: pl.Expr) -> pl.Expr:
    """phonenumbers takes the shortest prefix that is a calling code (codes are prefix-free)."""
    codes = list(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)
    out = pl.lit(None, pl.String)
    for length in (3, 2, 1):
        prefix = digits.str.slice(0, length)
        known = [str(code) for code in codes if len(str(code)) == length]
        out = pl.when(prefix.is_in(known)).then(prefix).otherwise(out)
    return out


def _starts(column: pl.Expr, pattern: str) -> pl.Expr:
    """`re.match` of a metadata pattern; plain digit strings (most IDDs and trunks) need no regex."""
    if pattern.isdigit():
        return column.str.starts_with(pattern)
    return column.str.contains(f"^(?:{pattern})")


def _length_outcome(part: pl.DataFrame, rules: RegionRules, national: pl.Expr, sure: pl.Expr) -> pl.DataFrame:
    """`out` when the national number's length is possible, `bad` (a reason) when it clearly is not."""
    length = national.str.len_bytes()
    plausible = sure & (pl.col("d").str.len_bytes() >= 4) & length.is_between(4, _MAX_NSN)
    possible = length.is_in(list(rules.possible))
    return part.select(
        "_i",
        out=pl.when(sure & possible).then(pl.lit(rules.country_code) + national),
        bad=pl.when(plausible & ~possible).then(
            length.replace_strict(rules.reasons, default=None, return_dtype=pl.String)
        ),
    )


def _settle(part: pl.DataFrame, rules: RegionRules) -> list[pl.DataFrame]:
    """One region's rows. `n` is the national number before any trunk prefix is taken off; rows
    whose trunk prefix is not simply `0` on the region's own metadata are left to the scalar path."""
    n = pl.col("n")
    if rules.trunk is None:
        return [_length_outcome(part, rules, n, pl.lit(True))]
    if rules.trunk.isdigit():
        prefixed = part.get_column("n").str.starts_with(rules.trunk)
        part = part.with_columns(_prefix=pl.when(prefixed).then(pl.lit(rules.trunk)))
    else:
        part = part.with_columns(_prefix=n.str.extract(f"^(?:{rules.trunk})", 0))
    plain = part.filter(pl.col("_prefix").is_null())
    prefixed_rows = part.filter(pl.col("_prefix").is_not_null())
    outcomes = [_length_outcome(plain, rules, n, pl.lit(True))]
    if prefixed_rows.height:
        candidate = n.str.slice(1)
        keeps = candidate.str.len_bytes().is_in(list(rules.keeps_trunk))
        if rules.general:
            general = f"^(?:{rules.general})$"
            keeps = keeps | (n.str.contains(general) & ~candidate.str.contains(general))
        national = pl.when(keeps).then(n).otherwise(candidate)
        sure = (pl.col("_prefix") == "0") & pl.lit(rules.is_main)
        outcomes.append(_length_outcome(prefixed_rows, rules, national, sure))
    return outcomes


def _resolve(rows: pl.DataFrame) -> pl.DataFrame:
    """Settle each region's rows with that region's metadata; `_i` ties them back."""
    parts = [rows.select("_i").clear().with_columns(out=pl.lit(None, pl.String), bad=pl.lit(None, pl.String))]
    for (key,), part in rows.partition_by("mr", as_dict=True, maintain_order=False).items():
        rules = region_rules(key) if key else None
        if rules is None:
            continue
        national = part.filter(~pl.col("intl"))
        international = part.filter(pl.col("intl"))
        if rules.region in ("US", "CA"):
            d = national.get_column("d")
            trunk_one = (d.str.len_bytes() == 11) & d.str.starts_with("1") & (d.str.slice(1, 1) > "1")
            parts.append(national.filter(trunk_one).select("_i", out=pl.col("d"), bad=pl.lit(None, pl.String)))
            national = national.filter(~trunk_one)
        own_code = pl.col("d").str.starts_with(rules.country_code)
        idd = _starts(pl.col("d"), rules.idd) if rules.idd else pl.lit(False)
        national = national.filter(~own_code & ~idd).with_columns(n=pl.col("d"))
        for chunk in (national, international):
            if chunk.height:
                parts.extend(_settle(chunk, rules))
    return pl.concat(parts, how="vertical")


def phone_fast(frame: pl.LazyFrame, ctx: FastContext) -> pl.LazyFrame:
    """Most numbers of a North American list are ten digits, `1` and ten digits, or `+1` and ten:
    those are settled in one pass (the same answer the region rules give, tested against
    phonenumbers); the rest are grouped by region and settled with that region's metadata."""
    number = T_NUMBER
    work = (
        frame.with_row_index("_i")
        .with_columns(
            shaped=number.str.contains(r"^\+?[0-9 ().\-]*$") & ASCII & ~EMPTY & ~PRE,
            plus=number.str.starts_with("+"),
            all_digits=number.str.replace_all(r"[^0-9]+", ""),
        )
        .with_columns(intl=pl.col("plus") | pl.col("all_digits").str.starts_with("00"))
        .with_columns(
            d=pl.when(pl.col("plus"))
            .then(pl.col("all_digits"))
            .when(pl.col("intl"))
            .then(pl.col("all_digits").str.slice(2))
            .otherwise(pl.col("all_digits"))
        )
        .collect()
    )
    regions = {c: phone_region(c) for c in work.get_column("c").unique().drop_nulls().to_list()}
    work = work.with_columns(region=pl.col("c").replace_strict(regions, default=None, return_dtype=pl.String))
    d = pl.col("d")
    nanp_shape = (d.str.len_bytes() == 11) & d.str.starts_with("1") & (d.str.slice(1, 1) > "1")
    nanp_national = pl.col("region").is_in(["US", "CA"]) & ~pl.col("intl")
    work = work.with_columns(
        _nanp=pl.col("shaped")
        & (
            (nanp_national & (d.str.len_bytes() == 10) & (d.str.slice(0, 1) > "1"))
            | ((nanp_national | pl.col("plus")) & nanp_shape)
        )
    )
    candidates = work.filter(
        pl.col("shaped") & ~pl.col("_nanp") & (d != "") & (pl.col("intl") | pl.col("region").is_not_null())
    ).select("_i", "d", "intl", "region")
    national = candidates.filter(~pl.col("intl")).select("_i", "d", "intl", n=pl.lit(None, pl.String), mr="region")
    international = (
        candidates.filter(pl.col("intl"))
        .with_columns(cc=_country_code_of(pl.col("d")))
        .select(
            "_i",
            "d",
            "intl",
            n=pl.col("d").str.slice(pl.col("cc").str.len_chars()),
            mr=pl.col("cc").replace_strict(_main_regions(), default=None, return_dtype=pl.String),
        )
    )
    resolved = _resolve(pl.concat([national, international], how="vertical"))
    work = work.join(resolved, on="_i", how="left")
    no_digits = pl.col("d") == ""
    raw = pl.col("d").str.strip_chars_start("0")
    local = ~pl.col("intl") & pl.col("region").is_null()
    nanp = pl.when(d.str.len_bytes() == 10).then(pl.lit("1") + d).otherwise(d)
    norm = (
        pl.when(pl.col("_nanp"))
        .then(nanp)
        .when(pl.col("out").is_not_null())
        .then(pl.col("out"))
        .when(local & (raw != ""))
        .then(raw)
    )
    reason = pl.when(no_digits | (local & (raw == ""))).then(pl.lit(NO_DIGITS)).otherwise(pl.col("bad"))
    settled = pl.col("shaped") & (
        pl.col("_nanp") | pl.col("out").is_not_null() | pl.col("bad").is_not_null() | no_digits | local
    )
    out = _finish(work.lazy(), norm, reason)
    return out.with_columns(done=pl.col("done") & (EMPTY | PRE | settled).fill_null(True))
