"""Local checks that mirror Meta's, so one bad event is set aside instead of sinking its batch.

Meta validates a Conversions API request all-or-nothing (spec §5.2): a single event that is too old,
a Purchase without value, or an event without customer information rejects all 1,000. Checking the
same rules here first keeps the other 999 flowing; the bad one goes to the rejects file with its
reason.
"""

from __future__ import annotations

from typing import Any

FUTURE_TOLERANCE_S = 60
"""Clock skew tolerated between the till and this machine before an event counts as in the future."""

WINDOW_MARGIN_S = 15 * 60
"""An event this close to the end of Meta's window is rejected here: it could age out in transit."""

REASONS = {
    "no_event_time": "the event has no event_time",
    "bad_event_time": "event_time is neither ISO 8601 nor unix seconds",
    "too_old": "older than Meta accepts for this action_source (62 days for physical_store, else 7)",
    "in_future": "event_time is in the future",
    "purchase_without_value": "a Purchase needs a value (or priced products)",
    "purchase_without_currency": "a Purchase needs a currency",
    "no_user_key": "no usable customer information (every match key empty or invalid)",
    "bad_value": "value is not a number",
    "negative_value": "value is negative",
    "bad_currency": "currency is not an ISO 4217 code",
    "bad_products": "products is not a JSON array of objects with numeric price/quantity",
    "bad_custom_attributes": "custom_attributes is not a JSON object",
    "not_an_object": "the JSON record is not an object",
}
"""Every local reject reason with the sentence the docs and `--help` show for it."""


def check(event: dict[str, Any], *, now: float, window_days: int) -> str | None:
    """The reason Meta would refuse this event, or None when it passes."""
    t = event["event_time"]
    if t > now + FUTURE_TOLERANCE_S:
        return "in_future"
    if t < now - window_days * 86400 + WINDOW_MARGIN_S:
        return "too_old"
    if event["event_name"] == "Purchase":
        cd = event.get("custom_data") or {}
        if cd.get("value") is None:
            return "purchase_without_value"
        if not cd.get("currency"):
            return "purchase_without_currency"
    if not event.get("user_data"):
        return "no_user_key"
    return None
