"""The `serve:` section: how `audiencesync serve` listens, authenticates, bounds its input and flushes.

Secrets (the write key, bearer tokens) never appear in a message or a repr. Which audiences the
server feeds, and what they may not set, is checked across sections by `Config`.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator, model_validator

from audiencesync.settings.common import Section, parse_duration
from audiencesync.settings.errors import problem


class ServeSettings(Section):
    """How `audiencesync serve` listens, authenticates, bounds its input and flushes."""

    host: str = "127.0.0.1"
    port: int = Field(8088, ge=0, le=65535)
    write_key: str | None = Field(None, repr=False)
    bearer_tokens: tuple[str, ...] = Field((), repr=False)
    flush_after: float = 2.0
    flush_size: int = Field(10_000, ge=1)
    max_queue: int = Field(1_000_000, ge=1)
    max_body_bytes: int = Field(512 * 1024, ge=1024)
    max_call_bytes: int = Field(32 * 1024, ge=256)
    max_calls: int = Field(10_000, ge=1)
    max_id_length: int = Field(256, ge=1)
    max_value_length: int = Field(1024, ge=1)
    retry_after_max: float = 300.0
    mparticle_api_secret: str | None = Field(None, repr=False)
    """When set, a basic-auth call to the mParticle routes must carry it as the password (the
    mParticle SDKs send `api_key:api_secret`); unset, the password is not checked."""
    mparticle_environments: tuple[str, ...] = ("production",)
    """The mParticle `environment`s whose batches are used; a batch of any other is skipped."""

    @model_validator(mode="before")
    @classmethod
    def _token_alias(cls, data: Any) -> Any:
        """`bearer_token: x` is the one-token spelling of `bearer_tokens: [x]`."""
        if isinstance(data, dict) and "bearer_token" in data:
            data = dict(data)
            one = data.pop("bearer_token")
            if "bearer_tokens" in data:
                raise problem("bearer_token", "give either bearer_token or bearer_tokens, not both")
            data["bearer_tokens"] = [one] if one is not None else []
        return data

    @field_validator("flush_after", "retry_after_max", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> float:
        seconds = parse_duration(v) if isinstance(v, str | int | float) and not isinstance(v, bool) else None
        if seconds is None:
            raise ValueError("not a duration; write it like 2s, 500ms, 15m or 3h")
        if seconds <= 0:
            raise ValueError("must be more than zero")
        return seconds

    @field_validator("mparticle_environments", mode="before")
    @classmethod
    def _environments(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = [v]
        if not isinstance(v, list | tuple) or not v or not all(isinstance(e, str) and e.strip() for e in v):
            raise ValueError("a list of mParticle environments, e.g. [production] or [production, development]")
        return tuple(e.strip().lower() for e in v)

    @field_validator("write_key", "mparticle_api_secret")
    @classmethod
    def _key(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise ValueError("is empty")
        return v

    @field_validator("bearer_tokens")
    @classmethod
    def _tokens(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if any(not t.strip() for t in v):
            raise ValueError("a token is empty")
        return v

    @model_validator(mode="after")
    def _some_credential(self) -> ServeSettings:
        if not self.write_key and not self.bearer_tokens:
            raise problem("write_key", "set write_key and/or bearer_tokens; the server never accepts anonymous calls")
        if self.max_call_bytes > self.max_body_bytes:
            raise problem("max_call_bytes", "must not exceed max_body_bytes")
        return self
