"""The world's spellings through `match_table`: byte-identical to the scalar path, and no cliff.

The fast paths claim non-ASCII text now (any script, NFC by Arrow, Python's whitespace, letters by
Rust's classes checked against Python's), so these compare them with the scalar normalizers on text
chosen to make them differ if they can, and check that such text no longer falls to the scalar path.
"""

from __future__ import annotations

import random
import re
import unicodedata

import phonenumbers
import polars as pl
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.matchkeys.conftest import assert_agrees
from tests.matchkeys.international import (
    NAMES,
    _phone_text,
    any_text,
    cities,
    emails,
    international_texts,
    names,
    phones,
    postal_codes,
    scripts_text,
    states,
)

from audiencesync.matchkeys import KEYS, charsets, match_table, match_value, normalize
from audiencesync.matchkeys.phone_fast import PUNCTUATION, ascii_translation

ALL_KEYS = [spec.name for spec in KEYS]
COUNTRIES = [None, "", "US", "GB", "DE", "FR", "JP", "RU", "BR", "IN", "KR", "CN", "HU", "AU", "Deutschland", "日本"]
BY_KEY = {
    "EMAIL": emails,
    "PHONE": phones,
    "FN": names,
    "LN": names,
    "FI": names,
    "CT": st.one_of(cities, names),
    "ST": st.one_of(states, names),
    "ZIP": postal_codes,
    "EXTERN_ID": names,
}


@pytest.mark.parametrize("key", ALL_KEYS)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_international_values_agree_with_scalar(key: str, data: st.DataObject) -> None:
    own = BY_KEY.get(key, international_texts)
    values = data.draw(st.lists(st.one_of(st.none(), own, own, international_texts), max_size=25))
    countries = data.draw(st.lists(st.sampled_from(COUNTRIES), min_size=len(values), max_size=len(values)))
    default = data.draw(st.sampled_from([None, "US", "DE"]))
    assert_agrees(key, values, countries, default)


@pytest.mark.parametrize("key", ["FN", "LN", "FI", "CT", "ST", "EMAIL", "ZIP", "MADID", "EXTERN_ID"])
@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.one_of(scripts_text, any_text), min_size=1, max_size=30))
def test_any_characters_agree_with_scalar(key: str, values: list[str]) -> None:
    """Arbitrary code points: combining sequences, unassigned and astral characters, controls."""
    assert_agrees(key, values, ["US"] * len(values))


def test_phones_of_every_region_and_script_agree() -> None:
    """Each region's example numbers in national and international forms, with the region's own
    trunk prefix, in full-width, Arabic-Indic and Devanagari digits, with typographic separators."""
    rnd = random.Random(7)
    values, countries = [], []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for _ in range(5):
            text = _phone(region, rnd)
            if text is None:
                continue
            values.append(text)
            countries.append(rnd.choice([region, region, region, None, "US"]))
    assert len(values) > 800
    assert_agrees("PHONE", values, countries, None)


def _phone(region: str, rnd: random.Random) -> str | None:
    tail = "".join(rnd.choice("0123456789") for _ in range(rnd.randint(3, 7)))
    separator = rnd.choice([" ", "-", ".", "\u00a0", "\u3000", "\u2010", "\u202f", "\uff0d"])
    return _phone_text(region, tail, rnd.randint(0, 104), rnd.choice([0, 0, 1, 2, 3]), separator)


def _international_table(rows: int, seed: int) -> pa.Table:
    """Names in every script and spelling, emails with accented local parts and IDN domains,
    phones of twelve countries nationally and internationally, postal codes: all sure text."""
    rnd = random.Random(seed)
    regions = ["US", "GB", "DE", "FR", "ES", "IT", "BR", "MX", "IN", "JP", "KR", "RU"]
    out: dict[str, list[str]] = {"first": [], "last": [], "email": [], "phone": [], "zip": [], "country": []}
    for index in range(rows):
        region = rnd.choice(regions)
        first, last = rnd.choice(NAMES), rnd.choice(NAMES)
        spelled = rnd.choice([first, first.upper(), unicodedata.normalize("NFD", first), f"\u00a0{first} "])
        out["first"].append(spelled)
        out["last"].append(last)
        local = f"{first.lower()}.{last.lower()}{index}".replace(" ", "").replace("'", "")
        out["email"].append(f"{local}@{rnd.choice(['example.com', 'bücher.de', 'почта.рф'])}")
        example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
        nsn = phonenumbers.national_significant_number(example)
        nsn = nsn[:-4] + f"{rnd.randrange(10000):04d}"
        number = phonenumbers.parse(f"+{example.country_code}{nsn}", None)
        form = rnd.choice([phonenumbers.PhoneNumberFormat.NATIONAL, phonenumbers.PhoneNumberFormat.INTERNATIONAL])
        out["phone"].append(phonenumbers.format_number(number, form))
        out["zip"].append(rnd.choice(["10001-0001", "EC1A 1BB", "75008", "100-0001", "01310-100", "〒100-0001"]))
        out["country"].append(region)
    return pa.table(out)


