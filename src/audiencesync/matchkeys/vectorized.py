"""`match_table`: the whole source table through every mapped key at once.

The scalar normalizers are the reference; this module only decides how often they run. Keys whose
values repeat (names, cities, states, countries, birth years, ZIPs) are dictionary-encoded so each
distinct value (per member country, where the key depends on it) is normalized and hashed once and
the answers are gathered back by index, unless a sample shows the column is mostly distinct anyway
(ZIP+4 and foreign postal codes): then, like keys whose values are unique per member (email, phone,
advertising and external IDs), it goes through its polars fast path row by row. The fast paths take
text in any script (see `fastpaths` and `charsets`); whatever they do not claim is handed to the
scalar normalizer, once per distinct value, and counted in `MatchResult.scalar`. Keys run on one
thread per core (polars, Arrow and the hashing release the GIL), long row-wise keys in pieces,
the longest tasks first. Since the cores are already shared out by key, every polars query here
evaluates its expressions one after another (`select_seq`, `with_columns_seq`): polars' own parallel
evaluation of a query's expressions only added hand-offs to its thread pool, about 0.1 ms a query
over some 300 queries a call, and on 100,000 international rows the call took 226-279 ms instead of
303-369 ms (`bench/README.md`, match keys).

Output rows correspond to source rows one to one, with one exception: a list-valued email column
(`emails`) gives one output row per address, the member's other keys repeated on each; a member
whose list holds no address keeps one row with a null EMAIL. `_row` is the source row of each
output row.
"""

from __future__ import annotations

import functools
import itertools
import math
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import NamedTuple

import polars as pl
import polars_hash  # noqa: F401  (registers the `chash` namespace)
import pyarrow as pa
import pyarrow.compute as pc

from audiencesync.matchkeys.columns import resolve_columns
from audiencesync.matchkeys.context import Context, DateOrder
from audiencesync.matchkeys.dates import current_year
from audiencesync.matchkeys.errors import NEGATIVE, NOT_A_NUMBER, ZERO_VALUE
from audiencesync.matchkeys.fastpaths import FastContext, prepare
from audiencesync.matchkeys.keys import KEYS, KeySpec, key_spec
from audiencesync.matchkeys.scalar import Outcome, country_context, evaluate

_MAX_EXACT_FLOAT = 2**53


@dataclass(frozen=True)
class MatchResult:
    """The sent values and what happened to the rest.

    `table` holds one column per mapped key (hex strings for hashed keys, plain strings for MADID and
    EXTERN_ID, float64 for LOOKALIKE_VALUE; null where empty or invalid) and `_row`, the source row.
    `rows` counts source rows; `empty` and `invalid` count output values per key (and reason).
    """

    table: pa.Table
    mapping: dict[str, str]
    rows: int
    empty: dict[str, int] = field(default_factory=dict)
    invalid: dict[str, dict[str, int]] = field(default_factory=dict)
    scalar: dict[str, int] = field(default_factory=dict)
    """Per key, how many values its fast path left to the scalar normalizer (each distinct value
    once per task): the Python share of the work, for benchmarks and profiling."""
    reasons: dict[str, pa.Array] = field(default_factory=dict)
    """Per key with an invalid value, the reason for each row of `table` (null where sent or empty):
    which rows were rejected, for `st.rejects`. Never the value."""


@dataclass(frozen=True, slots=True)
class _Settings:
    date_order: DateOrder
    allow_zero_value: bool
    fast: FastContext

    def context(self, country: str | None) -> Context:
        return Context(country, self.date_order, self.allow_zero_value)


@dataclass(frozen=True, slots=True)
class _KeyColumn:
    sent: pa.Array
    reason: pa.Array
    scalar: int = 0


# ---------------------------------------------------------------- source values as text


