"""The scheduler door: when each audience is due."""

from datetime import UTC, datetime

from audiencesync.config import parse_config
from audiencesync.schedule import due_now, next_due


def config(*schedules):
    return parse_config(
        {
            "meta": {"access_token": "t", "ad_account_id": "1"},
            "sources": {"crm": {}},
            "audiences": [
                {
                    "name": f"a{i}",
                    "source": "crm",
                    "query": "select 1",
                    "customer_file_source": "USER_PROVIDED_ONLY",
                    "multi_key": True,
                    **({"schedule": s} if s else {}),
                }
                for i, s in enumerate(schedules)
            ],
        },
        env={},
    )


def test_intervals_and_cron():
    cfg = config("15m", "0 * * * *", None)
    t0 = datetime(2026, 11, 23, 10, 20, tzinfo=UTC).timestamp()
    assert next_due(cfg.audiences[0], t0) == t0 + 900
    assert next_due(cfg.audiences[1], t0) == datetime(2026, 11, 23, 11, 0, tzinfo=UTC).timestamp()
    assert next_due(cfg.audiences[2], t0) is None


def test_interval_audiences_run_at_start_then_on_their_interval():
    cfg = config("15m", "0 * * * *")
    t0 = datetime(2026, 11, 23, 10, 20, tzinfo=UTC).timestamp()
    last: dict[str, float] = {}
    assert due_now(cfg, last, t0) == ["a0"]
    last["a0"] = t0
    assert due_now(cfg, last, t0 + 600) == []
    assert due_now(cfg, last, t0 + 2400) == ["a0", "a1"]


def test_bad_schedule_is_a_config_error():
    import pytest

    from audiencesync.config import ConfigError

    with pytest.raises(ConfigError, match="schedule"):
        config("every tuesday")


def test_the_scheduler_survives_a_bad_token_an_outage_and_a_busy_state(ws, monkeypatch):
    """One audience fails in every way the world offers; the scheduler logs it, retries it, and the
    other audience keeps its schedule."""
    import subprocess
    import sys
    import time

    import httpx
    from tests.support import person

    from audiencesync import schedule
    from audiencesync.pipeline import sync
    from audiencesync.state import StateStore

    monkeypatch.setattr(schedule, "RETRY_START_S", 0.5)
    ws.write_rows([person(i) for i in range(20)])
    cfg = ws.config(
        [
            {"name": "Steady", "forward": ["email"], "schedule": "1s"},
            {"name": "Troubled", "forward": ["phone"], "schedule": "1s"},
        ]
    )
    assert sync(cfg).ok
    with StateStore(cfg.state) as s:
        troubled = s.facebook_audiences("troubled")[0].fb_id
    scheduler = schedule.Scheduler(cfg, wait_s=0.5)

    def run_for(seconds: float) -> None:
        end = time.time() + seconds
        while time.time() < end:
            scheduler.tick()
            time.sleep(0.2)

    ws.fault(path=rf"/{troubled}/", count=1000, error={"code": 190, "error_subcode": 463})  # expired token
    ws.write_rows([person(i) for i in range(25)])  # something to send
    run_for(2.5)
    httpx.delete(f"{ws.emu.url}/_emulator/faults").raise_for_status()
    ws.fault(path=rf"/{troubled}/", count=1000, drop="before")  # the network drops every call
    ws.write_rows([person(i) for i in range(30)])
    run_for(2.5)
    steady_before = scheduler.state["steady"].runs
    assert scheduler.state["troubled"].consecutive_failures >= 2
    assert scheduler.state["troubled"].failures >= 3
    assert scheduler.state["steady"].consecutive_failures == 0 and steady_before >= 3

    httpx.delete(f"{ws.emu.url}/_emulator/faults").raise_for_status()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb,time; c=duckdb.connect(); c.execute(\"ATTACH '{cfg.state}' AS st\"); "
            "print('held', flush=True); time.sleep(3)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    run_for(2.0)
    assert any("state file" in (r.last_error or "") for r in scheduler.state.values())
    holder.wait(10)
    run_for(3.0)
    assert all(r.consecutive_failures == 0 for r in scheduler.state.values()), scheduler.state
    assert scheduler.degraded() == []
    assert len(ws.members(troubled)) == 30  # and the troubled audience caught up
