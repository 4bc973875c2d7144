"""The vectorized phone path: phonenumbers' parse, replayed in polars for the shapes it is sure of.

`phonenumbers.parse` costs 20-40 µs a number, and phone numbers hardly repeat, so on a large list
parsing every one is most of the run time. For input made only of digits and the usual separators,
parsing reduces to a few decisions that depend on the region's metadata: the country code, whether
a trunk prefix is stripped, and whether the length is possible for the country. Those decisions are
taken here with phonenumbers' own metadata (no copied tables), for every region at once, in the
cases where the library's logic is simple: no trunk prefix, or one that is a plain strip (a prefix
of digits only, `0`, Russia's `8`, Hungary's `06`, or the bare `0` of a pattern with alternatives),
the region's IDD not present, and a possible length. Digits of any script and the typographic
punctuation phonenumbers reads as separators are made ASCII first. Anything else (letters,
extensions, carrier codes, transform rules) is left to the scalar path, which calls phonenumbers
itself. Tests compare both paths, for every region, in national and international forms.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import cache

import phonenumbers
import polars as pl
from phonenumbers import PhoneMetadata, ValidationResult
from phonenumbers.phonenumber import PhoneNumber

from audiencesync.matchkeys.charsets import LIMIT
from audiencesync.matchkeys.errors import NO_DIGITS
from audiencesync.matchkeys.fastpaths import EMPTY, PRE, SURE, FastContext, _finish
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

    @property
    def plain_trunk(self) -> str:
        """The trunk prefix whose match is a plain strip: the whole pattern when it is digits only
        (`0`, `8` in Russia, `06` in Hungary), else its `0` alternative, which matches no group (the
        other alternatives capture carrier codes or need transform rules)."""
        return self.trunk if self.trunk is not None and self.trunk.isdigit() else "0"


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


@cache
def _codes_by_prefix() -> dict[str, str]:
    """Every string of one to three digits → the calling code it starts with. Calling codes are
    prefix-free, so at most one is a prefix of a given number, and it is found by a lookup of the
    number's first three digits."""
    codes = {str(code) for code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE}
    table: dict[str, str] = {}
    for length in (1, 2, 3):
        for value in range(10**length):
            prefix = f"{value:0{length}d}"
            found = [prefix[:size] for size in (1, 2, 3) if prefix[:size] in codes]
            if found:
                table[prefix] = found[0]
    return table


_PREFIX_BLOCKS = {3: 0, 2: 1000, 1: 1100}
"""Where the strings of each length start in `_prefix_rules`: `000`-`999`, then `00`-`99`, then `0`-`9`."""


@cache
def _region_index() -> dict[str, int]:
    """Region → its row in `_rules_frame`."""
    return {region: position for position, region in enumerate(_rules_frame().get_column("mr").to_list())}


@cache
def _prefix_rules() -> pl.DataFrame:
    """For every string of one to three digits (at `_prefix_index`): the calling code it starts with
    (`cc`) and the `_rules_frame` row of the code's main region (`ri`), null where there is none. A
    gather from this table costs a third of a `replace_strict` with the same mapping, which builds
    its hash table on every call."""
    codes, regions, index = _codes_by_prefix(), _main_regions(), _region_index()
    prefixes = [f"{value:0{length}d}" for length in _PREFIX_BLOCKS for value in range(10**length)]
    calling = [codes.get(prefix) for prefix in prefixes]
    at = [index.get(regions.get(code, "")) if code else None for code in calling]
    return pl.DataFrame({"cc": calling, "ri": at}, schema={"cc": pl.String, "ri": pl.UInt32})


def _prefix_index(digits: pl.Expr) -> pl.Expr:
    """The `_prefix_rules` row of a number's first three digits (all of them, when it is shorter)."""
    first = digits.str.slice(0, 3)
    size = first.str.len_bytes()
    block = pl.when(size == 2).then(_PREFIX_BLOCKS[2]).when(size == 1).then(_PREFIX_BLOCKS[1]).otherwise(0)
    return first.cast(pl.UInt32, strict=False) + block.cast(pl.UInt32)