def _as_text_array(values: pa.Array) -> pa.Array | None:
    """Values whose scalar text is what arrow's cast gives (strings, ints, integral floats), as
    strings; None when the column needs the scalar path value by value."""
    kind = values.type
    if pa.types.is_dictionary(kind):
        return _as_text_array(values.cast(kind.value_type))
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        return values.cast(pa.large_string())
    if pa.types.is_integer(kind):
        return values.cast(pa.large_string())
    if pa.types.is_floating(kind):
        floats = values.cast(pa.float64())
        floats = pc.if_else(pc.is_nan(floats), pa.scalar(None, pa.float64()), floats)
        integral = pc.and_(pc.equal(pc.floor(floats), floats), pc.less(pc.abs(floats), _MAX_EXACT_FLOAT))
        if pc.all(integral).as_py() in (True, None):
            return floats.cast(pa.int64()).cast(pa.large_string())
    if pa.types.is_null(kind):
        return pa.nulls(len(values), pa.large_string())
    return None


def _freeze(value: object) -> object:
    """A cache key that keeps apart values that compare equal but normalize differently."""
    if isinstance(value, list | tuple):
        return ("list", tuple(_freeze(item) for item in value))
    if isinstance(value, Decimal):
        return ("decimal", str(value))
    if isinstance(value, dict):
        return ("dict", repr(value))
    if isinstance(value, float) and math.isnan(value):
        return ("nan",)
    return (type(value).__name__, value)


# ---------------------------------------------------------------- scalar fallback


class _Outcomes(NamedTuple):
    norms: list[str | None]
    reasons: list[str | None]
    pres: list[bool]
    evaluated: int
    """Distinct values the scalar normalizer ran on."""


def _scalar_outcomes(
    spec: KeySpec, values: list[object], countries: list[str | None], settings: _Settings
) -> _Outcomes:
    cache: dict[tuple[object, str | None], Outcome] = {}
    norms: list[str | None] = []
    reasons: list[str | None] = []
    pres: list[bool] = []
    for value, country in zip(values, countries, strict=True):
        key = (_freeze(value), country)
        outcome = cache.get(key)
        if outcome is None:
            outcome = cache[key] = evaluate(spec, value, settings.context(country))
        norms.append(outcome.text)
        reasons.append(outcome.reason)
        pres.append(outcome.prehashed)
    return _Outcomes(norms, reasons, pres, len(cache))


# ---------------------------------------------------------------- text keys


def _text_outcomes(
    spec: KeySpec, text: pa.Array, country: pa.Array | None, settings: _Settings
) -> tuple[pl.DataFrame, int]:
    """`norm`, `reason`, `pre` for each row of `text`, fast path first, scalar for the rest; and how
    many distinct values went to the scalar normalizer."""
    frame = pl.DataFrame(
        {"v": pl.from_arrow(text), **({"c": pl.from_arrow(country)} if country is not None else {})},
        schema={"v": pl.String, **({"c": pl.String} if country is not None else {})},
    )
    if spec.fast is not None:
        if country is None:
            frame = frame.with_columns_seq(c=pl.lit(None, pl.String))
        fast = spec.fast(prepare(frame), settings.fast).select_seq("v", "c", "norm", "reason", "pre", "done")
        out = fast.collect(engine="in-memory")  # the default (streaming) engine costs ~0.4 ms a query
    else:
        out = frame.with_columns_seq(
            norm=pl.lit(None, pl.String), reason=pl.lit(None, pl.String), pre=pl.lit(False), done=pl.lit(False)
        )
    pending = out.select_seq(pl.arg_where(~pl.col("done"))).to_series()
    evaluated = 0
    if pending.len():
        rest = out[pending]
        countries = rest.get_column("c").to_list() if "c" in rest.columns else [None] * rest.height
        norms, reasons, pres, evaluated = _scalar_outcomes(spec, rest.get_column("v").to_list(), countries, settings)
        out = out.with_columns_seq(
            norm=out.get_column("norm").scatter(pending, pl.Series(norms, dtype=pl.String)),
            reason=out.get_column("reason").scatter(pending, pl.Series(reasons, dtype=pl.String)),
            pre=out.get_column("pre").scatter(pending, pl.Series(pres, dtype=pl.Boolean)),
        )
    return out.select_seq("norm", "reason", "pre"), evaluated


