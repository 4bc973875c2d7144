"""Helpers for tests that drive the sync against the emulator: a workspace and clean customers."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path
from typing import Any

import httpx
import yaml

from audiencesync.config import Config, load_config


class Workspace:
    """A project directory with a customers CSV and a config file, as a user would have."""

    def __init__(self, root: Path, emu: Any):
        self.root = root
        self.emu = emu
        self.csv = root / "customers.csv"

    def write_rows(self, rows: list[dict[str, Any]], path: Path | None = None) -> None:
        path = path or self.csv
        fields = sorted({k for r in rows for k in r}) or ["customer_id"]
        with path.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields)
            w.writeheader()
            for r in rows:
                w.writerow(r)

    def config(
        self,
        audiences: list[dict[str, Any]],
        sources: dict[str, Any] | None = None,
        guard: dict[str, Any] | None = None,
        **meta: Any,
    ) -> Config:
        """`guard` defaults to letting any change through: the tests of the guard set it themselves."""
        doc = {
            "meta": {
                "graph_url": self.emu.url,
                "access_token": "${META_ACCESS_TOKEN}",
                "ad_account_id": "act_1234567890",
                "retry": {"base_delay_s": 0.01, "max_delay_s": 0.2, "max_attempts": 8},
                **meta,
            },
            "state": "state.duckdb",
            "guard": {"max_remove_share": 1.0, "allow_empty": True} if guard is None else guard,
            "sources": {"crm": {"type": "duckdb"}, **(sources or {})},
            "audiences": [
                {
                    "source": "crm",
                    "query": f"select * from read_csv('{self.csv}', all_varchar = true)",
                    "primary_key": "customer_id",
                    "customer_file_source": "USER_PROVIDED_ONLY",
                    "default_country": "US",
                    "min_size": 1,
                    **a,
                }
                for a in audiences
            ],
        }
        path = self.root / "audiencesync.yml"
        path.write_text(yaml.safe_dump(doc))
        return load_config(path, env={"META_ACCESS_TOKEN": self.emu.token})

    def members(self, fb_id: str) -> list[dict[str, str]]:
        r = httpx.get(f"{self.emu.url}/_emulator/audiences/{fb_id}/members")
        r.raise_for_status()
        return r.json()["members"]

    def emulator_audiences(self) -> list[dict[str, Any]]:
        body = httpx.get(f"{self.emu.url}/_emulator/audiences").json()
        return body["audiences"] if isinstance(body, dict) and "audiences" in body else body

    def requests(self) -> list[dict[str, Any]]:
        r = httpx.get(f"{self.emu.url}/_emulator/requests")
        r.raise_for_status()
        body = r.json()
        return body["requests"] if isinstance(body, dict) else body

    def fault(self, **rule: Any) -> None:
        httpx.post(f"{self.emu.url}/_emulator/faults", json=rule).raise_for_status()


def sha(s: str) -> str:
    return hashlib.sha256(s.encode()).hexdigest()


def person(i: int, **over: Any) -> dict[str, Any]:
    """A clean customer whose normalized values are easy to predict."""
    row = {
        "customer_id": f"C{i:05d}",
        "email": f"user{i}@example.com",
        "phone": f"+1 415 555 {i % 10000:04d}",
        "first_name": "Ann" if i % 2 else "Bob",
        "last_name": f"Smith{chr(97 + i % 26)}",
        "city": "Los Angeles",
        "state": "CA",
        "zip": "90001",
        "country": "US",
        "idfa": f"{i:08x}-0000-4000-8000-000000000001",
        "ltv": str(100 + i),
    }
    row.update(over)
    return row
