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

With `--members N` (issue 15) it measures instead, in one run:

1. the flush cost at 10,000 members and at N, side by side: each size is seeded into a fresh state
   (the members table as the stream door writes it, synced whole to a fresh emulator process by the
   first sync), then `--rounds` flushes of `--changes` changes each (four in five new people, one in
   five seeded members leaving) are queued as `serve` queues them and flushed by the flusher in this
   process, each timed whole (apply to the members table, plan, upload, commit);
2. at N members, `serve` as its own process at `--rate` changes/s for `--seconds`: acknowledgements
   are read from its queue file (the flusher deletes a change only after Facebook acknowledged it and
   the state recorded it), since N members are too many to read from the emulator four times a second;
3. the accept rate of the same server: `--accept-total` new members in /v1/batch requests of 1,000
   identify calls, 4 in flight, while its flusher keeps flushing into the large audience.

Usage: .venv/bin/python bench/stream.py [--rate 1000] [--seconds 60] [--batch 50] [--poll 0.25]
       .venv/bin/python bench/stream.py --members 1000000 [--changes 2000] [--rounds 5] [--no-serve]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import random
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

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


def person_pk(user: str) -> str:
    """The stream door's primary key of a Segment user (`stream/members.person_key`)."""
    return hashlib.sha256(f"user:{user}".encode()).hexdigest()


def poll_queue(queue: Path, run: Run, interval: float, done: threading.Event) -> None:
    """On its own thread: read which people still wait in the server's queue (SQLite in WAL mode,
    read without blocking the server); an accepted change whose person no longer waits in a read
    that began after it was accepted is acknowledged, timed when that read ended."""
    open_changes: list[tuple[str, str, bool, float]] = []
    seen = 0
    con = sqlite3.connect(f"file:{queue}?mode=ro", uri=True, timeout=30)
    try:
        while not done.is_set():
            t0 = time.monotonic()
            with run.lock:
                fresh = run.accepted[seen:]
                seen += len(fresh)
            open_changes += [(person_pk(user), user, member, at) for user, member, at in fresh]
            waiting = {r[0] for r in con.execute("SELECT DISTINCT pk FROM stream_changes").fetchall()}
            now = time.monotonic()
            still = []
            with run.lock:
                for pk, user, member, at in open_changes:
                    if at < t0 and pk not in waiting:
                        (run.first_present if member else run.first_absent).setdefault(user, now)
                    else:
                        still.append((pk, user, member, at))
                run.polls += 1
                run.poll_seconds += now - t0
            open_changes = still
            done.wait(max(0.0, interval - (time.monotonic() - t0)))
    finally:
        con.close()


def unacknowledged(run: Run) -> int:
    return sum(1 for user, member, _ in run.accepted if run.acknowledged(user, member) is None)


async def drive(
    server: str, emulator: str, args: argparse.Namespace, run: Run | None = None, queue: Path | None = None
) -> Run:
    """Send at `--rate` for `--seconds`; acknowledgements read from the emulator's members, or with
    `queue` (a large audience, whose members are too many to read four times a second) from the
    server's queue file: a change is acknowledged once the flusher deleted it, which it does only
    after Facebook acknowledged its batch and the state recorded it."""
    run, rng = run or Run(), random.Random(7)
    done = threading.Event()
    target, source = (poll_queue, queue) if queue is not None else (poll, emulator)
    poller = threading.Thread(target=target, args=(source, run, args.poll, done), daemon=True)
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


# -- flush cost at two audience sizes (--members) ---------------------------------------------------


def seed_members(config_path: Path, members: int) -> float:
    """A stream audience of `members` people, in the members table as the stream door writes them
    (hashed email, external id, pk), synced to the emulator by the pipeline's first sync; seconds taken."""
    from audiencesync import pipeline
    from audiencesync.config import load_config
    from audiencesync.state.store import StateStore

    config = load_config(config_path)
    with StateStore(config.state) as store:
        store.con.execute(
            """INSERT INTO st.stream_members (audience_key, pk, external_id, email)
               SELECT ?, sha256('user:seed-' || i), 'seed-' || i, sha256('seed-' || i || '@example.com')
               FROM range(?) t(i)""",
            [KEY, members],
        )
        t0 = time.perf_counter()
        report = pipeline.sync(config, include_stream=True, store=store)
        took = time.perf_counter() - t0
    status = report.audiences[0].status
    if status != "ok":
        raise SystemExit(f"seeding {members:,} members: the first sync ended {status}: {report.audiences[0].error}")
    return took


