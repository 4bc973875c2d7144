"""Offline conversions throughput: events per second from a CSV file to the emulator, end to end.

Generates a seeded CSV of store sales in a temporary directory (the issue's layout: ISO or unix
event times, a mix of product actions, products as JSON, identity and attribute columns, custom
attributes), starts the emulator as its own process (`python -m audiencesync.emulator`, as a user
would, so client and server do not share a GIL), and times `audiencesync.conversions.send` from
the first byte read to the last batch acknowledged and recorded. Prints the figure, and beside it a
dry run (the client's share: read, map, hash, validate) and the emulator's busy time.

Usage: .venv/bin/python bench/conversions.py [--events N] [--batch-size N] [--in-flight N]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import httpx

DATASET = "987654321"


def make_events(path: Path, n: int, seed: int = 7) -> None:
    """Sales from the last 30 days; ~5% of actions have no Facebook event (skipped, as in real feeds)."""
    con = duckdb.connect()
    con.execute(f"SELECT setseed({seed / 100})")
    now = int(time.time())
    con.execute(
        f"""COPY (
          SELECT
            CASE WHEN i % 2 = 0 THEN ({now} - 3600 - (i * 7919) % (30 * 86400))::VARCHAR
                 ELSE strftime(to_timestamp({now} - 3600 - (i * 7919) % (30 * 86400)), '%Y-%m-%dT%H:%M:%SZ')
            END AS event_time,
            CASE WHEN i % 20 < 14 THEN 'purchase' WHEN i % 20 < 16 THEN 'add_to_cart'
                 WHEN i % 20 = 16 THEN 'checkout' WHEN i % 20 = 17 THEN 'view_detail'
                 WHEN i % 20 = 18 THEN 'add_to_wishlist' ELSE 'refund' END AS product_action,
            'ORD-' || i AS order_id,
            CASE WHEN i % 5 = 0 THEN 'EUR' ELSE 'USD' END AS currency,
            CASE WHEN i % 3 = 0 THEN (10 + i % 90)::VARCHAR || '.50' ELSE '' END AS value,
            '[{{"id":"SKU-' || (i % 500) || '","name":"Item","price":' || (5 + i % 40) || '.99,"quantity":'
              || (1 + i % 3) || ',"brand":"Acme","category":"C' || (i % 12) || '"}}'
              || CASE WHEN i % 4 = 0 THEN ',{{"id":"SKU-X","price":"2.00","quantity":1}}' ELSE '' END || ']'
              AS products,
            CASE WHEN i % 9 = 0 THEN '  Buyer' || i || '@Example.COM ' ELSE 'buyer' || i || '@example.com' END
              AS email,
            CASE WHEN i % 2 = 0 THEN '+1 (415) ' || lpad(((i // 10000) % 1000)::VARCHAR, 3, '0') || '-'
                                     || lpad((i % 10000)::VARCHAR, 4, '0') ELSE '' END AS phone,
            (['Ann', 'Bob', 'Zoë', 'Jean-Luc', 'Mary'])[1 + i % 5] AS first_name,
            'Smith' || chr(97 + (i % 26)::INTEGER) AS last_name,
            CASE WHEN i % 2 = 0 THEN 'F' ELSE 'male' END AS gender,
            (['Los Angeles', 'New York', 'San Francisco', 'Austin', 'Seattle'])[1 + i % 5] AS city,
            (['CA', 'NY', 'California', 'TX', 'WA'])[1 + i % 5] AS state,
            lpad((i % 99999)::VARCHAR, 5, '0') AS zip,
            CASE WHEN i % 10 = 0 THEN '' ELSE 'US' END AS country,
            CASE WHEN i % 6 = 0 THEN lower(uuid()::VARCHAR) ELSE '' END AS idfa,
            '{{"store":"S-' || (i % 40) || '","channel":"till"}}' AS custom_attributes
          FROM range({n}) t(i)
        ) TO '{path}' (HEADER, DELIMITER ',')"""
    )
    con.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_emulator(token: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "audiencesync.emulator", "--port", str(port), "--token", token],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            httpx.get(f"{url}/_emulator/health", timeout=1).raise_for_status()
            return proc, url
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("the emulator did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--in-flight", type=int, default=4)
    args = parser.parse_args()

    from audiencesync.config import load_config
    from audiencesync.conversions import Source, send

    token = "bench-token"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        events = root / "sales.csv"
        t0 = time.perf_counter()
        make_events(events, args.events)
        size_mb = events.stat().st_size / 1e6
        print(f"generated {args.events:,} events ({size_mb:.0f} MB CSV) in {time.perf_counter() - t0:.1f}s")
        proc, url = start_emulator(token)
        try:
            cfg_path = root / "audiencesync.yml"
            cfg_path.write_text(
                f"""meta:
  graph_url: {url}
  access_token: ${{META_ACCESS_TOKEN}}
  ad_account_id: "1"
  max_in_flight: {args.in_flight}
state: state.duckdb
conversions:
  dataset_id: "{DATASET}"
  email_identity: email
  ldu: when_located
  default_country: US
  batch_size: {args.batch_size}
"""
            )
            cfg = load_config(cfg_path, env={**os.environ, "META_ACCESS_TOKEN": token})
            t0 = time.perf_counter()
            dry = send(cfg, Source(events), dry_run=True)
            dry_s = time.perf_counter() - t0
            print(f"dry run (read, map, hash, validate; nothing sent): {dry.read / dry_s:,.0f} events/s ({dry_s:.1f}s)")
            t0 = time.perf_counter()
            report = send(cfg, Source(events))
            elapsed = time.perf_counter() - t0
            held = httpx.get(f"{url}/_emulator/datasets/{DATASET}/events", timeout=600).json()
            print(
                f"read {report.read:,}  sent {report.sent:,}  events_received {report.events_received:,}  "
                f"skipped {sum(report.skipped.values()):,}  rejected {sum(report.rejected.values()):,}  "
                f"requests {report.requests:,}  status {report.status}"
            )
            log = [
                r for r in httpx.get(f"{url}/_emulator/requests", timeout=60).json() if r["path"].endswith("/events")
            ]
            busy = sum(r.get("duration_ms") or 0 for r in log) / 1000
            print(f"emulator holds {len(held['events']):,} events; it spent {busy:.1f}s handling {len(log)} requests")
            print(
                f"conversions: {report.read / elapsed:,.0f} events/s read→acknowledged "
                f"({report.sent / elapsed:,.0f} sent/s) — {elapsed:.1f}s for {report.read:,} events"
            )
            t0 = time.perf_counter()
            again = send(cfg, Source(events))
            print(
                f"re-run: sent {again.sent:,}, already_sent {again.skipped.get('already_sent', 0):,} "
                f"in {time.perf_counter() - t0:.1f}s"
            )
        finally:
            proc.terminate()
            proc.wait(10)


if __name__ == "__main__":
    main()
