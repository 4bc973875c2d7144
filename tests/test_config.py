"""The config file: the issue's example works as written; every error names the setting."""

import subprocess
import sys
from pathlib import Path

import pytest

from audiencesync.config import ConfigError, SourceSettings, load_config, parse_config, parse_duration, snake_case
from audiencesync.settings.source import STREAM_SOURCE

EXAMPLE = """
meta:
  graph_url: http://127.0.0.1:8787      # default https://graph.facebook.com
  api_version: v25.0
  access_token: ${META_ACCESS_TOKEN}
  app_secret: ${META_APP_SECRET}        # optional; when set, every call carries appsecret_proof
  app_id: "123456789"                   # needed only to forward Facebook IDs
  ad_account_id: "1234567890"           # "act_" prefix optional
state: .audiencesync/state.duckdb
sources:
  crm:
    type: duckdb                        # the default engine; `path:` for a database file
audiences:
  - name: VIP customers
    source: crm
    query: select * from read_csv('data/customers.csv', all_varchar = true)
    primary_key: customer_id
    customer_file_source: USER_PROVIDED_ONLY
    forward: [email, phone, mobile_ad_id]   # one Facebook audience per identity
    multi_key: true                         # plus one audience with every key in each row
    match_on_attributes: true               # FN, LN, FI, GEN, DOB*, CT, ST, ZIP, COUNTRY in multi-key rows
    external_id: customer_id                # sent as EXTERN_ID in multi-key rows
    default_country: US
    mode: mirror                            # mirror | upsert | delete
    min_size: 100
"""

ENV = {"META_ACCESS_TOKEN": "t", "META_APP_SECRET": "app-s3cret"}
"""Every variable the example names: a written `${VAR}` that is not set is an error."""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "audiencesync.yml"
    p.write_text(text)
    return p


def test_issue_example_loads_as_written(tmp_path):
    cfg = load_config(write(tmp_path, EXAMPLE), env={**ENV, "META_ACCESS_TOKEN": "tok-123"})
    assert cfg.meta.access_token == "tok-123"
    assert cfg.meta.app_secret == "app-s3cret"
    assert cfg.meta.ad_account_id == "1234567890"
    a = cfg.audiences[0]
    assert a.key == "vip_customers"
    assert a.forward == ["email", "phone", "mobile_ad_id"]
    assert cfg.state == str(tmp_path / ".audiencesync/state.duckdb")


def test_act_prefix_is_optional(tmp_path):
    cfg = load_config(write(tmp_path, EXAMPLE.replace('"1234567890"', '"act_1234567890"')), env=ENV)
    assert cfg.meta.ad_account_id == "1234567890"


def test_unset_required_variable_names_setting_not_value(tmp_path):
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, EXAMPLE), env={})
    assert "meta.access_token" in str(e.value) and "META_ACCESS_TOKEN" in str(e.value)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("mode: mirror", "mode: sideways"), "audiences[0] (VIP customers).mode"),
        (("min_size: 100", "min_size: -1"), "audiences[0] (VIP customers).min_size"),
        (
            ("forward: [email, phone, mobile_ad_id]", "forward: [email, fax]"),
            "audiences[0] (VIP customers).forward: unknown identity 'fax'",
        ),
        (("source: crm", "source: warehouse"), "no source named 'warehouse'"),
        (("api_version: v25.0", "api_version: 25"), "meta.api_version"),
        (('ad_account_id: "1234567890"', 'ad_account_id: "abc"'), "meta.ad_account_id"),
        (("customer_file_source: USER_PROVIDED_ONLY", "customer_file_source: MINE"), "customer_file_source"),
        (("    default_country: US", "    default_contry: US"), "default_contry: unknown setting"),
    ],
)
def test_bad_settings_are_named(tmp_path, change, expected):
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, EXAMPLE.replace(*change)), env={**ENV, "META_ACCESS_TOKEN": "secret-token"})
    assert expected in str(e.value)
    assert "secret-token" not in str(e.value)