def test_international_text_takes_the_fast_paths() -> None:
    """No cliff: accented and non-Latin names (composed or not, upper-cased, padded with Unicode
    spaces), accented emails and national or international phones of twelve countries are all
    settled by the vectorized paths; none goes to a scalar normalizer. And they agree with it."""
    table = _international_table(600, seed=3)
    mapping = {"FN": "first", "LN": "last", "FI": "first", "EMAIL": "email", "PHONE": "phone", "ZIP": "zip",
               "COUNTRY": "country"}  # fmt: skip
    result = match_table(table, columns=mapping)
    for key in ("FN", "LN", "FI", "EMAIL", "PHONE", "ZIP"):
        assert result.scalar[key] == 0, key
        assert_agrees(key, table.column(mapping[key]).to_pylist(), table.column("country").to_pylist())


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("José", "josé"),
        ("JOSE\u0301", "josé"),
        ("\u3000Zoë\u00a0", "zoë"),
        ("ΝΙΚΟΛΑΟΣ", "νικολαος"),
        ("ΟΔΥΣΣΕΑΣ.", "οδυσσεας"),
        ("İbrahim", "i\u0307brahim"),
        ("Groß", "groß"),
        ("Nguyễn", "nguyễn"),
        ("प्रिया", "प्रिया"),
        ("정민", "정민"),
        ("\u1100\u1161\u11a8", "각"),
        ("美咲", "美咲"),
    ],
)
def test_names_in_any_script_take_the_fast_path(value: str, expected: str) -> None:
    result = match_table(pa.table({"first_name": [value]}), columns={"FN": "first_name"})
    assert result.scalar["FN"] == 0
    assert result.table.column("FN").to_pylist() == [match_value("FN", expected)]


@pytest.mark.parametrize(
    ("value", "country", "expected"),
    [
        ("０９０－１２３４－５６７８", "JP", "819012345678"),
        ("＋８１ ９０－１２３４－５６７８", None, "819012345678"),
        ("8 (912) 345-67-89", "RU", "79123456789"),
        ("8 912 345 67 89", "RU", "79123456789"),
        ("+7 912 345-67-89", None, "79123456789"),
        ("٠٣٠ ١٢٣٤٥٦٧", "DE", "49301234567"),
        ("030\u00a01234567", "DE", "49301234567"),
        ("+1 415.555.0100", None, "14155550100"),
        ("1-415-555-0100", "US", "14155550100"),
        ("06 30 123 4567", "HU", "36301234567"),
    ],
)
def test_phones_in_other_scripts_and_trunk_prefixes_take_the_fast_path(
    value: str, country: str | None, expected: str
) -> None:
    table = pa.table({"phone": [value], "country": [country]})
    result = match_table(table, columns={"PHONE": "phone", "COUNTRY": "country"})
    assert result.scalar["PHONE"] == 0
    assert result.table.column("PHONE").to_pylist() == [match_value("PHONE", expected)]
    assert match_value("PHONE", value, country=country) == match_value("PHONE", expected)


@pytest.mark.parametrize("value", ["a\u0378b", "x\U00030000", "\U000e0041bc", "Zo\U0010fffd"])
def test_characters_python_does_not_know_go_to_the_scalar_path(value: str) -> None:
    """Unassigned in Python's Unicode version, or past U+30000: Python decides, never Rust."""
    result = match_table(pa.table({"first_name": [value, value]}), columns={"FN": "first_name"})
    assert result.scalar["FN"] == 1
    assert result.table.column("FN").to_pylist() == [match_value("FN", value)] * 2


# ---------------------------------------------------------------- the character classes


def _python_class(body: str) -> re.Pattern[str]:
    return re.compile("[" + re.sub(r"\\x\{([0-9A-F]+)\}", lambda m: f"\\U{int(m.group(1), 16):08x}", body) + "]")


