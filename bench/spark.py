"""The Spark engine's plan beside the embedded planner's, on the same data and the same state.

  plan an incremental sync of N members (default 10M) with 1% change on Spark `local[2]`, and with the
  embedded DuckDB planner; wall time, peak memory (the Python driver, the JVM holding Spark's driver and
  executors, Spark's Python workers), and whether the adds and removes are the same rows
  then the per-core throughput and an extrapolation to 100M and 1B members on a cluster.

Data and state: `bench/sync.py`'s seeded members (messy emails and phones, one multi-key audience). The
baseline state is what a previous run leaves: the embedded planner plans the whole source once and its rows
are committed as acknowledged (row fingerprints are computed by the same code on both engines, so both
planners read the same `st.fb_rows`); the change cache of the Spark copy holds Spark's member fingerprints
(a Spark run writes those), computed here by the engine's own `_fingerprints`. Then 1% of the members
change (50% edited, 25% gone, 25% new) and each planner plans in a fresh process, timed from the plan call
(Spark's session start is timed apart). Targets (issue 15): ≤ 60 s plus session start, driver ≤ 4 GB.

Usage: .venv/bin/python bench/spark.py [--members N ...] [--master local[2]] [--driver-memory 4g]
         [--no-embedded] [--baseline-memory 8GB]
       .venv/bin/python bench/spark.py --mirror-only --members 10000000   (the mirror patched vs rewritten)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import duckdb
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sync as sync_bench  # bench/sync.py: the seeded source and config

FB_ID = "900000000000001"


def spark_config(cfg: Path, source: Path, master: str, driver_memory: str) -> None:
    """The embedded config's audience, read by Spark from the same Parquet file."""
    text = cfg.read_text()
    text = text.replace("  crm: {type: duckdb}", "  crm: {type: duckdb}\n  lake: {engine: spark}")
    text = text.replace("    source: crm", "    source: lake").replace(
        f"query: select * from read_parquet('{source}')", f"query: SELECT * FROM parquet.`{source}`"
    )
    text += (
        f"spark:\n  master: {master}\n  state_dir: spark-mirror\n"
        f"  conf: {{spark.driver.memory: {driver_memory}, spark.ui.enabled: false, "
        "spark.sql.shuffle.partitions: 16}\n"
    )
    cfg.write_text(text)


class Peak:
    """Samples RSS every 0.2 s: this Python process (the driver's Python side), the JVM (Spark's driver
    and, in local mode, its executors) and the Python workers the JVM starts. Sampled, not
    `ru_maxrss`, which a child inherits from the process that started it."""

    def __init__(self) -> None:
        self.jvm = 0
        self.workers = 0
        self.driver = psutil.Process().memory_info().rss
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.wait(0.2):
            jvm = workers = 0
            for p in me.children(recursive=True):
                try:
                    rss = p.memory_info().rss
                    if "java" in p.name():
                        jvm += rss
                    else:
                        workers += rss
                except psutil.Error:
                    continue
            self.jvm, self.workers = max(self.jvm, jvm), max(self.workers, workers)
            self.driver = max(self.driver, me.memory_info().rss)

    def stop(self) -> None:
        self._stop.set()
        self._t.join()


def _spark_plan_once(cfg_path: str, out_dir: str) -> None:
    from audiencesync.config import load_config
    from audiencesync.engines.spark.planner import SparkPlanner, SparkSource
    from audiencesync.state import StateStore, spark_mirror

    cfg = load_config(cfg_path, env={"META_ACCESS_TOKEN": "x"})
    a = cfg.audiences[0]
    peak = Peak()
    t0 = time.perf_counter()
    source = SparkSource(cfg.spark, a)
    source.spark.sparkContext.setLogLevel("ERROR")
    started = time.perf_counter() - t0
    with StateStore(cfg.state) as store:
        t1 = time.perf_counter()
        planner = SparkPlanner(store, source, a, mirror_root=spark_mirror.root(cfg.state, cfg.spark))
        plan = planner.plan()
        seconds = time.perf_counter() - t1
        _dump(store.con, plan, out_dir)
    peak.stop()
    _report(plan, seconds, started, peak, planner.timings)


