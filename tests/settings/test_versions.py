"""API versions (issue 12 part 3): the default, `meta.capi_version`, one table of expiry dates that
the client's warning and the emulator's 2635 both read, and `status` warning before expiry."""

from __future__ import annotations

import json
import time
from datetime import date

import pytest
from tests.support import person
from typer.testing import CliRunner

from audiencesync.cli import app
from audiencesync.config import parse_config
from audiencesync.emulator import versions as emulator_versions
from audiencesync.load.graph import GraphClient, GraphError
from audiencesync.pipeline import sync
from audiencesync.settings import versions

runner = CliRunner()


def meta(**over):
    return {"meta": {"access_token": "t", "ad_account_id": "1", **over}}


def test_the_default_is_v26_and_the_conversions_api_follows_it_unless_set_apart():
    m = parse_config(meta()).meta
    assert (m.api_version, m.capi_version, m.conversions_version) == ("v26.0", None, "v26.0")
    m = parse_config(meta(capi_version="v24.0")).meta
    assert (m.api_version, m.conversions_version) == ("v26.0", "v24.0")
    with pytest.raises(ValueError, match=r"meta.capi_version: must look like v26.0"):
        parse_config(meta(capi_version="24"))


def test_expiry_dates_follow_the_spec_and_the_warning_window():
    assert versions.expires("v24.0") == date(2026, 11, 10)
    assert versions.expires("v25.0") == date(2027, 2, 23)
    assert versions.expires("v25.0", marketing=False) == date(2028, 7, 29)  # the Graph date: CAPI
    assert versions.expires("v26.0") is None
    warn = versions.version_warning
    assert warn("v25.0", today=date(2026, 11, 24), setting="meta.api_version") is None  # 91 days left
    soon = warn("v25.0", today=date(2026, 11, 25), setting="meta.api_version")
    assert soon and "expires on 2027-02-23 (in 90 days)" in soon and "v26.0" in soon
    gone = warn("v24.0", today=date(2026, 11, 10), setting="meta.api_version")
    assert gone and "expired on 2026-11-10" in gone
    assert warn("v24.0", marketing=False, today=date(2026, 12, 1), setting="meta.capi_version") is None
    assert "not a version" in warn("v99.0", setting="meta.api_version")
    assert versions.meta_warnings("v26.0", None) == []


def test_the_emulator_serves_from_the_same_table():
    day = emulator_versions._ts
    for name, v in versions.VERSIONS.items():
        until = v.until(marketing=True)
        assert emulator_versions.is_available(name, day(v.released))
        if until is not None:
            assert not emulator_versions.is_available(name, day(until))
    assert emulator_versions.LATEST == "v27.0"


def test_conversions_go_to_capi_version_while_audiences_use_api_version(ws):
    """v24.0 is past its Marketing API date (refused for audiences) but inside the Graph date that
    the Conversions API follows: with `capi_version: v24.0` events still go through."""
    cfg = ws.config([], api_version="v26.0", capi_version="v24.0")
    now = int(time.time())
    event = {"event_name": "Purchase", "event_time": now, "action_source": "physical_store",
             "user_data": {"em": ["a" * 64]}, "custom_data": {"value": 1.0, "currency": "USD"}}  # fmt: skip
    with GraphClient(cfg.meta, sleep=lambda s: None) as client:
        assert client.send_events("777", [event])["events_received"] == 1
        assert client.call("GET", f"/{client.account}", {"fields": "id"})["id"]
    paths = [r["path"] for r in ws.requests()]
    assert "/v24.0/777/events" in paths and f"/v26.0/act_{cfg.meta.ad_account_id}" in paths
    old = cfg.meta.model_copy(update={"api_version": "v24.0"})
    with GraphClient(old, sleep=lambda s: None) as client, pytest.raises(GraphError) as e:
        client.call("GET", f"/{client.account}", {"fields": "id"})
    assert e.value.code == 2635


def test_status_warns_about_the_configured_versions_in_text_and_json(ws):
    """The warning comes from the table (today's date decides; v24.0's Marketing API date has passed,
    so it is refused for audiences; the CAPI version set apart is judged by the Graph date)."""
    ws.write_rows([person(i) for i in range(3)])
    env = {"META_ACCESS_TOKEN": ws.emu.token}
    args = ["status", "--config", str(ws.root / "audiencesync.yml")]
    ws.config([{"name": "VIP customers", "forward": ["email"]}], api_version="v24.0", capi_version="v19.0")
    doc = json.loads(runner.invoke(app, [*args, "--json"], env=env).output)
    assert doc["warnings"][0].startswith("meta.api_version v24.0 expired on 2026-11-10")
    assert doc["warnings"][1].startswith("meta.capi_version v19.0 expired on 2026-05-21")
    text = runner.invoke(app, args, env=env).output
    assert "warning: meta.api_version v24.0 expired on 2026-11-10" in text
    cfg = ws.config([{"name": "VIP customers", "forward": ["email"]}])  # the default: nothing to say
    assert sync(cfg).ok
    doc = json.loads(runner.invoke(app, [*args, "--json"], env=env).output)
    assert doc["warnings"] == [] and doc["facebook_audiences"][0]["members"] == 3
    assert "warning: " not in runner.invoke(app, args, env=env).output
