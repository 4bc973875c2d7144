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
