"""The `serve:` section of the config file, typed and validated before the server binds a port.

`Config.serve` arrives as a plain mapping (config.py stays ignorant of the stream door); this
model gives it types, defaults and error messages that name the setting (`serve.flush_after: ...`),
the same way the rest of the file is checked. Secrets (the write key, bearer tokens) never appear
in a message or a repr.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from audiencesync.config import AudienceSettings, Config, ConfigError, SourceSettings, parse_duration


class ServeSettings(BaseModel):
    """How `audiencesync serve` listens, authenticates, bounds its input and flushes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

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

    @model_validator(mode="before")
    @classmethod
    def _token_alias(cls, data: Any) -> Any:
        """`bearer_token: x` is the one-token spelling of `bearer_tokens: [x]`."""
        if isinstance(data, dict) and "bearer_token" in data:
            data = dict(data)
            one = data.pop("bearer_token")
            if "bearer_tokens" in data:
                raise ValueError("bearer_token: give either bearer_token or bearer_tokens, not both")
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

    @field_validator("write_key")
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
            raise ValueError("write_key: set write_key and/or bearer_tokens; the server never accepts anonymous calls")
        if self.max_call_bytes > self.max_body_bytes:
            raise ValueError("max_call_bytes: must not exceed max_body_bytes")
        return self


def serve_settings(config: Config) -> ServeSettings:
    """Validate `config.serve` and the stream audiences; a ConfigError names each bad setting."""
    if config.serve is None:
        raise ConfigError(["serve: the config file has no `serve:` section (host, port, write_key, ...)"])
    try:
        settings = ServeSettings.model_validate(config.serve)
    except ValidationError as e:
        raise ConfigError([_describe(err) for err in e.errors()]) from None
    problems = stream_audience_problems(config)
    if problems:
        raise ConfigError(problems)
    return settings


def stream_audience_problems(config: Config) -> list[str]:
    """Settings a stream audience cannot use: its source is the members table the server keeps."""
    problems = []
    for i, a in enumerate(config.audiences):
        if a.key not in stream_audiences(config):
            continue
        where = f"audiences[{i}] ({a.name})"
        if a.value is not None:
            problems.append(f"{where}.value: a stream audience has no value column; value-based needs a query source")
        if "facebook_id" in a.forward:
            problems.append(f"{where}.forward: facebook_id is not available to a stream audience (no Facebook IDs)")
        if a.columns:
            problems.append(f"{where}.columns: a stream audience's columns are fixed; traits map by their names")
        if a.external_id not in (None, "external_id"):
            problems.append(f"{where}.external_id: a stream member's external id is its userId; remove this setting")
        if a.query or a.primary_key:
            problems.append(f"{where}.query: a stream audience has no query; its members arrive through serve")
    return problems


def _describe(err: Any) -> str:
    loc = ".".join(str(p) for p in err["loc"] if not isinstance(p, int))
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown setting"
    head, sep, rest = msg.partition(": ")
    if not loc and sep and head.isidentifier():
        loc, msg = head, rest
    return f"serve.{loc}: {msg}" if loc else f"serve: {msg}"


def stream_audiences(config: Config) -> dict[str, AudienceSettings]:
    """The configured audiences whose members arrive through the server, by audience key."""
    return {
        a.key: a
        for a in config.audiences
        if config.sources.get(a.source, SourceSettings(type="stream")).type == "stream"
    }