def _mask(lengths: object) -> int:
    return sum(1 << length for length in lengths)  # type: ignore[attr-defined]


@cache
def _rules_frame() -> pl.DataFrame:
    """`region_rules` of every region, one row each (read by row, `ri`): patterns anchored as
    phonenumbers applies them (`idd` and `trunk_re` at the start, `general` whole) and bit masks
    over national number lengths (`possible`, `keeps` its trunk prefix, and one per reason)."""
    rows = [rules for region in sorted(phonenumbers.SUPPORTED_REGIONS) if (rules := region_rules(region))]
    reasons = sorted({reason for rules in rows for reason in rules.reasons.values()})
    trunk_patterns = sorted({t for rules in rows if (t := rules.trunk) and not t.isdigit()})
    return pl.DataFrame(
        {
            "mr": [rules.region for rules in rows],
            "cc": [rules.country_code for rules in rows],
            "is_main": [rules.is_main for rules in rows],
            "idd": [rules.idd if rules.idd and rules.idd.isdigit() else None for rules in rows],
            "idd_re": [f"^(?:{rules.idd})" if rules.idd and not rules.idd.isdigit() else None for rules in rows],
            "trunk": [rules.plain_trunk if rules.trunk else None for rules in rows],
            "trunk_re": [
                f"^(?:{rules.trunk})" if rules.trunk and not rules.trunk.isdigit() else None for rules in rows
            ],
            "trunk_id": [trunk_patterns.index(t) if (t := rules.trunk) in trunk_patterns else None for rules in rows],
            "general": [f"^(?:{rules.general})$" if rules.general else None for rules in rows],
            "possible": [_mask(rules.possible) for rules in rows],
            "keeps": [_mask(rules.keeps_trunk) for rules in rows],
            **{
                f"why:{reason}": [_mask(n for n, why in rules.reasons.items() if why == reason) for rules in rows]
                for reason in reasons
            },
        },
        schema_overrides={
            "possible": pl.Int64,
            "keeps": pl.Int64,
            "trunk_id": pl.Int32,
            **{f"why:{r}": pl.Int64 for r in reasons},
        },
    )


