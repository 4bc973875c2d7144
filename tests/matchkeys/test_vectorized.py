"""match_table: mapping, counts, list-valued emails, and agreement with the scalar functions."""

from __future__ import annotations

import datetime as dt
import hashlib
import random
from decimal import Decimal

import phonenumbers
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.matchkeys.conftest import assert_agrees
from tests.matchkeys.international import international_texts

from audiencesync.matchkeys import KEYS, match_table, match_value
from audiencesync.matchkeys.phone_fast import _prefix_rules, _rules_frame
from audiencesync.samples import generate_customers

ALL_KEYS = [spec.name for spec in KEYS]
MESSY = [
    "", " ", "\t", "\u00a0", "\u3000", " Alice.Smith@Example.ORG ", "alice@", "a b@c.de", "ÄLICE@bücher.de",
    "+1 415-555-0199", "415 555 0199", "+44 (0)161 496 0000", "0161 496 0000", "00 33 1 23 45 67 89", "496-0000",
    "4155550199.0", "1-800-FLOWERS", "415-555-0199 x12", "Zoë", "Zoe\u0308", "Jean-Luc", "St. John", "Øster", "정",
    "Female", "other", "M", "2001", "1990-04-07", "04/07/1990", "7 April 1990", "1990-02-30", "90", "Feb", "9", "13",
    "Los Angeles", "Köln", "Washington", "N.Y.", "Bavaria", "10001-0001", "2134", "EC1A 1BB", "Canada", "CAN",
    "usa", "U.K.", "Narnia", "AEBE52E7-03EE-455A-B3C4-E57283966239", "00000000-0000-0000-0000-000000000000",
    "Cust-0042", "44.5", "-1", "0", "1e3", "F1904CF1A9D73A55FA5DE0AC823C4403DED71AFD4C3248D00BDCD0866552BB79",
    "\x1c alice@x.co \x1f", "\x00", "١٢٣٤٥٦٧٨٩٠", "ＡＢＣ", "+", "00", "0", "(613) 555-0123", "07700 900123",
    '"b5891fa3-0d4b-4c4c-9b43-93f0f4a6f1d2"', '""', " 38400000-8CF0-11BD-B23E-10B96E40000D\t", "AB12-CD34",
    "b5891fa30d4b4c4c9b4393f0f4a6f1d2", "b5891fa3-0d4b-4c4c-9b43-93f0f4a6f1d",
    "\uff425891fa3-0d4b-4c4c-9b43-93f0f4a6f1d2",
]  # fmt: skip
COUNTRIES = [None, "", "US", "us", "USA", "United States", "GB", "UK", "DE", "CA", "FR", "Narnia", "JP", "BR"]


def _spell(uuid_text: str, upper: bool, wrap: str, pad: str) -> str:
    text = uuid_text.upper() if upper else uuid_text
    return f"{pad}{wrap}{text}{wrap}{pad}"


advertising_ids = st.builds(
    _spell,
    st.uuids().map(str),
    st.booleans(),
    st.sampled_from(["", "", '"', "'"]),
    st.sampled_from(["", " ", "\t", "\u00a0", "\u3000"]),
)
"""IDFA/GAID spellings: either case, padded with ASCII or Unicode whitespace, sometimes still quoted."""


def _damage(uuid_text: str, at: int, by: str) -> str:
    """One character of an ID replaced (or removed, when `by` is empty): almost an advertising ID."""
    at %= len(uuid_text)
    return uuid_text[:at] + by + uuid_text[at + 1 :]


damaged_ids = st.builds(
    _damage, st.uuids().map(str), st.integers(0, 35), st.sampled_from(["", "-", "g", "0", " ", "é"])
)

