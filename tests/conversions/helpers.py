"""Helpers for the offline conversions tests: a store-sale row builder and a shop directory with a config."""

from __future__ import annotations

import csv
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from audiencesync.config import Config, load_config

DATASET = "987654321"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def sale(i: int, *, age_s: int = 3600, **over: Any) -> dict[str, Any]:
    """A store purchase whose every field is easy to predict; `over` replaces or removes (None) fields."""
    row: dict[str, Any] = {
        "event_time": str(int(time.time()) - age_s - i),
        "product_action": "purchase",
        "order_id": f"ORD-{i:06d}",
        "currency": "usd",
        "value": "",
        "products": json.dumps(
            [
                {
                    "id": f"SKU-{i % 7}",
                    "name": "Shirt",
                    "price": 19.99,
                    "quantity": 2,
                    "brand": "Acme",
                    "category": "Tops",
                },
                {"id": "SKU-X", "name": "Socks", "price": "5.00", "quantity": 1},
            ]
        ),
        "email": f"Buyer{i}@Example.com ",
        "phone": "",
        "first_name": "",
        "last_name": "",
        "gender": "",
        "city": "",
        "state": "",
        "zip": "",
        "country": "",
        "idfa": "",
        "gaid": "",
        "custom_attributes": json.dumps({"store": "SF-01", "channel": "till"}),
    }
    for k, v in over.items():
        if v is None:
            row.pop(k, None)
        else:
            row[k] = v
    return row


class Shop:
    """A directory with an events file and an audiencesync.yml pointing at the emulator."""

    def __init__(self, root: Path, server: Any):
        self.root = root
        self.server = server
        self.events = root / "sales.csv"

    def write(self, rows: list[dict[str, Any]], path: Path | None = None) -> Path:
        path = path or self.events
        fields: dict[str, None] = {}
        for r in rows:
            fields.update(dict.fromkeys(r))
        with path.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(fields) or ["event_time"])
            w.writeheader()
            w.writerows(rows)
        return path

    def config_path(self, **conversions: Any) -> Path:
        meta = conversions.pop("meta", {})
        doc = {
            "meta": {
                "graph_url": self.server.url,
                "access_token": "${META_ACCESS_TOKEN}",
                "ad_account_id": "act_1234567890",
                "retry": {"base_delay_s": 0.01, "max_delay_s": 0.2, "max_attempts": 4},
                **meta,
            },
            "state": "state.duckdb",
            "conversions": {
                "dataset_id": DATASET,
                "email_identity": "email",
                "ldu": "never",
                "default_country": "US",
                **conversions,
            },
        }
        path = self.root / "audiencesync.yml"
        path.write_text(yaml.safe_dump(doc))
        return path

    def config(self, **conversions: Any) -> Config:
        return load_config(self.config_path(**conversions), env={"META_ACCESS_TOKEN": self.server.token})

    def received(self, dataset: str = DATASET) -> dict[str, Any]:
        r = httpx.get(f"{self.server.url}/_emulator/datasets/{dataset}/events")
        r.raise_for_status()
        return r.json()

    def accepted(self, dataset: str = DATASET) -> list[dict[str, Any]]:
        return self.received(dataset)["events"]

    def fault(self, **rule: Any) -> None:
        httpx.post(f"{self.server.url}/_emulator/faults", json=rule).raise_for_status()
