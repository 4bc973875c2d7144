"""The `rejects:` and `health:` sections: defaults, and a bad value named before any call."""

from __future__ import annotations

import pytest

from audiencesync.config import ConfigError, parse_config

META = {"meta": {"access_token": "t", "ad_account_id": "1"}}


def test_defaults_keep_rejects_two_weeks_and_read_health_daily():
    cfg = parse_config(META)
    assert cfg.rejects.retention_days == 14 and cfg.health.read_every == 86_400
    assert cfg.alerts.webhooks == () and cfg.alerts.matched_drop_share == 0.2
    cfg = parse_config({**META, "rejects": {"retention_days": 3}, "health": {"read_every": "6h"}})
    assert cfg.rejects.retention_days == 3 and cfg.health.read_every == 6 * 3600


def test_bad_values_name_the_setting():
    with pytest.raises(ConfigError) as e:
        parse_config({**META, "rejects": {"retention_days": -1, "keep": 1}, "health": {"read_every": "often"}})
    text = str(e.value)
    assert "rejects.retention_days: should be greater than or equal to 0" in text
    assert "rejects.keep: unknown setting" in text
    assert "health.read_every: not a duration; write it like 24h, 30m or 1d" in text


def test_a_webhook_url_never_appears_in_a_repr_or_an_error():
    cfg = parse_config({**META, "alerts": {"webhooks": [{"url": "https://hooks.example/T/B/s3cr3t"}]}})
    assert "s3cr3t" not in repr(cfg) and len(cfg.alerts.webhooks[0].ident) == 16
    with pytest.raises(ConfigError) as e:
        parse_config({**META, "alerts": {"webhooks": [{"url": "https://hooks.example/T/B/s3cr3t", "format": 1}]}})
    assert "s3cr3t" not in str(e.value)