def _bit(mask: str, power: pl.Expr) -> pl.Expr:
    """Bit `length` of the mask column, given `power` = 2 ** length (see `_power`)."""
    return ((pl.col(mask) // power) % 2 == 1).fill_null(False)


def _power(length: pl.Expr) -> pl.Expr:
    """2 ** length, for `_bit` (lengths past the masks' 17 bits are never set)."""
    return pl.lit(2, pl.Int64).pow(length.clip(0, 62).cast(pl.Int64))


def _resolved(rows: pl.DataFrame) -> pl.DataFrame:
    """phonenumbers' decisions for candidate rows, each with its own region's metadata: `out` (the
    E.164 digits) or `bad` (a reason), or neither (left to the scalar path).

    Per row: `d` (the digits after `+` or `00`), `intl`, `ri` (the `_rules_frame` row of the region
    whose metadata parse uses: the member's for a national number, the calling code's main region for
    an international one) and `n` (the national number before any trunk prefix). National numbers that
    start with their country code or the region's IDD are left to the scalar path, as are trunk
    prefixes other than a plain strip and regions other than the code's main one."""
    rules = _rules_frame()
    rows = rows.filter(pl.col("ri").is_not_null())
    # Rows carry their region's small columns (one gather of them all); the long patterns stay in
    # `rules`, read by `ri`.
    rows = rows.hstack(_small_rules()[rows.get_column("ri")].get_columns())
    d, n, trunk = pl.col("d"), pl.col("n"), pl.col("trunk")
    intl = rows.get_column("intl")
    if not intl.all():
        national = rows.filter(~intl)
        own_code = d.str.starts_with(pl.col("cc")) | d.str.starts_with(pl.col("idd")).fill_null(False)
        national = national.filter(~own_code)
        dialled = _matches(national, "idd_re", "d")
        if dialled is not None:
            # IDD patterns with alternatives (Brazil's carrier codes, Korea's, Australia's).
            national = national.filter(~dialled.fill_null(False))
        rows = pl.concat([national, rows.filter(intl)], how="vertical")
    prefix = rows.select_seq(pl.when(n.str.starts_with(trunk).fill_null(False)).then(trunk)).to_series()
    # Trunk patterns with alternatives: what they match (only a bare `0` is a plain strip).
    matched = _trunk_matches(rows)
    if matched is not None:
        patterned = rows.get_column("trunk_id").is_not_null()
        prefix = pl.select(pl.when(pl.lit(patterned)).then(pl.lit(matched)).otherwise(pl.lit(prefix))).to_series()
    rows = rows.with_columns_seq(_prefix=prefix)
    prefixed = rows.get_column("_prefix").is_not_null()
    if prefixed.any():
        # phonenumbers keeps the trunk prefix when stripping it leaves an impossible length, or
        # when the number matches the region's pattern with it and not without it.
        part = rows.filter(prefixed)
        part = part.with_columns_seq(_cand=n.str.slice(trunk.str.len_bytes()))
        cand = pl.col("_cand")
        fits = _matches(part, "general", "_cand")
        part = part.with_columns_seq(_fits=fits.fill_null(True) if fits is not None else pl.lit(True))
        # The whole number is matched against the pattern only where the stripped one does not fit.
        misfits = (~part.get_column("_fits")).arg_true()
        viable = pl.repeat(False, part.height, dtype=pl.Boolean, eager=True)
        if len(misfits):
            whole = _matches(part[misfits], "general", "n")
            viable = viable.scatter(misfits, whole.fill_null(False)) if whole is not None else viable
        keeps = _bit("keeps", _power(cand.str.len_bytes())) | pl.lit(viable)
        part = part.with_columns_seq(
            n=pl.when(keeps).then(n).otherwise(cand),
            _go=(pl.col("_prefix") == trunk) & pl.col("is_main"),
        ).drop("_cand", "_fits")
        rows = pl.concat([rows.filter(~prefixed).with_columns_seq(_go=pl.lit(True)), part], how="vertical")
    else:
        rows = rows.with_columns_seq(_go=pl.lit(True))
    rows = rows.with_columns_seq(_p2=_power(n.str.len_bytes()))
    length, power = n.str.len_bytes(), pl.col("_p2")
    sure, possible = pl.col("_go"), _bit("possible", power)
    plausible = sure & (d.str.len_bytes() >= 4) & length.is_between(4, _MAX_NSN)
    why = pl.lit(None, pl.String)
    for column in (name for name in rules.columns if name.startswith("why:")):
        why = pl.when(_bit(column, power)).then(pl.lit(column[4:])).otherwise(why)
    return rows.select_seq(
        "_i",
        out=pl.when(sure & possible).then(pl.col("cc") + n),
        bad=pl.when(plausible & ~possible).then(why),
    )


_PATTERNS = ("idd_re", "trunk_re", "general")
"""The rules' regex columns: long texts, looked up by region index (`ri`) rather than copied to rows."""


@cache
def _small_rules() -> pl.DataFrame:
    """The rules without the region's name and its patterns: what each candidate row carries."""
    return _rules_frame().drop("mr", *_PATTERNS)


def _matches(rows: pl.DataFrame, patterns: str, column: str) -> pl.Series | None:
    """Whether `column` matches the `patterns` rule of each row's region (`ri`), null where the region
    has none; None when no row has one. One query with a column of patterns: polars compiles each
    distinct pattern once, and this costs half of one query per region."""
    texts = _rules_frame().get_column(patterns).gather(rows.get_column("ri"))
    if texts.null_count() == rows.height:
        return None
    return rows.select_seq(pl.col(column).str.contains(pl.lit(texts))).to_series()


def _trunk_matches(rows: pl.DataFrame) -> pl.Series | None:
    """What the trunk pattern with alternatives (`trunk_re`) of each row's region matches at the
    start of `n`, null where the region has none; None when no row has one. One query per pattern
    (rows of one `trunk_id` share it): extraction with a column of patterns compiles one per row."""
    if rows.get_column("trunk_id").null_count() == rows.height:
        return None
    texts = _rules_frame().get_column("trunk_re")
    present = rows.select_seq(pl.int_range(pl.len(), dtype=pl.UInt32).alias("_at"), "trunk_id", "ri", "n")
    at: list[pl.Series] = []
    found: list[pl.Series] = []
    for part in present.filter(pl.col("trunk_id").is_not_null()).partition_by("trunk_id", maintain_order=False):
        at.append(part.get_column("_at"))
        found.append(part.get_column("n").str.extract(texts[int(part.get_column("ri")[0])], 0))
    return _scattered(rows.height, pl.concat(at), pl.concat(found))


def _scattered(height: int, rows: pl.Series, values: pl.Series) -> pl.Series:
    """A column of `height` nulls with `values` at `rows`."""
    return pl.repeat(None, height, dtype=values.dtype, eager=True).alias(values.name).scatter(rows, values)


_SEPARATORS = dict.fromkeys(" ().-+", "")
"""What a `shaped` number holds besides digits (`all_digits` is read for shaped numbers only)."""

PUNCTUATION = {
    **dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u30fc\uff0d", "-"),
    **dict.fromkeys("\u00a0\u00ad\u200b\u2060\u3000", " "),
    "\uff0e": ".", "\uff08": "(", "\uff09": ")", "\uff0b": "+",
}  # fmt: skip
"""Characters phonenumbers reads as the ASCII punctuation they stand for (its `VALID_PUNCTUATION`
and plus signs; checked by a test): dashes, spaces (NBSP, ideographic, soft hyphen, zero-width),
full-width parentheses, full stop and plus."""


@cache
def ascii_translation() -> dict[str, str]:
    """Every decimal digit Python's `\\d` knows (Arabic-Indic, Devanagari, full-width, ...) as its
    ASCII digit, as `phone._digits` and phonenumbers read them, and `PUNCTUATION`."""
    digits = {
        chr(code): str(unicodedata.decimal(chr(code)))
        for code in range(0x80, LIMIT)
        if unicodedata.category(chr(code)) == "Nd"
    }
    return digits | PUNCTUATION


def _ascii_number(frame: pl.DataFrame) -> pl.Series:
    """`_tn` (the number after the float suffix rule, which reads ASCII digits only) with the
    characters of `ascii_translation` made ASCII, in non-ASCII rows only. Each character stays one
    character, so every position the scalar rules read is where it was."""
    number = frame.get_column("_tn")
    ascii_rows = frame.get_column("_ascii")
    if ascii_rows.all():
        return number
    rows = (~ascii_rows).arg_true()
    return number.clone().scatter(rows, number.gather(rows).str.replace_many(ascii_translation()))


def phone_fast(frame: pl.LazyFrame, ctx: FastContext) -> pl.LazyFrame:
    """Most numbers of a North American list are ten digits, `1` and ten digits, or `+1` and ten:
    those are settled in one pass (the same answer the region rules give, tested against
    phonenumbers); the rest are settled with their region's metadata (`_resolved`).

    Digits of other scripts and full-width or typographic punctuation are read as their ASCII
    forms first (`_ascii_number`), so a Japanese `０９０－１２３４－５６７８` takes the same path."""
    staged = frame.collect(engine="in-memory")
    number = _ascii_number(staged)
    plus = number.str.starts_with("+")
    digits = number.str.replace_many(_SEPARATORS)
    shaped = number.str.contains(r"^\+?[0-9 ().\-]*$") & ~staged.get_column("_empty") & ~staged.get_column("_pre")
    shaped = shaped.fill_null(False)
    double_zero = digits.str.starts_with("00") & ~plus
    # Only the few rows that are not shaped need a search for digits; `00` numbers lose their `00`.
    odd = (~shaped).arg_true()
    no_digits = (digits.str.len_bytes() == 0).scatter(odd, ~number.gather(odd).str.contains("[0-9]"))
    zeros = double_zero.fill_null(False).arg_true()
    d = digits.scatter(zeros, digits.gather(zeros).str.slice(2)) if len(zeros) else digits
    # The member's region as its `_rules_frame` row (every region phonenumbers supports has one).
    index = _region_index()
    countries = staged.get_column("c")
    rows_of = {c: index.get(region) for c in countries.unique().drop_nulls().to_list() if (region := phone_region(c))}
    member_ri = countries.replace_strict(rows_of, default=None, return_dtype=pl.UInt32)
    intl_rows = plus | double_zero
    national_na = member_ri.is_in([index["US"], index["CA"]]) & ~intl_rows
    lengths = d.str.len_bytes()
    # North American shapes, checked only where they can apply.
    ten = (shaped & national_na & (lengths == 10)).fill_null(False)
    eleven = (shaped & (national_na | plus) & (lengths == 11)).fill_null(False)
    ten = ten.scatter(ten.arg_true(), d.filter(ten).str.contains(r"^[2-9]")) if ten.any() else ten
    eleven = eleven.scatter(eleven.arg_true(), d.filter(eleven).str.contains(r"^1[2-9]")) if eleven.any() else eleven
    staged = staged.with_columns_seq(
        shaped=shaped,
        plus=plus,
        intl=intl_rows,
        no_digits=no_digits,
        d=d,
        member_ri=member_ri,
        _ten=ten,
        _nanp=ten | eleven,
    )
    d, intl, shaped = pl.col("d"), pl.col("intl"), pl.col("shaped")
    candidate = staged.select_seq(
        shaped & ~pl.col("_nanp") & (d != "") & (intl | pl.col("member_ri").is_not_null())
    ).to_series()
    rows = candidate.arg_true()
    candidates = staged.select_seq("d", "intl", "member_ri").gather(rows).with_columns_seq(_i=rows)
    national = candidates.filter(~intl).select_seq("_i", "d", "intl", ri="member_ri", n="d")
    international = candidates.filter(intl)
    prefix = _prefix_rules()[international.select_seq(_prefix_index(d)).to_series()]
    international = international.select_seq(
        "_i", "d", "intl", ri=prefix.get_column("ri"), n=d.str.slice(prefix.get_column("cc").str.len_bytes())
    )
    candidates = pl.concat([national, international], how="vertical")
    resolved = _resolved(candidates)
    at = resolved.get_column("_i")
    staged = staged.with_columns_seq(
        out=_scattered(staged.height, at, resolved.get_column("out")),
        bad=_scattered(staged.height, at, resolved.get_column("bad")),
    )
    no_digits = pl.col("no_digits")
    local = shaped & ~intl & pl.col("member_ri").is_null()
    raw = d.str.strip_chars_start("0")
    norm = (
        pl.when(pl.col("_nanp"))
        .then(pl.when(pl.col("_ten")).then(pl.lit("1") + d).otherwise(d))
        .when(pl.col("out").is_not_null())
        .then(pl.col("out"))
        .when(local & (raw != ""))
        .then(raw)
    )
    reason = pl.when(no_digits | (local & (raw == ""))).then(pl.lit(NO_DIGITS)).otherwise(pl.col("bad"))
    settled = (shaped & (pl.col("_nanp") | pl.col("out").is_not_null() | pl.col("bad").is_not_null() | local)) | (
        SURE & no_digits
    )
    out = _finish(staged.lazy(), norm, reason)
    return out.with_columns_seq(done=pl.col("done") & (EMPTY | PRE | settled).fill_null(True))