def _sent(spec: KeySpec, outcomes: pl.DataFrame, derived: bool = False) -> pl.DataFrame:
    """Hash what needs hashing. A derived key (FI from the FN column) sends nothing for a
    pre-hashed source value: the initial of a hash is not the hash of an initial. With no pre-hashed
    value (the usual case) the digests are the column, without a copy through `when`."""
    norm = pl.col("norm")
    if spec.hashed and not outcomes.get_column("pre").any():
        value = _digest(spec, outcomes)
    elif spec.hashed:
        value = pl.when(pl.col("pre")).then(None if derived else norm).otherwise(_digest(spec, outcomes))
    elif spec.sent == "number":
        value = norm.cast(pl.Float64)
    else:
        value = norm
    return outcomes.select_seq(sent=value, reason=pl.col("reason"))


def _digest(spec: KeySpec, outcomes: pl.DataFrame) -> pl.Expr:
    """SHA-256 of `norm`; for keys with few normalized values (a birth year, a gender), of each
    distinct one once: even per distinct source value (`1990-04-07`) they repeat."""
    if not spec.few_normalized:
        return pl.col("norm").chash.sha2_256()
    distinct = outcomes.select_seq(pl.col("norm").drop_nulls().unique())
    digests = distinct.select_seq(pl.col("norm").chash.sha2_256()).to_series()
    return pl.col("norm").replace_strict(distinct.to_series(), digests, default=None)


def _encode(text: pa.Array, country: pa.Array | None) -> tuple[pa.Array, pa.Array | None, pa.Array]:
    """Distinct (value, country) pairs and, for each row, the index of its pair.

    Both columns are dictionary-encoded and their indices combined into one integer code, which is
    dictionary-encoded again: all in arrow, no Python loop over rows. Null is one more distinct value.
    """
    values = pc.dictionary_encode(text)
    value_dictionary = pa.concat_arrays([values.dictionary, pa.nulls(1, values.dictionary.type)])
    value_index = values.indices.cast(pa.int64()).fill_null(len(values.dictionary))
    if country is None:
        return value_dictionary, None, value_index
    countries = pc.dictionary_encode(country)
    width = len(countries.dictionary) + 1
    country_dictionary = pa.concat_arrays([countries.dictionary, pa.nulls(1, countries.dictionary.type)])
    country_index = countries.indices.cast(pa.int64()).fill_null(width - 1)
    codes = pc.dictionary_encode(pc.add(pc.multiply(value_index, width), country_index))
    distinct = codes.dictionary
    return (
        value_dictionary.take(pc.divide(distinct, width)),
        country_dictionary.take(pc.subtract(distinct, pc.multiply(pc.divide(distinct, width), width))),
        codes.indices,
    )


DISTINCT_SHARE = 0.6
"""A column whose distinct values are more than this share of its rows goes row by row even when its
key's values usually repeat (ZIP+4 codes, foreign postal codes): encoding it would cost more than
it saves."""
SAMPLE_ROWS = 16_384


@functools.lru_cache(maxsize=8)
def _strided(step: int) -> pa.Array:
    return pa.array(range(0, step * SAMPLE_ROWS, step), pa.int64())


def _mostly_distinct(text: pa.Array) -> bool:
    """Whether distinct values are more than `DISTINCT_SHARE` of the rows, estimated from a strided
    sample (exact for small columns). Values seen three times or more in the sample are the heavy
    ones (blanks, the commonest names); for the rest, the share of sampled rows whose value was seen
    once, `(1 - q)^(m - 1)` for a sampling rate `q`, gives `m`, the rows per light value."""
    rows = len(text)
    if rows <= 4 * SAMPLE_ROWS:
        return pc.count_distinct(text, mode="all").as_py() > DISTINCT_SHARE * rows
    step = rows // SAMPLE_ROWS
    counts = pc.value_counts(text.take(_strided(step))).field("counts")
    light = counts.filter(pc.less(counts, 3))
    light_rows = pc.sum(light).as_py() or 0
    if light_rows <= DISTINCT_SHARE * SAMPLE_ROWS:
        return False
    once = pc.sum(pc.equal(light, 1)).as_py() or 0
    if once == light_rows:
        return True
    per_value = 1 + math.log(max(once, 1) / light_rows) / math.log1p(-1 / step)
    return light_rows / SAMPLE_ROWS / per_value > DISTINCT_SHARE


