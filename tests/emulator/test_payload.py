"""Payload validation: schemas, the data-source lock, row shape, hashes and invalid entries (spec §2.4, §2.6)."""

from __future__ import annotations

import pytest

from audiencesync.emulator import errors
from audiencesync.emulator.payload import parse_schema, prepare

from .conftest import Graph, error_of, rand_hash, sha


def test_parse_schema_normalises_aliases() -> None:
    assert parse_schema("EMAIL_SHA256").keys == ("EMAIL",)
    assert parse_schema("PHONE_SHA256").keys == ("PHONE",)
    assert parse_schema("MOBILE_ADVERTISER_ID").keys == ("MADID",)
    assert parse_schema("UID").keys == ("UID",)
    multi = parse_schema(["EMAIL", "FN", "LOOKALIKE_VALUE"])
    assert multi.kind == "multi" and multi.data_source == "MULTI_HASHES" and multi.has_value
    for bad in ("NOPE", ["EMAIL", "EMAIL"], ["LOOKALIKE_VALUE"], 5, None):
        with pytest.raises(errors.GraphError):
            parse_schema(bad)


def test_prepare_counts_invalid_entries_with_at_most_100_samples() -> None:
    rows = [[f"bad{i}", sha("f")] for i in range(150)] + [[sha("ok"), sha("f")]]
    out = prepare(
        {"schema": ["EMAIL", "FN"], "data": rows}, strict_hashes=True, max_rows=10_000, max_samples=100, removal=False
    )
    assert out.num_received == 151 and out.num_invalid == 150 and len(out.rows) == 1
    assert len(out.samples) == 100 and out.samples["bad0"] == "EMAIL"


def test_uppercase_hex_is_invalid_when_strict_and_kept_when_not() -> None:
    payload = {"schema": "EMAIL_SHA256", "data": [sha("a").upper(), "plain@example.com"]}
    strict = prepare(payload, strict_hashes=True, max_rows=10, max_samples=100, removal=False)
    assert strict.num_invalid == 2
    lax = prepare(payload, strict_hashes=False, max_rows=10, max_samples=100, removal=False)
    assert lax.num_invalid == 0 and len(lax.rows) == 2


def test_plain_keys_are_not_hash_checked() -> None:
    out = prepare(
        {"schema": ["EXTERN_ID", "MADID"], "data": [["cust-1", "6d92078a-8246"]]},
        strict_hashes=True,
        max_rows=10,
        max_samples=10,
        removal=False,
    )
    assert out.num_invalid == 0 and len(out.rows) == 1


def test_non_string_values_are_accepted_for_plain_keys() -> None:
    out = prepare(
        {"schema": ["EXTERN_ID", "EMAIL"], "data": [[123, sha("a")], [None, sha("b")]]},
        strict_hashes=True,
        max_rows=10,
        max_samples=10,
        removal=False,
    )
    assert out.num_invalid == 0
    assert sorted(r[0] for r in out.rows) == [(("EMAIL",), (sha("b"),)), (("EMAIL", "EXTERN_ID"), (sha("a"), "123"))]


def test_data_source_lock_2650(graph: Graph) -> None:
    multi = graph.create()
    assert graph.add(multi, ["EMAIL", "FN"], [[sha("a"), sha("b")]]).status_code == 200
    err = error_of(graph.add(multi, "EMAIL_SHA256", [sha("a")]))
    assert err["code"] == 2650 and err["type"] == "OAuthException"
    assert err["message"] == (
        "(#2650) Failed to update the custom audience: This audience was created from data source "
        "FILE_IMPORTED.MULTI_HASHES, which does not support data source FILE_IMPORTED.HASHES_OR_USER_IDS."
    )
    single = graph.create()
    graph.add(single, "EMAIL_SHA256", [sha("a")])
    err = error_of(graph.add(single, ["EMAIL"], [[sha("a")]]))
    assert err["code"] == 2650 and "FILE_IMPORTED.HASHES_OR_USER_IDS, which does not support" in err["message"]


def test_row_length_must_match_schema(graph: Graph) -> None:
    aud = graph.create()
    err = error_of(graph.add(aud, ["EMAIL", "FN"], [[sha("a"), sha("b")], [sha("c")]]))
    assert err["code"] == 100
    assert err["message"].startswith("(#100) Data is missing or does not match schema")
    assert graph.members(aud) == []  # the whole request is rejected


def test_too_many_rows(graph: Graph) -> None:
    aud = graph.create()
    err = error_of(graph.add(aud, "EMAIL_SHA256", [rand_hash() for _ in range(10_001)]))
    assert err["code"] == 100 and "10000" in err["message"]
    assert graph.add(aud, "EMAIL_SHA256", [rand_hash() for _ in range(10_000)]).json()["num_received"] == 10_000


def test_invalid_entries_over_http_and_strictness_switch(graph: Graph) -> None:
    aud = graph.create()
    body = graph.add(aud, ["EMAIL", "PHONE"], [[sha("a"), "15551234567"], [sha("b"), sha("1")], ["", ""]]).json()
    assert body["num_received"] == 3 and body["num_invalid_entries"] == 2
    assert body["invalid_entry_samples"] == {"15551234567": "PHONE"}
    graph.emu("POST", "/config", {"strict_hashes": False}).raise_for_status()
    body = graph.add(aud, ["EMAIL", "PHONE"], [["mary@example.com", ""]]).json()
    assert body["num_invalid_entries"] == 0
    assert {"EMAIL": "mary@example.com"} in graph.members(aud)


def test_missing_or_empty_payload(graph: Graph) -> None:
    aud = graph.create()
    assert error_of(graph.post(f"/{aud}/users", json={}))["message"] == "(#100) Missing parameter(s): payload"
    assert error_of(graph.add(aud, "EMAIL_SHA256", []))["code"] == 100
    assert error_of(graph.post(f"/{aud}/users", json={"payload": {"data": [sha("a")]}}))["code"] == 100
    assert error_of(graph.add(aud, "UID", ["123"]))["code"] == 100  # needs app_ids
