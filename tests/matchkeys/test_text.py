"""EMAIL, FN/LN/FI, GEN, MADID and EXTERN_ID rules and their invalid cases."""

from __future__ import annotations

import pytest

from audiencesync.matchkeys import explain, match_value, normalize


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("ALICE@EXAMPLE.COM", "alice@example.com"),
        ("\talice@example.co.uk\n", "alice@example.co.uk"),
        ("\u00a0bob+tag@example.com\u2003", "bob+tag@example.com"),
        ("jörg@bücher.de", "jörg@bücher.de"),
    ],
)
def test_email_is_trimmed_and_lowercased(value: str, expected: str) -> None:
    assert normalize("EMAIL", value) == expected


@pytest.mark.parametrize(
    "value",
    ["alice@", "alice", "@example.com", "a@b@example.com", "alice smith@example.com", "alice@example",
     "alice@example.", "alice@.com", "alice@example..com", "alice@exa mple.com"],
)  # fmt: skip
def test_email_invalid_shapes(value: str) -> None:
    assert normalize("EMAIL", value) is None
    assert explain("EMAIL", value) == "not_an_email"


@pytest.mark.parametrize("value", [None, "", "   ", "\u3000", float("nan"), [], [None, " "]])
def test_empty_values_are_empty_not_invalid(value: object) -> None:
    for key in ("EMAIL", "PHONE", "FN", "ZIP", "MADID", "EXTERN_ID", "LOOKALIKE_VALUE"):
        assert normalize(key, value) is None
        assert explain(key, value) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Mary-Ann", "maryann"),
        ("O'Brien", "obrien"),
        ("  JOSÉ  ", "josé"),
        ("Jose\u0301", "josé"),
        ("D'Angelo 3rd", "dangelord"),
        ("Ægir", "ægir"),
        ("Müller-Lüdenscheidt", "müllerlüdenscheidt"),
        ("Александр", "александр"),
        ("정", "정"),
        ("山田", "山田"),
        ("प्रिया", "प्रिया"),
        ("محمد", "محمد"),
    ],
)
def test_names_keep_letters_of_any_script(value: str, expected: str) -> None:
    assert normalize("FN", value) == expected
    assert normalize("LN", value) == expected


@pytest.mark.parametrize("value", ["123", "--", "!!!", "☺", "1990-04-07"])
def test_names_with_no_letters_are_invalid(value: str) -> None:
    assert normalize("FN", value) is None
    assert explain("FN", value) == "no_letters"
    assert explain("LN", value) == "no_letters"
    assert explain("FI", value) == "no_letters"


@pytest.mark.parametrize(("value", "expected"), [("Zoë", "z"), ("  élise", "é"), ("J.", "j"), ("-Ann", "a")])
def test_first_initial_is_first_letter_of_normalized_first_name(value: str, expected: str) -> None:
    assert normalize("FI", value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("m", "m"), ("M", "m"), ("Male", "m"), ("MAN", "m"), ("boy", "m"),
     ("f", "f"), ("F", "f"), ("female", "f"), ("Woman", "f"), ("GIRL", "f"), (" Female ", "f")],
)  # fmt: skip
def test_gender_words(value: str, expected: str) -> None:
    assert normalize("GEN", value) == expected


@pytest.mark.parametrize("value", ["other", "x", "unknown", "n/a", "nonbinary", "fem", "1"])
def test_other_genders_are_invalid(value: str) -> None:
    assert normalize("GEN", value) is None
    assert explain("GEN", value) == "unknown_gender"


def test_madid_is_lowercased_plain_with_hyphens() -> None:
    value = " AEBE52E7-03EE-455A-B3C4-E57283966239 "
    assert match_value("MADID", value) == "aebe52e7-03ee-455a-b3c4-e57283966239"


@pytest.mark.parametrize("value", ["00000000-0000-0000-0000-000000000000", "00000000000000000000000000000000"])
def test_all_zero_madid_is_invalid(value: str) -> None:
    assert match_value("MADID", value) is None
    assert explain("MADID", value) == "zero_madid"


def test_madid_that_looks_hashed_is_neither_passed_through_nor_hashed() -> None:
    """64 hex characters is a pre-hashed value for hashed keys; for MADID it is no advertising ID."""
    value = "A" * 64
    assert match_value("MADID", value) is None
    assert explain("MADID", value) == "not_a_uuid"


@pytest.mark.parametrize(
    "value",
    [
        "38400000-8cf0-11bd-b23e-10b96e40000d",
        "\tAEBE52E7-03ee-455A-b3c4-E57283966239\n",
        "ffffffff-ffff-ffff-ffff-ffffffffffff",
        "00000000-0000-0000-0000-000000000001",
    ],
)
def test_uuid_shaped_madid_is_sent_trimmed_and_lowercased(value: str) -> None:
    assert match_value("MADID", value) == value.strip().lower()
    assert explain("MADID", value) is None


@pytest.mark.parametrize(
    "value",
    [
        '"b5891fa3-0d4b-4c4c-9b43-93f0f4a6f1d2"',  # still in its CSV quotes
        "'b5891fa3-0d4b-4c4c-9b43-93f0f4a6f1d2'",
        '""',  # an empty quoted field
        "''",
        "b5891fa3-0d4b-4c4c-9b43-93f0f4a6f1d",  # truncated
        "b5891fa3-0d4b-4c4c-9b43-93f0f4a6f1d2a",  # one digit too many
        "b5891fa30d4b4c4c9b4393f0f4a6f1d2",  # hyphens lost
        "{b5891fa3-0d4b-4c4c-9b43-93f0f4a6f1d2}",  # braces
        "g5891fa3-0d4b-4c4c-9b43-93f0f4a6f1d2",  # not hex
        "b5891fa3 0d4b 4c4c 9b43 93f0f4a6f1d2",
        "b5891fa3-0d4b-4c4c-9b43-93f0f4a6f1d2 x",
        "\uff425891fa3-0d4b-4c4c-9b43-93f0f4a6f1d2",  # a full-width letter
        "ab12-cd34",
        "n/a",
        "unknown",
        "null",
        "-",
        "12345",
    ],
)
def test_madid_that_is_not_an_advertising_id_is_invalid(value: str) -> None:
    assert normalize("MADID", value) is None
    assert match_value("MADID", value) is None
    assert explain("MADID", value) == "not_a_uuid"


@pytest.mark.parametrize("value", ["0", "-0-", " 0000 ", "00000000-0000-0000-0000-000000000000\t"])
def test_all_zero_text_keeps_its_reason(value: str) -> None:
    """Checked before the shape, so a denied-tracking ID in any spelling is counted as such."""
    assert explain("MADID", value) == "zero_madid"


@pytest.mark.parametrize(("value", "expected"), [("Cust-0042", "Cust-0042"), ("  AbC  ", "AbC"), (42, "42")])
def test_extern_id_keeps_case(value: object, expected: str) -> None:
    assert match_value("EXTERN_ID", value) == expected


def test_extern_id_empty_is_not_sent() -> None:
    assert match_value("EXTERN_ID", "   ") is None
    assert explain("EXTERN_ID", "   ") is None
