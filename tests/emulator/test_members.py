"""Membership semantics (the /_emulator members contract) — unit tests of MemberSet and over HTTP."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from audiencesync.emulator.members import MemberSet

from .conftest import Graph, sha


def ident(**kv: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    keys = tuple(sorted(k for k, v in kv.items() if v))
    return keys, tuple(kv[k] for k in keys)


def test_add_is_idempotent_and_attrs_update() -> None:
    ms = MemberSet()
    assert ms.add([(ident(EMAIL="a"), None), (ident(EMAIL="a"), None)]) == 1
    assert ms.add([(ident(EMAIL="a"), {"LOOKALIKE_VALUE": 5})]) == 0
    assert ms.as_dicts() == [{"EMAIL": "a", "LOOKALIKE_VALUE": 5}]


def test_removal_matches_on_the_removal_rows_keys_only() -> None:
    ms = MemberSet()
    ms.add(
        [
            (ident(EMAIL="a", EXTERN_ID="1"), None),
            (ident(EMAIL="b", EXTERN_ID="1"), None),
            (ident(EMAIL="c", EXTERN_ID="2"), None),
            (ident(EMAIL="a"), None),
        ]
    )
    assert ms.remove([ident(EXTERN_ID="1")]) == 2
    assert sorted(d["EMAIL"] for d in ms.as_dicts()) == ["a", "c"]
    assert ms.remove([ident(EMAIL="a")]) == 1  # only the exact one left with EMAIL=a
    assert ms.remove([ident(EMAIL="c", EXTERN_ID="3")]) == 0  # all keys of the removal row must match
    assert ms.as_dicts() == [{"EMAIL": "c", "EXTERN_ID": "2"}]
    # index stays consistent after later adds
    ms.add([(ident(EMAIL="d", EXTERN_ID="2"), None)])
    assert ms.remove([ident(EXTERN_ID="2")]) == 2
    assert len(ms) == 0


def test_dump_and_load_round_trip() -> None:
    ms = MemberSet()
    ms.add([(ident(EMAIL="a", FN="f"), {"LOOKALIKE_VALUE": 1.5}), (ident(PHONE="p"), None)])
    again = MemberSet.load(ms.dump())
    assert sorted(map(str, again.as_dicts())) == sorted(map(str, ms.as_dicts()))


KEYS = ["EMAIL", "PHONE", "EXTERN_ID"]
row_st = st.fixed_dictionaries({k: st.sampled_from(["", "x", "y"]) for k in KEYS}).filter(lambda r: any(r.values()))


@settings(max_examples=200, deadline=None)
@given(st.lists(row_st, max_size=12), st.lists(row_st, max_size=6))
def test_remove_equals_reference_semantics(adds: list[dict[str, str]], removals: list[dict[str, str]]) -> None:
    ms = MemberSet()
    ms.add([(ident(**r), None) for r in adds])
    ms.remove([ident(**r) for r in removals])
    reference = {ident(**r) for r in adds}
    for rem in removals:
        want = {k: v for k, v in rem.items() if v}
        reference = {m for m in reference if not all(dict(zip(*m, strict=True)).get(k) == v for k, v in want.items())}
    assert set(ms.members) == reference


def test_members_endpoint_normalises_single_key_schemas(graph: Graph) -> None:
    aud = graph.create()
    graph.add(aud, "EMAIL_SHA256", [[sha("a")], sha("b")])
    r = graph.http.get(f"{graph.server.url}/_emulator/audiences/{aud}/members").json()
    assert r["schema_kind"] == "single" and r["audience_id"] == aud
    assert sorted(m["EMAIL"] for m in r["members"]) == sorted([sha("a"), sha("b")])
    assert graph.http.get(f"{graph.server.url}/_emulator/audiences/{aud}/members?count_only=1").json()["count"] == 2
    mad = graph.create()
    graph.add(mad, "MOBILE_ADVERTISER_ID", ["6d92078a-8246-4ba4-ae5b-76104861e7dc"])
    assert graph.members(mad) == [{"MADID": "6d92078a-8246-4ba4-ae5b-76104861e7dc"}]
    ph = graph.create()
    graph.add(ph, "PHONE_SHA256", [sha("15559876543")])
    assert graph.members(ph) == [{"PHONE": sha("15559876543")}]


def test_multi_key_members_keep_non_empty_keys_and_remove_by_extern_id(graph: Graph) -> None:
    aud = graph.create()
    schema = ["EXTERN_ID", "EMAIL", "PHONE"]
    graph.add(aud, schema, [["c1", sha("a"), ""], ["c2", sha("b"), sha("1")], ["", sha("c"), ""]])
    members = graph.members(aud)
    assert {"EXTERN_ID": "c1", "EMAIL": sha("a")} in members
    assert {"EMAIL": sha("c")} in members
    # column order does not matter: same identity
    graph.add(aud, ["EMAIL", "EXTERN_ID", "PHONE"], [[sha("a"), "c1", ""]])
    assert len(graph.members(aud)) == 3
    r = graph.remove(aud, schema, [["c2", "", ""]])
    assert r.status_code == 200 and r.json()["num_received"] == 1
    assert len(graph.members(aud)) == 2
    # removal through POST with method=DELETE
    r = graph.post(f"/{aud}/users", json={"method": "DELETE", "payload": {"schema": schema, "data": [["c1", "", ""]]}})
    assert r.status_code == 200
    assert graph.members(aud) == [{"EMAIL": sha("c")}]


def test_users_of_any_audience(graph: Graph) -> None:
    a = graph.create()
    b = graph.create()
    c = graph.create("act_2")
    graph.add(a, ["EMAIL", "EXTERN_ID"], [[sha("x"), "1"], [sha("y"), "2"]])
    graph.add(b, "EMAIL_SHA256", [sha("x"), sha("z")])
    graph.add(c, "EMAIL_SHA256", [sha("x")])
    r = graph.delete("/act_1/usersofanyaudience", json={"payload": {"schema": "EMAIL_SHA256", "data": [sha("x")]}})
    assert r.status_code == 200, r.text
    assert r.json()["num_received"] == 1
    assert graph.members(a) == [{"EMAIL": sha("y"), "EXTERN_ID": "2"}]
    assert graph.members(b) == [{"EMAIL": sha("z")}]
    assert graph.members(c) == [{"EMAIL": sha("x")}]  # other account untouched
    r = graph.post(
        "/act_1/usersofanyaudience",
        data={"method": "DELETE", "payload": '{"schema":["EXTERN_ID"],"data":[["2"]]}'},
    )
    assert r.status_code == 200
    assert graph.members(a) == []


def test_emulator_audiences_listing(graph: Graph) -> None:
    single = graph.create(name="s")
    multi = graph.create(name="m")
    graph.add(single, "EMAIL_SHA256", [sha("a")])
    graph.add(multi, ["EMAIL", "FN"], [[sha("a"), sha("f")], [sha("b"), sha("g")]])
    graph.delete(f"/{single}")
    listing = {a["id"]: a for a in graph.emu("GET", "/audiences").json()}
    assert listing[single]["data_source"] == "HASHES_OR_USER_IDS" and listing[single]["deleted"] is True
    assert listing[multi]["data_source"] == "MULTI_HASHES" and listing[multi]["member_count"] == 2
    assert listing[multi]["operation_status"] == 200 and listing[multi]["account_id"] == "1"
