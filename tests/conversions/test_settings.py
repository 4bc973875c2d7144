"""The `conversions:` section: the issue's example works as written; every error names the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from audiencesync.config import ConfigError, load_config, parse_config
from audiencesync.conversions.settings import DEFAULT_EVENTS, ConversionsSettings, conversions_settings

EXAMPLE = """
meta:
  access_token: ${META_ACCESS_TOKEN}
  ad_account_id: "1234567890"
state: .audiencesync/state.duckdb
conversions:
  dataset_id: "987654321"      # the Meta dataset (pixel) that receives the offline events
  email_identity: email        # which identity column is the email
  ldu: never                   # never | always | when_located
  default_country: US
"""


def test_the_issue_example_works_as_written(tmp_path: Path) -> None:
    path = tmp_path / "audiencesync.yml"
    path.write_text(EXAMPLE)
    s = conversions_settings(load_config(path, env={"META_ACCESS_TOKEN": "t"}))
    assert s.dataset_id == "987654321"
    assert s.email_identity == "email"
    assert s.ldu == "never"
    assert s.default_country == "US"
    assert s.action_source == "physical_store"
    assert s.batch_size == 1000
    assert s.event_names == DEFAULT_EVENTS
    assert s.window_days == 62


def problems(section: object) -> list[str]:
    with pytest.raises(ConfigError) as e:  # parse_config checks the section too, before any command runs
        conversions_settings(
            parse_config({"meta": {"access_token": "t", "ad_account_id": "1"}, "conversions": section})
        )
    return e.value.problems


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ({"ldu": "never"}, "conversions.dataset_id: is required"),
        ({"dataset_id": "pixel-1"}, "conversions.dataset_id: must be the numeric id"),
        ({"dataset_id": "1", "ldu": "sometimes"}, "conversions.ldu: must be one of never, always or when_located"),
        ({"dataset_id": "1", "default_country": "USA"}, "conversions.default_country: must be an ISO 3166-1"),
        ({"dataset_id": "1", "batch_size": 5000}, "conversions.batch_size: should be less than or equal to 1000"),
        ({"dataset_id": "1", "batch_size": 0}, "conversions.batch_size: should be greater than or equal to 1"),
        (
            {"dataset_id": "1", "events": {"buy": "Purchase"}},
            "conversions.events: buy: not an mParticle product action",
        ),
        ({"dataset_id": "1", "events": {"refund": "!!"}}, "conversions.events: refund: an event name is"),
        ({"dataset_id": "1", "action_source": "website"}, "conversions.action_source: must be one of"),
        ({"dataset_id": "1", "emali_identity": "email"}, "conversions.emali_identity: unknown setting"),
        ({"dataset_id": "1", "email_identity": " "}, "conversions.email_identity: is empty"),
    ],
)
def test_errors_name_the_setting(section: dict[str, object], expected: str) -> None:
    found = problems(section)
    assert any(p.startswith(expected) for p in found), found


def test_a_missing_section_is_reported() -> None:
    cfg = parse_config({"meta": {"access_token": "t", "ad_account_id": "1"}})
    with pytest.raises(ConfigError, match="conversions: the section is missing"):
        conversions_settings(cfg)


def test_numeric_dataset_id_from_yaml_and_lowercase_country_are_accepted() -> None:
    s = ConversionsSettings.model_validate({"dataset_id": 987654321, "default_country": "gb"})
    assert s.dataset_id == "987654321" and s.default_country == "GB"


def test_test_events_are_remembered_apart_from_real_ones() -> None:
    assert ConversionsSettings(dataset_id="1").dataset_key() == "1"
    assert ConversionsSettings(dataset_id="1", test_event_code="TEST1").dataset_key() == "1#test:TEST1"


def test_rejects_path_defaults_next_to_the_state(tmp_path: Path) -> None:
    s = ConversionsSettings(dataset_id="1")
    assert s.rejects_path(str(tmp_path / "state.duckdb"), "R1") == tmp_path / "rejects" / "conversions-R1.csv"
    s = ConversionsSettings(dataset_id="1", rejects=str(tmp_path / "bad-{run_id}.csv"))
    assert s.rejects_path("x", "R2") == tmp_path / "bad-R2.csv"


def test_an_empty_section_is_reported_when_the_file_is_read() -> None:
    with pytest.raises(ConfigError) as e:
        parse_config({"meta": {"access_token": "t", "ad_account_id": "1"}, "conversions": {}})
    assert e.value.problems == ["conversions: the section is missing (it needs at least dataset_id)"]


def test_the_section_is_typed_on_the_config() -> None:
    cfg = parse_config({"meta": {"access_token": "t", "ad_account_id": "1"}, "conversions": {"dataset_id": 7}})
    assert isinstance(cfg.conversions, ConversionsSettings)
    assert conversions_settings(cfg) is cfg.conversions and cfg.conversions.dataset_id == "7"
