"""Benchmark of the stream door: membership changes in, Facebook (the emulator) acknowledging them.

  1,000 membership changes per second for 60 s, as Segment identify calls in `/v1/batch` requests,
  against `python -m audiencesync.stream.server` (flush_after 2 s, flush_size 10,000: the defaults)
  syncing to the emulator; both are processes of their own on 127.0.0.1, as a user runs them.
  Target: p95 ≤ 5 s from accepted (the server's 200) to acknowledged by the emulator.

Four in five changes are new users entering (with an email); one in five is a user leaving whose
entry the emulator already holds. A poller thread reads the Facebook audience's members from the
emulator (`GET /_emulator/audiences/{id}/members`) every `--poll` seconds (or back to back when a
read takes longer); a change is acknowledged at the first read whose answer shows it (the user
present after entering, absent after leaving), timed when that answer arrived, so the figures err
on the slow side by up to one read (its interval plus its duration, both printed).

The run is bounded: sending stops after `--seconds`, and waiting for the last acknowledgements stops
after `--drain` more seconds (anything unacknowledged by then is reported as such).

Usage: .venv/bin/python bench/stream.py [--rate 1000] [--seconds 60] [--batch 50] [--poll 0.25]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson
import yaml

KEY = "order_completed_last_30days"
NAME = "Ordered in the last 30 days"
WRITE_KEY = "bench-write-key"
TOKEN = "bench-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_up(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{url}: the process exited ({proc.returncode})")
        try:
            httpx.get(url, timeout=1).raise_for_status()
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not answer within {timeout}s")


@dataclass
class Run:
    """What the sender accepted and what the poller saw, on one monotonic clock."""

    accepted: list[tuple[str, bool, float]] = field(default_factory=list)
    refused: int = 0
    entered: set[str] = field(default_factory=set)
    next_user: int = 0
    first_present: dict[str, float] = field(default_factory=dict)
    first_absent: dict[str, float] = field(default_factory=dict)
    present: frozenset[str] = frozenset()
    leavable: deque[str] = field(default_factory=deque)
    answer_seconds: list[float] = field(default_factory=list)
    polls: int = 0
    poll_seconds: float = 0.0
    send_seconds: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def acknowledged(self, user: str, member: bool) -> float | None:
        with self.lock:
            return (self.first_present if member else self.first_absent).get(user)


def next_batch(run: Run, size: int, leave_share: float, rng: random.Random) -> list[dict]:
    calls = []
    for _ in range(size):
        user = None
        if rng.random() < leave_share:
            with run.lock:
                while run.leavable and user is None:
                    candidate = run.leavable.popleft()
                    user = candidate if candidate in run.entered else None
        if user is not None:
            member = False
            run.entered.discard(user)
        else:
            user, member = f"user-{run.next_user}", True
            run.next_user += 1
        traits = {KEY: member, **({"email": f"{user}@example.com"} if member else {})}
        calls.append({"type": "identify", "userId": user, "traits": traits})
    return calls


async def send(client: httpx.AsyncClient, run: Run, calls: list[dict]) -> None:
    t0 = time.monotonic()
    try:
        ok = (await client.post("/v1/batch", content=orjson.dumps({"batch": calls}))).status_code == 200
    except httpx.HTTPError:
        ok = False
    now = time.monotonic()
    run.answer_seconds.append(now - t0)
    if not ok:
        run.refused += len(calls)
        return
    for c in calls:
        run.accepted.append((c["userId"], c["traits"][KEY], now))
        if c["traits"][KEY]:
            run.entered.add(c["userId"])


def poll(emulator: str, run: Run, interval: float, done: threading.Event) -> None:
    """On its own thread: read the Facebook audience's members and note when each user came and went."""
    audience_id = None
    with httpx.Client(base_url=emulator, timeout=30) as emu:
        while not done.is_set():
            t0 = time.monotonic()
            if audience_id is None:
                found = [a for a in orjson.loads(emu.get("/_emulator/audiences").content) if a["name"] == NAME]
                audience_id = found[0]["id"] if found else None
            if audience_id is not None:
                body = orjson.loads(emu.get(f"/_emulator/audiences/{audience_id}/members").content)
                now = time.monotonic()
                present = frozenset(m["EXTERN_ID"] for m in body["members"])
                with run.lock:
                    for user in present - run.present:
                        run.first_present.setdefault(user, now)
                        run.leavable.append(user)
                    for user in run.present - present:
                        run.first_absent.setdefault(user, now)
                    run.present = present
                    run.polls += 1
                    run.poll_seconds += now - t0
            done.wait(max(0.0, interval - (time.monotonic() - t0)))


def unacknowledged(run: Run) -> int:
    return sum(1 for user, member, _ in run.accepted if run.acknowledged(user, member) is None)


