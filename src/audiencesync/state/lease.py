"""Taking turns on the state file: every door opens it through `lease`, and waits instead of failing.

DuckDB lets one process at a time open a database file for writing, and one attachment of it per
process. So the doors share it by holding it only while they work: a sync holds it per audience,
the stream flusher per flush, `status` for a read. In one process a lock orders the threads (the
flusher and the scheduler of `serve`); across processes DuckDB's own file lock does, and a
process that finds it taken waits, saying once what it waits for (the holder writes who it is,
since when, beside the file) until its timeout, then stops with a sentence.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb

from audiencesync.state.store import StateStore

DEFAULT_WAIT_S = 600.0
POLL_S = (0.05, 1.0)
"""First and longest pause between two tries."""

_in_process: dict[str, threading.RLock] = {}
_guard = threading.Lock()


class StateBusy(RuntimeError):
    """The state file stayed held by another process past the wait; nothing was done."""


@dataclass(frozen=True)
class Holder:
    door: str
    pid: int
    since: float

    def describe(self) -> str:
        at = datetime.fromtimestamp(self.since).strftime("%H:%M:%S")
        return f"`{self.door}` (pid {self.pid}) since {at}"


def holder_path(state: str | os.PathLike[str]) -> Path:
    return Path(f"{state}.holder")


def current_holder(state: str | os.PathLike[str]) -> Holder | None:
    try:
        raw = json.loads(holder_path(state).read_text())
        return Holder(str(raw["door"]), int(raw["pid"]), float(raw["since"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _thread_lock(state: str) -> threading.RLock:
    key = str(Path(state).resolve())
    with _guard:
        return _in_process.setdefault(key, threading.RLock())


@contextlib.contextmanager
def lease(
    state: str | os.PathLike[str],
    *,
    door: str,
    wait_s: float = DEFAULT_WAIT_S,
    on_wait: Callable[[str], None] | None = None,
) -> Iterator[StateStore]:
    """The state file, opened for this door for the duration of the block."""
    path = str(state)
    lock = _thread_lock(path)
    deadline = time.monotonic() + wait_s
    if not lock.acquire(timeout=max(wait_s, 0.001)):
        raise StateBusy(f"the state file {path} stayed in use by another task of this process for {wait_s:.0f} s")
    try:
        store = _open(path, door, deadline, wait_s, on_wait)
        _write_holder(path, door)
        try:
            yield store
        finally:
            with contextlib.suppress(OSError):
                holder_path(path).unlink()
            store.close()
    finally:
        lock.release()


def _open(path: str, door: str, deadline: float, wait_s: float, on_wait: Callable[[str], None] | None) -> StateStore:
    pause, told = POLL_S[0], False
    while True:
        try:
            return StateStore(path)
        except duckdb.IOException as e:
            if "lock" not in str(e).lower():
                raise
        held = current_holder(path)
        who = held.describe() if held else "another audiencesync process"
        if time.monotonic() >= deadline:
            raise StateBusy(
                f"{door}: the state file {path} stayed in use by {who} for {wait_s:.0f} s; nothing was done. "
                "Try again when it is done, or wait longer with --wait."
            ) from None
        if not told and on_wait is not None:
            on_wait(f"{door}: waiting for the state file, in use by {who} (up to {wait_s:.0f} s)")
            told = True
        time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
        pause = min(pause * 2, POLL_S[1])


def _write_holder(path: str, door: str) -> None:
    with contextlib.suppress(OSError):
        holder_path(path).write_text(json.dumps({"door": door, "pid": os.getpid(), "since": time.time()}))
