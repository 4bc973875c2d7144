"""Alerts: webhooks told when something needs a person (a failed run, a guard refusal, an integrity
flag, a matched-size drop, a stream backlog), once when it starts and once when it ends.

    conditions.py  what holds, from the named values the pipeline hands over (never raw values)
    deliver.py     the state of each condition and webhook (`state/alerts.py`), and delivery by httpx

The doors call the three hooks below; none of them raises for an alert's sake: a broken webhook or
an unexpected error is logged and the sync goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import duckdb

from audiencesync.alerts import conditions
from audiencesync.alerts.deliver import notify
from audiencesync.load.health import Health
from audiencesync.report import AudienceReport
from audiencesync.settings.alerts import AlertSettings
from audiencesync.state import alerts as alert_state

log = logging.getLogger(__name__)


def after_run(settings: AlertSettings, con: duckdb.DuckDBPyConnection, rep: AudienceReport) -> None:
    """After one audience's run (not a dry run): failed, refused, or through again."""
    _safely(settings, con, lambda: conditions.from_run(rep))


def after_health_read(
    settings: AlertSettings, con: duckdb.DuckDBPyConnection, name: str, h: Health, previous: Health | None
) -> None:
    """After a read of a Facebook audience's health, before or after the writes, or on schedule."""
    _safely(
        settings,
        con,
        lambda: conditions.from_health(
            name, h, previous, alert_state.condition(con, "matched_drop", h.fb_id), settings.matched_drop_share
        ),
    )


def backlog(settings: AlertSettings, con: duckdb.DuckDBPyConnection, ages: dict[str, float]) -> None:
    """After a stream flush: per stream audience, the age in seconds of its oldest unsynced change."""
    _safely(settings, con, lambda: conditions.from_backlog(ages, settings.stream_backlog_age))


def _safely(
    settings: AlertSettings, con: duckdb.DuckDBPyConnection, found: Callable[[], list[conditions.Condition]]
) -> None:
    try:
        notify(settings, con, found())
    except (duckdb.Error, ValueError, TypeError, OSError) as e:
        log.warning("alerts not evaluated: %s", type(e).__name__)


__all__ = ["after_health_read", "after_run", "backlog"]
