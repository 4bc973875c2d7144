"""Shared fixtures: the emulator over real HTTP on 127.0.0.1, and a workspace on disk."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.support import Workspace


@pytest.fixture(scope="session")
def emulator_server() -> Iterator[Any]:
    from audiencesync.emulator import EmulatorServer

    with EmulatorServer() as emu:
        yield emu


@pytest.fixture
def emu(emulator_server: Any) -> Any:
    httpx.post(f"{emulator_server.url}/_emulator/reset").raise_for_status()
    return emulator_server


@pytest.fixture
def ws(tmp_path: Path, emu: Any) -> Workspace:
    return Workspace(tmp_path, emu)
