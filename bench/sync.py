"""Benchmarks of the audience sync, each printing our figure beside the target from one run.

  first   first sync of N members (email + phone, multi-key) to the emulator, end to end   (≤ 20 s for 1M)
  resync  the same sync again with nothing changed: must send nothing                      (≤ 5 s for 1M)
  plan    plan an incremental sync of a 10M-member audience with 1% change                 (≤ 15 s, ≤ 1.5 GB)

The emulator runs as its own process (`audiencesync emulator`), as a user starts it, so client and
server do not share a GIL. `plan` builds its baseline state by planning the full source once and
committing that plan as if Facebook had acknowledged it (no upload: 10M rows would only measure the
emulator); the measured step is the real planner, in a fresh process, so peak RSS is its own.

Usage: .venv/bin/python bench/sync.py [first|resync|plan|all] [--members N] [--plan-members N]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import httpx

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent / "audiencesync"


def make_source(path: Path, members: int, *, change_pct: float = 0.0, seed: int = 1) -> None:
    """Messy-ish emails and phones in several formats; `change_pct` edits, drops and adds members."""
    con = duckdb.connect()
    con.execute(f"SELECT setseed({seed / 10})")
    changed = int(members * change_pct / 100)
    con.execute(
        f"""COPY (
          WITH base AS (SELECT i FROM range({members}) t(i)),
          people AS (
            SELECT i,
              CASE WHEN i < {changed // 2} THEN 'moved' || i || '@Example.NET'
                   WHEN i % 7 = 0 THEN '  User' || i || '@Example.com ' ELSE 'user' || i || '@example.com' END AS email,
              CASE i % 3 WHEN 0 THEN '+1 (415) ' || lpad(((i // 10000) % 1000)::VARCHAR, 3, '0') || '-'
                                     || lpad((i % 10000)::VARCHAR, 4, '0')
                         WHEN 1 THEN '415' || lpad((i % 10000000)::VARCHAR, 7, '0')
                         ELSE '1-212-' || lpad((i % 10000000)::VARCHAR, 7, '0') END AS phone
            FROM base WHERE NOT (i >= {changed // 2} AND i < {changed // 2 + changed // 4})
            UNION ALL
            SELECT {members} + i, 'new' || i || '@example.org', '+44 20 7946 ' || lpad((i % 10000)::VARCHAR, 4, '0')
            FROM range({changed // 4}) t(i)
          )
          SELECT 'C' || i AS customer_id, email, phone FROM people
        ) TO '{path}' (FORMAT parquet)"""
    )
    con.close()


def write_config(root: Path, url: str, source: Path) -> Path:
    cfg = root / "audiencesync.yml"
    cfg.write_text(
        f"""meta:
  graph_url: {url}
  access_token: ${{META_ACCESS_TOKEN}}
  ad_account_id: "1"
  max_in_flight: 4
state: state.duckdb
sources:
  crm: {{type: duckdb}}
audiences:
  - name: Bench
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_emulator() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [str(BIN), "emulator", "--port", str(port), "--token", "bench-token"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            httpx.get(f"{url}/_emulator/clock", timeout=1)
            return proc, url
        except httpx.TransportError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("the emulator did not start")


def run_sync(cfg: Path) -> tuple[float, dict]:
    t0 = time.perf_counter()
    out = subprocess.run(
        [str(BIN), "sync", "--config", str(cfg), "--json"],
        capture_output=True,
        text=True,
        env={**os.environ, "META_ACCESS_TOKEN": "bench-token"},
    )
    elapsed = time.perf_counter() - t0
    if out.returncode != 0:
        raise RuntimeError(f"sync failed: {out.stderr[-2000:]} {out.stdout[-2000:]}")
    return elapsed, json.loads(out.stdout)


def bench_first_and_resync(members: int, which: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        source = root / "members.parquet"
        make_source(source, members)
        proc, url = start_emulator()
        try:
            cfg = write_config(root, url, source)
            first_s, report = run_sync(cfg)
            fb = report["audiences"][0]["facebook"][0]
            on_fb = httpx.get(f"{url}/_emulator/audiences/{fb['fb_id']}/members", params={"count_only": 1}).json()
            if which in ("first", "all"):
                print(
                    f"first sync, {members:,} members (email+phone multi-key), end to end: "
                    f"ours {first_s:.1f} s | target ≤ {20 * members / 1_000_000:.0f} s "
                    f"| sent {fb['adds']:,} rows in {fb['batches']} batches, emulator holds {on_fb.get('count')}"
                )
            if which in ("resync", "all"):
                before = len(_requests(url))
                again_s, again = run_sync(cfg)
                after = len(_requests(url))
                f2 = again["audiences"][0]["facebook"][0]
                print(
                    f"re-sync with nothing changed, {members:,} members: ours {again_s:.1f} s | target ≤ "
                    f"{5 * members / 1_000_000:.0f} s | adds {f2['adds']} removes {f2['removes']} "
                    f"graph calls {after - before}"
                )
        finally:
            proc.terminate()
            proc.wait()


def _requests(url: str) -> list[dict]:
    body = httpx.get(f"{url}/_emulator/requests").json()
    return body.get("requests", []) if isinstance(body, dict) else body


def bench_plan(members: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        source = root / "members.parquet"
        t0 = time.perf_counter()
        make_source(source, members)
        cfg = write_config(root, "http://127.0.0.1:9", source)
        _baseline(cfg)
        make_source(source, members, change_pct=1.0)
        setup = time.perf_counter() - t0
        out = subprocess.run([sys.executable, __file__, "_plan_once", str(cfg)], capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(out.stderr[-3000:])
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(
            f"plan incremental sync, {members:,} members, 1% change: ours {r['seconds']:.1f} s, "
            f"peak RSS {r['peak_mb']:.0f} MB | target ≤ 15 s, ≤ 1536 MB | changed {r['changed']:,} "
            f"left {r['deleted']:,} adds {r['adds']:,} removes {r['removes']:,} (setup {setup:.0f} s)"
        )


def _baseline(cfg_path: Path) -> None:
    """Plan the whole source and commit it as acknowledged: the state a previous sync would leave."""
    from audiencesync.config import load_config
    from audiencesync.extract.source import QuerySource
    from audiencesync.plan.planner import Planner
    from audiencesync.state import StateStore

    cfg = load_config(cfg_path, env={"META_ACCESS_TOKEN": "x"})
    a = cfg.audiences[0]
    with StateStore(cfg.state) as store:
        plan = Planner(store, QuerySource(store.con, a.source, cfg.sources[a.source], a.query), a).plan()
        for tp in plan.targets:
            store.record_facebook_audience(a.key, tp.target.kind, "900000000000001", tp.target.name, "multi", False)
            store.con.execute(
                f"INSERT INTO st.fb_rows SELECT '900000000000001', pk, row_fp, schema, payload FROM {tp.desired}"
            )
        r = plan.relations
        store.ledger.commit_source(a.key, current=r.current, changed=r.changed, deleted=r.deleted, touched=r.touched)


def _plan_once(cfg_path: str) -> None:
    from audiencesync.config import load_config
    from audiencesync.extract.source import QuerySource
    from audiencesync.plan.planner import Planner
    from audiencesync.state import StateStore

    cfg = load_config(cfg_path, env={"META_ACCESS_TOKEN": "x"})
    a = cfg.audiences[0]
    t0 = time.perf_counter()
    with StateStore(cfg.state) as store:
        plan = Planner(store, QuerySource(store.con, a.source, cfg.sources[a.source], a.query), a).plan()
    seconds = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    tp = plan.targets[0]
    print(
        json.dumps(
            {
                "seconds": seconds,
                "peak_mb": peak_mb,
                "changed": plan.changed,
                "deleted": plan.deleted,
                "adds": tp.adds,
                "removes": tp.removes,
            }
        )
    )


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "_plan_once":
        _plan_once(sys.argv[2])
        return
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("which", nargs="?", default="all", choices=["first", "resync", "plan", "all"])
    p.add_argument("--members", type=int, default=1_000_000)
    p.add_argument("--plan-members", type=int, default=10_000_000)
    args = p.parse_args()
    if args.which in ("first", "resync", "all"):
        bench_first_and_resync(args.members, args.which)
    if args.which in ("plan", "all"):
        bench_plan(args.plan_members)


if __name__ == "__main__":
    main()
