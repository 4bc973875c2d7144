"""The `health:` section: how often Facebook's view of each managed audience is read back."""

from __future__ import annotations

from typing import Any

from pydantic import field_validator

from audiencesync.settings.common import Section, parse_duration


class HealthSettings(Section):
    read_every: float = 86_400.0
    """Seconds between two reads of an audience nothing was sent to (`24h` by default): a run that
    sent nothing reads again only when the last read is older, and `run`/`serve` read each managed
    audience on this period even when no sync is due."""

    @field_validator("read_every", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> float:
        seconds = parse_duration(v) if isinstance(v, str | int | float) and not isinstance(v, bool) else None
        if seconds is None:
            raise ValueError("not a duration; write it like 24h, 30m or 1d")
        if seconds <= 0:
            raise ValueError("must be more than zero")
        return seconds