def _text_key(
    spec: KeySpec, text: pa.Array, country: pa.Array | None, settings: _Settings, derived: bool
) -> _KeyColumn:
    if spec.distinct and not _mostly_distinct(text):
        values, countries, inverse = _encode(text, country)
        outcomes, evaluated = _text_outcomes(spec, values, countries, settings)
        sent = _sent(spec, outcomes, derived)
        return _KeyColumn(sent["sent"].to_arrow().take(inverse), sent["reason"].to_arrow().take(inverse), evaluated)
    outcomes, evaluated = _text_outcomes(spec, text, country, settings)
    sent = _sent(spec, outcomes, derived)
    return _KeyColumn(sent["sent"].to_arrow(), sent["reason"].to_arrow(), evaluated)


# ---------------------------------------------------------------- other value types


def _outcomes_column(spec: KeySpec, outcomes: _Outcomes, derived: bool = False) -> _KeyColumn:
    norms, reasons, pres, evaluated = outcomes
    frame = pl.DataFrame(
        {"norm": norms, "reason": reasons, "pre": pres},
        schema={"norm": pl.String, "reason": pl.String, "pre": pl.Boolean},
    )
    sent = _sent(spec, frame, derived)
    return _KeyColumn(sent["sent"].to_arrow(), sent["reason"].to_arrow(), evaluated)


def _object_key(
    spec: KeySpec, values: pa.Array, country: pa.Array | None, settings: _Settings, derived: bool
) -> _KeyColumn:
    items = values.to_pylist()
    countries = country.to_pylist() if country is not None else [None] * len(items)
    return _outcomes_column(spec, _scalar_outcomes(spec, items, countries, settings), derived)


def _number_key(values: pa.Array, settings: _Settings) -> _KeyColumn:
    """LOOKALIKE_VALUE from a numeric column, without leaving arrow (same rules as `checked_value`)."""
    numbers = values.cast(pa.float64(), safe=False)
    numbers = pc.if_else(pc.is_nan(numbers), pa.scalar(None, pa.float64()), numbers)
    none = pa.scalar(None, pa.large_string())
    zero_bad = not settings.allow_zero_value
    reason = pc.if_else(
        pc.invert(pc.is_finite(numbers)),
        pa.scalar(NOT_A_NUMBER, pa.large_string()),
        pc.if_else(
            pc.less(numbers, 0.0),
            pa.scalar(NEGATIVE, pa.large_string()),
            pc.if_else(pc.and_(pc.equal(numbers, 0.0), zero_bad), pa.scalar(ZERO_VALUE, pa.large_string()), none),
        ),
    )
    reason = pc.if_else(pc.is_null(numbers), none, reason)
    sent = pc.if_else(pc.is_null(reason), pc.add(numbers, 0.0), pa.scalar(None, pa.float64()))
    return _KeyColumn(sent, reason)


def _key_column(
    spec: KeySpec, values: pa.Array, country: pa.Array | None, settings: _Settings, derived: bool = False
) -> _KeyColumn:
    country = country if spec.uses_country else None
    if spec.sent == "number" and (pa.types.is_integer(values.type) or pa.types.is_floating(values.type)):
        return _number_key(values, settings)
    text = None if spec.sent == "number" else _as_text_array(values)
    if text is not None:
        return _text_key(spec, text, country, settings, derived)
    return _object_key(spec, values, country, settings, derived)


# ---------------------------------------------------------------- rows, country, assembly


def _flat_list_type(kind: pa.DataType) -> bool:
    return pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind)


