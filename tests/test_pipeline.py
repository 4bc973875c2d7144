"""The audience sync end to end: a CSV source, the state file, the emulator over HTTP."""

from __future__ import annotations

import pytest
from tests.support import person, sha

from audiencesync.pipeline import sync
from audiencesync.state import StateStore

FORWARD_ALL = {
    "name": "VIP customers",
    "forward": ["email", "phone", "mobile_ad_id"],
    "multi_key": True,
    "match_on_attributes": True,
    "external_id": "customer_id",
}


def fb_ids(cfg, key="vip_customers"):
    with StateStore(cfg.state) as s:
        return {fb.kind: fb.fb_id for fb in s.facebook_audiences(key)}


def emails(ws, fb_id):
    return sorted(m["EMAIL"] for m in ws.members(fb_id))


def test_first_sync_creates_one_audience_per_identity_and_a_multi_key_one(ws):
    rows = [person(i) for i in range(20)]
    ws.write_rows(rows)
    cfg = ws.config([FORWARD_ALL])
    report = sync(cfg)
    a = report.audiences[0]
    assert a.status == "ok", a.error
    names = sorted(f.name for f in a.facebook)
    assert names == ["VIP customers", "VIP customers (IDFA/GAID)", "VIP customers (email)", "VIP customers (phone)"]
    ids = fb_ids(cfg)
    assert emails(ws, ids["email"]) == sorted(sha(f"user{i}@example.com") for i in range(20))
    assert sorted(m["PHONE"] for m in ws.members(ids["phone"])) == sorted(sha(f"1415555{i:04d}") for i in range(20))
    assert sorted(m["MADID"] for m in ws.members(ids["mobile_ad_id"])) == sorted(r["idfa"] for r in rows)
    multi = ws.members(ids["multi"])
    assert len(multi) == 20
    m0 = next(m for m in multi if m["EXTERN_ID"] == "C00000")
    assert m0["EMAIL"] == sha("user0@example.com") and m0["CT"] == sha("losangeles") and m0["ST"] == sha("ca")
    assert m0["FI"] == sha("b") and m0["COUNTRY"] == sha("us")
    assert all(f.adds == 20 and f.removes == 0 for f in a.facebook)


def test_incremental_sends_only_changes(ws):
    ws.write_rows([person(i) for i in range(30)])
    cfg = ws.config([FORWARD_ALL])
    assert sync(cfg).ok
    rows = [person(i) for i in range(30) if i != 3]  # 3 left
    rows[5] = person(6, email="new6@example.com")  # 6 changed email
    rows.append(person(99))  # 99 joined
    ws.write_rows(rows)
    second = sync(cfg).audiences[0]
    assert second.changed == 2 and second.removed_from_source == 1 and second.normalized == 2
    by_kind = {f.kind: f for f in second.facebook}
    assert (by_kind["email"].adds, by_kind["email"].removes) == (2, 2)
    assert (by_kind["phone"].adds, by_kind["phone"].removes) == (1, 1)
    assert (by_kind["multi"].adds, by_kind["multi"].removes) == (2, 2)
    ids = fb_ids(cfg)
    want = sorted(sha(r["email"]) for r in rows)
    assert emails(ws, ids["email"]) == want


def test_resync_with_nothing_changed_sends_nothing(ws):
    ws.write_rows([person(i) for i in range(25)])
    cfg = ws.config([FORWARD_ALL])
    assert sync(cfg).ok
    before = len(ws.requests())
    again = sync(cfg).audiences[0]
    assert again.changed == 0 and again.normalized == 0
    assert all(f.adds == 0 and f.removes == 0 for f in again.facebook)
    assert len(ws.requests()) == before  # not a single Graph call


