"""The Graph client's contract, against the emulator over HTTP: what it retries, how long it waits,
what it refuses to retry, and that the token never leaks into an error."""

from __future__ import annotations

import hashlib
import hmac
import logging
import random

import httpx
import pytest

from audiencesync.config import MetaSettings, RetrySettings
from audiencesync.emulator import EmulatorConfig, EmulatorServer
from audiencesync.load.graph import GraphClient, GraphError


def settings(url: str, token: str, **over) -> MetaSettings:
    retry = RetrySettings(base_delay_s=0.01, max_delay_s=600, max_attempts=5)
    return MetaSettings(graph_url=url, access_token=token, ad_account_id="act_42", retry=retry, **over)


def fault(emu, **rule) -> None:
    httpx.post(f"{emu.url}/_emulator/faults", json=rule).raise_for_status()


@pytest.fixture
def client(emu):
    sleeps: list[float] = []
    c = GraphClient(settings(emu.url, emu.token), sleep=sleeps.append, rng=random.Random(1))
    c.sleeps = sleeps
    yield c
    c.close()


def test_throttling_waits_at_least_the_time_facebook_asks_for(emu, client):
    fault(emu, method="POST", path="customaudiences$", count=1, throttle=True, regain_minutes=3)
    audience = client.create_custom_audience(name="A", customer_file_source="USER_PROVIDED_ONLY")
    assert audience.isdigit()
    assert client.retries == 1 and client.sleeps[0] >= 180  # later short sleeps: usage headers near 100%


def test_throttling_longer_than_max_delay_gives_up_with_the_wait_in_the_message(emu):
    c = GraphClient(
        settings(emu.url, emu.token).model_copy(update={"retry": RetrySettings(max_delay_s=60)}), sleep=lambda s: None
    )
    fault(emu, method="GET", path="customaudiences$", count=1, throttle=True, regain_minutes=5)
    with pytest.raises(GraphError) as e:
        list(c.list_custom_audiences(["id"]))
    assert e.value.code == 80003 and "wait 5 min" in str(e.value)


@pytest.mark.parametrize(
    "rule",
    [
        {"http_status": 502},
        {"drop": "before"},
        {"error": {"code": 2, "message": "Service temporarily unavailable", "is_transient": True}},
        {"error": {"code": 17, "error_subcode": 2446079, "message": "User request limit reached"}},
        {"error": {"code": 613, "message": "Calls to this api have exceeded the rate limit."}},
        {"error": {"code": 100, "message": "Odd", "is_transient": True}},
    ],
)
def test_transient_failures_are_retried_with_growing_jittered_delays(emu, client, rule):
    fault(emu, method="POST", path="customaudiences$", count=2, **rule)
    assert client.create_custom_audience(name="B", customer_file_source="USER_PROVIDED_ONLY")
    assert len(client.sleeps) == 2 and 0 < client.sleeps[0] < client.sleeps[1] * 2
    assert client.retries == 2


@pytest.mark.parametrize(
    ("error", "phrase"),
    [
        ({"code": 190, "error_subcode": 463, "message": "Session has expired"}, "access token has expired"),
        ({"code": 2663, "message": "Terms of service has not been accepted"}, "terms are not accepted"),
        ({"code": 200, "error_subcode": 1870090, "message": "Permissions error"}, "terms are not accepted"),
        ({"code": 100, "error_subcode": 1713230, "message": "Invalid parameter"}, "flagged"),
        ({"code": 2654, "message": "Failed to create custom audience"}, "500 custom audiences"),
        ({"code": 2650, "message": "Failed to update the custom audience"}, "single-key"),
    ],
)
def test_permanent_errors_are_not_retried_and_explained(emu, client, error, phrase):
    fault(emu, method="POST", path="customaudiences$", count=1, error=error)
    with pytest.raises(GraphError) as e:
        client.create_custom_audience(name="C", customer_file_source="USER_PROVIDED_ONLY")
    assert client.sleeps == [] and phrase in str(e.value)
    assert e.value.code == error["code"]


def test_real_terms_and_cap_errors_from_the_emulator(emu, client):
    httpx.post(f"{emu.url}/_emulator/accounts/act_42", json={"tos_accepted": False}).raise_for_status()
    with pytest.raises(GraphError) as e:
        client.create_custom_audience(name="D", customer_file_source="USER_PROVIDED_ONLY")
    assert "terms are not accepted" in str(e.value) and client.sleeps == []


