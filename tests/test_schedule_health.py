"""Health read back on a schedule (issue 12): `run`/`serve` read each managed audience every
`health.read_every`, kept as history; a run with nothing to send reads only when the last read is
old. Against the emulator over HTTP."""

from __future__ import annotations

import yaml
from tests.support import person

from audiencesync.config import load_config
from audiencesync.pipeline import sync
from audiencesync.schedule import Scheduler
from audiencesync.state import StateStore
from audiencesync.state import health as health_state

EMAIL_ONLY = {"name": "VIP customers", "forward": ["email"]}


def with_read_every(ws, every: str):
    path = ws.root / "audiencesync.yml"
    doc = yaml.safe_load(path.read_text())
    doc["health"] = {"read_every": every}
    path.write_text(yaml.safe_dump(doc))
    return load_config(path, env={"META_ACCESS_TOKEN": ws.emu.token})


def reads(cfg) -> int:
    with StateStore(cfg.state) as s:
        return sum(len(health_state.history(s.con, fb.fb_id)) for fb in s.facebook_audiences())


def node_reads(ws, before: int) -> int:
    return sum(1 for r in ws.requests()[before:] if r["method"] == "GET" and r["path"].split("/")[-1].isdigit())


def test_a_run_with_nothing_to_send_reads_again_only_when_the_last_read_is_old(ws):
    ws.write_rows([person(i) for i in range(5)])
    ws.config([EMAIL_ONLY])
    cfg = with_read_every(ws, "24h")
    assert sync(cfg).ok and reads(cfg) == 1
    before = len(ws.requests())
    quiet = sync(cfg).audiences[0].facebook[0]
    assert quiet.adds == quiet.removes == 0 and quiet.matched_lower is None
    assert reads(cfg) == 1 and node_reads(ws, before) == 0
    cfg = with_read_every(ws, "1ms")
    again = sync(cfg).audiences[0].facebook[0]
    assert reads(cfg) == 2 and again.matched_lower is not None


def test_the_scheduler_reads_each_managed_audience_on_its_period(ws):
    ws.write_rows([person(i) for i in range(5)])
    ws.config([EMAIL_ONLY, {"name": "Club", "forward": ["email"]}])
    cfg = with_read_every(ws, "24h")
    assert sync(cfg).ok and reads(cfg) == 2
    calls: list[str] = []
    scheduler = Scheduler(cfg, sync=lambda *a, **k: calls.append("sync"))  # no audience has a schedule
    scheduler.tick(now=1_000.0)
    assert scheduler.health_reads == 0 and reads(cfg) == 2  # read today: nothing due
    cfg = with_read_every(ws, "1ms")
    scheduler = Scheduler(cfg, sync=lambda *a, **k: calls.append("sync"))
    scheduler.tick(now=1_000.0)
    assert scheduler.health_reads == 2 and reads(cfg) == 4
    scheduler.tick(now=1_030.0)  # checked at most once a minute
    assert scheduler.health_reads == 2
    scheduler.tick(now=1_061.0)
    assert scheduler.health_reads == 4 and reads(cfg) == 6 and calls == []
    with StateStore(cfg.state) as s:
        fb = s.facebook_audiences("club")[0]
        history = health_state.history(s.con, fb.fb_id)
    assert [h.members_held for _, h in history] == [5, 5, 5] and all(h.lower is not None for _, h in history)


def test_a_failing_read_never_stops_the_scheduler(ws):
    ws.write_rows([person(i) for i in range(5)])
    ws.config([EMAIL_ONLY])
    cfg = with_read_every(ws, "1ms")
    assert sync(cfg).ok
    ws.fault(method="GET", path=r"^/\d+$", count=50, error={"code": 100, "message": "nope"})
    scheduler = Scheduler(cfg, sync=lambda *a, **k: None)
    assert scheduler.read_health() == 0 and reads(cfg) == 1
