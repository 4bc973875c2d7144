"""The `ui:` section: where the dashboard listens and the password that opens it.

The password comes from the environment (`password: ${AUDIENCESYNC_UI_PASSWORD}`); it never
appears in a message or a repr. Without one, `serve`'s bearer tokens open the dashboard, and
`audiencesync ui` makes a one-time password when neither is set.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from audiencesync.settings.common import Section, parse_duration


class UiSettings(Section):
    """How the dashboard listens (`audiencesync ui`; under `serve` it shares serve's address)."""

    password: str | None = Field(None, repr=False)
    host: str = "127.0.0.1"
    port: int = Field(8089, ge=0, le=65535)
    session_max_age: float = 12 * 3600.0
    """How long a login lasts, in seconds (`12h`, `30m`)."""

    @field_validator("password")
    @classmethod
    def _password(cls, v: str | None) -> str | None:
        if v is not None and len(v.strip()) < 8:
            raise ValueError("must be at least 8 characters (set it from an environment variable)")
        return v

    @field_validator("session_max_age", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> float:
        seconds = parse_duration(v) if isinstance(v, str | int | float) and not isinstance(v, bool) else None
        if seconds is None or seconds <= 0:
            raise ValueError("a duration above zero, written like 30m or 12h")
        return seconds