texts = st.one_of(
    st.sampled_from(MESSY),
    st.text(max_size=20),
    st.text(alphabet="0123456789 ()+-.x#", max_size=18),
    st.from_regex(r"[ \t]*\+?[0-9]{1,3}[ (]*0?\)?[0-9 ]{4,14}", fullmatch=True),
    st.from_regex(r"[A-Za-z0-9._+ -]{1,10}@[A-Za-z0-9-]{1,8}(\.[A-Za-z]{1,4}){0,2}", fullmatch=True),
    st.from_regex(r"[0-9]{1,2}/[0-9]{1,2}/[0-9]{2,4}|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}", fullmatch=True),
    st.from_regex(r"[0-9]{3,6}([- ][0-9]{3,4})?", fullmatch=True),
    advertising_ids,
    damaged_ids,
    international_texts,
)
column_values = st.one_of(
    st.lists(st.one_of(st.none(), texts), max_size=12),
    st.lists(st.one_of(st.none(), st.integers(-(2**62), 2**62)), max_size=12),
    st.lists(st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)), max_size=12),
    st.lists(st.one_of(st.none(), st.sampled_from([4155550199.0, 2134.0, 1990.0, 7.0, 0.5, 44.5]))),
    st.lists(st.one_of(st.none(), st.booleans()), max_size=6),
    st.lists(st.one_of(st.none(), st.binary(max_size=8), st.sampled_from([b"alice@x.com", b"\xff"])), max_size=8),
    st.lists(st.one_of(st.none(), st.dates(dt.date(1850, 1, 1), dt.date(2100, 1, 1))), max_size=8),
    st.lists(st.one_of(st.none(), st.datetimes(dt.datetime(1890, 1, 1), dt.datetime(2030, 1, 1))), max_size=8),
    st.lists(st.one_of(st.none(), st.decimals(allow_nan=False, allow_infinity=False, places=2)), max_size=8),
    st.lists(st.one_of(st.none(), st.lists(st.one_of(st.none(), texts), max_size=3)), max_size=6),
)


@pytest.mark.parametrize("key", ALL_KEYS)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_scalar_and_vectorized_agree(key: str, data: st.DataObject) -> None:
    values = data.draw(column_values)
    countries = data.draw(st.lists(st.sampled_from(COUNTRIES), min_size=len(values), max_size=len(values)))
    default = data.draw(st.sampled_from([None, "US", "GB", "Germany"]))
    if any(isinstance(value, Decimal) for value in values):
        values = [value if value is None or value.is_finite() else None for value in values]
    assert_agrees(key, values, countries, default)


@pytest.mark.parametrize("key", ALL_KEYS)
def test_messy_strings_agree_for_every_country(key: str) -> None:
    values = MESSY * len(COUNTRIES)
    countries = [country for country in COUNTRIES for _ in MESSY]
    assert_agrees(key, values, countries, "US")


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.one_of(st.none(), advertising_ids, damaged_ids, texts), max_size=30))
def test_madid_fast_path_agrees_with_scalar(values: list[str | None]) -> None:
    """MADID goes row by row through its fast path; near-misses must get the scalar reason too."""
    assert_agrees("MADID", values, [None] * len(values))


def test_phone_fast_path_matches_phonenumbers_across_regions() -> None:
    """Seeded numbers in every habit for every region phonenumbers knows."""
    rnd = random.Random(11)
    values, countries = [], []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        example = phonenumbers.example_number(region)
        if example is None:
            continue
        nsn, code = phonenumbers.national_significant_number(example), example.country_code
        for _ in range(4):
            mutated = "".join(ch if rnd.random() < 0.6 else rnd.choice("0123456789") for ch in nsn)
            mutated = mutated[: max(1, len(mutated) + rnd.randint(-2, 2))]
            shape = rnd.choice([f"+{code} {mutated}", f"+{code} (0){mutated}", f"00{code} {mutated}", f"0{mutated}",
                                mutated, f"{code}{mutated}", f"({mutated[:3]}) {mutated[3:]}"])  # fmt: skip
            values.append(shape)
            countries.append(rnd.choice([region, region, None, "US"]))
    assert_agrees("PHONE", values, countries, None)


