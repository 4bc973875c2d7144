"""The `meta:` section: the Graph API, the ad account, credentials and the retry policy."""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from audiencesync.settings.common import Section
from audiencesync.settings.versions import DEFAULT_API_VERSION


class RetrySettings(Section):
    """How hard the client insists on transient failures before giving an audience up."""

    max_attempts: int = Field(8, ge=1, le=50)
    base_delay_s: float = Field(0.5, ge=0)
    max_delay_s: float = Field(120.0, ge=0)
    timeout_s: float = Field(120.0, gt=0)


class MetaSettings(Section):
    graph_url: str = "https://graph.facebook.com"
    api_version: str = DEFAULT_API_VERSION
    """The Marketing API version (Custom Audiences): Meta expires these sooner than the Graph's."""
    capi_version: str | None = None
    """The Conversions API version; None: the same as `api_version`. Set apart because CAPI versions
    are served for the Graph API's longer support (`settings/versions.py`)."""
    access_token: str = Field(repr=False)
    app_secret: str | None = Field(None, repr=False)
    app_id: str | None = None
    ad_account_id: str
    max_in_flight: int = Field(4, ge=1, le=64)
    retry: RetrySettings = RetrySettings()

    @field_validator("api_version", "capi_version")
    @classmethod
    def _version(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"v\d+\.\d+", v):
            raise ValueError(f"must look like {DEFAULT_API_VERSION}")
        return v

    @property
    def conversions_version(self) -> str:
        return self.capi_version or self.api_version

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
