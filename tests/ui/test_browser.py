"""The dashboard in a real browser: Debian's Chromium driven by Playwright, on the demo's state.

Each test logs in, opens a page, checks its numbers against the state file (read here on its own,
not through the dashboard's code) and saves a screenshot under tests/ui/output/ (paths printed).
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pyarrow.csv as pacsv
import pytest
from tests.ui.conftest import BEARER, OUTPUT, PASSWORD, Dashboard, DemoSite

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]  # fmt: skip
SINGLE = {"EMAIL_SHA256": "EMAIL", "PHONE_SHA256": "PHONE", "MOBILE_ADVERTISER_ID": "MADID"}


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `apt-get install -y chromium` (.ci/run does it)")
    from playwright.sync_api import sync_playwright

    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=ARGS, viewport={"width": 1360, "height": 900}
        )
        context.set_default_timeout(60_000)
        yield context
        context.close()


@pytest.fixture
def page(browser: Any, dashboard: Dashboard) -> Iterator[Any]:
    browser.clear_cookies()
    tab = browser.new_page()
    tab.goto(f"{dashboard.url}/")
    assert "/login" in tab.url
    tab.fill("input[name=password]", PASSWORD)
    tab.click("button[type=submit]")
    tab.wait_for_url(f"{dashboard.url}/")
    yield tab
    tab.close()


def shot(tab: Any, name: str) -> Path:
    OUTPUT.mkdir(exist_ok=True)
    path = OUTPUT / f"{name}.png"
    tab.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path


class State:
    """The demo's state file, read here with plain SQL (a copy, so the dashboard keeps its lease)."""

    def __init__(self, site: DemoSite, tmp: Path):
        tmp.mkdir(parents=True, exist_ok=True)
        copy = tmp / "state-copy.duckdb"
        shutil.copy(site.config.state, copy)
        wal = Path(f"{site.config.state}.wal")
        if wal.exists():
            shutil.copy(wal, f"{copy}.wal")
        self.con = duckdb.connect(str(copy))

    def fb_audiences(self) -> list[tuple[str, str, str]]:
        return self.con.execute("SELECT audience_key, fb_id, name FROM fb_audiences ORDER BY fb_id").fetchall()

    def members(self, fb_id: str) -> int:
        return self.con.execute("SELECT count(DISTINCT row_fp) FROM fb_rows WHERE fb_id = ?", [fb_id]).fetchone()[0]

    def runs(self, key: str) -> list[dict[str, Any]]:
        rows = self.con.execute(
            "SELECT status, report FROM runs WHERE audience_key = ? ORDER BY finished_at DESC", [key]
        ).fetchall()
        return [{"status": s, **json.loads(r)} for s, r in rows]

    def coverage(self, key: str) -> tuple[int, Counter[str], int]:
        """Members, members per key, members with 2+ of email/phone/mobile id: counted in Python."""
        rows = self.con.execute(
            """SELECT r.pk, r.schema, r.payload FROM fb_rows r JOIN fb_audiences a USING (fb_id)
               WHERE a.audience_key = ?""",
            [key],
        ).fetchall()
        keys: dict[str, set[str]] = {}
        for pk, schema, payload in rows:
            names = [SINGLE[schema]] if schema in SINGLE else json.loads(schema)
            held = keys.setdefault(pk, set())
            held.update(n for n, v in zip(names, payload, strict=True) if v and n != "LOOKALIKE_VALUE")
        per_key = Counter(k for held in keys.values() for k in held)
        strong = sum(1 for held in keys.values() if len(held & {"EMAIL", "PHONE", "MADID"}) >= 2)
        return len(keys), per_key, strong


def _int(text: str) -> int:
    return int(re.sub(r"[^\d]", "", text))


