"""Tell each webhook of a condition once when it starts and once when it ends.

The state keeps, per condition, whether it holds, and per webhook what it was last told. A webhook
that does not answer (or answers an error) is logged on one line and the run goes on; what it was
told stays unchanged, so it is tried again at the next check of that condition (the audience's next
run, health read or stream flush), unless the condition has ended meanwhile.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import duckdb
import httpx

from audiencesync.alerts.conditions import Condition
from audiencesync.load.graph import redact_http_logs
from audiencesync.settings.alerts import AlertSettings, WebhookSettings
from audiencesync.state import alerts as alert_state

log = logging.getLogger(__name__)


def body(webhook: WebhookSettings, c: Condition) -> dict[str, Any]:
    state = "started" if c.active else "resolved"
    if webhook.format == "slack":
        mark = ":rotating_light:" if c.active else ":white_check_mark:"
        text = f"{mark} audiencesync {c.kind.replace('_', ' ')} {state}: {c.summary}"
        return {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}
    return {
        "source": "audiencesync",
        "event": c.kind,
        "state": state,
        "subject": c.subject,
        "summary": c.summary,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def post(webhook: WebhookSettings, payload: dict[str, Any]) -> str | None:
    """None when the webhook took it; else why not, in words without the URL."""
    redact_http_logs(webhook.url)
    try:
        r = httpx.post(webhook.url, json=payload, timeout=webhook.timeout_s)
    except httpx.HTTPError as e:
        return type(e).__name__
    return None if r.is_success else f"HTTP {r.status_code}"


def notify(settings: AlertSettings, con: duckdb.DuckDBPyConnection, conditions: Iterable[Condition]) -> int:
    """Record each condition's state and tell the webhooks that have not heard of its change;
    returns how many alerts were delivered. Never raises for a webhook's sake."""
    sent = 0
    for c in conditions:
        before = alert_state.condition(con, c.kind, c.subject)
        if before is None and not c.active:
            continue  # never held: nothing to record, nothing to say
        alert_state.set_condition(con, c.kind, c.subject, c.active, c.reference)
        for webhook in settings.webhooks:
            if c.kind not in webhook.events or alert_state.told(con, webhook.ident, c.kind, c.subject) == c.active:
                continue
            failed = post(webhook, body(webhook, c))
            if failed:
                log.warning(
                    "alert %s (%s) for %s not delivered to webhook %s: %s; tried again at the next check",
                    c.kind,
                    "started" if c.active else "resolved",
                    c.subject,
                    webhook.ident,
                    failed,
                )
                continue
            alert_state.set_told(con, webhook.ident, c.kind, c.subject, c.active)
            sent += 1
    return sent
