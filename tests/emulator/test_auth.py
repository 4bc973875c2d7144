"""Tokens and appsecret_proof, both forms (spec §4; checklist §7.2)."""

from __future__ import annotations

import pytest

from audiencesync.emulator import auth, errors
from audiencesync.emulator.config import EmulatorConfig

from .conftest import Graph, error_of


def test_check_unit() -> None:
    cfg = EmulatorConfig(token="t", app_secret="s")
    now = 1_800_000_000.0
    auth.check(cfg, "t", auth.proof_for("s", "t"), None, now)
    auth.check(cfg, "t", auth.proof_for("s", "t", 1_800_000_010), "1800000010", now)
    cases = [
        (None, None, None, 104),
        ("x", None, None, 190),
        ("t", None, None, 100),
        ("t", "00" * 32, None, 100),
        ("t", auth.proof_for("s", "t", 1_700_000_000), "1700000000", 100),  # outside the time window
        ("t", auth.proof_for("s", "t"), "1800000000", 100),  # time given, proof of the plain form
    ]
    for token, proof, ptime, code in cases:
        with pytest.raises(errors.GraphError) as info:
            auth.check(cfg, token, proof, ptime, now)
        assert info.value.code == code


def test_proof_over_http(graph: Graph) -> None:
    graph.server.config.app_secret = "s3cret"
    tok = graph.token
    assert graph.get("/act_1", params={"appsecret_proof": auth.proof_for("s3cret", tok)}).status_code == 200
    now = int(graph.emu("GET", "/clock").json()["now"])
    good = {"appsecret_proof": auth.proof_for("s3cret", tok, now), "appsecret_time": now}
    assert graph.get("/act_1", params=good).status_code == 200
    err = error_of(graph.get("/act_1", params={"appsecret_proof": auth.proof_for("wrong", tok)}))
    assert err == {
        **err,
        "code": 100,
        "type": "GraphMethodException",
        "message": "Invalid appsecret_proof provided in the API argument",
    }
    err = error_of(graph.get("/act_1"))
    assert err["message"] == "API calls from the server require an appsecret_proof argument"
    # proof in a JSON body works too
    r = graph.http.get(
        f"{graph.base}/act_1",
        headers={"Authorization": f"OAuth {tok}"},
        params={"appsecret_proof": auth.proof_for("s3cret", tok)},
    )
    assert r.status_code == 200
    r = graph.http.post(
        f"{graph.base}/act_1/customaudiences",
        json={
            "access_token": tok,
            "appsecret_proof": auth.proof_for("s3cret", tok),
            "name": "x",
            "customer_file_source": "USER_PROVIDED_ONLY",
        },
    )
    assert r.status_code == 200, r.text


def test_errors_never_echo_the_token(graph: Graph) -> None:
    r = graph.http.get(f"{graph.base}/act_1", params={"access_token": "leaky-token-123"})
    assert error_of(r)["code"] == 190
    assert "leaky-token-123" not in r.text
