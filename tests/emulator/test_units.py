"""Small units: the clock, the version table, the envelope, parameter coercion, form parsing."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from audiencesync.emulator import errors, versions
from audiencesync.emulator.app import parse_form
from audiencesync.emulator.clock import Clock
from audiencesync.emulator.coerce import as_bool, as_int


def test_clock_set_and_advance() -> None:
    clock = Clock(1000.0)
    assert 1000 <= clock.now() < 1001
    clock.advance(5400)
    assert 6400 <= clock.now() < 6401
    clock.set(42)
    assert 42 <= clock.now() < 43


def test_version_table() -> None:
    assert versions.is_version_segment("v25.0") and not versions.is_version_segment("act_1")
    t = versions._ts
    assert versions.is_available("v25.0", t("2026-11-23"))
    assert not versions.is_available("v19.0", t("2026-11-23"))
    assert versions.is_available("v24.0", t("2026-11-09"))
    assert not versions.is_available("v24.0", t("2026-11-10"))  # Marketing API expiry
    assert versions.is_available("v24.0", t("2026-11-10"), marketing=False)  # Graph/CAPI date
    assert not versions.is_available("v25.0", t("2027-02-23"))
    assert versions.is_available("v26.0", t("2030-01-01"))  # no end date yet
    assert versions.is_available("v27.0", t("2026-01-01"))  # released later than the clock: accepted
    assert not versions.is_available("v99.0", t("2026-01-01"))


def test_envelope_shape() -> None:
    err = errors.update_failed("x", subcode=1870145, title="T", msg="M", is_transient=True)
    env = err.envelope("AbC")["error"]
    assert env == {
        "message": "(#2650) Failed to update the custom audience: x",
        "type": "OAuthException",
        "code": 2650,
        "error_subcode": 1870145,
        "is_transient": True,
        "error_user_title": "T",
        "error_user_msg": "M",
        "fbtrace_id": "AbC",
    }
    assert "error_subcode" not in errors.invalid_token().envelope("x")["error"]
    assert len(errors.new_trace_id()) == 11
    assert "<html" in errors.html_error_page(502)


def test_coercion() -> None:
    assert as_bool("1", "x") is True and as_bool("false", "x") is False and as_bool(None, "x", True) is True
    assert as_int("12", "x") == 12 and as_int(3.0, "x") == 3
    with pytest.raises(errors.GraphError):
        as_bool("maybe", "x")
    with pytest.raises(errors.GraphError):
        as_int("1.5", "x")


@given(st.dictionaries(st.text(min_size=1), st.text(), max_size=4))
def test_parse_form_equals_parse_qsl(d: dict[str, str]) -> None:
    body = urlencode(d)
    assert parse_form(body) == parse_qsl(body, keep_blank_values=True)


@given(st.text(alphabet="%+&=abcXYZ0123456789\\é", max_size=30))
def test_parse_form_on_arbitrary_input(body: str) -> None:
    assert parse_form(body) == parse_qsl(body, keep_blank_values=True)