def _explode_emails(
    table: pa.Table, column: str, country: pa.Array, settings: _Settings
) -> tuple[pa.Array, pa.Array, _KeyColumn]:
    """One row per address. Blank entries are dropped unless the member has no address at all."""
    rows: list[int] = []
    items: list[object] = []
    for index, value in enumerate(table.column(column).to_pylist()):
        flat = list(_flatten(value))
        rows.extend([index] * max(len(flat), 1))
        items.extend(flat or [None])
    row_index = pa.array(rows, pa.int64())
    member_country = country.take(row_index)
    spec = key_spec("EMAIL")
    try:
        element_values: pa.Array | None = pa.array(items)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        element_values = None
    if element_values is not None:
        emails = _key_column(spec, element_values, member_country, settings)
    else:
        emails = _outcomes_column(spec, _scalar_outcomes(spec, items, [None] * len(items), settings))
    frame = pl.DataFrame(
        {
            "row": pl.from_arrow(row_index),
            "filled": pl.from_arrow(pc.or_(pc.is_valid(emails.sent), pc.is_valid(emails.reason))),
        }
    )
    keep = (
        frame.select_seq(pl.col("filled") | (pl.col("row").is_first_distinct() & ~pl.col("filled").any().over("row")))
        .to_series()
        .to_arrow()
    )
    kept = _KeyColumn(emails.sent.filter(keep), emails.reason.filter(keep), emails.scalar)
    return row_index.filter(keep), member_country.filter(keep), kept


def _flatten(value: object) -> Iterator[object]:
    if isinstance(value, list | tuple):
        for item in value:
            yield from _flatten(item)
    elif value is not None:
        yield value


def _member_countries(table: pa.Table, column: str | None, default: str | None) -> pa.Array:
    """Upper-case alpha-2 per row: the member's own country if it reads as one, else the default."""
    if column is None:
        return pa.array([default] * table.num_rows, pa.large_string())
    values = table.column(column).combine_chunks()
    try:
        encoded = pc.dictionary_encode(values)
        resolved = [country_context(value) for value in encoded.dictionary.to_pylist()]
        own = pa.array(resolved, pa.large_string()).take(encoded.indices)
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
        own = pa.array([country_context(value) for value in values.to_pylist()], pa.large_string())
    return pc.fill_null(own, pa.scalar(default, pa.large_string())) if default else own


SPLIT_ROWS = 50_000
"""Pieces of a row-wise key (mostly distinct values: email, phone) are at least this many rows."""


_SECONDS_PER_ROW: dict[str, float] = {}
"""What each key's task last cost in this process (wall seconds per row), to start the longest first."""


def _weight(key: str) -> float:
    """Expected seconds per row: what the key cost last time in this process, else a row-wise key
    counts as three dictionary-encoded ones."""
    return _SECONDS_PER_ROW.get(key) or (1e-7 if key_spec(key).distinct else 3e-7)