def _embedded_plan_once(cfg_path: str, out_dir: str) -> None:
    from audiencesync.config import load_config
    from audiencesync.extract.source import QuerySource
    from audiencesync.plan.planner import Planner
    from audiencesync.state import StateStore

    cfg = load_config(cfg_path, env={"META_ACCESS_TOKEN": "x"})
    a = cfg.audiences[0]
    peak = Peak()
    with StateStore(cfg.state) as store:
        t0 = time.perf_counter()
        plan = Planner(store, QuerySource(store.con, a.source, cfg.sources[a.source], a.query), a).plan()
        seconds = time.perf_counter() - t0
        _dump(store.con, plan, out_dir)
    peak.stop()
    _report(plan, seconds, 0.0, peak)


def _dump(con: duckdb.DuckDBPyConnection, plan: Any, out_dir: str) -> None:
    tp = plan.targets[0]
    for name, table in (("adds", tp.add_batches), ("removes", tp.remove_batches)):
        con.execute(f"COPY (SELECT row_fp, schema, payload FROM {table}) TO '{out_dir}/{name}.parquet'")


def _report(plan: Any, seconds: float, started: float, peak: Peak, steps: dict[str, float] | None = None) -> None:
    tp = plan.targets[0]
    print(
        json.dumps(
            {
                "seconds": seconds,
                "session_s": started,
                "driver_py_mb": peak.driver / 2**20,
                "jvm_mb": peak.jvm / 2**20,
                "workers_mb": peak.workers / 2**20,
                "members": plan.members,
                "changed": plan.changed,
                "deleted": plan.deleted,
                "adds": tp.adds,
                "removes": tp.removes,
                "steps": {k: round(v, 1) for k, v in (steps or {}).items()},
            }
        )
    )


def _spark_fingerprints(cfg_path: Path) -> None:
    """The change cache a previous Spark run leaves: Spark's member fingerprints, in the ledger."""
    from audiencesync.config import load_config
    from audiencesync.engines.spark.planner import SparkPlanner, SparkSource
    from audiencesync.plan.planner import config_fingerprint
    from audiencesync.state import StateStore, spark_mirror

    cfg = load_config(cfg_path, env={"META_ACCESS_TOKEN": "x"})
    a = cfg.audiences[0]
    source = SparkSource(cfg.spark, a)
    source.spark.sparkContext.setLogLevel("ERROR")
    out = Path(cfg.state).parent / "spark_fp"
    with StateStore(cfg.state) as store:
        planner = SparkPlanner(store, source, a, mirror_root=spark_mirror.root(cfg.state, cfg.spark))
        df = source.frame()
        planner._fingerprints(df, planner._key_column(df)).select("pk", "raw_fp").write.parquet(str(out))
        store.con.execute("DELETE FROM st.source_rows WHERE audience_key = ?", [a.key])
        store.con.execute(
            f"INSERT INTO st.source_rows SELECT ?, pk, {spark_mirror.unsigned('raw_fp')} FROM read_parquet(?)",
            [a.key, f"{out}/*.parquet"],
        )
        store.con.execute(
            "UPDATE st.audience_state SET config_fp = ? WHERE audience_key = ?", [config_fingerprint(a), a.key]
        )
    source.spark.stop()


def run(args: list[str]) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    lines = out.stdout.strip().splitlines()
    return json.loads(lines[-1]) if lines else {}


def same_rows(a: Path, b: Path) -> bool:
    con = duckdb.connect()
    q = "SELECT row_fp, schema, payload FROM read_parquet('{}')"
    diff = con.execute(
        f"SELECT count(*) FROM (({q.format(a)} EXCEPT {q.format(b)}) UNION ALL ({q.format(b)} EXCEPT {q.format(a)}))"
    ).fetchall()[0][0]
    return diff == 0


def _baseline(cfg: Path, memory_limit: str) -> None:
    """`bench/sync.py`'s baseline (the whole source planned once and committed), with DuckDB given
    `memory_limit`: setup, not measured; at 50M members the first plan does not fit the state's
    default 768 MB (it failed with DuckDB's out-of-memory error)."""
    import audiencesync.state as state

    default = state.StateStore

    class Roomy(default):  # type: ignore[misc,valid-type]
        def __init__(self, path: Any, **kw: Any) -> None:
            super().__init__(path, **{**kw, "memory_limit": memory_limit})

    state.StateStore = Roomy  # type: ignore[misc]
    try:
        sync_bench._baseline(cfg)
    finally:
        state.StateStore = default  # type: ignore[misc]


