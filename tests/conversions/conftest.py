"""Fixtures for offline conversions: an emulator over real HTTP, and a shop directory with a config.

The emulator is this package's own (one per test session, reset per test), so these tests do not
depend on fixtures other suites may change.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conversions.helpers import Shop


@pytest.fixture(scope="session")
def capi_server() -> Iterator[Any]:
    from audiencesync.emulator import EmulatorServer

    with EmulatorServer() as server:
        yield server


@pytest.fixture
def capi(capi_server: Any) -> Any:
    httpx.post(f"{capi_server.url}/_emulator/reset").raise_for_status()
    httpx.delete(f"{capi_server.url}/_emulator/faults").raise_for_status()
    return capi_server


@pytest.fixture
def shop(tmp_path: Path, capi: Any, monkeypatch: pytest.MonkeyPatch) -> Shop:
    monkeypatch.setenv("META_ACCESS_TOKEN", capi.token)
    return Shop(tmp_path, capi)