def test_every_supported_region_has_phone_rules() -> None:
    """The phone path reads a member's region as its row of rules: a region phonenumbers supports
    without one would read as no country at all, and its numbers would be sent as bare digits."""
    assert sorted(_rules_frame().get_column("mr")) == sorted(phonenumbers.SUPPORTED_REGIONS)


def test_prefix_rules_give_every_calling_code_its_main_region() -> None:
    calling = _prefix_rules().get_column("cc").to_list()
    regions = _rules_frame().get_column("mr").to_list()
    at = _prefix_rules().get_column("ri").to_list()
    for code, region_codes in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.items():
        digits = str(code)
        row = {3: 0, 2: 1000, 1: 1100}[len(digits)] + int(digits)
        assert calling[row] == digits
        main = region_codes[0]
        assert (regions[at[row]] if at[row] is not None else None) == (main if main != "001" else None)


def test_generated_customers_agree_with_scalar() -> None:
    table = generate_customers(1500, seed=4)
    for key, column in [("EMAIL", "email"), ("PHONE", "phone"), ("FN", "first_name"), ("LN", "last_name"),
                        ("GEN", "gender"), ("DOBY", "birthday"), ("DOBM", "birthday"), ("DOBD", "birthday"),
                        ("CT", "city"), ("ST", "state"), ("ZIP", "zip"), ("MADID", "madid"),
                        ("EXTERN_ID", "customer_id"), ("LOOKALIKE_VALUE", "ltv")]:  # fmt: skip
        assert_agrees(key, table.column(column).to_pylist(), table.column("country").to_pylist(), "US")


def test_mapping_and_output_schema() -> None:
    table = generate_customers(50, seed=1)
    result = match_table(table, default_country="US")
    assert result.mapping == {
        "EMAIL": "email", "PHONE": "phone", "FN": "first_name", "LN": "last_name", "FI": "first_name",
        "GEN": "gender", "DOBY": "birthday", "DOBM": "birthday", "DOBD": "birthday", "CT": "city", "ST": "state",
        "ZIP": "zip", "COUNTRY": "country", "MADID": "madid", "EXTERN_ID": "customer_id",
    }  # fmt: skip
    assert result.rows == 50
    assert result.table.column_names == [*result.mapping, "_row"]
    assert result.table.schema.field("_row").type == pa.int64()
    for key in result.mapping:
        kind = result.table.schema.field(key).type
        assert pa.types.is_large_string(kind) or pa.types.is_string(kind)
    hashed = [v for v in result.table.column("EMAIL").to_pylist() if v is not None]
    assert all(len(v) == 64 and v == v.lower() for v in hashed)


def test_lookalike_value_column_is_float64() -> None:
    table = pa.table({"email": ["a@b.co", "c@d.co", "e@f.co", "g@h.co"], "ltv": [1.5, 0.0, -2.0, None]})
    result = match_table(table, columns={"LOOKALIKE_VALUE": "ltv"})
    assert result.table.schema.field("LOOKALIKE_VALUE").type == pa.float64()
    assert result.table.column("LOOKALIKE_VALUE").to_pylist() == [1.5, None, None, None]
    assert result.invalid["LOOKALIKE_VALUE"] == {"zero_value": 1, "negative": 1}
    assert result.empty["LOOKALIKE_VALUE"] == 1
    allowed = match_table(table, columns={"LOOKALIKE_VALUE": "ltv"}, allow_zero_value=True)
    assert allowed.table.column("LOOKALIKE_VALUE").to_pylist() == [1.5, 0.0, None, None]


def test_counts_by_key_and_reason() -> None:
    table = pa.table({"email": ["a@b.co", "alice@", None, " ", "x@"], "gender": ["F", "other", "m", None, "?"]})
    result = match_table(table)
    assert result.empty == {"EMAIL": 2, "GEN": 1}
    assert result.invalid == {"EMAIL": {"not_an_email": 2}, "GEN": {"unknown_gender": 2}}


