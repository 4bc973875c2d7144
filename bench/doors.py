"""Accepting stream calls while a long sync holds the state file: accept latency, side by side.

`audiencesync serve` (a stream audience) and `audiencesync emulator` run as their own processes,
as a user starts them. Identify calls go to `/v1/identify` at a steady rate, first while nothing
else runs (the baseline), then while `audiencesync sync` uploads a 1M-member warehouse audience
from another process. Accept latency is from sending a call to its 200 (the change is durable).

Target: p99 ≤ 1 s during the sync.

Usage: .venv/bin/python bench/doors.py [--members N] [--rate CALLS_PER_S]
"""

from __future__ import annotations

import argparse
import base64
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sync import BIN, free_port, make_source, start_emulator

WRITE_KEY = "bench-write-key"


def write_config(root: Path, url: str, source: Path, port: int) -> Path:
    cfg = root / "audiencesync.yml"
    cfg.write_text(
        f"""meta:
  graph_url: {url}
  access_token: ${{META_ACCESS_TOKEN}}
  ad_account_id: "1"
state: state.duckdb
sources:
  crm: {{type: duckdb}}
serve:
  host: 127.0.0.1
  port: {port}
  write_key: ${{WRITE_KEY}}
audiences:
  - name: Engaged
    key: engaged
    source: stream
    customer_file_source: USER_PROVIDED_ONLY
    multi_key: true
    min_size: 1
  - name: Warehouse
    source: crm
    query: select * from read_parquet('{source}')
    primary_key: customer_id
    customer_file_source: USER_PROVIDED_ONLY
    multi_key: true
    default_country: US
    min_size: 1
"""
    )
    return cfg


def calls(url: str, rate: float, stop: threading.Event, out: list[float], start: int) -> None:
    auth = "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
    with httpx.Client(headers={"Authorization": auth}, timeout=60) as client:
        i, next_at = start, time.perf_counter()
        while not stop.is_set():
            body = {"type": "identify", "userId": f"u{i}", "traits": {"engaged": True, "email": f"u{i}@ex.com"}}
            t0 = time.perf_counter()
            r = client.post(f"{url}/v1/identify", json=body)
            r.raise_for_status()
            out.append(time.perf_counter() - t0)
            i += 1
            next_at += 1 / rate
            time.sleep(max(0.0, next_at - time.perf_counter()))


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(p / 100 * len(s)))] * 1000


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--members", type=int, default=1_000_000)
    p.add_argument("--rate", type=float, default=50.0)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        source = root / "members.parquet"
        make_source(source, args.members)
        emu, emu_url = start_emulator()
        port = free_port()
        cfg = write_config(root, emu_url, source, port)
        env = {**os.environ, "META_ACCESS_TOKEN": "bench-token", "WRITE_KEY": WRITE_KEY}
        serve = subprocess.Popen([str(BIN), "serve", "--config", str(cfg)], env=env, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            baseline: list[float] = []
            stop = threading.Event()
            t = threading.Thread(target=calls, args=(url, args.rate, stop, baseline, 0))
            t.start()
            time.sleep(10)
            stop.set()
            t.join()

            during: list[float] = []
            stop = threading.Event()
            t = threading.Thread(target=calls, args=(url, args.rate, stop, during, 1_000_000))
            t.start()
            t0 = time.perf_counter()
            done = subprocess.run([str(BIN), "sync", "--config", str(cfg), "--json"], env=env, capture_output=True)
            sync_s = time.perf_counter() - t0
            stop.set()
            t.join()
            if done.returncode != 0:
                raise RuntimeError(done.stderr.decode()[-2000:])
            print(
                f"accept latency at {args.rate:.0f} calls/s, ms (p50 / p95 / p99 / max):\n"
                f"  while a {args.members:,}-member sync runs ({sync_s:.1f} s, {len(during):,} calls): "
                f"{pct(during, 50):.0f} / {pct(during, 95):.0f} / {pct(during, 99):.0f} / {max(during) * 1000:.0f}"
                f" | target p99 ≤ 1000\n"
                f"  nothing else running ({len(baseline):,} calls):                "
                f"{pct(baseline, 50):.0f} / {pct(baseline, 95):.0f} / {pct(baseline, 99):.0f} / "
                f"{max(baseline) * 1000:.0f}"
            )
        finally:
            serve.terminate()
            serve.wait(60)
            emu.terminate()
            emu.wait(30)


if __name__ == "__main__":
    main()