def test_space_is_what_python_strips() -> None:
    assert set(charsets.SPACE) == {chr(code) for code in range(0x110000) if chr(code).isspace()}
    assert _python_class(charsets.SPACE_CLASS).findall(charsets.SPACE) == list(charsets.SPACE)


def test_unassigned_and_astral_characters_are_unsure() -> None:
    unsure = _python_class(charsets.unicode_tables().unsure)
    assert unsure.match("\u0378") and unsure.match("\U00030000") and unsure.match("\U0010ffff")
    assert not unsure.search("Zoë Σ İ ß 美咲 정민 प्रिया\u0301\u00a0")
    for ch in charsets.unicode_tables().disagreements:
        assert unsure.match(ch)


@settings(max_examples=200, deadline=None)
@given(text=st.one_of(scripts_text, any_text, names))
def test_arrow_nfc_of_sure_text_is_pythons(text: str) -> None:
    if _python_class(charsets.unicode_tables().unsure).search(text):
        return
    assert charsets.nfc(pl.Series([text])).item() == unicodedata.normalize("NFC", text)


@settings(max_examples=200, deadline=None)
@given(text=st.one_of(scripts_text, any_text, names))
def test_text_without_nfc_sensitive_characters_is_nfc(text: str) -> None:
    tables = charsets.unicode_tables()
    if _python_class(tables.unsure).search(text) or _python_class(tables.nfc).search(text):
        return
    assert unicodedata.is_normalized("NFC", text)


@settings(max_examples=200, deadline=None)
@given(text=st.one_of(scripts_text, any_text, names))
def test_plain_text_stays_nfc_when_lowercased_or_cut(text: str) -> None:
    """What lets the fast paths skip their later NFC steps for text with no `flagged` character."""
    if _python_class(charsets.unicode_tables().flagged).search(text):
        return
    lowered = text.lower()
    letters = "".join(ch for ch in lowered if unicodedata.category(ch)[0] in "LM")
    for variant in (text, lowered, letters, lowered[1:], lowered[::2]):
        assert unicodedata.is_normalized("NFC", variant)


def test_phone_punctuation_is_what_phonenumbers_reads_as_such() -> None:
    """Each character the phone path makes ASCII is one phonenumbers treats as that punctuation."""
    from phonenumbers import phonenumberutil

    readable = re.compile(f"[{phonenumberutil._VALID_PUNCTUATION}{phonenumberutil._PLUS_CHARS}]")
    for char, ascii_char in PUNCTUATION.items():
        assert readable.fullmatch(char) and readable.fullmatch(ascii_char), hex(ord(char))
        texts = [f"{char}49 30 1234567"] if ascii_char == "+" else [f"+49 30{char}1234567", f"030{char}1234567"]
        for text in texts:
            plain = text.replace(char, ascii_char)
            assert phonenumbers.parse(text, "DE") == phonenumbers.parse(plain, "DE"), hex(ord(char))
    digits = {ch: ascii_char for ch, ascii_char in ascii_translation().items() if ch not in PUNCTUATION}
    assert all(unicodedata.category(ch) == "Nd" and re.fullmatch(r"\d", ch) for ch in digits)
    assert len(digits) > 500


@pytest.mark.parametrize("value", ["A\x85\u0300", "A -\u0300 1", "a\u0301"])
def test_postal_code_recomposes_after_spaces_and_dashes_go(value: str) -> None:
    """Found by the idempotence property: a mark after a space joins the letter before it once the
    space is gone, and both paths must compose it as a second normalization would."""
    once = normalize("ZIP", value, country="FR")
    assert once == normalize("ZIP", once, country="FR") == unicodedata.normalize("NFC", once)
    assert_agrees("ZIP", [value, value], [None, "FR"])


@pytest.mark.parametrize("value", ["000000－", "94105－1234", "94105‐1234", "９４１０５"])
def test_a_us_zip_with_any_dash_is_cut_as_a_second_pass_would_cut_it(value: str) -> None:
    """Found by the idempotence property: a full-width dash kept a US ZIP out of the digits rule, so
    the first pass kept six digits and the second cut them to five."""
    once = normalize("ZIP", value, country="US")
    assert once == normalize("ZIP", once, country="US")
    assert_agrees("ZIP", [value, value, value], ["US", None, "FR"])
