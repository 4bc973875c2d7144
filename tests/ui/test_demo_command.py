"""`audiencesync demo` ends by itself, and its last lines give the command that opens the dashboard on
the demo's state; that command, run as printed, serves the dashboard with the demo's audiences."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import time
from pathlib import Path

import httpx
from tests.ui.conftest import command

from audiencesync.stream.server import free_port


def test_the_demo_ends_with_the_command_that_opens_its_dashboard(tmp_path: Path) -> None:
    done = subprocess.run(
        [*command(), "demo", "--workdir", str(tmp_path / "demo"), "--customers", "300"],
        capture_output=True, text=True, timeout=240, env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    last = [line.strip() for line in done.stdout.strip().splitlines()[-2:]]
    assert last[0].startswith("Open the dashboard on this state")
    env_part, _, rest = last[1].partition(" ")
    name, _, token = env_part.partition("=")
    argv = shlex.split(rest)
    assert name == "META_ACCESS_TOKEN" and argv[0] == ".venv/bin/audiencesync" and argv[1] == "ui"

    port = free_port()
    log = tmp_path / "ui.log"
    with log.open("w") as out:
        ui = subprocess.Popen(
            [*command(), *argv[1:], "--port", str(port)],
            env={**os.environ, name: token, "PYTHONUNBUFFERED": "1"}, stdout=out, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not (found := re.search(r"one-time password (\S+)", log.read_text())):
            assert ui.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        url = f"http://127.0.0.1:{port}"
        assert f"the dashboard is at {url}/" in log.read_text()
        with httpx.Client(base_url=url) as c:
            while True:
                try:
                    c.get("/login")
                    break
                except httpx.HTTPError:
                    assert time.monotonic() < deadline
                    time.sleep(0.1)
            assert c.get("/api/audiences").status_code == 401
            assert c.post("/login", data={"password": found.group(1)}).status_code == 303
            names = [a["name"] for a in c.get("/api/audiences").json()["audiences"]]
            assert names == ["VIP customers", "High value customers"]
    finally:
        ui.terminate()
        ui.wait(10)
