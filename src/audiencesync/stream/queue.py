"""The durable queue: accepted changes, written to disk before the caller hears 200.

One writer thread owns every insert. HTTP handlers hand it their changes and wait; it takes
whatever has gathered, writes it in one transaction (group commit: many calls, one commit) and
then answers them all. A change is in the ingest log (`state/ingest.py`, a SQLite file beside
the state, so accepting never waits for a sync that holds the state file) from the moment its
call is answered until the flusher has synced it to Facebook, so a crash anywhere re-flushes it.

The queue holds hashed keys only (see `members.py`), as does `st.stream_members`, the table of
who is currently in each stream audience that the pipeline reads as the audience's source.
"""

from __future__ import annotations

import asyncio
import logging
import math
import queue as stdqueue
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from audiencesync.state import stream_members
from audiencesync.state.ingest import IngestLog, pack
from audiencesync.state.store import StateStore
from audiencesync.stream.members import COLUMNS, Change

log = logging.getLogger(__name__)

SLOW_COMMIT_S = 1.0
MAX_GROUP = 50_000
"""Changes written in one transaction at most; more wait for the next one."""


def create_tables(store: StateStore, log: IngestLog) -> None:
    """Move the queue out of a state file an older version wrote (the members table is the state's
    own, `state/schema.py`)."""
    rows = stream_members.take_old_queue(store.con)
    if rows:
        log.append(
            (*r[:5], pack({c: v for c, v in zip(COLUMNS, r[5:], strict=True) if v is not None})) for r in rows
        )
    stream_members.drop_old_queue(store.con)


class QueueFull(Exception):
    """The queue is over its bound; the caller should come back after `retry_after` seconds."""

    def __init__(self, retry_after: int):
        super().__init__(f"the queue is full; retry after {retry_after}s")
        self.retry_after = retry_after


class WriterStopped(RuntimeError):
    """The writer is not running (shutting down, or it failed); nothing was written."""


@dataclass
class QueueStats:
    """What the writer and the flusher share: how much waits, since when, and when to come back.

    `wake` is set (under `cond`) whenever the flusher should look again sooner than it planned.
    """

    flush_size: int
    pending: int = 0
    inflight: int = 0
    oldest: float | None = None
    retry_at: float = 0.0
    wake: bool = False
    cond: threading.Condition = field(default_factory=threading.Condition)

    def load(self, log: IngestLog) -> None:
        n, oldest = log.depth()
        with self.cond:
            self.pending, self.oldest = int(n), oldest

    def committed(self, n: int, at: float) -> None:
        with self.cond:
            was = self.pending
            self.pending += n
            self.inflight -= n
            self.oldest = at if self.oldest is None else min(self.oldest, at)
            if was == 0 or (was < self.flush_size <= self.pending):
                self.wake = True
                self.cond.notify_all()

    def removed(self, n: int) -> None:
        """Changes synced and deleted by the flusher; the count moves only by what was written or deleted."""
        with self.cond:
            self.pending -= n

    def oldest_age(self) -> float:
        with self.cond:
            return max(0.0, time.time() - self.oldest) if self.oldest is not None else 0.0