def test_audiences_page_shows_what_the_state_holds(page: Any, demo_site: DemoSite, tmp_path: Path) -> None:
    state = State(demo_site, tmp_path)
    for _key, fb_id, name in state.fb_audiences():
        row = page.locator(f'tr[data-fb="{fb_id}"]')
        assert row.locator("td").first.inner_text() == name
        assert _int(row.locator('[data-test="members"]').inner_text()) == state.members(fb_id)
        assert row.locator('[data-test="matched"]').inner_text() not in ("", "-")
    for key in ("vip_customers", "high_value_customers"):
        last = state.runs(key)[0]
        section = page.locator(f'section[data-audience="{key}"]')
        assert section.locator('[data-test="last-run-status"]').inner_text() == last["status"]
        assert _int(section.locator('[data-test="last-run-adds"]').inner_text()) == sum(
            f["adds"] for f in last["facebook"]
        )
        assert _int(section.locator('[data-test="last-run-removes"]').inner_text()) == sum(
            f["removes"] for f in last["facebook"]
        )
    shot(page, "audiences")


def test_an_audiences_page_charts_coverage_runs_and_suggestions(
    page: Any, dashboard: Dashboard, demo_site: DemoSite, tmp_path: Path
) -> None:
    state = State(demo_site, tmp_path)
    page.click('section[data-audience="vip_customers"] h2 a')
    page.wait_for_url(f"{dashboard.url}/audiences/vip_customers")
    members, per_key, strong = state.coverage("vip_customers")
    table = page.locator('[data-test="coverage"]')
    assert _int(page.locator('[data-test="coverage-members"]').inner_text()) == members
    for key, n in per_key.items():
        assert _int(table.locator(f'tr[data-key="{key}"] [data-test="count"]').inner_text()) == n, key
    assert _int(table.locator('tr[data-key="2+ strong"] [data-test="count"]').inner_text()) == strong
    runs = state.runs("vip_customers")
    rows = page.locator('[data-test="runs"] tbody tr')
    assert rows.count() == len(runs) == 2
    for i, run in enumerate(runs):
        assert _int(rows.nth(i).locator('[data-test="adds"]').inner_text()) == sum(f["adds"] for f in run["facebook"])
        assert _int(rows.nth(i).locator('[data-test="removes"]').inner_text()) == sum(
            f["removes"] for f in run["facebook"]
        )
    charts = page.locator("figure.chart .plot[data-rendered='1'] canvas")
    assert charts.count() == len([a for a in state.fb_audiences() if a[0] == "vip_customers"])
    latest = next(r for r in runs if r["normalized"])
    gender = latest["invalid"]["GEN"]["unknown_gender"]
    suggestions = page.locator('[data-test="suggestions"]').inner_text()
    assert f"{gender:,} gender values were refused" in suggestions
    invalid = page.locator('[data-test="invalid"] tbody tr')
    expected = {(k, r) for run in runs for k, reasons in run["invalid"].items() for r in reasons}
    assert invalid.count() == len(expected)
    shot(page, "audience")


def test_suggestions_are_worked_out_from_the_audiences_counts(
    page: Any, dashboard: Dashboard, demo_site: DemoSite, tmp_path: Path
) -> None:
    """High value customers is multi-key without `match_on_attributes`: the source's names and places
    are read but not sent. The page says to how many members they would add keys."""
    state = State(demo_site, tmp_path)
    members, _, _ = state.coverage("high_value_customers")
    latest = next(r for r in state.runs("high_value_customers") if r["normalized"])
    best = max(latest["keys_found"].get(k, 0) for k in ("FN", "LN", "ZIP", "CT", "ST", "COUNTRY", "GEN", "DOBY"))
    gain = round(members * best / latest["normalized"])
    page.goto(f"{dashboard.url}/audiences/high_value_customers")
    first = page.locator('[data-test="suggestions"] li').first.inner_text()
    assert "match_on_attributes: true would add keys to about" in first
    assert f"about {gain:,} members" in first
    shot(page, "audience-high-value")


