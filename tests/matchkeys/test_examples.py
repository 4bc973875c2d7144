"""The contract's examples table and Meta's published hash vectors, verbatim."""

from __future__ import annotations

import hashlib

import pytest

from audiencesync.matchkeys import match_value, normalize

EXAMPLES = [
    ("EMAIL", " Alice.Smith@Example.ORG ", None, "alice.smith@example.org"),
    ("EMAIL", "alice@", None, None),
    ("PHONE", "+1 415-555-0199", None, "14155550199"),
    ("PHONE", "415 555 0199", "US", "14155550199"),
    ("PHONE", "+44 (0)161 496 0000", None, "441614960000"),
    ("PHONE", "0161 496 0000", "GB", "441614960000"),
    ("PHONE", "00 33 1 23 45 67 89", None, "33123456789"),
    ("PHONE", "496-0000", "US", None),
    ("FN", "Zoë", None, "zoë"),
    ("FN", "Jean-Luc", None, "jeanluc"),
    ("LN", "St. John", None, "stjohn"),
    ("LN", "Øster", None, "øster"),
    ("FI", "Zoë", None, "z"),
    ("GEN", "Female", None, "f"),
    ("GEN", "other", None, None),
    ("DOBY", "2001", None, "2001"),
    ("DOBM", "Feb", None, "02"),
    ("DOBM", "9", None, "09"),
    ("DOBD", "1", None, "01"),
    ("CT", "Los Angeles", None, "losangeles"),
    ("CT", "Köln", None, "koln"),
    ("ST", "Washington", "US", "wa"),
    ("ST", "Bavaria", "DE", "bavaria"),
    ("ZIP", "10001-0001", "US", "10001"),
    ("ZIP", "EC1A 1BB", "GB", "ec1a1bb"),
    ("COUNTRY", "Canada", None, "ca"),
    ("COUNTRY", "CAN", None, "ca"),
    ("MADID", "AEBE52E7-03EE-455A-B3C4-E57283966239", None, "aebe52e7-03ee-455a-b3c4-e57283966239"),
    ("EXTERN_ID", "Cust-0042", None, "Cust-0042"),
]

PLAIN = {"MADID", "EXTERN_ID"}


@pytest.mark.parametrize(("key", "value", "country", "expected"), EXAMPLES)
def test_example_normalizes(key: str, value: str, country: str | None, expected: str | None) -> None:
    assert normalize(key, value, country=country) == expected


@pytest.mark.parametrize(("key", "value", "country", "expected"), EXAMPLES)
def test_example_is_sent_hashed_or_plain(key: str, value: str, country: str | None, expected: str | None) -> None:
    sent = match_value(key, value, country=country)
    if expected is None:
        assert sent is None
    elif key in PLAIN:
        assert sent == expected
    else:
        assert sent == hashlib.sha256(expected.encode()).hexdigest()


@pytest.mark.parametrize(
    ("key", "value", "digest"),
    [
        ("EMAIL", "mary@example.com", "f1904cf1a9d73a55fa5de0ac823c4403ded71afd4c3248d00bdcd0866552bb79"),
        ("PHONE", "+1 (650) 555-1212", "e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176"),
        ("FN", "Valéry", "08e1996b5dd49e62a4b4c010d44e4345592a863bb9f8e3976219bac29417149c"),
        ("FN", "Mary", "6915771be1c5aa0c886870b6951b03d7eafc121fea0e80a5ea83beb7c449f4ec"),
        ("LN", "정", "8fa8cd9c440be61d0151429310034083132b35975c4bea67fdd74158eb51db14"),
        ("COUNTRY", "United States", "79adb2a2fce5c6ba215fe5f27f532d4e7edbac4b6a5e09e1ef3a08084a904621"),
        ("EMAIL", "John_Smith@Gmail.com", "62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f"),
        ("PHONE", "+1 555 987 6543", "1ef970831d7963307784fa8688e8fce101a15685d62aa765fed23f3a2c576a4e"),
    ],
)
def test_meta_hash_vectors(key: str, value: str, digest: str) -> None:
    assert match_value(key, value) == digest


def test_decomposed_input_hashes_like_composed() -> None:
    assert match_value("FN", "Vale\u0301ry") == match_value("FN", "Val\u00e9ry")