def bench(
    members: int, master: str, driver_memory: str, keep_embedded: bool, baseline_memory: str = "768MB"
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        root = Path(tmp)
        emb, spk = root / "embedded", root / "spark"
        emb.mkdir()
        source = root / "members.parquet"
        t0 = time.perf_counter()
        sync_bench.make_source(source, members)
        cfg = sync_bench.write_config(emb, "http://127.0.0.1:9", source)
        _baseline(cfg, baseline_memory)
        shutil.copytree(emb, spk)
        spark_config(spk / "audiencesync.yml", source, master, driver_memory)
        run(["_fingerprints", str(spk / "audiencesync.yml")])
        sync_bench.make_source(source, members, change_pct=1.0)
        setup = time.perf_counter() - t0
        load_before = os.getloadavg()
        e = run(["_embedded", str(emb / "audiencesync.yml"), str(emb)]) if keep_embedded else None
        s = run(["_spark", str(spk / "audiencesync.yml"), str(spk)])
        load_after = os.getloadavg()
        cores = int(master[6:-1]) if master.startswith("local[") and master[6:-1].isdigit() else os.cpu_count() or 1
        same = e is not None and all(same_rows(emb / f"{n}.parquet", spk / f"{n}.parquet") for n in ("adds", "removes"))
        print(
            f"\n{members:,} members, 1% change, Spark {master} (setup {setup:.0f} s; load {load_before[0]:.1f} → "
            f"{load_after[0]:.1f}):"
        )
        print("| planner | plan | session start | Python driver | JVM (driver+exec.) | Py workers | adds | removes |")
        print("|---|---|---|---|---|---|---|---|")
        if e:
            print(
                f"| embedded (DuckDB) | {e['seconds']:.1f} s | – | {e['driver_py_mb']:,.0f} MB | – | – "
                f"| {e['adds']:,} | {e['removes']:,} |"
            )
        print(
            f"| spark {master} | {s['seconds']:.1f} s | {s['session_s']:.1f} s | {s['driver_py_mb']:,.0f} MB "
            f"| {s['jvm_mb']:,.0f} MB | {s['workers_mb']:,.0f} MB | {s['adds']:,} | {s['removes']:,} |"
        )
        print("spark steps: " + ", ".join(f"{k} {v} s" for k, v in s["steps"].items()))
        if e:
            print(f"identical adds and removes (row_fp, schema, payload): {same}")
        print(json.dumps({"members": members, "master": master, "embedded": e, "spark": s, "identical": same}))
        return {"members": members, "seconds": s["seconds"], "cores": cores}


def mirror_bench(members: int, change_pct: float = 1.0) -> None:
    """The mirror after a run: patched with the run's delta (what a Spark run does now) beside
    rewritten whole from the ledger (what it did before, and still does after a lost mirror or past
    the compaction share), on a ledger of `members` (one cached fingerprint and two held rows each)
    after a run that touched `change_pct`% of them. DuckDB only: no Spark session."""
    from audiencesync.state import StateStore, spark_mirror

    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        root = Path(tmp) / "mirror"
        with StateStore(Path(tmp) / "state.duckdb") as store:
            c = store.con
            store.record_facebook_audience("vip", "email", "111", "VIP (email)", "single", False)
            c.execute("INSERT INTO st.source_rows SELECT 'vip', 'C' || i, hash(i) FROM range(?) t(i)", [members])
            c.execute(
                "INSERT INTO st.fb_rows SELECT '111', 'C' || i, hash(i, k), 'EMAIL_SHA256', ['h'] "
                "FROM range(?) t(i), range(2) s(k)",
                [members],
            )
            spark_mirror.ensure(c, "vip", root)
            step = max(1, int(100 / change_pct))
            c.execute("CREATE TEMP TABLE touched AS SELECT 'C' || i AS pk FROM range(0, ?, ?) t(i)", [members, step])
            t0 = time.perf_counter()
            spark_mirror.note_before(c, "vip", "touched")  # as the Spark planner does before uploading
            noted = time.perf_counter() - t0
            c.execute("UPDATE st.source_rows SET raw_fp = raw_fp + 1 WHERE pk IN (SELECT pk FROM touched)")
            c.execute("UPDATE st.fb_rows SET row_fp = row_fp + 1 WHERE pk IN (SELECT pk FROM touched)")
            t0 = time.perf_counter()
            rebuilt = spark_mirror.refresh(c, "vip", root, touched="touched")
            patched = time.perf_counter() - t0
            m = spark_mirror.ensure(c, "vip", root)
            delta_mb = sum(f.stat().st_size for d in m.deltas for f in Path(d).glob("*.parquet")) / 2**20
            base_mb = sum(f.stat().st_size for f in Path(m.where, "base").rglob("*.parquet")) / 2**20
            t0 = time.perf_counter()
            spark_mirror.rebuild(c, "vip", root)
            whole = time.perf_counter() - t0
            touched = c.execute("SELECT count(*) FROM touched").fetchall()[0][0]
    load = os.getloadavg()[0]
    print(f"\nmirror after a run touching {touched:,} of {members:,} members ({change_pct}%), load {load:.1f}:")
    print("| mirror | seconds | written |")
    print("|---|---|---|")
    print(
        f"| patched (delta{', rebuilt!' if rebuilt else ''}) | {patched:.2f} s (+ {noted:.2f} s noted at plan) "
        f"| {delta_mb:.1f} MB |"
    )
    print(f"| rewritten whole | {whole:.2f} s | {base_mb:.1f} MB |")


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1].startswith("_"):
        {
            "_spark": lambda: _spark_plan_once(sys.argv[2], sys.argv[3]),
            "_embedded": lambda: _embedded_plan_once(sys.argv[2], sys.argv[3]),
            "_fingerprints": lambda: _spark_fingerprints(Path(sys.argv[2])),
        }[sys.argv[1]]()
        return
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--members", type=int, nargs="+", default=[10_000_000])
    p.add_argument("--master", default="local[2]")
    p.add_argument("--driver-memory", default="4g")
    p.add_argument("--no-embedded", action="store_true", help="Spark only (e.g. 50M, past the embedded budget)")
    p.add_argument("--baseline-memory", default="768MB", help="DuckDB's memory for the setup's baseline (50M: 8GB)")
    p.add_argument("--mirror-only", action="store_true", help="only the mirror's patch beside its rewrite (DuckDB)")
    args = p.parse_args()
    if args.mirror_only:
        for n in args.members:
            mirror_bench(n)
        return
    runs = [bench(n, args.master, args.driver_memory, not args.no_embedded, args.baseline_memory) for n in args.members]
    extrapolate(runs)