class QueueWriter:
    """Group-commits changes into the ingest log on its own thread."""

    def __init__(self, log: IngestLog, stats: QueueStats, *, max_queue: int, flush_after: float, retry_max: float):
        self.log = log
        self.stats = stats
        self.max_queue = max_queue
        self.flush_after = flush_after
        self.retry_max = retry_max
        self._inbox: stdqueue.Queue[_Item | None] = stdqueue.Queue()
        self._thread = threading.Thread(target=self._run, name="stream-queue-writer", daemon=True)
        self._stopped = False
        self._next_seq = 1 + log.max_seq()
        self.written: Counter[str] = Counter()

    def start(self) -> QueueWriter:
        self._thread.start()
        return self

    def alive(self) -> bool:
        return self._thread.is_alive() and not self._stopped

    def stop(self, timeout: float = 10.0) -> None:
        self._stopped = True
        self._inbox.put(None)
        self._thread.join(timeout)

    def reserve(self, n: int) -> None:
        """Claim room for `n` changes, or raise QueueFull with how long to wait."""
        s = self.stats
        with s.cond:
            if s.pending + s.inflight + n > self.max_queue and n > 0:
                raise QueueFull(self.retry_after())
            s.inflight += n

    def retry_after(self) -> int:
        wait = max(self.flush_after, self.stats.retry_at - time.time(), 1.0)
        return math.ceil(min(wait, self.retry_max))

    async def put(self, changes: Sequence[Change]) -> None:
        """Return once `changes` are committed to the state file; QueueFull at once if over the bound."""
        if not changes:
            return
        self.reserve(len(changes))
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._submit(_Item(list(changes), lambda exc: _resolve(loop, future, exc)))
        await future

    def put_blocking(self, changes: Sequence[Change], timeout: float = 30.0) -> None:
        """The same as `put`, for callers without an event loop (tools and tests)."""
        if not changes:
            return
        self.reserve(len(changes))
        done = threading.Event()
        error: list[BaseException | None] = [None]

        def finish(exc: BaseException | None) -> None:
            error[0] = exc
            done.set()

        self._submit(_Item(list(changes), finish))
        if not done.wait(timeout):
            raise TimeoutError("the queue writer did not answer")
        if error[0] is not None:
            raise error[0]

    def _submit(self, item: _Item) -> None:
        if not self.alive():
            self._release(len(item.changes))
            raise WriterStopped("the server is shutting down; nothing was queued")
        self._inbox.put(item)

    def _release(self, n: int) -> None:
        with self.stats.cond:
            self.stats.inflight -= n

    def _run(self) -> None:
        while True:
            first = self._inbox.get()
            if first is None:
                self._fail_rest()
                return
            group, size = [first], len(first.changes)
            while size < MAX_GROUP:
                try:
                    more = self._inbox.get_nowait()
                except stdqueue.Empty:
                    break
                if more is None:
                    self._inbox.put(None)
                    break
                group.append(more)
                size += len(more.changes)
            self._write(group, size)

    def _write(self, group: list[_Item], size: int) -> None:
        at = time.time()
        changes = [c for item in group for c in item.changes]
        try:
            self.log.append(_rows(changes, self._next_seq, at))
        except Exception as exc:
            log.error("the queue write failed (%s: %s); %d changes refused", type(exc).__name__, exc, size)
            self._release(size)
            for item in group:
                item.done(WriterStopped(f"the queue could not be written ({type(exc).__name__})"))
            return
        took = time.time() - at
        if took > SLOW_COMMIT_S:
            log.warning("writing %d changes to the queue took %.1fs", size, took)
        self._next_seq += size
        self.written.update(c.audience_key for c in changes)
        self.stats.committed(size, at)
        for item in group:
            item.done(None)

    def _fail_rest(self) -> None:
        while True:
            try:
                item = self._inbox.get_nowait()
            except stdqueue.Empty:
                return
            if item is not None:
                self._release(len(item.changes))
                item.done(WriterStopped("the server is shutting down; nothing was queued"))


@dataclass
class _Item:
    changes: list[Change]
    done: Callable[[BaseException | None], None]


def _resolve(loop: asyncio.AbstractEventLoop, future: asyncio.Future[None], exc: BaseException | None) -> None:
    def settle() -> None:
        if future.done():
            return
        if exc is None:
            future.set_result(None)
        else:
            future.set_exception(exc)

    loop.call_soon_threadsafe(settle)


def _rows(changes: list[Change], first_seq: int, at: float) -> list[tuple[object, ...]]:
    return [(first_seq + i, at, c.audience_key, c.pk, c.member, pack(c.values)) for i, c in enumerate(changes)]
