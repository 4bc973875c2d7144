"""`spark.master: sc://host:port`: a sync planned through a real Spark Connect server.

The server is the one pyspark ships (`SparkConnectServer`, started with `spark-submit` as a user
starts it: `SPARK_HOME` the pyspark directory, the project's Python for its workers), bound to
127.0.0.1 on a free port and stopped at the end. The sync runs in its own process through the CLI,
as a user runs it: a Python process holds either a classic Spark session or Spark Connect's, not
both (pyspark switches `pyspark.sql.functions` to Connect process-wide), and the suite's shared
`local[1]` session lives in this one. What Facebook holds afterwards is read from the emulator and
compared with what the embedded engine sent for the same rows.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.support import person

from .test_spark_sync import sorted_items, write_source

pytestmark = [pytest.mark.spark, pytest.mark.slow]

PYSPARK = Path(__import__("pyspark").__file__).parent
SERVER_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def connect_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Spark Connect server on `local[1]`, small heap, C1-only JIT; its log kept for a failure."""
    if not (PYSPARK / "bin" / "spark-submit").exists():
        pytest.skip("pyspark ships no bin/spark-submit here")
    port = _free_port()
    log = tmp_path_factory.mktemp("connect") / "server.log"
    jvm = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
    env = {**os.environ, "SPARK_HOME": str(PYSPARK), "PYSPARK_PYTHON": sys.executable, "SPARK_NO_DAEMONIZE": "1"}
    cmd = [
        str(PYSPARK / "bin" / "spark-submit"),
        *("--class", SERVER_CLASS, "--name", "audiencesync-tests-connect", "--master", "local[1]"),
        *("--driver-memory", "768m", "--driver-java-options", jvm),
        *("--conf", f"spark.connect.grpc.binding.port={port}"),
        *("--conf", "spark.connect.grpc.binding.address=127.0.0.1"),
        *("--conf", "spark.driver.host=127.0.0.1", "--conf", "spark.driver.bindAddress=127.0.0.1"),
        *("--conf", "spark.ui.enabled=false", "--conf", "spark.sql.shuffle.partitions=2"),
    ]
    with log.open("wb") as out:
        server = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while b"Spark Connect server started" not in log.read_bytes():
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the Spark Connect server did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield f"sc://127.0.0.1:{port}"
    finally:
        os.killpg(server.pid, 15)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, 9)
            server.wait()


def _sync(cfg: Path, token: str) -> None:
    env = {**os.environ, "META_ACCESS_TOKEN": token, "PYSPARK_PYTHON": sys.executable}
    cli = Path(sys.executable).parent / "audiencesync"
    done = subprocess.run([str(cli), "sync", "-c", str(cfg)], env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]


def test_a_sync_through_spark_connect_sends_what_the_embedded_engine_sends(ws: Any, connect_url: str) -> None:
    src = ws.root / "members.parquet"
    rows = [person(i) for i in range(60)] + [person(500, email="not an email", phone="12")]
    write_source(src, rows)
    audience = {"forward": ["email"], "multi_key": True, "external_id": "customer_id", "match_on_attributes": True}
    ws.config(
        [
            {**audience, "name": "Lake", "source": "lake", "query": f"SELECT * FROM parquet.`{src}`"},
            {**audience, "name": "Local", "source": "local", "query": f"SELECT * FROM read_parquet('{src}')"},
        ],
        sources={"lake": {"engine": "spark"}, "local": {"type": "duckdb"}},
    )
    path = ws.root / "audiencesync.yml"
    doc = yaml.safe_load(path.read_text())
    doc["spark"] = {"master": connect_url, "state_dir": "spark-state", "conf": {"spark.sql.shuffle.partitions": 2}}
    path.write_text(yaml.safe_dump(doc))

    for step in (rows, [*rows[10:], person(600), person(20, email="moved20@example.com")]):
        write_source(src, step)
        _sync(path, ws.emu.token)
        held = {a["name"]: a["id"] for a in ws.emulator_audiences()}
        for kind in ("", " (email)"):
            lake = sorted(map(sorted_items, ws.members(held[f"Lake{kind}"])))
            assert lake and lake == sorted(map(sorted_items, ws.members(held[f"Local{kind}"])))
    assert (ws.root / "spark-state").is_dir()  # the mirror Spark read lives where the config says
