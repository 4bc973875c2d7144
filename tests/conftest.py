"""Shared fixtures: the emulator over real HTTP on 127.0.0.1, and a workspace on disk."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import settings
from tests.support import Workspace

# CI replays one fixed set of examples, so a landing never depends on what hypothesis draws that
# day; developers' runs draw new ones, and what they find is added as an explicit case.
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


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