def test_facebook_id_needs_app_id(tmp_path):
    text = EXAMPLE.replace('  app_id: "123456789"                   # needed only to forward Facebook IDs\n', "")
    text = text.replace("forward: [email, phone, mobile_ad_id]", "forward: [email, facebook_id]")
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, text), env=ENV)
    assert "meta.app_id" in str(e.value)


def test_duplicate_keys_rejected():
    raw = {
        "meta": {"access_token": "t", "ad_account_id": "1"},
        "sources": {"s": {}},
        "audiences": [
            {
                "name": "A b",
                "source": "s",
                "query": "select 1",
                "customer_file_source": "USER_PROVIDED_ONLY",
                "multi_key": True,
            },
            {
                "name": "a-B",
                "source": "s",
                "query": "select 1",
                "customer_file_source": "USER_PROVIDED_ONLY",
                "multi_key": True,
            },
        ],
    }
    with pytest.raises(ConfigError, match="is used by another audience"):
        parse_config(raw, env={})


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path, "meta: [unclosed"))


def test_helpers():
    assert snake_case("Ordered in the last 30 days") == "ordered_in_the_last_30_days"
    assert parse_duration("2s") == 2 and parse_duration("3h") == 10800 and parse_duration("500ms") == 0.5
    assert parse_duration("soon") is None


def test_repr_hides_token():
    cfg = parse_config({"meta": {"access_token": "very-secret", "ad_account_id": "1"}}, env={})
    assert "very-secret" not in repr(cfg.meta) and "very-secret" not in repr(cfg) and "very-secret" not in str(cfg)


def test_bad_conversions_section_stops_every_command(tmp_path):
    text = EXAMPLE + 'conversions:\n  dataset_id: "987654321"\n  ldu: sometimes\n'
    with pytest.raises(ConfigError, match=r"conversions\.ldu"):
        load_config(write(tmp_path, text), env=ENV)
    good = (
        EXAMPLE
        + 'conversions:\n  dataset_id: "987654321"\n  email_identity: email\n  ldu: never\n  default_country: US\n'
    )
    assert load_config(write(tmp_path, good), env=ENV).conversions.dataset_id == "987654321"


def test_bad_serve_section_stops_every_command(tmp_path):
    text = EXAMPLE + "serve:\n  write_key: abc\n  flush_after: soon\n"
    with pytest.raises(ConfigError, match=r"serve\.flush_after"):
        load_config(write(tmp_path, text), env=ENV)


def test_driver_sources_need_their_settings():
    base = {"meta": {"access_token": "t", "ad_account_id": "1"}}
    with pytest.raises(ConfigError, match="driver"):
        parse_config({**base, "sources": {"pg": {"type": "dbapi"}}}, env={})
    with pytest.raises(ConfigError, match="path"):
        parse_config({**base, "sources": {"lite": {"type": "sqlite"}}}, env={})
    cfg = parse_config(
        {**base, "sources": {"pg": {"type": "dbapi", "driver": "psycopg", "connect": "dbname=crm"}}}, env={}
    )
    assert cfg.sources["pg"].driver == "psycopg" and "dbname" not in repr(cfg)


@pytest.mark.parametrize(("setting", "variable"), [("app_secret", "META_APP_SECRET"), ("app_id", "META_APP_ID")])
def test_a_written_meta_variable_that_is_not_set_is_an_error(tmp_path, setting, variable):
    """A missing META_APP_SECRET used to drop the setting, so calls went out without appsecret_proof."""
    text = EXAMPLE.replace('  app_id: "123456789"', "  app_id: ${META_APP_ID}")
    env = {**ENV, "META_APP_ID": "123456789"}
    del env[variable]
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, text), env=env)
    assert f"meta.{setting}: environment variable {variable} is not set" in str(e.value)
    assert "app-s3cret" not in str(e.value)