def test_dry_run_shows_the_plan_and_changes_nothing(
    page: Any, dashboard: Dashboard, demo_site: DemoSite, tmp_path: Path
) -> None:
    """The source loses 30 customers; the dry run plans their removal, sends and records nothing;
    "sync now" then sends it, and the page shows the run."""
    before = State(demo_site, tmp_path / "before")
    fewer = demo_site.customers.slice(30)
    pacsv.write_csv(fewer, demo_site.csv)
    demo_site.customers = fewer
    page.goto(f"{dashboard.url}/audiences/vip_customers")
    page.click('[data-test="dry-run"]')
    outcome = page.locator('[data-test="outcome"]')
    outcome.wait_for()
    assert page.locator('[data-test="outcome-status"]').inner_text() == "dry-run"
    assert _int(page.locator('[data-test="outcome-members"]').inner_text()) == fewer.num_rows
    multi = page.locator('[data-test="outcome-fb"]', has_text="VIP customers").last
    assert _int(multi.locator('[data-test="outcome-fb-removes"]').inner_text()) == 30
    assert _int(multi.locator('[data-test="outcome-fb-adds"]').inner_text()) == 0
    shot(page, "dry-run")
    after = State(demo_site, tmp_path)
    assert after.runs("vip_customers") == before.runs("vip_customers")
    for _, fb_id, _ in after.fb_audiences():
        assert after.members(fb_id) == before.members(fb_id)

    page.click('[data-test="sync-now"]')
    page.locator('[data-test="outcome"]').wait_for()
    assert page.locator('[data-test="outcome-status"]').inner_text() == "ok"
    synced = State(demo_site, tmp_path / "synced")
    runs = synced.runs("vip_customers")
    assert len(runs) == 3 and runs[0]["status"] == "ok"
    multi_id = next(fb for key, fb, name in synced.fb_audiences() if name == "VIP customers")
    assert synced.members(multi_id) == before.members(multi_id) - 30
    assert page.locator('[data-test="runs"] tbody tr').count() == 3
    shot(page, "sync-now")


def test_conversions_page_counts_per_dataset(page: Any, dashboard: Dashboard, demo_site: DemoSite,
                                             tmp_path: Path) -> None:  # fmt: skip
    state = State(demo_site, tmp_path)
    (status, report), *_ = state.con.execute("SELECT status, report FROM conversion_runs").fetchall()
    report = json.loads(report)
    assert status == "ok"
    page.click("nav >> text=Conversions")
    row = page.locator('tr[data-dataset="987654321"]')
    assert _int(row.locator('[data-test="sent"]').inner_text()) == report["sent"] == 40
    assert _int(row.locator('[data-test="received"]').inner_text()) == report["events_received"]
    assert _int(row.locator('[data-test="runs"]').inner_text()) == 1
    for reason, n in report["rejected"].items():
        assert f"{reason.replace('_', ' ')}: {n}" in row.inner_text()
    shot(page, "conversions")


def test_stream_page_without_serve_says_where_the_stream_lives(page: Any) -> None:
    page.click("nav >> text=Stream")
    assert "audiencesync serve" in page.locator('[data-test="no-stream"]').inner_text()


def test_stream_page_under_serve_shows_queue_rates_and_refusals(browser: Any, served: str) -> None:
    browser.clear_cookies()
    auth = {"Authorization": f"Bearer {BEARER}"}
    calls = [{"audience": "streamed", "user_id": f"u-{i}", "in": True, "traits": {"email": f"p{i}@example.org"}}
             for i in range(25)]  # fmt: skip
    with httpx.Client(base_url=served) as c:
        assert c.post("/v1/membership", json={"batch": calls}, headers=auth).status_code == 200
        assert c.post("/v1/membership", json=calls[0]).status_code == 401
        assert c.post("/v1/membership", content=b"{not json", headers=auth).status_code == 400
        deadline = time.monotonic() + 60
        while not c.get("/api/stream", headers=auth).json()["flushes"].get("ok"):
            assert time.monotonic() < deadline, "the 25 changes were not flushed within 60 s"
            time.sleep(0.2)
    tab = browser.new_page()
    tab.goto(f"{served}/stream")
    tab.fill("input[name=password]", BEARER)
    tab.click("button[type=submit]")
    tab.wait_for_url(f"{served}/stream")
    refused = tab.locator('[data-test="refused"]')
    assert _int(refused.locator('tr[data-reason="unauthorized"] td.n').inner_text()) == 1
    assert _int(refused.locator('tr[data-reason="not_json"] td.n').inner_text()) == 1
    assert tab.locator('[data-test="status"]').inner_text() == "ok"
    assert "25 accepted in all" in tab.locator(".card", has_text="changes per minute").inner_text()
    assert _int(tab.locator('[data-test="queue-depth"]').inner_text()) == 0
    assert tab.locator('[data-test="syncs"] tr', has_text="streamed").count() == 1
    assert tab.locator('[data-test="flushes"] tr').count() >= 1
    shot(tab, "stream")
    tab.close()