def test_list_valued_emails_give_one_row_per_address() -> None:
    table = pa.table(
        {
            "emails": [["A@x.com", "b@y.com"], [], None, ["", "c@z.org"], [" "], ["d@w.io"]],
            "first_name": ["Ann", "Bob", "Cy", "Di", "Ed", "Flo"],
        }
    )
    result = match_table(table)
    assert result.rows == 6
    assert result.table.column("_row").to_pylist() == [0, 0, 1, 2, 3, 4, 5]
    digest = lambda text: hashlib.sha256(text.encode()).hexdigest()  # noqa: E731
    assert result.table.column("EMAIL").to_pylist() == [
        digest("a@x.com"), digest("b@y.com"), None, None, digest("c@z.org"), None, digest("d@w.io")
    ]  # fmt: skip
    assert result.table.column("FN").to_pylist()[:2] == [digest("ann"), digest("ann")]
    assert result.empty["EMAIL"] == 3


def test_nested_email_lists_are_flattened() -> None:
    table = pa.table({"emails": [[["a@x.com"], ["b@y.com", None]], [[]]]})
    result = match_table(table)
    assert result.table.column("_row").to_pylist() == [0, 0, 1]
    expected = [match_value("EMAIL", "a@x.com"), match_value("EMAIL", "b@y.com")]
    assert result.table.column("EMAIL").to_pylist()[:2] == expected


def test_record_batch_and_explicit_mapping_wins() -> None:
    batch = pa.record_batch({"email": ["a@b.co"], "work_email": ["w@b.co"], "phone": ["4155550199"]})
    result = match_table(batch, columns={"EMAIL": "work_email", "PHONE": None}, default_country="usa")
    assert result.mapping == {"EMAIL": "work_email"}
    assert result.table.column("EMAIL").to_pylist() == [match_value("EMAIL", "w@b.co")]


def test_member_country_beats_default_country() -> None:
    table = pa.table({"phone": ["0161 496 0000", "0161 496 0000", "(415) 555-0199"], "country": ["UK", None, "Narnia"]})
    result = match_table(table, default_country="US")
    assert result.table.column("PHONE").to_pylist() == [
        match_value("PHONE", "0161 496 0000", country="GB"),
        match_value("PHONE", "0161 496 0000", country="US"),
        match_value("PHONE", "(415) 555-0199", country="US"),
    ]


def test_odd_arrow_types_do_not_raise() -> None:
    table = pa.table(
        {
            "email": pa.array([{"a": 1}, None], pa.struct([("a", pa.int64())])),
            "phone": pa.array([Decimal("4155550199"), None], pa.decimal128(12, 0)),
            "first_name": pa.array(["Zoë", None]).dictionary_encode(),
            "zip": pa.nulls(2),
            "birthday": pa.array([dt.datetime(1990, 4, 7, 5), None], pa.timestamp("us")),
        }
    )
    result = match_table(table, default_country="US")
    assert result.table.column("PHONE").to_pylist()[0] == match_value("PHONE", "4155550199", country="US")
    assert result.invalid["EMAIL"] == {"unsupported_type": 1}
    assert result.empty["ZIP"] == 2
    assert result.table.column("DOBM").to_pylist()[0] == match_value("DOBM", "04")


def test_first_initial_is_not_derived_from_a_prehashed_first_name() -> None:
    digest = hashlib.sha256(b"mary").hexdigest()
    table = pa.table({"first_name": [digest, "Zoë"], "first_initial": [None, None]})
    derived = match_table(table.select(["first_name"]))
    assert derived.table.column("FN").to_pylist()[0] == digest
    assert derived.table.column("FI").to_pylist() == [None, match_value("FI", "z")]
    assert derived.empty["FI"] == 1
    given_column = match_table(pa.table({"first_initial": [digest]}))
    assert given_column.table.column("FI").to_pylist() == [digest]
