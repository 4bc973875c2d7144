"""Who gets in, and what comes out: 401 and the login redirect without credentials, CSRF on forms,
and no raw email, phone, mobile id, token or hash in any page or JSON answer (the HTML is scanned)."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
import yaml
from tests.ui.conftest import BEARER, PASSWORD, Dashboard, DemoSite, login

from audiencesync.config import load_config

API_GETS = ["/api/audiences", "/api/audiences/vip_customers", "/api/stream", "/api/conversions"]
API_POSTS = ["/api/audiences/vip_customers/dry-run", "/api/audiences/vip_customers/sync"]
PAGES = ["/", "/audiences/vip_customers", "/audiences/high_value_customers", "/stream", "/conversions"]
HASH = re.compile(r"\b[0-9a-f]{64}\b")


def test_without_credentials_the_api_answers_401_and_pages_go_to_the_login(dashboard: Dashboard) -> None:
    with httpx.Client(base_url=dashboard.url) as c:
        for path in API_GETS:
            r = c.get(path)
            assert r.status_code == 401, path
            assert r.headers["www-authenticate"].startswith("Bearer")
        for path in API_POSTS:
            assert c.post(path).status_code == 401, path
        for path in PAGES:
            r = c.get(path)
            assert r.status_code == 303, path
            assert r.headers["location"] == f"/login?next={path}"
        for path in ("/audiences/vip_customers/dry-run", "/audiences/vip_customers/sync"):
            assert c.post(path, data={"csrf": "x"}).status_code == 303
        assert c.get("/api/audiences", headers={"Authorization": "Bearer not-the-password"}).status_code == 401
        assert c.get("/api/audiences", headers={"Authorization": f"Basic {PASSWORD}"}).status_code == 401
    forged = {"audiencesync_session": "eyJzaWQiOiJ4IiwiZXhwIjo5OTk5OTk5OTk5fQ.AAAA"}
    with httpx.Client(base_url=dashboard.url, cookies=forged) as c:
        assert c.get("/api/audiences").status_code == 401


def test_a_wrong_password_is_refused_and_the_right_one_sets_a_session(dashboard: Dashboard) -> None:
    with httpx.Client(base_url=dashboard.url) as c:
        bad = login(c, dashboard.url, "guess-guess")
        assert bad.status_code == 401
        assert "does not open this dashboard" in bad.text
        assert "audiencesync_session" not in c.cookies
        good = login(c, dashboard.url)
        assert good.status_code == 303 and good.headers["location"] == "/"
        cookie = good.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        assert c.get("/api/audiences").status_code == 200
        assert c.get("/").status_code == 200


def test_login_never_redirects_off_the_site(dashboard: Dashboard) -> None:
    with httpx.Client(base_url=dashboard.url) as c:
        for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
            r = c.post("/login", data={"password": PASSWORD, "next": target})
            assert r.headers["location"] == "/", target


def test_forms_need_the_sessions_csrf_token(dashboard: Dashboard, demo_site: DemoSite) -> None:
    with httpx.Client(base_url=dashboard.url) as c:
        login(c, dashboard.url)
        assert c.post("/audiences/vip_customers/dry-run", data={}).status_code == 403
        assert c.post("/audiences/vip_customers/dry-run", data={"csrf": "forged"}).status_code == 403
        assert c.post("/api/audiences/vip_customers/dry-run").status_code == 403  # cookie without X-CSRF-Token
        page = c.get("/audiences/vip_customers").text
        token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
        r = c.post("/api/audiences/vip_customers/dry-run", headers={"X-CSRF-Token": token})
        assert r.status_code == 200 and r.json()["status"] == "dry-run"


def _assert_clean(text: str, secrets: set[str], where: str) -> None:
    lowered = text.lower()
    leaked = sorted(s for s in secrets if s in text or s.lower() in lowered)
    assert not leaked, f"{where} shows raw values: {leaked[:3]}"
    assert not HASH.search(text), f"{where} shows a hashed match key"


def test_no_page_or_answer_holds_a_raw_value_a_token_or_a_hash(dashboard: Dashboard, demo_site: DemoSite) -> None:
    secrets = demo_site.secrets | {demo_site.env["META_ACCESS_TOKEN"]}
    assert len(secrets) > 3000  # emails, phones and mobile ids of the demo's customers, and the tokens
    with httpx.Client(base_url=dashboard.url) as c:
        _assert_clean(c.get("/login").text, secrets, "/login")
        login(c, dashboard.url)
        cookie = c.cookies["audiencesync_session"]
        for path in PAGES:
            r = c.get(path)
            assert r.status_code == 200, path
            _assert_clean(r.text, secrets, path)
            assert cookie not in r.text
        for path in API_GETS:
            r = c.get(path)
            assert r.status_code == 200, path
            _assert_clean(r.text, secrets, path)
        token = re.search(r'name="csrf" value="([^"]+)"', c.get("/").text).group(1)
        r = c.post("/audiences/vip_customers/dry-run", data={"csrf": token})
        assert r.status_code == 200
        _assert_clean(r.text, secrets, "the dry run's page")
    log = dashboard.log.read_text()
    _assert_clean(log.replace(_one_time(log), ""), secrets, "the ui log")


def _one_time(log: str) -> str:
    m = re.search(r"one-time password (\S+)", log)
    return m.group(1) if m else "\0"


def test_ui_refuses_a_bad_ui_section_before_it_starts(tmp_path: Path) -> None:
    from audiencesync.config import ConfigError

    path = tmp_path / "audiencesync.yml"
    path.write_text(yaml.safe_dump({
        "meta": {"access_token": "t", "ad_account_id": "1"},
        "ui": {"password": "short", "port": 99999, "session_max_age": "soon"},
    }))  # fmt: skip
    with pytest.raises(ConfigError) as e:
        load_config(path, env={})
    text = str(e.value)
    assert "ui.password" in text and "ui.port" in text and "ui.session_max_age" in text
    assert "short" not in text


# -- under `serve`: the dashboard at `/`, the stream routes as before ------------------------------

def test_serve_mounts_the_dashboard_and_keeps_its_stream_routes(served: str) -> None:
    auth = {"Authorization": f"Bearer {BEARER}"}
    with httpx.Client(base_url=served) as c:
        assert c.get("/health").json()["status"] == "ok"
        assert c.get("/metrics").status_code == 200
        assert c.get("/").status_code == 303
        assert c.get("/api/stream").status_code == 401
        traits = {"email": "streamed.person@example.org"}
        call = {"audience": "streamed", "user_id": "u-1", "in": True, "traits": traits}
        accepted = c.post("/v1/membership", json=call, headers=auth)
        assert accepted.status_code == 200, accepted.text
        assert c.post("/v1/membership", json=call).status_code == 401
        stream = c.get("/api/stream", headers=auth).json()
        assert stream["accepted_total"] == 1
        assert stream["refused_by_reason"] == {"unauthorized": 1}
        assert stream["status"] == "ok"
        refused = c.post("/api/audiences/streamed/sync", headers=auth)
        assert refused.status_code == 403  # the flusher syncs stream audiences; no button runs them
        r = c.post("/login", data={"password": BEARER, "next": "/stream"})
        assert r.status_code == 303
        page = c.get("/stream")
        assert page.status_code == 200 and 'data-test="queue-depth"' in page.text
        assert "streamed.person@example.org" not in page.text and BEARER not in page.text


def test_the_dashboard_holds_the_state_only_while_it_reads(dashboard: Dashboard, demo_site: DemoSite) -> None:
    """Between pages the state file is free; while another process holds it, a page answers within its
    short wait with the last reading and who holds the file, instead of hanging."""
    import time

    from audiencesync.state.lease import lease

    with httpx.Client(base_url=dashboard.url, timeout=30) as c:
        login(c, dashboard.url)
        first = c.get("/api/audiences").json()
        assert first["busy"] is None
        with lease(demo_site.config.state, door="a test holding the state", wait_s=5):
            t0 = time.monotonic()
            page = c.get("/")
            api = c.get("/api/audiences").json()
            took = time.monotonic() - t0
        assert page.status_code == 200
        assert "a test holding the state" in page.text and 'data-test="busy"' in page.text
        assert api["busy"].startswith("the state file is in use by `a test holding the state`")
        assert api["audiences"] == first["audiences"]
        assert took < 15, took  # two reads, each waiting at most 3 s
        assert c.get("/api/audiences").json()["busy"] is None