def extrapolate(runs: list[dict[str, Any]]) -> None:
    """Per-core throughput from the measured plans, and what it makes of 100M and 1B members.

    With two sizes or more, the plan time is fitted as fixed + members / (rate × cores) from the two
    largest (the fixed part, job scheduling and the driver's share, does not shrink with more cores);
    with one size, all of its time is counted as per-member work (pessimistic)."""
    runs = sorted(runs, key=lambda r: r["members"])
    big = runs[-1]
    cores = big["cores"]
    if len(runs) >= 2 and runs[-1]["seconds"] > runs[-2]["seconds"]:
        small = runs[-2]
        per_member = (big["seconds"] - small["seconds"]) / (big["members"] - small["members"])
        fixed = max(0.0, big["seconds"] - per_member * big["members"])
    else:
        per_member, fixed = big["seconds"] / big["members"], 0.0
    rate = 1 / (per_member * cores)
    print(
        f"\nper-core throughput: {rate:,.0f} members/s/core (fixed part {fixed:.1f} s), from "
        + ", ".join(f"{r['members']:,} in {r['seconds']:.1f} s" for r in runs)
        + f" on {cores} cores"
    )
    print("| members | 16 cores | 64 cores | 256 cores | 1,024 cores |")
    print("|---|---|---|---|---|")
    for n in (100_000_000, 1_000_000_000):
        print(f"| {n:,} | " + " | ".join(f"{fixed + n / (rate * c):,.0f} s" for c in (16, 64, 256, 1024)) + " |")


if __name__ == "__main__":
    main()
