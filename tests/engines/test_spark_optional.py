"""The Spark engine is optional: the embedded path never loads pyspark, and a config that asks for
Spark says what is wrong (or missing) before any call. No Spark session is started here."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest
import yaml

from audiencesync.config import ConfigError, load_config


def write(tmp_path, audience: dict, sources: dict | None = None, **top) -> str:
    doc = {
        "meta": {"access_token": "t", "ad_account_id": "act_1"},
        "sources": sources or {"lake": {"engine": "spark"}},
        "audiences": [
            {
                "name": "VIP",
                "source": "lake",
                "customer_file_source": "USER_PROVIDED_ONLY",
                "forward": ["email"],
                "primary_key": "customer_id",
                **audience,
            }
        ],
        **top,
    }
    path = tmp_path / "audiencesync.yml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def problems(path: str) -> str:
    with pytest.raises(ConfigError) as e:
        load_config(path, env={})
    return str(e.value)


def test_the_embedded_path_never_imports_pyspark():
    code = (
        "import sys, audiencesync.pipeline, audiencesync.cli, audiencesync.config, audiencesync.state; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pyspark', 'py4j')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_spark_config_loads_with_defaults_and_its_settings(tmp_path):
    cfg = load_config(
        write(
            tmp_path,
            {"table": "crm.customers"},
            spark={"master": "sc://spark.internal:15002", "conf": {"spark.sql.shuffle.partitions": 400}},
        ),
        env={},
    )
    assert cfg.sources["lake"].engine == "spark" and cfg.audiences[0].table == "crm.customers"
    assert cfg.spark is not None and cfg.spark.master.startswith("sc://")
    assert load_config(write(tmp_path, {"query": "SELECT * FROM t"}), env={}).spark is None  # local[2] default


def test_without_pyspark_the_config_names_the_extra(tmp_path, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pyspark" else real(name, *a))
    text = problems(write(tmp_path, {"query": "SELECT * FROM t"}))
    assert "pyspark is not installed" in text and "audiencesync[spark]" in text
    assert "audiences[0] (VIP).source" in text


@pytest.mark.parametrize(
    ("audience", "sources", "top", "named", "reason"),
    [
        ({}, None, {}, "audiences[0] (VIP).query", "Spark SQL `query` or a `table`"),
        ({"query": "q", "primary_key": None}, None, {}, "audiences[0] (VIP).primary_key", "primary key"),
        ({"query": "q", "table": "t"}, None, {}, "table", "either `query` or `table`"),
        ({"table": "t"}, {"lake": {"type": "duckdb"}}, {}, "audiences[0] (VIP).table", "engine: spark"),
        ({"query": "q"}, {"lake": {"type": "sqlite", "path": "x.db", "engine": "spark"}}, {}, "engine", "sqlite"),
        ({"query": "q"}, None, {"spark": {"master": "http://x"}}, "spark.master", "not a Spark master URL"),
        ({"query": "q"}, None, {"spark": {"conf": {"executor.memory": "1g"}}}, "spark.conf", "not a Spark setting"),
        ({"query": "q"}, None, {"spark": {"max_records_per_batch": 10}}, "spark.max_records_per_batch", ""),
    ],
)
def test_bad_spark_settings_are_named(tmp_path, audience, sources, top, named, reason):
    text = problems(write(tmp_path, audience, sources, **top))
    assert named in text and reason in text