async def drive(server: str, emulator: str, args: argparse.Namespace) -> Run:
    run, rng = Run(), random.Random(7)
    done = threading.Event()
    poller = threading.Thread(target=poll, args=(emulator, run, args.poll, done), daemon=True)
    poller.start()
    limits = httpx.Limits(max_connections=16)
    headers = {"Content-Type": "application/json"}
    async with httpx.AsyncClient(
        base_url=server, auth=(WRITE_KEY, ""), timeout=30, limits=limits, headers=headers
    ) as c:
        per_second = args.rate / args.batch
        t0 = time.monotonic()
        tasks: list[asyncio.Task[None]] = []
        for i in range(int(args.seconds * per_second)):
            await asyncio.sleep(max(0.0, t0 + i / per_second - time.monotonic()))
            tasks.append(asyncio.create_task(send(c, run, next_batch(run, args.batch, args.leave_share, rng))))
        await asyncio.gather(*tasks)
        run.send_seconds = time.monotonic() - t0
    deadline = time.monotonic() + args.drain
    while unacknowledged(run) and time.monotonic() < deadline:
        await asyncio.sleep(0.25)
    done.set()
    poller.join(30)
    run.poll_seconds /= max(run.polls, 1)
    return run


def latencies(run: Run) -> list[float]:
    out = []
    for user, member, accepted in run.accepted:
        acked = run.acknowledged(user, member)
        if acked is not None:
            out.append(max(0.0, acked - accepted))
    return out


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def metric(text: str, name: str) -> str:
    return next((line.split()[-1] for line in text.splitlines() if line.startswith(name)), "0")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=int, default=1000, help="membership changes per second")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--batch", type=int, default=50, help="identify calls per /v1/batch request")
    parser.add_argument("--poll", type=float, default=0.25, help="seconds between reads of the emulator")
    parser.add_argument("--drain", type=float, default=30, help="seconds to wait for the last acknowledgements")
    parser.add_argument("--leave-share", type=float, default=0.2, help="share of changes that are users leaving")
    parser.add_argument("--flush-after", default="2s")
    parser.add_argument("--log", type=Path, help="keep the server's and the emulator's output in this file")
    args = parser.parse_args()

    emu_port, srv_port = free_port(), free_port()
    emulator, server = f"http://127.0.0.1:{emu_port}", f"http://127.0.0.1:{srv_port}"
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "audiencesync.yml"
        config.write_text(
            yaml.safe_dump(
                {
                    "meta": {"graph_url": emulator, "access_token": TOKEN, "ad_account_id": "act_1234567890"},
                    "state": "state.duckdb",
                    "serve": {
                        "host": "127.0.0.1",
                        "port": srv_port,
                        "write_key": WRITE_KEY,
                        "flush_after": args.flush_after,
                        "flush_size": 10000,
                    },
                    "audiences": [
                        {
                            "name": NAME,
                            "source": "stream",
                            "key": KEY,
                            "multi_key": True,
                            "min_size": 1,
                            "customer_file_source": "USER_PROVIDED_ONLY",
                        }
                    ],
                }
            )
        )
        log = (args.log or Path(tmp) / "processes.log").open("wb")
        try:
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "audiencesync.emulator", "--port", str(emu_port), "--token", TOKEN],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
            wait_up(f"{emulator}/_emulator/health", procs[0])
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "audiencesync.stream.server",
                        "--config",
                        str(config),
                        "--log-level",
                        "warning",
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
            wait_up(f"{server}/health", procs[1])
            load_before = os.getloadavg()[0]
            run = asyncio.run(drive(server, emulator, args))
            metrics = httpx.get(f"{server}/metrics").text
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                try:
                    p.wait(15)
                except subprocess.TimeoutExpired:
                    p.kill()
            log.close()

    lat = latencies(run)
    missing = len(run.accepted) - len(lat)
    leaves = sum(1 for _, member, _ in run.accepted if not member)
    print(
        f"stream: {len(run.accepted):,} changes accepted ({leaves:,} of them leaves) in {run.send_seconds:.1f} s "
        f"({len(run.accepted) / run.send_seconds:,.0f}/s; target {args.rate:,}/s as /v1/batch requests of "
        f"{args.batch} identify calls), {run.refused:,} refused"
    )
    print(
        f"  acknowledged by the emulator: {len(lat):,}; not within {args.drain:g} s after sending stopped: {missing:,}"
    )
    print(f"  Facebook audience at the end: {len(run.present):,} members")
    if lat:
        p50, p95, p99 = (percentile(lat, p) for p in (50, 95, 99))
        print(f"  accepted → acknowledged: p50 {p50:.2f} s  p95 {p95:.2f} s  p99 {p99:.2f} s  max {max(lat):.2f} s")
        print(f"  target p95 ≤ 5 s: {'met' if p95 <= 5 and not missing else 'NOT met'}")
    a50, a95 = percentile(run.answer_seconds, 50), percentile(run.answer_seconds, 95)
    print(f"  the server's answer to a batch (send → 200): p50 {a50 * 1000:.0f} ms  p95 {a95 * 1000:.0f} ms")
    print(f"  polls: {run.polls} every {args.poll:g} s (a poll took {run.poll_seconds * 1000:.0f} ms on average)")
    flushes = metric(metrics, 'audiencesync_stream_flushes_total{outcome="ok"}')
    failed = metric(metrics, 'audiencesync_stream_flushes_total{outcome="failed"}')
    print(
        f"  server: flushes ok {flushes}, failed {failed}; load average before {load_before:.1f}, "
        f"after {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
