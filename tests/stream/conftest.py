"""Fixtures for the stream server: a project directory with a `serve:` config, the server on a
thread of this process, and helpers that read the emulator's audiences as Facebook holds them."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from audiencesync.config import Config, load_config

WRITE_KEY = "wk_test_write_key"
BEARER = "bearer-test-token"
KEY = "order_completed_last_30days"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def stream_audience(**over: Any) -> dict[str, Any]:
    """The issue's example audience: Engage's snake_cased key, multi-key, min_size 1."""
    return {
        "name": "Ordered in the last 30 days",
        "source": "stream",
        "key": KEY,
        "customer_file_source": "USER_PROVIDED_ONLY",
        "multi_key": True,
        "min_size": 1,
        **over,
    }


class StreamProject:
    """A directory with `audiencesync.yml` pointing at the emulator, as a user would have it."""

    def __init__(self, root: Path, emu: Any):
        self.root = root
        self.emu = emu
        self.path = root / "audiencesync.yml"

    def write(
        self,
        serve: dict[str, Any] | None = None,
        audiences: list[dict[str, Any]] | None = None,
        conversions: dict[str, Any] | None = None,
    ) -> Path:
        doc = {
            "meta": {
                "graph_url": self.emu.url,
                "access_token": "${META_ACCESS_TOKEN}",
                "ad_account_id": "act_1234567890",
                "retry": {"base_delay_s": 0.01, "max_delay_s": 0.2, "max_attempts": 3},
            },
            "state": "state.duckdb",
            "serve": {
                "host": "127.0.0.1",
                "port": 0,
                "write_key": "${AUDIENCESYNC_WRITE_KEY}",
                "bearer_tokens": [BEARER],
                "flush_after": "200ms",
                **(serve or {}),
            },
            "audiences": audiences if audiences is not None else [stream_audience()],
        }
        if conversions is not None:
            doc["conversions"] = conversions
        self.path.write_text(yaml.safe_dump(doc))
        return self.path

    @property
    def env(self) -> dict[str, str]:
        return {"META_ACCESS_TOKEN": self.emu.token, "AUDIENCESYNC_WRITE_KEY": WRITE_KEY}

    def config(
        self,
        serve: dict[str, Any] | None = None,
        audiences: list[dict[str, Any]] | None = None,
        conversions: dict[str, Any] | None = None,
    ) -> Config:
        return load_config(self.write(serve, audiences, conversions), env=self.env)


@pytest.fixture
def project(tmp_path: Path, emu: Any) -> StreamProject:
    return StreamProject(tmp_path, emu)


@pytest.fixture
def server_for(project: StreamProject) -> Iterator[Callable[..., Any]]:
    """Start a server on a thread for a config; every server started is stopped after the test."""
    from audiencesync.stream.server import StreamServer

    started: list[StreamServer] = []

    def start(
        serve: dict[str, Any] | None = None,
        audiences: list[dict[str, Any]] | None = None,
        conversions: dict[str, Any] | None = None,
    ) -> StreamServer:
        srv = StreamServer(project.config(serve, audiences, conversions)).start()
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.stop()


class Facebook:
    """The emulator's audiences and members, read over HTTP."""

    def __init__(self, url: str):
        self.url = url

    def audiences(self) -> list[dict[str, Any]]:
        return httpx.get(f"{self.url}/_emulator/audiences").json()

    def audience(self, name: str) -> dict[str, Any] | None:
        return next((a for a in self.audiences() if a.get("name") == name), None)

    def members(self, name: str) -> list[dict[str, Any]]:
        aud = self.audience(name)
        if aud is None:
            return []
        return httpx.get(f"{self.url}/_emulator/audiences/{aud['id']}/members").json()["members"]

    def column(self, name: str, key: str) -> set[str]:
        return {m[key] for m in self.members(name) if m.get(key)}

    def wait_for(self, check: Callable[[], bool], timeout: float = 15.0) -> float:
        """Seconds until `check()` held; fails the test after `timeout`."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if check():
                return time.monotonic() - t0
            time.sleep(0.05)
        raise AssertionError(f"not reached within {timeout}s")


@pytest.fixture
def fb(emu: Any) -> Facebook:
    return Facebook(emu.url)
