"""The configuration file: parsed, expanded and validated before any call to Meta is made.

Every error names the setting (as a dotted path) and the reason, so a typo stops the run at once
instead of half-way through an upload. Secrets come from the environment through `${VAR}`; their
values never appear in an error message.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

FORWARDABLE = ("email", "phone", "mobile_ad_id", "facebook_id")
"""Identities that get an audience of their own, as mParticle's per-identity audiences."""


class ConfigError(ValueError):
    """A configuration problem; the message names the setting and the reason."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RetrySettings(_Strict):
    """How hard the client insists on transient failures before giving an audience up."""

    max_attempts: int = Field(8, ge=1, le=50)
    base_delay_s: float = Field(0.5, ge=0)
    max_delay_s: float = Field(120.0, ge=0)
    timeout_s: float = Field(120.0, gt=0)


class MetaSettings(_Strict):
    graph_url: str = "https://graph.facebook.com"
    api_version: str = "v25.0"
    access_token: str = Field(repr=False)
    app_secret: str | None = Field(None, repr=False)
    app_id: str | None = None
    ad_account_id: str
    max_in_flight: int = Field(4, ge=1, le=64)
    retry: RetrySettings = RetrySettings()

    @field_validator("api_version")
    @classmethod
    def _version(cls, v: str) -> str:
        if not re.fullmatch(r"v\d+\.\d+", v):
            raise ValueError("must look like v25.0")
        return v

    @field_validator("graph_url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not re.match(r"https?://", v):
            raise ValueError("must start with http:// or https://")
        return v.rstrip("/")

    @field_validator("ad_account_id")
    @classmethod
    def _account(cls, v: str) -> str:
        digits = v.removeprefix("act_")
        if not digits.isdigit():
            raise ValueError("must be the numeric ad account id, with or without the act_ prefix")
        return digits

    @field_validator("access_token")
    @classmethod
    def _token(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("is empty")
        return v


class SourceSettings(_Strict):
    """Where an audience's query runs: DuckDB (files or a database file), or another database
    through its Python DB-API driver (`sqlite`, or `dbapi` with `driver: psycopg` and `connect:`)."""

    type: Literal["duckdb", "sqlite", "dbapi", "stream"] = "duckdb"
    path: str | None = None
    bad_rows: Literal["fail", "skip"] = "fail"
    """A CSV row that does not parse (ragged, unconvertible): stop the audience (`fail`), or set it
    aside, count it in the report and go on (`skip`). A broken quote always stops it."""
    driver: str | None = None
    connect: dict[str, Any] | str | None = Field(None, repr=False)

    @model_validator(mode="after")
    def _check(self) -> SourceSettings:
        if self.type == "sqlite" and not self.path:
            raise ValueError("path: a sqlite source needs the database file")
        if self.type == "dbapi" and not self.driver:
            raise ValueError("driver: a dbapi source needs the driver's module name (e.g. psycopg)")
        return self


class GuardSettings(_Strict):
    """What a sync refuses to do without `--force`: the changes a broken export would cause."""

    max_remove_share: float = Field(0.5, ge=0, le=1)
    """The most of a Facebook audience one mirror or delete run may remove (0.5: half)."""
    allow_empty: bool = False
    """Whether a source that returns no members may empty the audience."""


class ValueSettings(_Strict):
    column: str
    allow_zero: bool = False


class AudienceSettings(_Strict):
    name: str
    key: str = ""
    source: str
    query: str | None = None
    primary_key: str | None = None
    customer_file_source: Literal["USER_PROVIDED_ONLY", "PARTNER_PROVIDED_ONLY", "BOTH_USER_AND_PARTNER_PROVIDED"]
    description: str | None = None
    forward: list[str] = []
    multi_key: bool = False
    match_on_attributes: bool = False
    external_id: str | None = None
    hash_external_id: bool = False
    default_country: str | None = None
    date_order: Literal["MDY", "DMY"] = "MDY"  # how 04/07/1990 reads in whole-date birthdays
    mode: Literal["mirror", "upsert", "delete"] = "mirror"
    min_size: int = Field(100, ge=0)
    columns: dict[str, str] = {}
    value: ValueSettings | None = None
    ldu: bool = False
    schedule: str | None = None
    guard: GuardSettings | None = None
    """Overrides the top-level `guard:` for this audience."""

    @model_validator(mode="after")
    def _check(self) -> AudienceSettings:
        if not self.key:
            object.__setattr__(self, "key", snake_case(self.name))
        unknown = [f for f in self.forward if f not in FORWARDABLE]
        if unknown:
            raise ValueError(f"forward: unknown identity {unknown[0]!r}; choose from {', '.join(FORWARDABLE)}")
        if len(set(self.forward)) != len(self.forward):
            raise ValueError("forward: an identity is listed twice")
        if not self.forward and not self.multi_key:
            raise ValueError("nothing to send: set `forward` (per-identity audiences) and/or `multi_key: true`")
        if self.value is not None and not self.multi_key and not self.forward:
            raise ValueError("value: needs at least one audience to carry LOOKALIKE_VALUE")
        if self.schedule is not None:
            from croniter import croniter

            if not croniter.is_valid(self.schedule) and parse_duration(self.schedule) is None:
                raise ValueError("schedule: neither a cron expression nor a duration like 15m")
        return self


class Config(_Strict):
    meta: MetaSettings
    state: str = ".audiencesync/state.duckdb"
    guard: GuardSettings = GuardSettings()
    sources: dict[str, SourceSettings] = {}
    audiences: list[AudienceSettings] = []
    conversions: dict[str, Any] | None = None
    serve: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _cross(self) -> Config:
        keys: set[str] = set()
        for i, a in enumerate(self.audiences):
            where = f"audiences[{i}] ({a.name})"
            if a.key in keys:
                raise ValueError(f"{where}.key: {a.key!r} is used by another audience")
            keys.add(a.key)
            if a.source not in self.sources and a.source != "stream":
                raise ValueError(f"{where}.source: no source named {a.source!r} under `sources`")
            src = self.sources.get(a.source, SourceSettings(type="stream"))
            if src.type != "stream" and not a.query:
                raise ValueError(f"{where}.query: a {src.type} source needs a query")
            if "facebook_id" in a.forward and not self.meta.app_id:
                raise ValueError(f"{where}.forward: facebook_id needs meta.app_id (Facebook IDs are app-scoped)")
        return self

    def guard_for(self, audience: AudienceSettings) -> GuardSettings:
        return audience.guard or self.guard

    def audience(self, name_or_key: str) -> AudienceSettings:
        for a in self.audiences:
            if name_or_key in (a.name, a.key):
                return a
        raise ConfigError([f"audiences: no audience named {name_or_key!r}"])


def snake_case(name: str) -> str:
    """Segment Engage's audience keys are the snake_cased audience names."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def parse_duration(text: str | int | float) -> float | None:
    """Seconds from `2s`, `500ms`, `15m`, `3h`, or a bare number; None if unreadable."""
    if isinstance(text, int | float):
        return float(text)
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*", str(text))
    if not m:
        return None
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2) or "s"]
    return float(m.group(1)) * scale


