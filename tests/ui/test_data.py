"""The warnings the Audiences page shows, from a Facebook audience's last read and an audience's last run."""

from __future__ import annotations

from datetime import datetime

from audiencesync.config import parse_config
from audiencesync.state.dashboard import FacebookAudienceView, RunView
from audiencesync.ui.data import AudienceRow, FacebookRow, version_warnings


def _fb(**over: object) -> FacebookRow:
    base = {"audience_key": "a", "kind": "multi", "fb_id": "1", "name": "A", "replace_pending": False,
            "members": 5_000, "lower": 3_000, "upper": 3_500, "members_held": 5_000, "operation_code": 200}
    return FacebookRow(FacebookAudienceView(**{**base, **over}))  # type: ignore[arg-type]


def test_a_facebook_audiences_warnings_name_what_facebook_said() -> None:
    assert _fb().warnings == []
    assert _fb().match_rate == (0.6, 0.7)
    assert _fb(operation_code=471, flagged_fields=("EMAIL",)).warnings == ["flagged (EMAIL)"]
    assert _fb(problem="deleted").warnings == ["deleted on Facebook"]
    assert "expiring" in _fb(operation_code=100).warnings[0]
    assert _fb(lower=500, upper=600).warnings == ["low match rate"]
    assert _fb(lower=1000, upper=1000, members_held=900).match_rate == (0.0, 1.0)  # Facebook's floor: "at most"
    assert _fb(pending_rows=12).warnings == ["12 rows sent without a recorded answer: re-sent next run"]


def test_an_audiences_last_run_turns_into_a_warning() -> None:
    def run(status: str, error: str | None) -> RunView:
        return RunView("r", "a", datetime(2026, 1, 1), datetime(2026, 1, 1), status, {"error": error})

    refused = AudienceRow(None, "a", "A", False, last_run=run("refused", "would remove 80% of A (email)"))
    assert refused.warnings[1] == "the guard refused the last run: would remove 80% of A (email)"
    assert "no longer in the config" in refused.warnings[0]
    waiting = AudienceRow(object(), "a", "A", False, last_run=run("waiting", "12 members, min_size is 100"))  # type: ignore[arg-type]
    assert waiting.warnings == ["waiting for min_size: 12 members, min_size is 100"]
    assert AudienceRow(object(), "a", "A", False).warnings == ["never synced"]  # type: ignore[arg-type]


def test_an_expired_api_version_is_a_warning() -> None:
    expired = parse_config({"meta": {"access_token": "t", "ad_account_id": "1", "api_version": "v23.0"}}, env={})
    assert version_warnings(expired) == ["meta.api_version v23.0 expired on 2026-06-09: refused (2635); set v26.0"]
