"""Every door at once, as real processes on one config and state (issue 10).

`audiencesync serve` runs with a stream audience taking identify calls at a steady rate and a
scheduled warehouse audience; meanwhile other processes run `sync` of a batch audience, `status
--json`, `conversions send` and `run --once`. All exit 0, accepting a call stays fast, and every
audience ends equal to its source on the emulator, with no row sent twice.
"""

from __future__ import annotations

import base64
import csv
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from tests.conversions.helpers import DATASET, sale
from tests.support import person, sha

from audiencesync.stream.server import free_port

WRITE_KEY = "wk_doors"
STREAM_KEY = "engaged_users"


def cli(root: Path, env: dict[str, str], *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "audiencesync.cli", *args, "--config", str(root / "audiencesync.yml")],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def project(root: Path, emu: Any, port: int) -> None:
    batch = [person(i) for i in range(20_000)]
    write_csv(root / "crm.csv", batch)
    write_csv(root / "vip.csv", [person(i) for i in range(500)])
    write_csv(root / "sales.csv", [sale(i) for i in range(300)])
    audience = {
        "source": "crm",
        "primary_key": "customer_id",
        "customer_file_source": "USER_PROVIDED_ONLY",
        "default_country": "US",
        "min_size": 1,
        "forward": ["email"],
    }
    doc = {
        "meta": {
            "graph_url": emu.url,
            "access_token": "${META_ACCESS_TOKEN}",
            "ad_account_id": "act_1234567890",
            "retry": {"base_delay_s": 0.01, "max_delay_s": 0.2, "max_attempts": 4},
        },
        "state": "state.duckdb",
        "sources": {"crm": {"type": "duckdb"}},
        "serve": {"host": "127.0.0.1", "port": port, "write_key": "${AUDIENCESYNC_WRITE_KEY}", "flush_after": "300ms"},
        "conversions": {"dataset_id": DATASET, "email_identity": "email", "ldu": "never", "default_country": "US"},
        "audiences": [
            {
                "name": "Engaged users",
                "key": STREAM_KEY,
                "source": "stream",
                "customer_file_source": "USER_PROVIDED_ONLY",
                "multi_key": True,
                "min_size": 1,
            },
            {
                **audience,
                "name": "All customers",
                "query": f"select * from read_csv('{root / 'crm.csv'}', all_varchar = true)",
            },
            {
                **audience,
                "name": "VIP",
                "schedule": "2s",
                "query": f"select * from read_csv('{root / 'vip.csv'}', all_varchar = true)",
            },
        ],
    }
    (root / "audiencesync.yml").write_text(yaml.safe_dump(doc))


class Load:
    """Identify calls at a steady rate; records how long each took to be accepted."""

    def __init__(self, url: str, per_second: float = 20):
        self.url, self.per_second = url, per_second
        self.latencies: list[float] = []
        self.statuses: list[int] = []
        self.users: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        auth = "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
        with httpx.Client(headers={"Authorization": auth}, timeout=30) as client:
            i = 0
            while not self._stop.is_set():
                user = f"s{i}"
                body = {"type": "identify", "userId": user, "traits": {STREAM_KEY: True, "email": f"{user}@ex.com"}}
                t0 = time.perf_counter()
                r = client.post(f"{self.url}/v1/identify", json=body)
                self.latencies.append(time.perf_counter() - t0)
                self.statuses.append(r.status_code)
                self.users.append(user)
                i += 1
                self._stop.wait(1 / self.per_second)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)


def members(emu: Any) -> dict[str, list[dict[str, str]]]:
    out = {}
    for a in httpx.get(f"{emu.url}/_emulator/audiences").json():
        if not a.get("deleted"):
            out[a["name"]] = httpx.get(f"{emu.url}/_emulator/audiences/{a['id']}/members").json()["members"]
    return out


def wait_until(check, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError("not reached in time")


@pytest.mark.slow
def test_serve_sync_status_conversions_and_run_together(tmp_path: Path, emu: Any) -> None:
    port = free_port()
    project(tmp_path, emu, port)
    env = {**os.environ, "META_ACCESS_TOKEN": emu.token, "AUDIENCESYNC_WRITE_KEY": WRITE_KEY}
    serve = subprocess.Popen(
        [sys.executable, "-m", "audiencesync.cli", "serve", "--config", str(tmp_path / "audiencesync.yml")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _healthy(url), timeout=30)
        with Load(url) as load:
            wait_until(lambda: len(load.latencies) >= 5)  # the server's first call loads its parsers
            load.latencies.clear()
            results = {}
            doors = {
                "sync": ["sync", "--json"],
                "status": ["status", "--json"],
                "conversions": ["conversions", "send", str(tmp_path / "sales.csv"), "--json"],
                "run": ["run", "--once"],
            }
            threads = [
                threading.Thread(target=lambda k=k, a=a: results.__setitem__(k, cli(tmp_path, env, *a)))
                for k, a in doors.items()
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join(300)
            time.sleep(1)
        for name, done in results.items():
            assert done.returncode == 0, (name, done.stdout[-2000:], done.stderr[-2000:])
        status = json.loads(results["status"].stdout)
        assert "facebook_audiences" in status
        assert set(load.statuses) == {200}
        slowest = sorted(load.latencies)
        assert slowest[int(0.99 * len(slowest))] < 1.0 and slowest[-1] < 3.0, slowest[-5:]  # p99, and no stall

        want_stream = {sha(f"{u}@ex.com") for u in load.users}
        wait_until(lambda: {m.get("EMAIL") for m in members(emu).get("Engaged users", [])} == want_stream)
        held = members(emu)
        assert {m["EMAIL"] for m in held["All customers (email)"]} == {
            sha(f"user{i}@example.com") for i in range(20_000)
        }
        assert {m["EMAIL"] for m in held["VIP (email)"]} == {sha(f"user{i}@example.com") for i in range(500)}
        events = httpx.get(f"{emu.url}/_emulator/datasets/{DATASET}/events").json()["events"]
        assert len(events) == 300 and len({e["event_id"] for e in events}) == 300
        posted = [r for r in _requests(emu) if r["path"].endswith("/users") and r["method"] == "POST"]
        assert sum(r["rows"] or 0 for r in posted) == len(want_stream) + 20_000 + 500  # nothing sent twice
    finally:
        serve.terminate()
        _, errs = serve.communicate(timeout=60)
    assert "Traceback" not in errs, errs[-3000:]


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def _requests(emu: Any) -> list[dict[str, Any]]:
    body = httpx.get(f"{emu.url}/_emulator/requests").json()
    return body["requests"] if isinstance(body, dict) else body