def flush_rounds(config_path: Path, changes: int, rounds: int, whole: bool = False) -> tuple[list[float], list[float]]:
    """`rounds` flushes of `changes` changes each (four in five new people entering, one in five
    seeded members leaving), queued as `serve` queues them; each flush timed whole (apply, plan,
    upload to the emulator, commit). With `whole`, every other flush plans the whole audience, as
    before issue 15 (the targeted planner told it may not target): (targeted times, whole times)."""
    from audiencesync.config import load_config
    from audiencesync.load.graph import GraphClient
    from audiencesync.plan.targeted import TargetedPlanner
    from audiencesync.stream.runtime import StreamRuntime

    config = load_config(config_path)
    client = GraphClient(config.meta)
    rt = StreamRuntime(config, client=client)
    rt.writer.start()
    leavers = iter(range(10**9))
    took: tuple[list[float], list[float]] = ([], [])
    can_target = TargetedPlanner.can_target
    try:
        for r in range(rounds):
            calls = []
            for j in range(changes):
                if j % 5 == 4:
                    leaver = f"seed-{next(leavers)}"
                    calls.append({"type": "identify", "userId": leaver, "traits": {KEY: False}})
                else:
                    user = f"new-{r}-{j}"
                    traits = {KEY: True, "email": f"{user}@example.com"}
                    calls.append({"type": "identify", "userId": user, "traits": traits})
            rt.writer.put_blocking(rt.parser.segment({"batch": calls}, "batch").changes)
            waiting = rt.flusher.waiting()
            full = whole and r % 2 == 1
            TargetedPlanner.can_target = (lambda self: False) if full else can_target  # type: ignore[method-assign]
            t0 = time.perf_counter()
            outcome = rt.flusher.flush(waiting)
            took[full].append(time.perf_counter() - t0)
            TargetedPlanner.can_target = can_target  # type: ignore[method-assign]
            if outcome.kept:
                raise SystemExit(f"a flush failed: {outcome.errors}")
    finally:
        rt.writer.stop()
        rt.stop()
        client.close()
    return took