def test_shared_email_is_removed_only_when_no_member_needs_it(ws):
    ws.write_rows([person(1, email="family@example.com"), person(2, email="family@example.com"), person(3)])
    cfg = ws.config([{"name": "VIP customers", "forward": ["email"]}])
    assert sync(cfg).ok
    ws.write_rows([person(2, email="family@example.com"), person(3)])
    r = sync(cfg).audiences[0].facebook[0]
    assert (r.adds, r.removes) == (0, 0)
    assert emails(ws, fb_ids(cfg)["email"]) == sorted([sha("family@example.com"), sha("user3@example.com")])


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("mirror", {"user1@example.com", "new@example.com", "user9@example.com"}),
        ("upsert", {"user0@example.com", "user1@example.com", "new@example.com", "user9@example.com"}),
        ("delete", {"user1@example.com", "user2@example.com"}),
    ],
)
def test_modes(ws, mode, expected):
    ws.write_rows([person(0), person(1), person(2)])
    cfg = ws.config([{"name": "VIP customers", "forward": ["email"], "mode": mode}])
    if mode == "delete":  # the audience was filled elsewhere; here we only take people out
        cfg_fill = ws.config([{"name": "VIP customers", "forward": ["email"], "mode": "mirror"}])
        assert sync(cfg_fill).ok
        cfg = ws.config([{"name": "VIP customers", "forward": ["email"], "mode": mode}])
    else:
        assert sync(cfg).ok
    ws.write_rows([person(1), person(2, email="new@example.com"), person(9)])  # 0 left, 2 changed, 9 joined
    assert sync(cfg).ok
    assert emails(ws, fb_ids(cfg)["email"]) == sorted(sha(e) for e in expected)


def test_value_based_audience_sends_lookalike_value_and_sets_aside_bad_values(ws):
    rows = [person(i, ltv=str(v)) for i, v in enumerate([10, 0, -5, "abc", 99.5])]
    ws.write_rows(rows)
    cfg = ws.config([{"name": "LTV", "multi_key": True, "value": {"column": "ltv", "allow_zero": False}}])
    a = sync(cfg).audiences[0]
    assert a.status == "ok"
    members = ws.members(fb_ids(cfg, "ltv")["multi"])
    assert sorted(float(m["LOOKALIKE_VALUE"]) for m in members) == [10.0, 99.5]
    assert sum(a.invalid["LOOKALIKE_VALUE"].values()) == 3
    assert a.facebook[0].rows_without_key == 3


def test_min_size_waits_before_creating(ws):
    ws.write_rows([person(i) for i in range(3)])
    cfg = ws.config([{"name": "VIP customers", "forward": ["email"], "min_size": 5}])
    a = sync(cfg).audiences[0]
    assert a.status == "waiting"
    assert "2 more members needed" in a.facebook[0].message
    assert fb_ids(cfg) == {}
    ws.write_rows([person(i) for i in range(6)])
    assert sync(cfg).audiences[0].status == "ok"
    assert len(emails(ws, fb_ids(cfg)["email"])) == 6


def test_full_refresh_replaces_through_a_session(ws):
    ws.write_rows([person(i) for i in range(12)])
    cfg = ws.config([{"name": "VIP customers", "forward": ["email"]}])
    assert sync(cfg).ok
    ws.write_rows([person(i) for i in range(5, 15)])
    a = sync(cfg, full_refresh=True).audiences[0]
    assert a.status == "ok" and a.full_refresh
    assert emails(ws, fb_ids(cfg)["email"]) == sorted(sha(f"user{i}@example.com") for i in range(5, 15))
    replaces = [r for r in ws.requests() if r["path"].endswith("/usersreplace")]
    assert len(replaces) == 1 and replaces[0]["status"] == 200
    assert sync(cfg).audiences[0].facebook[0].adds == 0  # the state knows what the replace left


def test_rename_keeps_the_facebook_audience(ws):
    ws.write_rows([person(i) for i in range(4)])
    cfg = ws.config([{"name": "VIP customers", "key": "vip", "forward": ["email"]}])
    assert sync(cfg).ok
    first = fb_ids(cfg, "vip")
    cfg2 = ws.config([{"name": "Very important", "key": "vip", "forward": ["email"]}])
    a = sync(cfg2).audiences[0]
    assert fb_ids(cfg2, "vip") == first
    assert a.facebook[0].name == "VIP customers (email)"


