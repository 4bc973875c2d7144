"""Starting the emulator: EmulatorServer in-process, and serve() as the CLI runs it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from audiencesync.emulator import EmulatorConfig, EmulatorServer, create_app
from audiencesync.emulator.server import _free_port


def test_emulator_server_attributes() -> None:
    server = EmulatorServer(EmulatorConfig(token="tok-1"))
    with server:
        assert server.url == f"http://127.0.0.1:{server.port}"
        assert server.token == "tok-1" and server.config.token == "tok-1"
        assert server.app.emulator.backend is not None
        r = httpx.get(f"{server.url}/v25.0/act_1", params={"access_token": "tok-1"})
        assert r.status_code == 200
    try:
        httpx.get(f"{server.url}/_emulator/health", timeout=0.5)
        raise AssertionError("server still answering after stop()")
    except httpx.TransportError:
        pass


def test_two_servers_run_side_by_side() -> None:
    with EmulatorServer() as a, EmulatorServer() as b:
        assert a.port != b.port
        httpx.post(
            f"{a.url}/v25.0/act_1/customaudiences",
            params={"access_token": a.token, "customer_file_source": "USER_PROVIDED_ONLY"},
        )
        assert len(httpx.get(f"{a.url}/_emulator/audiences").json()) == 1
        assert httpx.get(f"{b.url}/_emulator/audiences").json() == []


def test_create_app_is_plain_asgi() -> None:
    app = create_app()
    assert callable(app) and app.emulator.config.token == "emulator-token"


def test_serve_prints_url_and_token_and_saves_state(tmp_path: Path) -> None:
    port = _free_port("127.0.0.1")
    state = tmp_path / "s.json"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "audiencesync.emulator",
            "--port",
            str(port),
            "--token",
            "cli-tok",
            "--state",
            str(state),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        lines = []
        deadline = time.monotonic() + 20
        url = f"http://127.0.0.1:{port}"
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/_emulator/health", timeout=0.5).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        r = httpx.post(
            f"{url}/v25.0/act_9/customaudiences",
            data={"access_token": "cli-tok", "customer_file_source": "USER_PROVIDED_ONLY"},
        )
        assert r.status_code == 200
        # the token must never appear in the server's own log lines
        httpx.get(f"{url}/v25.0/act_9", params={"access_token": "cli-tok"})
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=20)
    lines = out.splitlines()
    assert any(url in line for line in lines[:3])
    assert any("cli-tok" in line for line in lines[:5])
    log_lines = [line for line in lines if "act_9" in line]
    assert log_lines and all("cli-tok" not in line for line in log_lines)
    assert state.exists() and r.json()["id"].encode() in state.read_bytes()
