"""The `alerts:` section: webhooks told when a condition starts and when it ends.

A webhook's URL often carries a secret (Slack's incoming-webhook path is one): it never appears in
a message, a repr, a log line or the state, where a webhook is known by a hash of its URL.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, Literal

from pydantic import Field, field_validator

from audiencesync.settings.common import Section, parse_duration

EVENTS = ("run_failed", "guard_refused", "integrity_flag", "matched_drop", "stream_backlog")
Event = Literal["run_failed", "guard_refused", "integrity_flag", "matched_drop", "stream_backlog"]


class WebhookSettings(Section):
    url: str = Field(repr=False)
    format: Literal["slack", "json"] = "json"
    """`slack`: a Slack-compatible body (`text` and `blocks`); `json`: a plain JSON document."""
    events: tuple[Event, ...] = EVENTS
    """Which conditions this webhook hears of; all by default."""
    timeout_s: float = Field(5.0, gt=0, le=60)

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not re.match(r"https?://[^/\s]+", v):
            raise ValueError("must be an http:// or https:// URL")
        return v

    @field_validator("events", mode="before")
    @classmethod
    def _events(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = [v]
        if isinstance(v, list | tuple) and not v:
            raise ValueError(f"name at least one of {', '.join(EVENTS)}")
        return v

    @property
    def ident(self) -> str:
        """How the state knows this webhook: a hash of its URL, never the URL."""
        return hashlib.sha256(self.url.encode()).hexdigest()[:16]


class AlertSettings(Section):
    webhooks: tuple[WebhookSettings, ...] = ()
    matched_drop_share: float = Field(0.2, gt=0, lt=1)
    """Alert when an audience's matched size falls by more than this share from the read before."""
    stream_backlog_age: float = 900.0
    """Alert when a stream audience's oldest unsynced change is older than this (`15m` by default)."""

    @field_validator("stream_backlog_age", mode="before")
    @classmethod
    def _age(cls, v: Any) -> float:
        seconds = parse_duration(v) if isinstance(v, str | int | float) and not isinstance(v, bool) else None
        if seconds is None:
            raise ValueError("not a duration; write it like 15m, 30s or 1h")
        if seconds <= 0:
            raise ValueError("must be more than zero")
        return seconds
