"""One input row to one Conversions API event: event name, time, `custom_data` and the event id.

The mapping is mParticle's (seed 001), moved to the Conversions API: product actions become standard
events, `contents` come from the products, `value` is the event's value or else the sum of price ×
quantity, custom attributes ride along in `custom_data`. Match keys are built elsewhere
(`userdata.py`), vectorized over a whole chunk.

A row that cannot be mapped gives a reason code instead of an event; reasons are stable strings
that go into counts and the rejects file, never the value that caused them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

import orjson
import pycountry

from audiencesync.conversions.settings import ConversionsSettings, action_key

EVENT_FIELDS = ("event_time", "product_action", "order_id", "currency", "value", "products", "custom_attributes")
"""Columns of the CSV layout that describe the event; every other column is a candidate match key."""

NOT_IDENTITY = frozenset({*EVENT_FIELDS, "event_type", "_invalid"})

STANDARD_CUSTOM_DATA = frozenset({"value", "currency", "contents", "content_type", "order_id"})
"""Keys the mapping sets; a custom attribute of the same name does not override them."""

_ZERO = Decimal(0)
_ONE = Decimal(1)
_INVALID = object()

_MS_THRESHOLD = 100_000_000_000
"""A unix time above this is in milliseconds: in seconds it would be the year 5138."""


class Skip(Exception):
    """The row is not an event Facebook receives (an action with no Facebook event): counted, not rejected."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class Reject(Exception):
    """The row is an event but cannot be sent as it is: set aside in the rejects file with this reason."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class EventMapper:
    """Maps the event fields of one row; built once per run from the settings."""

    def __init__(self, settings: ConversionsSettings):
        self.settings = settings
        self.names = settings.event_names

    def event_name(self, row: Mapping[str, Any]) -> str:
        if row.get("_invalid"):
            raise Reject(str(row["_invalid"]))
        action = row.get("product_action")
        if _blank(action):
            kind = row.get("event_type")
            if not _blank(kind) and kind != "commerce_event":
                raise Skip("not_a_commerce_event")
            raise Skip("no_product_action")
        key = action_key(action)
        name = self.names.get(key)
        if name is None:
            raise Skip(f"action:{key}")
        return name

    def head(self, row: Mapping[str, Any]) -> tuple[str, int]:
        """Event name and time: all an event with an order id needs for its id (see `event_id`)."""
        return self.event_name(row), event_time(row.get("event_time"))

    def event(self, row: Mapping[str, Any], head: tuple[str, int] | None = None) -> dict[str, Any]:
        """The event without `user_data` and `event_id` (added once the chunk's keys are hashed)."""
        name, time = head or self.head(row)
        return {
            "event_name": name,
            "event_time": time,
            "action_source": self.settings.action_source,
            "custom_data": custom_data(row),
        }


def order_id(row: Mapping[str, Any]) -> str | None:
    """The order id as it is sent in `custom_data.order_id`, or None."""
    value = row.get("order_id")
    return None if _blank(value) else _text(value)


def event_time(value: Any) -> int:
    """Unix seconds from ISO 8601 text, unix seconds (or milliseconds), or a datetime; naive is UTC."""
    if type(value) is str and value.isdigit():
        return _unix(float(value))
    if _blank(value):
        raise Reject("no_event_time")
    if isinstance(value, dt.datetime):
        stamp = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return int(stamp.timestamp())
    if isinstance(value, dt.date):
        return int(dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC).timestamp())
    if isinstance(value, bool):
        raise Reject("bad_event_time")
    if isinstance(value, int | float):
        return _unix(float(value))
    text = str(value).strip()
    try:
        return _unix(float(text))
    except ValueError:
        pass
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise Reject("bad_event_time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return int(parsed.timestamp())


def _unix(number: float) -> int:
    if not math.isfinite(number) or number <= 0:
        raise Reject("bad_event_time")
    return int(number / 1000 if number > _MS_THRESHOLD else number)


def custom_data(row: Mapping[str, Any]) -> dict[str, Any]:
    """`custom_data`: custom attributes, then value, currency, contents and order id (those win)."""
    data: dict[str, Any] = {}
    for k, v in _json_object(row.get("custom_attributes")).items():
        if k not in STANDARD_CUSTOM_DATA and v is not None:
            data[str(k)] = v
    total, contents = _products(_json_list(row.get("products")))
    value = _number(row.get("value"), "bad_value")
    if value is None:
        value = total
    if value is not None:
        if value < 0:
            raise Reject("negative_value")
        data["value"] = float(value)
    currency = _currency(row.get("currency"))
    if currency:
        data["currency"] = currency
    if contents:
        data["contents"] = contents
        data["content_type"] = "product"
    order = order_id(row)
    if order is not None:
        data["order_id"] = order
    return data


def _products(products: list[dict[str, Any]]) -> tuple[Decimal | None, list[dict[str, Any]]]:
    """Σ price × quantity (no priced product: no value), and `contents`.

    Meta needs `id` and `quantity` in each content, so a product without an id is no content, but its
    price still counts. A missing quantity is 1.
    """
    total: Decimal | None = None
    contents: list[dict[str, Any]] = []
    for p in products:
        price = _number(p.get("price"), "bad_products")
        quantity = _number(p.get("quantity"), "bad_products")
        if price is not None:
            total = (total or _ZERO) + price * (_ONE if quantity is None else quantity)
        pid = p.get("id")
        if pid is None:
            pid = p.get("sku")
        if _blank(pid):
            continue
        item: dict[str, Any] = {"id": _text(pid), "quantity": 1 if quantity is None else _plain_number(quantity)}
        if price is not None:
            item["item_price"] = float(price)
        brand = p.get("brand")
        if brand is not None and not _blank(brand):
            item["brand"] = _text(brand)
        category = p.get("category")
        if category is not None and not _blank(category):
            item["category"] = _text(category)
        contents.append(item)
    return total, contents


def _json_object(value: Any) -> dict[str, Any]:
    if _blank(value):
        return {}
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise Reject("bad_custom_attributes") from None
    if not isinstance(value, dict):
        raise Reject("bad_custom_attributes")
    return value


def _json_list(value: Any) -> list[dict[str, Any]]:
    if _blank(value):
        return []
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise Reject("bad_products") from None
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(p, dict) for p in value):
        raise Reject("bad_products")
    return value