def _pieces(key: str, keys: list[str], rows: int, workers: int) -> int:
    """A row-wise key is cut in pieces (one per worker at most) only when it alone is more than one
    worker's share of the call: an audience keyed on email alone, or on email and phone. With ten keys
    the others fill the second core, and each piece would pay the key's fixed cost again."""
    if workers == 1 or key_spec(key).distinct:
        return 1
    workers_worth = _weight(key) / sum(map(_weight, keys)) * workers
    return max(1, min(workers, rows // SPLIT_ROWS, math.ceil(workers_worth - 0.05)))


def _tasks(keys: list[str], rows: int, workers: int) -> list[tuple[str, int, int]]:
    """Longest first, so the short tasks fill the gaps at the end: by what each key cost last time,
    and until that is known, row-wise keys (in pieces) before the dictionary-encoded ones."""
    tasks: list[tuple[str, int, int]] = []
    for key in keys:
        pieces = _pieces(key, keys, rows, workers)
        bounds = [rows * part // max(pieces, 1) for part in range(max(pieces, 1) + 1)]
        tasks += [(key, start, stop) for start, stop in itertools.pairwise(bounds)]

    def expected(task: tuple[str, int, int]) -> tuple[float, bool]:
        key, start, stop = task
        return -_SECONDS_PER_ROW.get(key, 0.0) * (stop - start), key_spec(key).distinct

    return sorted(tasks, key=expected)


class _Once:
    """A value computed by the first thread that needs it, while the others wait for it."""

    def __init__(self, make: Callable[[], pa.Array]) -> None:
        self._make = make
        self._lock = threading.Lock()
        self._value: pa.Array | None = None

    def __call__(self) -> pa.Array:
        with self._lock:
            if self._value is None:
                self._value = self._make()
            return self._value


def match_table(
    table: pa.Table | pa.RecordBatch,
    *,
    columns: Mapping[str, str | None] | None = None,
    default_country: str | None = None,
    allow_zero_value: bool = False,
    date_order: DateOrder = "MDY",
    threads: int | None = None,
) -> MatchResult:
    """Normalize and hash every mapped key of a table of source rows (see the module docstring)."""
    if isinstance(table, pa.RecordBatch):
        table = pa.Table.from_batches([table])
    mapping = resolve_columns(table.column_names, columns)
    settings = _Settings(date_order, allow_zero_value, FastContext(date_order, current_year()))
    default = country_context(default_country)
    source = table
    countries = _Once(lambda: _member_countries(source, mapping.get("COUNTRY"), default))

    source_rows = table.num_rows
    row_index = pl.int_range(0, source_rows, dtype=pl.Int64, eager=True).to_arrow()
    done: dict[str, _KeyColumn] = {}
    email_column = mapping.get("EMAIL")
    if email_column is not None and _flat_list_type(table.schema.field(email_column).type):
        row_index, country, done["EMAIL"] = _explode_emails(table, email_column, countries(), settings)
        table = table.take(row_index)
        countries = _Once(lambda: country)

    def run(task: tuple[str, int, int]) -> tuple[str, _KeyColumn]:
        key, start, stop = task
        values = table.column(mapping[key]).slice(start, stop - start).combine_chunks()
        spec = key_spec(key)
        derived = spec.derived_from is not None and mapping[key] == mapping.get(spec.derived_from)
        country = countries().slice(start, stop - start) if spec.uses_country else None
        began = time.perf_counter()
        column = _key_column(spec, values, country, settings, derived)
        _SECONDS_PER_ROW[key] = (time.perf_counter() - began) / max(stop - start, 1)
        return key, column

    pending = [key for key in mapping if key not in done]
    workers = threads or min(len(pending), os.cpu_count() or 1) or 1
    tasks = _tasks(pending, table.num_rows, workers)
    if workers > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            parts = list(pool.map(run, tasks))
    else:
        parts = [run(task) for task in tasks]
    for key in pending:
        pieces = [column for name, column in parts if name == key]
        done[key] = (
            pieces[0]
            if len(pieces) == 1
            else _KeyColumn(
                pa.concat_arrays([p.sent for p in pieces]),
                pa.concat_arrays([p.reason for p in pieces]),
                sum(p.scalar for p in pieces),
            )
        )

    ordered = [spec.name for spec in KEYS if spec.name in done]
    out = pa.table({**{key: done[key].sent for key in ordered}, "_row": row_index})
    empty: dict[str, int] = {}
    invalid: dict[str, dict[str, int]] = {}
    for key in ordered:
        column = done[key]
        empty[key] = pc.sum(pc.and_(pc.is_null(column.sent), pc.is_null(column.reason))).as_py() or 0
        counts = pc.value_counts(column.reason.drop_null()) if column.reason.null_count < len(column.reason) else []
        invalid[key] = dict(Counter({item["values"].as_py(): item["counts"].as_py() for item in counts}))
    scalar = {key: done[key].scalar for key in ordered}
    reasons = {key: done[key].reason for key in ordered if invalid[key]}
    return MatchResult(out, {key: mapping[key] for key in ordered}, source_rows, empty, invalid, scalar, reasons)


__all__ = ["MatchResult", "match_table"]
