"""An `audiences:` entry: what to read, how to match it and which Facebook audiences it becomes."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from audiencesync.settings.common import Section, parse_duration, snake_case
from audiencesync.settings.errors import problem
from audiencesync.settings.guard import GuardSettings

FORWARDABLE = ("email", "phone", "mobile_ad_id", "facebook_id")
"""Identities that get an audience of their own, as mParticle's per-identity audiences."""


class ValueSettings(Section):
    column: str
    allow_zero: bool = False


class AudienceSettings(Section):
    name: str
    key: str = ""
    source: str
    query: str | None = None
    table: str | None = None
    """A Spark source only: read this table (as `SELECT * FROM table`) instead of a query."""
    primary_key: str | None = None
    customer_file_source: Literal["USER_PROVIDED_ONLY", "PARTNER_PROVIDED_ONLY", "BOTH_USER_AND_PARTNER_PROVIDED"]
    description: str | None = None
    forward: list[str] = Field(default_factory=list)
    multi_key: bool = False
    match_on_attributes: bool = False
    external_id: str | None = None
    hash_external_id: bool = False
    default_country: str | None = None
    date_order: Literal["MDY", "DMY"] = "MDY"  # how 04/07/1990 reads in whole-date birthdays
    mode: Literal["mirror", "upsert", "delete"] = "mirror"
    min_size: int = Field(100, ge=0)
    columns: dict[str, str] = Field(default_factory=dict)
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
            raise problem("forward", f"unknown identity {unknown[0]!r}; choose from {', '.join(FORWARDABLE)}")
        if len(set(self.forward)) != len(self.forward):
            raise problem("forward", "an identity is listed twice")
        if not self.forward and not self.multi_key:
            raise ValueError("nothing to send: set `forward` (per-identity audiences) and/or `multi_key: true`")
        if self.value is not None and not self.multi_key and not self.forward:
            raise problem("value", "needs at least one audience to carry LOOKALIKE_VALUE")
        if self.table is not None and self.query is not None:
            raise problem("table", "give either `query` or `table`, not both")
        if self.schedule is not None:
            from croniter import croniter

            if not croniter.is_valid(self.schedule) and parse_duration(self.schedule) is None:
                raise problem("schedule", "neither a cron expression nor a duration like 15m")
        return self