def test_deleting_an_audience_deletes_it_on_facebook(ws):
    from audiencesync.load.audiences import delete_audience
    from audiencesync.load.graph import GraphClient

    ws.write_rows([person(i) for i in range(4)])
    cfg = ws.config([FORWARD_ALL])
    assert sync(cfg).ok
    ids = fb_ids(cfg)
    with StateStore(cfg.state) as store, GraphClient(cfg.meta) as client:
        results = delete_audience(client, store, "vip_customers")
        assert [p for _, _, p in results] == [None] * 4
        assert store.facebook_audiences("vip_customers") == []
    with GraphClient(cfg.meta) as client:
        from audiencesync.load.graph import GraphError

        with pytest.raises(GraphError) as e:
            client.get_node(ids["email"], ["id"])
        assert (e.value.code, e.value.subcode) == (100, 33)


def test_a_permanent_error_stops_that_audience_and_the_next_goes_on(ws):
    ws.write_rows([person(i) for i in range(4)])
    cfg = ws.config([{"name": "First", "forward": ["email"]}, {"name": "Second", "forward": ["email"]}])
    ws.fault(
        method="POST",
        path=r"customaudiences$",
        count=1,
        error={"code": 190, "error_subcode": 463, "message": "Error validating access token"},
    )
    report = sync(cfg)
    first, second = report.audiences
    assert first.status == "failed" and "access token has expired" in first.error
    assert second.status == "ok"
    assert sync(cfg).ok  # the token problem is gone: the first audience catches up


def test_transient_faults_are_retried(ws):
    ws.write_rows([person(i) for i in range(30)])
    cfg = ws.config([{"name": "VIP customers", "forward": ["email"]}])
    ws.fault(method="POST", path=r"/users$", count=1, throttle=True, regain_minutes=0)
    ws.fault(method="POST", path=r"/users$", count=1, http_status=502)
    ws.fault(method="POST", path=r"/users$", count=1, drop="after")
    assert sync(cfg).ok
    assert emails(ws, fb_ids(cfg)["email"]) == sorted(sha(f"user{i}@example.com") for i in range(30))


def test_large_audiences_go_in_batches_of_at_most_10000(ws):
    ws.write_rows([person(i, phone="") for i in range(23_000)])
    cfg = ws.config([{"name": "Big", "forward": ["email"]}])
    a = sync(cfg).audiences[0]
    assert a.facebook[0].batches == 3 and a.facebook[0].num_received == 23_000
    posts = [r for r in ws.requests() if r["path"].endswith("/users") and r["method"] == "POST"]
    assert len(posts) == 3


def test_no_raw_pii_or_token_in_state_or_logs(ws, caplog):
    rows = [person(i) for i in range(10)]
    ws.write_rows(rows)
    cfg = ws.config([FORWARD_ALL])
    ws.fault(method="POST", path=r"/users$", count=2, http_status=502)
    with caplog.at_level("DEBUG"):
        assert sync(cfg).ok
    blob = (ws.root / "state.duckdb").read_bytes()
    text = caplog.text
    for r in rows:
        for value in (r["email"], "1415555", r["last_name"].lower()):
            assert value.encode() not in blob, value
            assert value not in text
    assert ws.emu.token.encode() not in blob and ws.emu.token not in text


def test_limited_data_use_rows_carry_the_processing_options(ws):
    ws.write_rows([person(i) for i in range(3)])
    cfg = ws.config([{"name": "CCPA", "forward": ["email"], "ldu": True}])
    a = sync(cfg).audiences[0]
    assert a.status == "ok", a.error
    members = ws.members(fb_ids(cfg, "ccpa")["email"])
    assert sorted(m["EMAIL"] for m in members) == sorted(sha(f"user{i}@example.com") for i in range(3))
    uploads = [r for r in ws.requests() if r["path"].endswith("/users")]
    assert uploads and all(r["status"] == 200 for r in uploads)


