"""The `serve:` section: the issue's example works as written, and every error names its setting."""

from __future__ import annotations

import pytest

from audiencesync.config import ConfigError, parse_config
from audiencesync.stream.settings import ServeSettings, serve_settings, stream_audiences

ISSUE_EXAMPLE = {
    "meta": {"access_token": "t", "ad_account_id": "act_1"},
    "serve": {
        "host": "127.0.0.1",
        "port": 8088,
        "write_key": "${AUDIENCESYNC_WRITE_KEY}",
        "flush_after": "2s",
        "flush_size": 10000,
    },
    "audiences": [
        {
            "name": "Ordered in the last 30 days",
            "source": "stream",
            "key": "order_completed_last_30days",
            "customer_file_source": "USER_PROVIDED_ONLY",
            "multi_key": True,
            "min_size": 1,
        }
    ],
}


def config(serve: dict | None, env: dict | None = None):
    return parse_config({**ISSUE_EXAMPLE, "serve": serve}, env=env or {"AUDIENCESYNC_WRITE_KEY": "wk"})


def problems(serve: dict) -> list[str]:
    with pytest.raises(ConfigError) as e:
        serve_settings(config(serve))
    return e.value.problems


def test_the_issue_example_works_as_written():
    cfg = parse_config(ISSUE_EXAMPLE, env={"AUDIENCESYNC_WRITE_KEY": "wk_live"})
    s = serve_settings(cfg)
    assert (s.host, s.port, s.write_key, s.flush_after, s.flush_size) == ("127.0.0.1", 8088, "wk_live", 2.0, 10000)
    assert list(stream_audiences(cfg)) == ["order_completed_last_30days"]


def test_defaults_are_two_seconds_and_ten_thousand():
    s = ServeSettings(write_key="k")
    assert (s.flush_after, s.flush_size, s.port) == (2.0, 10_000, 8088)


def test_mparticle_cadence_is_just_settings():
    s = serve_settings(config({"write_key": "k", "flush_after": "3h", "flush_size": 75000}))
    assert (s.flush_after, s.flush_size) == (3 * 3600, 75_000)


def test_the_write_key_never_shows_in_a_repr():
    s = ServeSettings(write_key="very-secret", bearer_token="also-secret")
    assert "secret" not in repr(s)
    assert s.bearer_tokens == ("also-secret",)


@pytest.mark.parametrize(
    ("serve", "expected"),
    [
        ({"write_key": "k", "flush_after": "soon"}, "serve.flush_after: not a duration"),
        ({"write_key": "k", "flush_after": "0s"}, "serve.flush_after: must be more than zero"),
        ({"write_key": "k", "flush_size": 0}, "serve.flush_size: "),
        ({"write_key": "k", "port": 70000}, "serve.port: "),
        ({"write_key": "k", "colour": "red"}, "serve.colour: unknown setting"),
        ({"write_key": "  "}, "serve.write_key: is empty"),
        ({"host": "0.0.0.0"}, "serve.write_key: set write_key and/or bearer_tokens"),
        ({"bearer_token": "a", "bearer_tokens": ["b"]}, "serve.bearer_token: give either"),
        ({"write_key": "k", "max_call_bytes": 600_000}, "serve.max_call_bytes: must not exceed max_body_bytes"),
    ],
)
def test_errors_name_the_setting(serve, expected):
    assert any(p.startswith(expected) for p in problems(serve)), problems(serve)


def test_a_missing_write_key_variable_is_named():
    with pytest.raises(ConfigError) as e:
        parse_config(ISSUE_EXAMPLE, env={})
    assert "serve.write_key: environment variable AUDIENCESYNC_WRITE_KEY is not set" in str(e.value)


def test_no_serve_section_is_an_error():
    with pytest.raises(ConfigError, match="serve: the config file has no `serve:` section"):
        serve_settings(config(None))


@pytest.mark.parametrize(
    ("over", "expected"),
    [
        ({"value": {"column": "ltv"}}, ".value: a stream audience has no value column"),
        ({"external_id": "customer_id"}, ".external_id: a stream member's external id is its userId"),
        ({"columns": {"EMAIL": "mail"}}, ".columns: a stream audience's columns are fixed"),
        ({"query": "select 1"}, ".query: a stream audience has no query"),
    ],
)
def test_settings_a_stream_audience_cannot_use_are_named(over, expected):
    raw = {**ISSUE_EXAMPLE, "audiences": [{**ISSUE_EXAMPLE["audiences"][0], **over}]}
    with pytest.raises(ConfigError) as e:
        serve_settings(parse_config(raw, env={"AUDIENCESYNC_WRITE_KEY": "wk"}))
    assert any(p.startswith("audiences[0] (Ordered in the last 30 days)" + expected) for p in e.value.problems)


def test_every_setting_a_stream_audience_cannot_use_is_named_at_once():
    over = {"value": {"column": "ltv"}, "columns": {"EMAIL": "mail"}}
    raw = {**ISSUE_EXAMPLE, "audiences": [{**ISSUE_EXAMPLE["audiences"][0], **over}]}
    with pytest.raises(ConfigError) as e:
        parse_config(raw, env={"AUDIENCESYNC_WRITE_KEY": "wk"})
    where = "audiences[0] (Ordered in the last 30 days)"
    assert [p.partition(":")[0] for p in e.value.problems] == [f"{where}.value", f"{where}.columns"]


def test_without_a_serve_section_stream_audiences_are_not_checked():
    """As before: the stream audiences' settings are checked with the section that runs them."""
    raw = {**ISSUE_EXAMPLE, "serve": None, "audiences": [{**ISSUE_EXAMPLE["audiences"][0], "columns": {"E": "m"}}]}
    cfg = parse_config(raw, env={})
    assert list(stream_audiences(cfg)) == ["order_completed_last_30days"]


def test_a_source_of_type_stream_makes_a_stream_audience():
    raw = {
        **ISSUE_EXAMPLE,
        "sources": {"segment": {"type": "stream"}},
        "audiences": [{**ISSUE_EXAMPLE["audiences"][0], "source": "segment"}],
    }
    cfg = parse_config(raw, env={"AUDIENCESYNC_WRITE_KEY": "wk"})
    assert list(stream_audiences(cfg)) == ["order_completed_last_30days"]
    assert serve_settings(cfg) is cfg.serve
