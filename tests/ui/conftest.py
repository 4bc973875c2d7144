"""The dashboard's fixtures: the demo's state (the demo's own config and data, synced twice to an
emulator over HTTP), one offline-conversions run, and `audiencesync ui` started as a user starts it."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
import yaml

from audiencesync.config import Config, load_config

PASSWORD = "correct horse battery staple"
OUTPUT = Path(__file__).parent / "output"
"""Screenshots land here (ignored by git); each test prints the paths it wrote."""

UI_SECTION = """\
ui:
  password: ${AUDIENCESYNC_UI_PASSWORD}
conversions:
  dataset_id: "987654321"
  email_identity: email
  default_country: US
"""


@dataclass
class DemoSite:
    """The demo's workspace: its config, its state file, and every raw value the pages must never show."""

    root: Path
    config_path: Path
    csv: Path
    env: dict[str, str]
    config: Config
    customers: pa.Table
    secrets: set[str] = field(default_factory=set)

    def remember(self, table: pa.Table) -> None:
        """Every raw email, phone and mobile id of `table` (what a leak would show), for the page scans."""
        for column in ("email", "phone", "madid"):
            if column in table.column_names:
                self.secrets.update(v.strip() for v in table[column].to_pylist() if v and len(v.strip()) >= 6)


@pytest.fixture(scope="session")
def ui_emulator() -> Iterator[Any]:
    """An emulator of the dashboard tests' own: other tests reset the shared one."""
    from audiencesync.emulator import EmulatorServer

    with EmulatorServer() as emu:
        yield emu


def _sales(path: Path) -> None:
    now = int(time.time())
    rows = [
        {"event_time": str(now - 3600 - i), "product_action": "purchase", "order_id": f"ORD-{i:04d}", "currency": "USD",
         "value": f"{10 + i}.50", "email": f"buyer{i}@shop.example", "country": "US"}
        for i in range(40)
    ]  # fmt: skip
    rows += [
        {"event_time": "", "product_action": "purchase", "order_id": "ORD-9001", "currency": "USD", "value": "5",
         "email": "late@shop.example", "country": "US"},
        {"event_time": str(now - 60), "product_action": "purchase", "order_id": "ORD-9002", "currency": "USD",
         "value": "oops", "email": "typo@shop.example", "country": "US"},
    ]  # fmt: skip
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


@pytest.fixture(scope="session")
def demo_site(tmp_path_factory: pytest.TempPathFactory, ui_emulator: Any) -> DemoSite:
    """The demo's state, made by the demo's config and its two syncs (a first one, then a changed source)."""
    from audiencesync.conversions import Source, send
    from audiencesync.demo import CONFIG, _change
    from audiencesync.pipeline import sync
    from audiencesync.samples import generate_customers

    root = tmp_path_factory.mktemp("dashboard-demo")
    csv_path = root / "customers.csv"
    table = generate_customers(2000, seed=7)
    pacsv.write_csv(table, csv_path)
    config_path = root / "audiencesync.yml"
    config_path.write_text(CONFIG.format(url=ui_emulator.url, csv=csv_path) + UI_SECTION)
    env = {**os.environ, "META_ACCESS_TOKEN": ui_emulator.token, "AUDIENCESYNC_UI_PASSWORD": PASSWORD}
    cfg = load_config(config_path, env=env)
    site = DemoSite(root, config_path, csv_path, env, cfg, table, {PASSWORD})
    site.remember(table)
    assert sync(cfg).ok
    changed = _change(table, seed=11)
    pacsv.write_csv(changed, csv_path)
    site.remember(changed)
    site.customers = changed
    assert sync(cfg).ok
    sales = root / "sales.csv"
    _sales(sales)
    site.secrets.update({"late@shop.example", "typo@shop.example", "buyer1@shop.example"})
    report = send(cfg, Source(sales))
    assert report.sent == 40, report
    return site


@dataclass
class Dashboard:
    url: str
    process: subprocess.Popen[str]
    log: Path


def _free_port() -> int:
    from audiencesync.stream.server import free_port

    return free_port()


def command() -> list[str]:
    """The `audiencesync` script installed beside this Python, as a user runs it."""
    script = Path(sys.executable).with_name("audiencesync")
    return [str(script)] if script.exists() else [sys.executable, "-m", "audiencesync.cli"]


@pytest.fixture(scope="session")
def dashboard(demo_site: DemoSite) -> Iterator[Dashboard]:
    """`audiencesync ui` on the demo's state, a process of its own on a free port of 127.0.0.1."""
    port = _free_port()
    log = demo_site.root / "ui.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [*command(), "ui", "--config", str(demo_site.config_path), "--port", str(port)],
            env={**demo_site.env, "PYTHONUNBUFFERED": "1"},
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"`audiencesync ui` stopped: {log.read_text()}")
            try:
                if httpx.get(f"{url}/login", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"`audiencesync ui` did not answer within 60 s: {log.read_text()}")
            time.sleep(0.1)
        yield Dashboard(url, process, log)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


def login(client: httpx.Client, url: str, password: str = PASSWORD) -> httpx.Response:
    return client.post(f"{url}/login", data={"password": password, "next": "/"})


# -- under `serve`: the dashboard mounted at `/` of the stream server ------------------------------

BEARER = "serve-bearer-token-for-tests"


@pytest.fixture
def served(tmp_path: Path, ui_emulator: Any) -> Iterator[str]:
    """`serve` with one stream audience, on a thread of this process, its dashboard at `/`."""
    from audiencesync.stream.server import StreamServer

    path = tmp_path / "audiencesync.yml"
    path.write_text(yaml.safe_dump({
        "meta": {"graph_url": ui_emulator.url, "access_token": "${META_ACCESS_TOKEN}", "ad_account_id": "act_1"},
        "state": "state.duckdb",
        "serve": {"port": 0, "write_key": "wk-test", "bearer_tokens": [BEARER], "flush_after": "200ms"},
        "audiences": [{"name": "Streamed", "source": "stream", "customer_file_source": "USER_PROVIDED_ONLY",
                       "multi_key": True, "min_size": 1}],
    }))  # fmt: skip
    cfg = load_config(path, env={"META_ACCESS_TOKEN": ui_emulator.token})
    with StreamServer(cfg) as server:
        yield server.url