def test_facebook_ids_go_to_their_own_audience_with_the_app_id(ws):
    ws.write_rows([person(i, facebook_id=str(10_000_000 + i)) for i in range(3)] + [person(9, facebook_id="n/a")])
    cfg = ws.config([{"name": "VIP customers", "forward": ["facebook_id"]}], app_id="123456789")
    a = sync(cfg).audiences[0]
    assert a.status == "ok", a.error
    assert a.facebook[0].name == "VIP customers (fb id)" and a.facebook[0].rows_without_key == 1
    assert sorted(m["UID"] for m in ws.members(fb_ids(cfg)["facebook_id"])) == ["10000000", "10000001", "10000002"]


def test_an_existing_audience_is_never_switched_to_value_based(ws):
    ws.write_rows([person(i) for i in range(3)])
    cfg = ws.config([{"name": "VIP customers", "key": "vip", "multi_key": True}])
    assert sync(cfg).ok
    cfg2 = ws.config([{"name": "VIP customers", "key": "vip", "multi_key": True, "value": {"column": "ltv"}}])
    before = len(ws.requests())
    a = sync(cfg2).audiences[0]
    assert a.status == "failed" and "cannot switch" in a.error and "new `key`" in a.error
    assert len(ws.requests()) == before


def test_flagged_audience_and_audience_cap_stop_only_their_audience(ws):
    import httpx

    ws.write_rows([person(i) for i in range(3)])
    cfg = ws.config([{"name": "Flagged", "forward": ["email"]}, {"name": "Fine", "forward": ["email"]}])
    assert sync(cfg).ok
    httpx.post(f"{ws.emu.url}/_emulator/audiences/{fb_ids(cfg, 'flagged')['email']}", json={"operation_status": 471})
    ws.write_rows([person(i) for i in range(4)])
    flagged, fine = sync(cfg).audiences
    assert flagged.status == "failed" and "flagged" in flagged.error
    assert fine.status == "ok" and fine.facebook[0].adds == 1

    httpx.post(f"{ws.emu.url}/_emulator/config", json={"max_audiences": 2}).raise_for_status()
    try:
        cfg3 = ws.config([{"name": "Fine", "forward": ["email"]}, {"name": "Third", "forward": ["email"]}])
        fine, third = sync(cfg3).audiences
    finally:
        httpx.post(f"{ws.emu.url}/_emulator/config", json={"max_audiences": 500}).raise_for_status()
    assert fine.status == "ok"
    assert third.status == "failed" and "500 custom audiences" in third.error


def test_a_database_read_through_its_python_driver(ws):
    import sqlite3

    db = ws.root / "crm.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE customers (customer_id INTEGER, email TEXT, phone TEXT)")
        conn.executemany(
            "INSERT INTO customers VALUES (?, ?, ?)",
            [(i, f"User{i}@Example.com ", f"415-555-{i:04d}") for i in range(5)],
        )
    sql = {"name": "VIP customers", "source": "sql", "query": "SELECT * FROM customers WHERE customer_id < 4"}
    cfg = ws.config([{**sql, "forward": ["email"]}], sources={"sql": {"type": "sqlite", "path": str(db)}})
    a = sync(cfg).audiences[0]
    assert a.status == "ok", a.error
    assert emails(ws, fb_ids(cfg)["email"]) == sorted(sha(f"user{i}@example.com") for i in range(4))


def test_external_ids_hashed_when_asked(ws):
    ws.write_rows([person(i) for i in range(3)])
    cfg = ws.config(
        [{"name": "VIP customers", "multi_key": True, "external_id": "customer_id", "hash_external_id": True}]
    )
    assert sync(cfg).ok
    got = sorted(m["EXTERN_ID"] for m in ws.members(fb_ids(cfg)["multi"]))
    assert got == sorted(sha(f"C{i:05d}") for i in range(3))


def test_whole_date_birthdays_read_in_the_audiences_date_order(ws):
    ws.write_rows([person(1, birthday="04/07/1990")])
    cfg = ws.config([{"name": "EU", "multi_key": True, "match_on_attributes": True, "date_order": "DMY"}])
    assert sync(cfg).ok
    member = ws.members(fb_ids(cfg, "eu")["multi"])[0]
    assert (member["DOBY"], member["DOBM"], member["DOBD"]) == (sha("1990"), sha("07"), sha("04"))
