"""The `conversions:` section: where offline conversions go and how they are sent.

Typed and checked with the rest of the file, so a typo (`ldu: sometimes`) stops every command with
the setting's dotted name instead of surfacing as a confusing Facebook error half-way through a file.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import pycountry
from pydantic import Field, field_validator, model_validator

from audiencesync.settings.common import Section

MAX_BATCH = 1_000
"""Meta accepts at most 1,000 events in one Conversions API request (spec §5.2)."""

DEFAULT_EVENTS: dict[str, str] = {
    "add_to_cart": "AddToCart",
    "add_to_wishlist": "AddToWishlist",
    "checkout": "InitiateCheckout",
    "purchase": "Purchase",
    "view_detail": "ViewContent",
}
"""mParticle's product actions that have a Facebook standard event; every other action is skipped."""

PRODUCT_ACTIONS = frozenset(
    {
        "add_to_cart", "remove_from_cart", "checkout", "checkout_option", "click", "view_detail", "purchase",
        "refund", "add_to_wishlist", "remove_from_wishlist",
    }
)  # fmt: skip
"""mParticle's product actions (its schema also spells `remove_from_wish_list`; see `action_key`)."""

WINDOW_DAYS = {"physical_store": 62}
"""How old an event may be when Meta receives it: 62 days for store sales, 7 for every other source."""

_EVENT_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_ \-]{0,49}")


def action_key(action: object) -> str:
    """`Add to Cart`, `add-to-cart` and `ADD_TO_CART` are the same product action."""
    return _action_key(action if isinstance(action, str) else str(action))


@lru_cache(maxsize=1024)
def _action_key(action: str) -> str:
    key = re.sub(r"[\s\-]+", "_", str(action).strip().lower())
    return "remove_from_wishlist" if key == "remove_from_wish_list" else key


class ConversionsSettings(Section):
    """What the issue's example sets, plus the knobs a real upload needs (all optional)."""

    dataset_id: str
    email_identity: str = "email"
    ldu: Literal["never", "always", "when_located"] = "never"
    default_country: str | None = None
    action_source: Literal["physical_store", "phone_call", "system_generated", "email", "chat", "other"] = (
        "physical_store"
    )
    test_event_code: str | None = None
    upload_tag: str | None = None
    events: dict[str, str | None] = Field(default_factory=dict)
    batch_size: int = Field(MAX_BATCH, ge=1, le=MAX_BATCH)
    rejects: str | None = None
    stream: bool = False
    """Forward the commerce events that arrive at `serve` (mParticle commerce events, Segment
    `Order Completed`-style tracks) to this dataset; off, `serve` counts and drops them."""

    @model_validator(mode="before")
    @classmethod
    def _not_empty(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data:
            raise ValueError("the section is missing (it needs at least dataset_id)")
        return data

    @field_validator("dataset_id", mode="before")
    @classmethod
    def _dataset(cls, v: Any) -> str:
        text = str(v).strip() if v is not None else ""
        if not text.isdigit():
            raise ValueError("must be the numeric id of the Meta dataset (pixel)")
        return text

    @field_validator("email_identity")
    @classmethod
    def _identity(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("is empty")
        return v.strip()

    @field_validator("default_country")
    @classmethod
    def _country(cls, v: str | None) -> str | None:
        if v is None:
            return None
        found = pycountry.countries.get(alpha_2=v.strip().upper()) if len(v.strip()) == 2 else None
        if found is None:
            raise ValueError("must be an ISO 3166-1 alpha-2 country code such as US")
        return found.alpha_2

    @field_validator("test_event_code", "upload_tag")
    @classmethod
    def _blank_is_unset(cls, v: str | None) -> str | None:
        return v.strip() or None if v is not None else None

    @field_validator("events")
    @classmethod
    def _events(cls, v: dict[str, str | None]) -> dict[str, str | None]:
        out: dict[str, str | None] = {}
        for action, name in v.items():
            key = action_key(action)
            if key not in PRODUCT_ACTIONS:
                raise ValueError(f"{action}: not an mParticle product action ({', '.join(sorted(PRODUCT_ACTIONS))})")
            if name is not None and (not isinstance(name, str) or not _EVENT_NAME.fullmatch(name.strip())):
                raise ValueError(f"{action}: an event name is 1-50 letters, digits, spaces, _ or -; null skips")
            out[key] = name.strip() if name else None
        return out

    @property
    def event_names(self) -> dict[str, str]:
        """The effective mapping: the defaults, overridden (or switched off with null) by `events:`."""
        merged: dict[str, str | None] = {**DEFAULT_EVENTS, **self.events}
        return {k: v for k, v in merged.items() if v}

    @property
    def window_days(self) -> int:
        return WINDOW_DAYS.get(self.action_source, 7)

    def dataset_key(self) -> str:
        """The namespace acknowledged events are remembered under: test events never mask real ones."""
        return f"{self.dataset_id}#test:{self.test_event_code}" if self.test_event_code else self.dataset_id

    def rejects_path(self, state_path: str, run_id: str) -> Path:
        """Where this run's set-aside events go; `{run_id}` in the setting is filled in."""
        if self.rejects:
            return Path(self.rejects.replace("{run_id}", run_id))
        return Path(state_path).parent / "rejects" / f"conversions-{run_id}.csv"
