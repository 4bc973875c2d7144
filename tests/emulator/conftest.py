"""Fixtures for the emulator tests: one real uvicorn server per session, reset before each test."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from audiencesync.emulator import EmulatorConfig, EmulatorServer
from audiencesync.emulator.matching import DEFAULT_MATCH_SHARES

VERSION = "v25.0"

# Every member matches and counts are exact: for tests about something other than matching.
EXACT_COUNTS: dict[str, Any] = {
    "match_shares": dict.fromkeys(DEFAULT_MATCH_SHARES, 1.0),
    "count_floor": 0,
    "count_significant_digits": None,
}


def sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def rand_hash() -> str:
    return os.urandom(32).hex()


class Graph:
    """A thin httpx wrapper that speaks to the emulator like a Graph client (token in the query)."""

    def __init__(self, server: EmulatorServer, version: str = VERSION) -> None:
        self.server = server
        self.base = f"{server.url}/{version}"
        self.http = httpx.Client(timeout=30)
        self.token = server.token

    def _params(self, params: dict[str, Any] | None) -> dict[str, Any]:
        out = {"access_token": self.token}
        out.update(params or {})
        return out

    def get(self, path: str, params: dict[str, Any] | None = None, **kw: Any) -> httpx.Response:
        return self.http.get(f"{self.base}{path}", params=self._params(params), **kw)

    def post(self, path: str, json: Any = None, data: Any = None, params: Any = None, **kw: Any) -> httpx.Response:
        return self.http.post(f"{self.base}{path}", json=json, data=data, params=self._params(params), **kw)

    def delete(self, path: str, json: Any = None, params: Any = None, **kw: Any) -> httpx.Response:
        return self.http.request("DELETE", f"{self.base}{path}", json=json, params=self._params(params), **kw)

    # -- conveniences
    def create(self, account: str = "act_1", **params: Any) -> str:
        body = {"name": "test", "subtype": "CUSTOM", "customer_file_source": "USER_PROVIDED_ONLY"}
        body.update(params)
        r = self.post(f"/{account}/customaudiences", json=body)
        assert r.status_code == 200, r.text
        return r.json()["id"]

    def add(self, aud: str, schema: Any, data: list[Any], session: dict[str, Any] | None = None) -> httpx.Response:
        body: dict[str, Any] = {"payload": {"schema": schema, "data": data}}
        if session is not None:
            body["session"] = session
        return self.post(f"/{aud}/users", json=body)

    def remove(self, aud: str, schema: Any, data: list[Any], session: dict[str, Any] | None = None) -> httpx.Response:
        body: dict[str, Any] = {"payload": {"schema": schema, "data": data}}
        if session is not None:
            body["session"] = session
        return self.delete(f"/{aud}/users", json=body)

    def replace(self, aud: str, schema: Any, data: list[Any], session: dict[str, Any]) -> httpx.Response:
        return self.post(f"/{aud}/usersreplace", json={"payload": {"schema": schema, "data": data}, "session": session})

    def fields(self, aud: str, *names: str) -> dict[str, Any]:
        r = self.get(f"/{aud}", params={"fields": ",".join(names)})
        assert r.status_code == 200, r.text
        return r.json()

    def members(self, aud: str) -> list[dict[str, Any]]:
        r = self.http.get(f"{self.server.url}/_emulator/audiences/{aud}/members")
        assert r.status_code == 200, r.text
        return r.json()["members"]

    def emu(self, method: str, path: str, json: Any = None) -> httpx.Response:
        return self.http.request(method, f"{self.server.url}/_emulator{path}", json=json)

    def advance(self, seconds: float) -> None:
        self.emu("POST", "/clock", {"advance_s": seconds}).raise_for_status()

    def exact_counts(self) -> None:
        """Every member matches and approximate counts are exact (through ``/_emulator/config``)."""
        self.emu("POST", "/config", EXACT_COUNTS).raise_for_status()


def error_of(r: httpx.Response) -> dict[str, Any]:
    assert r.status_code == 400, (r.status_code, r.text)
    return r.json()["error"]


@pytest.fixture(scope="session")
def emu_server() -> Iterator[EmulatorServer]:
    with EmulatorServer(EmulatorConfig()) as server:
        yield server


@pytest.fixture
def server(emu_server: EmulatorServer) -> Iterator[EmulatorServer]:
    """The shared server, reset, with its config restored after the test."""
    saved = dataclasses.asdict(emu_server.config)
    emu_server.app.emulator.reset()
    yield emu_server
    for key, value in saved.items():
        setattr(emu_server.config, key, value)
    emu_server.app.emulator.reset()


@pytest.fixture
def graph(server: EmulatorServer) -> Iterator[Graph]:
    g = Graph(server)
    yield g
    g.http.close()