def _expand(node: Any, path: tuple[str, ...], env: dict[str, str], problems: list[str]) -> Any:
    """Substitute `${VAR}`; a variable that is not set is a problem naming the setting, for every
    setting. An optional setting is optional by leaving its line out: a written `${VAR}` says the
    setting is wanted, so dropping it when the variable is missing would silently change what is sent
    (no `meta.app_secret` means no appsecret_proof; no `meta.app_id` means a misleading error later)."""
    if isinstance(node, dict):
        return {k: _expand(v, (*path, str(k)), env, problems) for k, v in node.items()}
    if isinstance(node, list):
        return [_expand(v, (*path, str(i)), env, problems) for i, v in enumerate(node)]
    if isinstance(node, str) and "${" in node:
        missing = [name for name in _VAR.findall(node) if name not in env]
        if missing:
            problems.append(f"{'.'.join(path)}: environment variable {missing[0]} is not set")
            return node
        return _VAR.sub(lambda m: env[m.group(1)], node)
    return node


def load_config(path: str | Path, env: dict[str, str] | None = None) -> Config:
    """Read, expand and validate a config file; raise ConfigError naming every bad setting."""
    p = Path(path)
    if not p.exists():
        raise ConfigError([f"config file {str(p)!r} does not exist"])
    try:
        raw = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError([f"{p}: not valid YAML ({getattr(e, 'problem', None) or 'parse error'})"]) from None
    return parse_config(raw, env=env, base_dir=p.parent)


def parse_config(raw: dict[str, Any], env: dict[str, str] | None = None, base_dir: Path | None = None) -> Config:
    if not isinstance(raw, dict):
        raise ConfigError(["the file must be a mapping with `meta:` and `audiences:`"])
    problems: list[str] = []
    expanded = _expand(raw, (), dict(os.environ if env is None else env), problems)
    if problems:
        raise ConfigError(problems)
    try:
        cfg = Config.model_validate(expanded)
    except ValidationError as e:
        raise ConfigError([_describe(err, expanded) for err in e.errors()]) from None
    if base_dir is not None and not Path(cfg.state).is_absolute():
        cfg = cfg.model_copy(update={"state": str(base_dir / cfg.state)})
    _check_sections(cfg)
    return cfg


def _check_sections(cfg: Config) -> None:
    """The conversions and serve sections are typed by their own packages; check them up front too,
    so every command stops on a bad setting before it makes a call."""
    if cfg.conversions is not None:
        from audiencesync.conversions.settings import conversions_settings

        conversions_settings(cfg)
    if cfg.serve is not None:
        from audiencesync.stream.settings import serve_settings

        serve_settings(cfg)


def _describe(err: Any, doc: dict[str, Any]) -> str:
    loc = list(err["loc"])
    parts: list[str] = []
    node: Any = doc
    for item in loc:
        if isinstance(item, int) and isinstance(node, list) and item < len(node):
            node = node[item]
            name = node.get("name") if isinstance(node, dict) else None
            parts[-1] = f"{parts[-1]}[{item}]" + (f" ({name})" if name else "") if parts else f"[{item}]"
            continue
        parts.append(str(item))
        node = node.get(item) if isinstance(node, dict) else None
    where = ".".join(parts) or "config"
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown setting"
    elif err["type"] == "missing":
        msg = "is required"
    return f"{where}: {msg}"
