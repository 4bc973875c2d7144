"""Crash or fault at any point, then a re-run: Facebook's audiences equal the source exactly.

A randomized test: each round changes the source, arms random faults in the emulator (throttling
with usage headers, HTML 5xx, connections dropped before or after the request was applied, a
permanent error) and may crash the process between two acknowledged batches; then a clean run
must leave the emulator holding exactly the source's rows, no more and no fewer.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time

import httpx
import pytest
from tests.support import person

from audiencesync import matchkeys
from audiencesync.pipeline import sync
from audiencesync.plan import planner
from audiencesync.state import StateStore

AUDIENCE = {"name": "Chaos", "forward": ["email", "phone"], "multi_key": True, "external_id": "customer_id"}


class Crash(Exception):
    """Stands for the process dying between two batches."""


def expected(rows):
    want = {"email": set(), "phone": set(), "multi": set()}
    for r in rows:
        e = matchkeys.match_value("EMAIL", r["email"])
        p = matchkeys.match_value("PHONE", r["phone"], country="US")
        if e:
            want["email"].add(e)
        if p:
            want["phone"].add(p)
        madid = matchkeys.match_value("MADID", r["idfa"])
        multi = {k: v for k, v in (("EXTERN_ID", r["customer_id"]), ("EMAIL", e), ("PHONE", p), ("MADID", madid)) if v}
        want["multi"].add(frozenset(multi.items()))
    return want


def actual(ws, cfg):
    with StateStore(cfg.state) as s:
        ids = {fb.kind: fb.fb_id for fb in s.facebook_audiences("chaos")}
    got = {}
    for kind, fb_id in ids.items():
        members = ws.members(fb_id)
        if kind == "multi":
            got[kind] = {frozenset(m.items()) for m in members}
        else:
            got[kind] = {m["EMAIL" if kind == "email" else "PHONE"] for m in members}
    return got


def mutate(rng, rows, next_id):
    rows = [r for r in rows if rng.random() > 0.1]
    for i, r in enumerate(rows):
        roll = rng.random()
        if roll < 0.08:
            rows[i] = {**r, "email": f"x{rng.randrange(10**9)}@example.org"}
        elif roll < 0.12:
            rows[i] = {**r, "phone": f"+1 212 555 {rng.randrange(10000):04d}"}
        elif roll < 0.14:
            rows[i] = {**r, "email": ""}
    for _ in range(rng.randrange(0, 25)):
        rows.append(person(next_id))
        next_id += 1
    return rows, next_id


FAULTS = [
    {"throttle": True, "regain_minutes": 0},
    {"http_status": 502},
    {"http_status": 503},
    {"drop": "before"},
    {"drop": "after"},
    {"error": {"code": 2, "message": "Service temporarily unavailable", "is_transient": True}},
    {"error": {"code": 613, "message": "Calls to this api have exceeded the rate limit."}},
    {"error": {"code": 190, "error_subcode": 463, "message": "Session has expired"}},
]


@pytest.mark.slow
def test_randomized_faults_and_crashes_converge(ws, monkeypatch):
    monkeypatch.setattr(planner, "BATCH_ROWS", 9)
    rng = random.Random(20261123)
    rows = [person(i) for i in range(60)]
    next_id = 1000
    ws.write_rows(rows)
    cfg = ws.config([AUDIENCE], max_in_flight=3)
    rounds = 50
    for round_no in range(rounds):
        rows, next_id = mutate(rng, rows, next_id)
        ws.write_rows(rows)
        for _ in range(rng.randrange(0, 4)):
            fault = dict(rng.choice(FAULTS))
            method = rng.choice(["POST", "DELETE"])
            ws.fault(method=method, path=r"/users$", count=rng.randrange(1, 3), **fault)
        crash_after = rng.choice([None, None, 1, 2, 4])
        seen = {"n": 0}

        def after_batch(seen=seen, crash_after=crash_after):
            seen["n"] += 1
            if crash_after is not None and seen["n"] >= crash_after:
                raise Crash()

        with contextlib.suppress(Crash):
            sync(cfg, after_batch=after_batch)
        httpx.delete(f"{ws.emu.url}/_emulator/faults").raise_for_status()
        final = sync(cfg)
        assert final.ok, (round_no, [a.error for a in final.audiences])
        assert actual(ws, cfg) == expected(rows), f"round {round_no} diverged"


def test_kill_9_between_batches_then_rerun_converges(ws, tmp_path):
    rows = [person(i) for i in range(30_000)]
    ws.write_rows(rows)
    cfg = ws.config([{"name": "Chaos", "forward": ["email"]}], max_in_flight=1)
    ws.fault(method="POST", path=r"/users$", count=3, delay_s=0.7)
    env = {**os.environ, "META_ACCESS_TOKEN": ws.emu.token}
    proc = subprocess.Popen(
        [sys.executable, "-m", "audiencesync.cli", "sync", "--config", str(ws.root / "audiencesync.yml")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        posts = [r for r in ws.requests() if r["path"].endswith("/users") and r["method"] == "POST"]
        if len(posts) >= 2:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    httpx.delete(f"{ws.emu.url}/_emulator/faults").raise_for_status()
    with StateStore(cfg.state) as s:
        committed = s.member_count(s.facebook_audiences("chaos")[0].fb_id)
    assert 0 < committed < 30_000  # the kill landed between batches
    again = sync(cfg)
    assert again.ok
    assert actual(ws, cfg)["email"] == expected(rows)["email"]
