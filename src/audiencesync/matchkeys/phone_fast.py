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
from audiencesync.matchkeys.phone import phone_region

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


def _national_part(part: pl.DataFrame, rules: RegionRules) -> pl.DataFrame:
    """Trunk-prefix decision and possible-length check for one region's rows (column `n`)."""
    n = pl.col("n")
    if rules.trunk is None:
        stripped, unsure = n, pl.lit(False)
    else:
        try:
            prefix = n.str.extract(f"^(?:{rules.trunk})", 0)
            general = f"^(?:{rules.general})$" if rules.general else None
            part = part.with_columns(_prefix=prefix)
        except pl.exceptions.PolarsError:
            return part.with_columns(out=pl.lit(None, pl.String))
        prefix = pl.col("_prefix")
        candidate = n.str.slice(1)
        keeps = n.str.contains(general) & ~candidate.str.contains(general) if general is not None else pl.lit(False)
        keeps = keeps | candidate.str.len_bytes().is_in(list(rules.keeps_trunk))
        stripped = pl.when(prefix.is_null()).then(n).when(keeps).then(n).otherwise(candidate)
        unsure = prefix.is_not_null() & ((prefix != "0") | pl.lit(not rules.is_main))
    possible = stripped.str.len_bytes().is_in(list(rules.possible))
    try:
        return part.with_columns(out=pl.when(~unsure & possible).then(pl.lit(rules.country_code) + stripped)).drop(
            "_prefix", strict=False
        )
    except pl.exceptions.PolarsError:
        return part.with_columns(out=pl.lit(None, pl.String)).drop("_prefix", strict=False)


def _idd_free(part: pl.DataFrame, rules: RegionRules) -> pl.DataFrame:
    """A national number starting with the region's IDD or its own calling code is the scalar's job."""
    clear = ~pl.col("d").str.starts_with(rules.country_code)
    if rules.idd:
        try:
            clear = clear & ~pl.col("d").str.contains(f"^(?:{rules.idd})")
            return part.filter(clear)
        except pl.exceptions.PolarsError:
            return part.clear()
    return part.filter(clear)


def _resolve(rows: pl.DataFrame) -> pl.DataFrame:
    """E.164 digits (`out`) for rows the fast path can settle, null for the rest."""
    if rows.height == 0:
        return rows.with_columns(out=pl.lit(None, pl.String))
    parts = []
    for (key,), part in rows.partition_by("mr", as_dict=True, maintain_order=False).items():
        rules = region_rules(key) if key else None
        if rules is None:
            parts.append(part.with_columns(out=pl.lit(None, pl.String)))
            continue
        national = part.filter(~pl.col("intl"))
        international = part.filter(pl.col("intl"))
        nanp_trunk = rules.country_code == "1" and rules.region in ("US", "CA")
        settled = []
        if nanp_trunk:
            trunk1 = national.filter(pl.col("d").str.contains(r"^1[2-9][0-9]{9}$"))
            settled.append(trunk1.with_columns(out=pl.col("d")))
            national = national.filter(~pl.col("d").str.contains(r"^1[2-9][0-9]{9}$"))
        national = _idd_free(national, rules).with_columns(n=pl.col("d"))
        for chunk in (national, international):
            if chunk.height:
                settled.append(_national_part(chunk, rules))
        parts.extend(settled)
    resolved = pl.concat([p.select("_i", "out") for p in parts], how="vertical") if parts else None
    if resolved is None:
        return rows.with_columns(out=pl.lit(None, pl.String))
    return rows.join(resolved, on="_i", how="left")


def phone_fast(frame: pl.DataFrame, ctx: FastContext) -> pl.DataFrame:
    regions = {c: phone_region(c) for c in frame.get_column("c").unique().drop_nulls().to_list()}
    number = T_NUMBER
    shaped = number.str.contains(r"^\+?[0-9 ().\-]*$")
    digits = number.str.replace_all(r"[^0-9]", "")
    plus = number.str.starts_with("+")
    intl = plus | digits.str.starts_with("00")
    region = pl.col("c").replace_strict(regions, default=None, return_dtype=pl.String)
    work = frame.with_row_index("_i").with_columns(
        d=pl.when(plus).then(digits).when(intl).then(digits.str.slice(2)).otherwise(digits),
        intl=intl,
        shaped=shaped & ASCII & ~EMPTY & ~PRE,
        region=region,
    )
    cc = _country_code_of(pl.col("d"))
    work = work.with_columns(
        cc=pl.when(pl.col("intl")).then(cc),
    ).with_columns(
        n=pl.when(pl.col("intl")).then(pl.col("d").str.slice(pl.col("cc").str.len_chars())),
        mr=pl.when(pl.col("intl"))
        .then(pl.col("cc").replace_strict(_main_regions(), default=None, return_dtype=pl.String))
        .otherwise(pl.col("region")),
    )
    candidates = work.filter(pl.col("shaped") & (pl.col("d") != "") & (pl.col("intl") | pl.col("region").is_not_null()))
    resolved = _resolve(candidates.select("_i", "d", "n", "intl", "mr"))
    work = work.join(resolved.select("_i", "out"), on="_i", how="left")
    no_digits = pl.col("d") == ""
    raw = pl.col("d").str.strip_chars_start("0")
    local = ~pl.col("intl") & pl.col("region").is_null()
    norm = pl.when(pl.col("out").is_not_null()).then(pl.col("out")).when(local & (raw != "")).then(raw)
    reason = pl.when(no_digits | (local & (raw == ""))).then(pl.lit(NO_DIGITS))
    out = _finish(work, norm, reason)
    settled = pl.col("shaped") & (pl.col("out").is_not_null() | no_digits | local)
    return out.with_columns(done=pl.col("done") & (EMPTY | PRE | settled).fill_null(True)).select(
        [*frame.columns, "norm", "reason", "pre", "done"]
    )