def test_a_setting_left_out_stays_optional(tmp_path):
    text = EXAMPLE.replace("  app_secret: ${META_APP_SECRET}", "  # app_secret: ${META_APP_SECRET}")
    cfg = load_config(write(tmp_path, text), env={"META_ACCESS_TOKEN": "t"})
    assert cfg.meta.app_secret is None


def test_every_unset_variable_is_named_at_once(tmp_path):
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, EXAMPLE), env={})
    assert e.value.problems == [
        "meta.access_token: environment variable META_ACCESS_TOKEN is not set",
        "meta.app_secret: environment variable META_APP_SECRET is not set",
    ]


def test_a_variable_in_a_list_names_the_audience(tmp_path):
    text = EXAMPLE.replace("query: select *", "query: ${CRM_QUERY} select *")
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, text), env=ENV)
    assert e.value.problems == ["audiences[0] (VIP customers).query: environment variable CRM_QUERY is not set"]


def test_every_section_is_checked_in_one_pass(tmp_path):
    text = EXAMPLE.replace("mode: mirror", "mode: sideways")
    text += 'conversions:\n  dataset_id: "987654321"\n  ldu: sometimes\nserve:\n  write_key: abc\n  flush_after: soon\n'
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, text), env=ENV)
    assert e.value.problems == [
        "audiences[0] (VIP customers).mode: must be one of mirror, upsert or delete",
        "conversions.ldu: must be one of never, always or when_located",
        "serve.flush_after: not a duration; write it like 2s, 500ms, 15m or 3h",
    ]


def test_cross_section_problems_are_all_named():
    base = {"meta": {"access_token": "t", "ad_account_id": "1"}, "sources": {"s": {}}}
    a = {"name": "A", "source": "s", "query": "q", "customer_file_source": "USER_PROVIDED_ONLY", "multi_key": True}
    raw = {
        **base,
        "audiences": [a, {**a, "name": "a", "forward": ["facebook_id"]}, {**a, "name": "B", "source": "nope"}],
    }
    with pytest.raises(ConfigError) as e:
        parse_config(raw, env={})
    assert e.value.problems == [
        "audiences[1] (a).key: 'a' is used by another audience",
        "audiences[1] (a).forward: facebook_id needs meta.app_id (Facebook IDs are app-scoped)",
        "audiences[2] (B).source: no source named 'nope' under `sources`",
    ]


def test_a_source_error_names_its_setting():
    base = {"meta": {"access_token": "t", "ad_account_id": "1"}}
    with pytest.raises(ConfigError) as e:
        parse_config({**base, "sources": {"lite": {"type": "sqlite"}}}, env={})
    assert e.value.problems == ["sources.lite.path: a sqlite source needs the database file"]


def test_source_of_gives_stream_audiences_the_implicit_stream_source():
    a = {"customer_file_source": "USER_PROVIDED_ONLY", "multi_key": True}
    cfg = parse_config(
        {
            "meta": {"access_token": "t", "ad_account_id": "1"},
            "sources": {"crm": {"type": "sqlite", "path": "crm.db"}},
            "audiences": [
                {**a, "name": "Q", "source": "crm", "query": "select 1"},
                {**a, "name": "S", "source": "stream"},
            ],
        },
        env={},
    )
    assert cfg.source_of(cfg.audience("Q")) == SourceSettings(type="sqlite", path="crm.db")
    assert cfg.source_of(cfg.audience("S")) is STREAM_SOURCE and STREAM_SOURCE.type == "stream"


def test_the_section_modules_do_not_import_config():
    """The sections are leaves: `config.py` imports them, never the other way round."""
    modules = ["audience", "common", "conversions", "errors", "guard", "meta", "serve", "source"]
    code = (
        "import sys\n"
        + "".join(f"import audiencesync.settings.{m}\n" for m in modules)
        + "assert 'audiencesync.config' not in sys.modules, sorted(m for m in sys.modules if 'audiencesync' in m)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
