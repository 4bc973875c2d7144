"""Hypothesis properties of the scalar API."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.matchkeys.test_vectorized import COUNTRIES, advertising_ids, damaged_ids, texts

from audiencesync.matchkeys import KEYS, explain, key_spec, match_value, normalize

HEX64 = re.compile(r"[0-9a-f]{64}")
ADVERTISING_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
ZERO_ID = "00000000-0000-0000-0000-000000000000"
ALL_KEYS = [spec.name for spec in KEYS]
HASHED = [spec.name for spec in KEYS if spec.hashed]
values = st.one_of(st.none(), texts, st.integers(), st.floats(), st.booleans(), st.binary(max_size=6))


@pytest.mark.parametrize("key", ALL_KEYS)
@settings(max_examples=60, deadline=None)
@given(value=values, country=st.sampled_from(COUNTRIES))
def test_normalize_is_idempotent(key: str, value: object, country: str | None) -> None:
    """Country-dependent keys keep their country on the second pass, except PHONE, whose output is
    already international (E.164 digits) and so is re-read with no country at all."""
    once = normalize(key, value, country=country)
    if once is None:
        return
    second_country = None if key == "PHONE" else country
    assert normalize(key, once, country=second_country) == once


@pytest.mark.parametrize("key", HASHED)
@settings(max_examples=60, deadline=None)
@given(value=values, country=st.sampled_from(COUNTRIES))
def test_hashed_keys_send_64_lowercase_hex(key: str, value: object, country: str | None) -> None:
    sent = match_value(key, value, country=country)
    assert sent is None or HEX64.fullmatch(sent)


@pytest.mark.parametrize("key", HASHED)
@settings(max_examples=25, deadline=None)
@given(digest=st.from_regex(r"[0-9a-fA-F]{64}", fullmatch=True), pad=st.sampled_from(["", " ", "\t", "\u00a0"]))
def test_prehashed_values_pass_unchanged(key: str, digest: str, pad: str) -> None:
    assert match_value(key, f"{pad}{digest}{pad}", country="US") == digest.lower()


@pytest.mark.parametrize("key", ["MADID", "EXTERN_ID"])
@settings(max_examples=30, deadline=None)
@given(value=texts)
def test_plain_keys_are_never_hashed(key: str, value: str) -> None:
    sent = match_value(key, value)
    assert sent is None or sent == normalize(key, value)
    assert not key_spec(key).hashed


@settings(max_examples=60, deadline=None)
@given(value=st.one_of(values, advertising_ids, damaged_ids))
def test_madid_sends_only_lowercase_advertising_ids(value: object) -> None:
    sent = match_value("MADID", value)
    assert sent is None or (ADVERTISING_ID.fullmatch(sent) and sent != ZERO_ID)
    assert (sent is None) == (normalize("MADID", value) is None)


@settings(max_examples=60, deadline=None)
@given(value=advertising_ids)
def test_advertising_id_spellings_are_sent_trimmed_and_lowercased_unless_quoted(value: str) -> None:
    """Case and surrounding whitespace are spelling; quotes left from a CSV are not part of an ID."""
    body = value.strip()
    if body[0] in "\"'":
        assert match_value("MADID", value) is None
        assert explain("MADID", value) == "not_a_uuid"
    elif body.lower() == ZERO_ID:
        assert explain("MADID", value) == "zero_madid"
    else:
        assert match_value("MADID", value) == body.lower()
        assert explain("MADID", value) is None


@settings(max_examples=60, deadline=None)
@given(value=damaged_ids)
def test_a_damaged_advertising_id_is_not_sent(value: str) -> None:
    """One character off (removed, a stray hyphen, a non-hex letter) is no ID: never sent as is."""
    if ADVERTISING_ID.fullmatch(value.strip().lower()):
        return  # the damage happened to keep the shape (a hex digit swapped for `0`)
    assert match_value("MADID", value) is None
    assert explain("MADID", value) in {"not_a_uuid", "zero_madid"}
