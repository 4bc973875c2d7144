"""The match-rate suggestions, from counts made up to show each rule, and their ranking."""

from __future__ import annotations

from audiencesync.settings.audience import AudienceSettings
from audiencesync.state.dashboard import Coverage
from audiencesync.ui.insights import invalid_totals, suggestions


def _audience(**over: object) -> AudienceSettings:
    base = {"name": "Buyers", "source": "crm", "customer_file_source": "USER_PROVIDED_ONLY"}
    return AudienceSettings.model_validate({**base, **over})


def test_phones_without_a_country_and_unsent_attributes_come_first_by_members() -> None:
    cov = Coverage(members=10_000, by_key={"PHONE": 6_000, "EMAIL": 5_000}, strong={0: 900, 1: 5_100, 2: 4_000},
                   phone_only=3_100, sent_keys=("EMAIL", "PHONE"))  # fmt: skip
    runs = [
        {"normalized": 0, "keys_found": {}, "invalid": {}},
        {"normalized": 2_000, "keys_found": {"FN": 1_240, "LN": 1_100, "EMAIL": 1_000},
         "invalid": {"PHONE": {"too_short_for_country": 70}, "MADID": {"zero_madid": 500}}},
    ]  # fmt: skip
    found = suggestions(_audience(multi_key=True), cov, runs)
    texts = [s.text for s in found]
    assert [s.members for s in found] == sorted((s.members for s in found), reverse=True)
    assert "31% of members (3,100) have only a phone" in texts[1] and "`default_country`" in texts[1]
    assert "`match_on_attributes: true` would add keys to about 6,200 members" in texts[0]
    assert any("9% of members (900) have no email, phone or mobile id" in t for t in texts)
    assert any(t.startswith("70 phone values were refused") for t in texts)
    assert not any("advertis" in t and "refused" in t for t in texts)  # all-zero ids: nothing to fix


def test_a_default_country_or_sent_attributes_leave_those_rules_out() -> None:
    cov = Coverage(members=100, by_key={"PHONE": 100}, strong={1: 100}, phone_only=100, sent_keys=("PHONE",))
    runs = [{"normalized": 100, "keys_found": {"FN": 90, "PHONE": 100}, "invalid": {}}]
    a = _audience(multi_key=True, match_on_attributes=True, default_country="US")
    assert suggestions(a, cov, runs) == []


def test_invalid_totals_sum_runs_by_key_and_reason() -> None:
    runs = [{"invalid": {"EMAIL": {"not_an_email": 2}}}, {"invalid": {"EMAIL": {"not_an_email": 3}, "GEN": {"x": 9}}}]
    assert invalid_totals(runs) == {("GEN", "x"): 9, ("EMAIL", "not_an_email"): 5}