def _number(value: Any, reason: str) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise Reject(reason)
    parsed = _decimal(value)
    if parsed is _INVALID:
        raise Reject(reason)
    return parsed  # type: ignore[return-value]


@lru_cache(maxsize=65_536)
def _decimal(value: str | int | float) -> Decimal | object | None:
    """Prices and quantities repeat across a file: each distinct spelling is parsed once."""
    if isinstance(value, float) and math.isnan(value):
        return None
    text = str(value).strip()
    if not text:
        return None
    try:
        number = Decimal(text)
    except InvalidOperation:
        return _INVALID
    return number if number.is_finite() else _INVALID


def _plain_number(number: Decimal | int) -> int | float:
    return int(number) if number == int(number) else float(number)


def _currency(value: Any) -> str | None:
    if _blank(value):
        return None
    code = str(value).strip().upper()
    if not _known_currency(code):
        raise Reject("bad_currency")
    return code


@lru_cache(maxsize=512)
def _known_currency(code: str) -> bool:
    return len(code) == 3 and code.isalpha() and pycountry.currencies.get(alpha_3=code) is not None


def _blank(value: Any) -> bool:
    if value is None:
        return True
    kind = type(value)
    if kind is str:
        return not value.strip()
    if kind is float:
        return value != value
    return False


def _text(value: Any) -> str:
    if type(value) is str:
        return value.strip()
    if isinstance(value, float) and value == int(value):
        return str(int(value))
    return str(value).strip()


def event_id(event: dict[str, Any]) -> str:
    """A deterministic id, so a re-run recognises an event it already delivered.

    With an order id it is Meta's own offline de-duplication key (event name, time, order id); without
    one, Meta de-duplicates on the customer information, so the id covers `user_data` and
    `custom_data`. Only hashes and ids go in, and the id is itself a hash.
    """
    cd = event.get("custom_data") or {}
    order = cd.get("order_id")
    if order:
        return order_event_id(event["event_name"], event["event_time"], order)
    basis = b"user|" + orjson.dumps(
        [event["event_name"], event["event_time"], event.get("user_data"), cd], option=orjson.OPT_SORT_KEYS
    )
    return hashlib.sha256(basis).hexdigest()[:32]


def order_event_id(name: str, time: int, order: str) -> str:
    """The id of an event with an order id; known before any key is hashed, so a re-run skips early."""
    return hashlib.sha256(f"order|{name}|{time}|{order}".encode()).hexdigest()[:32]
