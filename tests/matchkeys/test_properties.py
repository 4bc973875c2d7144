"""Hypothesis properties of the scalar API."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.matchkeys.test_vectorized import COUNTRIES, texts

from audiencesync.matchkeys import KEYS, key_spec, match_value, normalize

HEX64 = re.compile(r"[0-9a-f]{64}")
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