def write_config(path: Path, emulator: str, port: int, flush_after: str) -> None:
    path.write_text(
        yaml.safe_dump(
            {
                "meta": {"graph_url": emulator, "access_token": TOKEN, "ad_account_id": "act_1234567890"},
                "state": "state.duckdb",
                "serve": {
                    "host": "127.0.0.1",
                    "port": port,
                    "write_key": WRITE_KEY,
                    "flush_after": flush_after,
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


def start_emulator(port: int, log: IO[bytes]) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "audiencesync.emulator", "--port", str(port), "--token", TOKEN],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    wait_up(f"http://127.0.0.1:{port}/_emulator/health", proc)
    return proc


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()


async def accept_rate(server: str, total: int, batch: int, in_flight: int) -> tuple[int, int, float, list[float]]:
    """`total` new members as fast as `serve` takes them: /v1/batch requests of `batch` identify
    calls, `in_flight` at a time. Returns (accepted, refused, seconds, answer seconds per request)."""
    sem = asyncio.Semaphore(in_flight)
    answers: list[float] = []
    counts = [0, 0]

    async def one(c: httpx.AsyncClient, first: int) -> None:
        calls = [
            {"type": "identify", "userId": f"bulk-{i}", "traits": {KEY: True, "email": f"bulk-{i}@example.com"}}
            for i in range(first, min(first + batch, total))
        ]
        body = orjson.dumps({"batch": calls})
        async with sem:
            t0 = time.monotonic()
            try:
                ok = (await c.post("/v1/batch", content=body)).status_code == 200
            except httpx.HTTPError:
                ok = False
            answers.append(time.monotonic() - t0)
        counts[0 if ok else 1] += len(calls)

    headers = {"Content-Type": "application/json"}
    limits = httpx.Limits(max_connections=in_flight)
    auth = (WRITE_KEY, "")
    async with httpx.AsyncClient(base_url=server, auth=auth, timeout=60, headers=headers, limits=limits) as c:
        t0 = time.monotonic()
        await asyncio.gather(*(one(c, first) for first in range(0, total, batch)))
        took = time.monotonic() - t0
    return counts[0], counts[1], took, answers


def serve_at_scale(
    config: Path, emulator: str, port: int, members: int, args: argparse.Namespace, log: IO[bytes]
) -> None:
    """`serve` (its own process) on the state `flush_cost` left: `--rate` changes/s for `--seconds`
    (new people entering, seeded members leaving), acknowledgements read from its queue file; then
    the accept rate of bulk calls, while its flusher keeps flushing into the large audience."""
    server = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "audiencesync.stream.server", "--config", str(config), "--log-level", "warning"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_up(f"{server}/health", proc, timeout=300)
        run = Run()
        first = args.rounds * args.changes  # the flush rounds removed seeded members below this number
        seeds = [f"seed-{i}" for i in range(first, min(members, first + 100_000))]
        run.entered.update(seeds)
        run.leavable.extend(seeds)
        load_before = os.getloadavg()[0]
        queue = Path(f"{config.parent / 'state.duckdb'}.queue.sqlite")
        run = asyncio.run(drive(server, emulator, args, run, queue))
        metrics = httpx.get(f"{server}/metrics").text
        print(f"at {members:,} members, through `serve` (its own process) at {args.rate:,} changes/s:")
        print_run(run, args, metrics, load_before, "the flusher deleted them from the queue after Facebook's answer")
        found = [a for a in orjson.loads(httpx.get(f"{emulator}/_emulator/audiences").content) if a["name"] == NAME]
        held = orjson.loads(httpx.get(f"{emulator}/_emulator/audiences/{found[0]['id']}/members?count_only=1").content)
        print(f"  Facebook audience at the end: {held['count']:,} members")
        load_before = os.getloadavg()[0]
        accepted, refused, took, answers = asyncio.run(accept_rate(server, args.accept_total, 1000, 4))
        print(
            f"  accept rate: {accepted:,} membership changes in {took:.1f} s = {accepted / took:,.0f}/s "
            f"(/v1/batch of 1,000 identify calls, 4 requests in flight; {refused:,} refused; target ≥ 10,000/s: "
            f"{'met' if accepted / took >= 10_000 and not refused else 'NOT met'}); answer p50 "
            f"{percentile(answers, 50) * 1000:.0f} ms, p99 {percentile(answers, 99) * 1000:.0f} ms; "
            f"load average before {load_before:.1f}, after {os.getloadavg()[0]:.1f}"
        )
    finally:
        stop([proc])


def flush_cost(args: argparse.Namespace) -> None:
    """The flush cost at 10,000 members and at `--members`, side by side, each against a fresh
    emulator process and state file (in this process: the flusher as `serve` runs it, no HTTP door)."""
    sizes = sorted({10_000, args.members})
    results: dict[int, tuple[float, list[float]]] = {}
    load_before = os.getloadavg()[0]
    for size in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            emu_port, srv_port = free_port(), free_port()
            config = Path(tmp) / "audiencesync.yml"
            write_config(config, f"http://127.0.0.1:{emu_port}", srv_port, args.flush_after)
            cwd = os.getcwd()
            os.chdir(tmp)
            log = (Path(tmp) / "emulator.log").open("wb")
            procs = [start_emulator(emu_port, log)]
            try:
                seeded = seed_members(config, size)
                targeted, whole = flush_rounds(config, args.changes, args.rounds, args.compare_whole)
                results[size] = (seeded, targeted)
                if whole:
                    print(
                        f"  {size:>9,} members, whole-audience plan (before issue 15), alternating with the "
                        f"targeted flushes: {statistics.median(whole):.3f} s  [{', '.join(f'{t:.3f}' for t in whole)}]"
                    )
                if size == sizes[-1] and not args.no_serve:
                    serve_at_scale(config, f"http://127.0.0.1:{emu_port}", srv_port, size, args, log)
            finally:
                stop(procs)
                log.close()
                os.chdir(cwd)
        seeded, took = results[size]
        print(
            f"  {size:>9,} members: first sync {seeded:.1f} s; flush of {args.changes:,} changes "
            f"(median of {len(took)}) {statistics.median(took):.3f} s  [{', '.join(f'{t:.3f}' for t in took)}]"
        )
    small, large = (statistics.median(results[s][1]) for s in (sizes[0], sizes[-1]))
    print(
        f"stream flush cost: {large / small:.2f}x at {sizes[-1]:,} members vs {sizes[0]:,} "
        f"(target ≤ 3x: {'met' if large <= 3 * small else 'NOT met'}); "
        f"load average before {load_before:.1f}, after {os.getloadavg()[0]:.1f}"
    )


def print_run(run: Run, args: argparse.Namespace, metrics: str, load_before: float, by: str) -> None:
    lat = latencies(run)
    missing = len(run.accepted) - len(lat)
    leaves = sum(1 for _, member, _ in run.accepted if not member)
    print(
        f"stream: {len(run.accepted):,} changes accepted ({leaves:,} of them leaves) in {run.send_seconds:.1f} s "
        f"({len(run.accepted) / run.send_seconds:,.0f}/s; target {args.rate:,}/s as /v1/batch requests of "
        f"{args.batch} identify calls), {run.refused:,} refused"
    )
    print(
        f"  acknowledged ({by}): {len(lat):,}; not within {args.drain:g} s after sending stopped: {missing:,}"
    )
    if run.present:
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
    parser.add_argument("--members", type=int, help="measure the flush cost at 10,000 and this many members")
    parser.add_argument("--changes", type=int, default=2000, help="changes per flush (with --members)")
    parser.add_argument("--rounds", type=int, default=5, help="flushes timed per audience size (with --members)")
    parser.add_argument("--accept-total", type=int, default=200_000, help="bulk changes sent for the accept rate")
    parser.add_argument("--no-serve", action="store_true", help="with --members: only the flush cost")
    parser.add_argument(
        "--compare-whole", action="store_true", help="with --members: every other flush plans the whole audience"
    )
    args = parser.parse_args()
    if args.members:
        flush_cost(args)
        return

    emu_port, srv_port = free_port(), free_port()
    emulator, server = f"http://127.0.0.1:{emu_port}", f"http://127.0.0.1:{srv_port}"
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "audiencesync.yml"
        write_config(config, emulator, srv_port, args.flush_after)
        log = (args.log or Path(tmp) / "processes.log").open("wb")
        try:
            procs.append(start_emulator(emu_port, log))
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
            stop(procs)
            log.close()

    print_run(run, args, metrics, load_before, "the emulator")


if __name__ == "__main__":
    main()
