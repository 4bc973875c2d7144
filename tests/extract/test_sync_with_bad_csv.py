"""Issue 9 end to end: a CSV with one unterminated quote once made the sync remove every real member
and upload garbage, exit 0. Now the audience fails, naming the line, and Facebook keeps what it had."""

from __future__ import annotations

from typing import Any

from tests.support import person, sha

from audiencesync.pipeline import sync
from audiencesync.state import StateStore


def test_a_broken_csv_fails_the_audience_and_facebook_is_untouched(ws: Any) -> None:
    ws.write_rows([person(i) for i in range(10)])
    cfg = ws.config([{"name": "VIP customers", "forward": ["email"]}])
    assert sync(cfg).ok
    with StateStore(cfg.state) as s:
        (fb,) = s.facebook_audiences("vip_customers")
    before = sorted(m["EMAIL"] for m in ws.members(fb.fb_id))
    assert before == sorted(sha(f"user{i}@example.com") for i in range(10))
    requests_before = len(ws.requests())

    text = ws.csv.read_text().splitlines()
    text[4] = text[4].replace(",", ',"', 1)  # one unterminated quote on line 5
    ws.csv.write_text("\n".join(text) + "\n")
    report = sync(cfg)

    (a,) = report.audiences
    assert not report.ok and a.status == "failed"
    assert "customers.csv, line 5" in a.error and "unterminated quote" in a.error
    assert "@example.com" not in a.error
    assert len(ws.requests()) == requests_before
    assert sorted(m["EMAIL"] for m in ws.members(fb.fb_id)) == before


def test_bad_rows_skip_sets_ragged_rows_aside_counts_them_and_syncs_the_rest(ws: Any) -> None:
    ws.write_rows([person(i) for i in range(10)])
    cfg = ws.config([{"name": "VIP customers", "forward": ["email"]}], sources={"crm": {"bad_rows": "skip"}})
    text = ws.csv.read_text().splitlines()
    text[3] = text[3] + ",one too many"  # line 4 is ragged: member 2
    ws.csv.write_text("\n".join(text) + "\n")
    report = sync(cfg)

    (a,) = report.audiences
    assert a.status == "ok", a.error
    assert a.rows_set_aside == {"too_many_values": 1}
    with StateStore(cfg.state) as s:
        (fb,) = s.facebook_audiences("vip_customers")
    assert sorted(m["EMAIL"] for m in ws.members(fb.fb_id)) == sorted(
        sha(f"user{i}@example.com") for i in range(10) if i != 2
    )