def test_removals_carry_the_payload_in_the_body(emu, client):
    fb = client.create_custom_audience(name="E", customer_file_source="USER_PROVIDED_ONLY")
    hashes = [f"{i:064x}" for i in range(3000)]
    added = client.users("POST", fb, "EMAIL_SHA256", hashes)
    assert added["num_received"] == 3000
    removed = client.users("DELETE", fb, "EMAIL_SHA256", hashes[:2500])
    assert removed["num_received"] == 2500
    count = httpx.get(f"{emu.url}/_emulator/audiences/{fb}/members", params={"count_only": 1}).json()["count"]
    assert count == 500


def test_token_never_appears_in_errors_or_urls(emu, client):
    fault(emu, method="GET", path=".*", count=1, error={"code": 100, "message": f"bad {emu.token}"})
    with pytest.raises(GraphError) as e:
        client.get_node("123", ["id"])
    assert emu.token not in str(e.value) and emu.token not in repr(e.value)
    log = httpx.get(f"{emu.url}/_emulator/requests").json()
    assert emu.token not in str(log)


def test_appsecret_proof_is_sent_when_a_secret_is_set():
    cfg = EmulatorConfig(token="t0k", app_secret="s3cret")
    with EmulatorServer(cfg) as emu:
        good = GraphClient(settings(emu.url, "t0k", app_secret="s3cret"))
        assert good.create_custom_audience(name="F", customer_file_source="USER_PROVIDED_ONLY")
        bad = GraphClient(settings(emu.url, "t0k", app_secret="wrong"))
        with pytest.raises(GraphError) as e:
            bad.create_custom_audience(name="G", customer_file_source="USER_PROVIDED_ONLY")
        assert e.value.code == 100 and "appsecret_proof" in e.value.message


def test_expired_api_version_is_a_clear_error(emu):
    c = GraphClient(settings(emu.url, emu.token).model_copy(update={"api_version": "v16.0"}), sleep=lambda s: None)
    with pytest.raises(GraphError) as e:
        list(c.list_custom_audiences(["id"]))
    assert e.value.code == 2635 and "raise meta.api_version" in str(e.value)


def test_no_log_line_carries_the_token_or_the_appsecret_proof(caplog):
    """httpx logs each request URL at INFO (`serve`, `sync -v`), and a GET has its proof in the query."""
    token, secret = "EAAtoken-0123456789abcdef", "app-s3cret"
    proof = hmac.new(secret.encode(), token.encode(), hashlib.sha256).hexdigest()
    caplog.set_level(logging.DEBUG)
    with EmulatorServer(EmulatorConfig(token=token, app_secret=secret)) as emu:
        client = GraphClient(settings(emu.url, token, app_secret=secret), sleep=lambda s: None)
        fb = client.create_custom_audience(name="H", customer_file_source="USER_PROVIDED_ONLY")
        assert client.get_node(fb, ["id", "name"])["id"] == fb  # the emulator checked the proof
        assert [a["id"] for a in client.list_custom_audiences(["id"])] == [fb]
        fault(emu, method="GET", path=".*", count=1, http_status=502)
        client.get_node(fb, ["id"])
        client.close()
    lines = [record.getMessage() for record in caplog.records] + [caplog.text]
    requests = [line for line in lines if line.startswith("HTTP Request: GET") and "/v26.0/" in line]
    assert len(requests) >= 3 and all("appsecret_proof=[redacted]" in line for line in requests)
    assert any(record.name.startswith("httpcore") for record in caplog.records)
    assert not [line for line in lines if proof in line or token in line]


def test_the_redactor_rewrites_formatted_records_and_leaves_the_rest(caplog):
    GraphClient(settings("http://127.0.0.1:9", "EAAsecret-token-value", app_secret="x")).close()
    caplog.set_level(logging.DEBUG)
    logging.getLogger("httpx").info("HTTP Request: %s %s", "GET", "https://g.test/v1?a=1&access_token=EAAx&b=%41")
    logging.getLogger("httpcore.http11").debug("headers=[(b'authorization', b'OAuth EAAsecret-token-value')]")
    logging.getLogger("tests.other").info("access_token=kept")
    assert [r.getMessage() for r in caplog.records] == [
        "HTTP Request: GET https://g.test/v1?a=1&access_token=[redacted]&b=%41",
        "headers=[(b'authorization', b'OAuth [redacted]')]",
        "access_token=kept",
    ]
