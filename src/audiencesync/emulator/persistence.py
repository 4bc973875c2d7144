"""Saving and loading emulator state to one JSON file.

Why: ``audiencesync emulator --state FILE`` lets a developer stop and restart
the emulator without losing audiences, members, sessions and CAPI events. The
choice (documented in docs/emulator.md): load once at start-up if the file
exists, save at shutdown and every ``state_save_interval_s`` seconds when
something changed. Saves run on the event loop (no concurrent mutation) and
are atomic (write a temporary file, then rename). The request log, fault plan,
rate-limit windows and clock offset are not persisted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
from typing import Any

import orjson

from .capi import Datasets
from .model import Backend

log = logging.getLogger("audiencesync.emulator")
FORMAT_VERSION = 1


def snapshot(backend: Backend, datasets: Datasets) -> dict[str, Any]:
    return {"format": FORMAT_VERSION, "audiences": backend.dump(), "capi": datasets.dump()}


def save(path: str, backend: Backend, datasets: Datasets) -> None:
    data = orjson.dumps(snapshot(backend, datasets))
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".emulator-state-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def load(path: str, backend: Backend, datasets: Datasets) -> bool:
    """Load ``path`` into the model if it exists; returns whether it did."""
    if not os.path.exists(path):
        return False
    with open(path, "rb") as fh:
        state = orjson.loads(fh.read())
    if state.get("format") != FORMAT_VERSION:
        raise ValueError(f"{path}: unsupported emulator state format {state.get('format')!r}")
    backend.load(state.get("audiences", {}))
    datasets.load(state.get("capi", {}))
    return True


class AutoSaver:
    """Saves on an interval when the model's version counters moved, and once at stop."""

    def __init__(self, path: str, backend: Backend, datasets: Datasets, interval_s: float) -> None:
        self.path = path
        self.backend = backend
        self.datasets = datasets
        self.interval_s = interval_s
        self._saved = (-1, -1)
        self._task: asyncio.Task[None] | None = None

    def _versions(self) -> tuple[int, int]:
        return self.backend.version, self.datasets.version

    def save_if_changed(self) -> bool:
        if self._versions() == self._saved:
            return False
        save(self.path, self.backend, self.datasets)
        self._saved = self._versions()
        return True

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                self.save_if_changed()
            except OSError as exc:  # keep serving; report
                log.warning("could not save emulator state to %s: %s", self.path, exc)

    def start(self) -> None:
        self._saved = self._versions()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.save_if_changed()
