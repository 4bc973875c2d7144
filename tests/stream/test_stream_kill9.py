"""kill -9 of the server process mid-stream, then a restart.

The server runs as a process of its own (`python -m audiencesync.stream.server`). One sender sends
batches in order and records what each got back. After the kill, the request that was in flight
has no answer: like Segment, the sender sends it again once the server is back. Requests refused
(401, 400) are never sent again. In the end, Facebook holds exactly the members that the accepted
changes, applied in order, leave in the audience: nothing accepted is lost, nothing refused
arrived, and no audience was created twice.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from audiencesync.stream.server import free_port, wait_healthy

from .conftest import KEY, WRITE_KEY, StreamProject, stream_audience

MULTI = "Ordered in the last 30 days"
BATCH = 20


def identify(user: str, member: bool) -> dict[str, Any]:
    return {"type": "identify", "userId": user, "traits": {KEY: member, "email": f"{user}@example.com"}}


def plan(batches: int) -> list[list[dict[str, Any]]]:
    """Batches of new users entering, with leaves of earlier users and in/out flips mixed in."""
    out = []
    for b in range(batches):
        calls = [identify(f"u{b}-{i}", True) for i in range(BATCH - 4)]
        if b >= 2:
            calls += [identify(f"u{b - 2}-0", False), identify(f"u{b - 2}-1", False)]
        calls += [identify(f"f{b}", True), identify(f"f{b}", b % 2 == 0)]
        out.append(calls)
    return out


def expected(accepted: list[list[dict[str, Any]]]) -> set[str]:
    state: dict[str, bool] = {}
    for calls in accepted:
        for c in calls:
            state[c["userId"]] = c["traits"][KEY]
    return {u for u, member in state.items() if member}


class Server:
    """`python -m audiencesync.stream.server` as a child process."""

    def __init__(self, project: StreamProject, log: Path):
        self.project, self.log = project, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, url: str) -> None:
        env = {**os.environ, **self.project.env}
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "audiencesync.stream.server", "--config", str(self.project.path)],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        wait_healthy(url, 30, alive=lambda: self.proc is not None and self.proc.poll() is None)

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.mark.timeout(120)
def test_kill_9_mid_stream_loses_nothing_accepted_and_sends_nothing_refused(project, fb, tmp_path):
    port = free_port()
    project.write({"port": port, "flush_after": "100ms"})
    url = f"http://127.0.0.1:{port}"
    server = Server(project, tmp_path / "server.log")
    batches = plan(60)
    accepted: list[list[dict[str, Any]]] = []
    in_doubt: list[list[dict[str, Any]]] = []
    client = httpx.Client(base_url=url, auth=(WRITE_KEY, ""), timeout=5)

    def send() -> None:
        for calls in batches:
            try:
                r = client.post("/v1/batch", json={"batch": calls})
            except httpx.HTTPError:
                in_doubt.append(calls)
                return
            assert r.status_code == 200, r.text
            accepted.append(calls)

    try:
        server.start(url)
        sender = threading.Thread(target=send)
        sender.start()
        deadline = time.monotonic() + 30
        while len(accepted) < 15 and sender.is_alive() and time.monotonic() < deadline:
            time.sleep(0.005)
        server.kill9()
        sender.join(10)
        assert not sender.is_alive()
        assert 15 <= len(accepted) < len(batches), "the kill must land mid-stream"
        sent_before_kill = len(accepted) + len(in_doubt)

        server.start(url)
        for calls in in_doubt:
            assert client.post("/v1/batch", json={"batch": calls}).status_code == 200
            accepted.append(calls)
        refused_auth = client.post("/v1/batch", json={"batch": [identify("never-a", True)]}, auth=("wrong", ""))
        assert refused_auth.status_code == 401
        malformed = identify("never-b", True)
        malformed["traits"] = {k: "perhaps" if v is True else v for k, v in malformed["traits"].items()}
        refused_bad = client.post("/v1/batch", json={"batch": [malformed, {"type": "page", "userId": "never-c"}]})
        assert refused_bad.status_code == 200 and refused_bad.json()["refused"] == 1  # refused alone, page skipped
        for calls in batches[sent_before_kill:]:
            assert client.post("/v1/batch", json={"batch": calls}).status_code == 200
            accepted.append(calls)

        want = expected(accepted)
        fb.wait_for(lambda: fb.column(MULTI, "EXTERN_ID") == want, timeout=30)
        members = fb.members(MULTI)
        assert len(members) == len(want), "one row per member: nothing twice"
        assert not {m["EXTERN_ID"] for m in members} & {"never-a", "never-b"}
        names = [a["name"] for a in fb.audiences() if not a.get("deleted")]
        assert names == [MULTI], "no audience created twice"
        fb.wait_for(lambda: httpx.get(f"{url}/health").json()["queue_depth"] == 0, timeout=10)
    finally:
        client.close()
        server.stop()


def test_changes_queued_before_a_kill_are_flushed_by_the_next_start(project, fb, tmp_path):
    """A change accepted while Facebook was unreachable is still sent after kill -9 and a restart."""
    port = free_port()
    path = project.write({"port": port, "flush_after": "100ms"}, audiences=[stream_audience()])
    text = path.read_text().replace(project.emu.url, "http://127.0.0.1:9")
    path.write_text(text)
    url = f"http://127.0.0.1:{port}"
    server = Server(project, tmp_path / "server.log")
    try:
        server.start(url)
        r = httpx.post(f"{url}/v1/identify", json=identify("kept", True), auth=(WRITE_KEY, ""), timeout=5)
        assert r.status_code == 200
        time.sleep(0.5)
        assert fb.audiences() == []
        server.kill9()
        path.write_text(text.replace("http://127.0.0.1:9", project.emu.url))
        server.start(url)
        fb.wait_for(lambda: fb.column(MULTI, "EXTERN_ID") == {"kept"}, timeout=15)
    finally:
        server.stop()
