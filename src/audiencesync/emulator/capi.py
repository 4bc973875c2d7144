"""The Conversions API model: datasets (pixels) and the events sent to them.

Why a module of its own: CAPI has its own rules (spec §5.2) and its own
state, unrelated to audiences. Like ``model.py`` it has no HTTP in it; it
takes the decoded ``data`` list and raises ``GraphError``.

Rules implemented:

* 1 to ``max_events`` (1,000) events per request; validation is
  all-or-nothing: the first invalid event rejects the whole request;
* required ``event_name``, ``event_time``, ``action_source`` (enum),
  ``user_data`` with at least one parameter; ``event_source_url`` for
  ``website``; hashed ``user_data`` fields must be 64 lowercase hex when
  ``strict_hashes`` is on;
* ``event_time`` no older than 7 days (62 for ``physical_store``) → 100/2804003
  with Facebook's observed texts; a future time beyond a small tolerance is
  rejected too (UNCONFIRMED error);
* ``Purchase`` needs ``custom_data.value`` and ``currency`` → 100/2804009;
* ``test_event_code`` events are kept apart from the dataset's events;
* de-duplication: offline events (``physical_store``) on
  ``event_time``+``event_name``+``order_id``+``item_number`` (or the set of
  ``user_data`` when there is no ``order_id``) within 7 days, first wins;
  other events on ``event_name``+``event_id`` within 48 hours.
  ``events_received`` counts every valid event, duplicates included.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from . import errors
from .clock import Clock
from .config import EmulatorConfig

ACTION_SOURCES = frozenset(
    {
        "email", "website", "app", "phone_call", "chat", "physical_store", "system_generated",
        "business_messaging", "other",
    }
)  # fmt: skip
HASHED_USER_DATA = frozenset(
    {"em", "ph", "fn", "ln", "db", "ge", "ct", "st", "zp", "country", "f5first", "f5last", "fi", "dobd",
     "dobm", "doby"}
)  # fmt: skip
PLAIN_USER_DATA = frozenset(
    {
        "external_id", "client_ip_address", "client_user_agent", "fbc", "fbp", "subscription_id",
        "fb_login_id", "lead_id", "anon_id", "madid", "page_id", "page_scoped_user_id", "ctwa_clid",
        "ig_account_id", "ig_sid",
    }
)  # fmt: skip
_HEX64 = re.compile(r"[0-9a-f]{64}")
_CURRENCY = re.compile(r"[A-Za-z]{3}")
WEB_DEDUP_WINDOW_S = 48 * 3600


@dataclass
class Dataset:
    id: str
    events: list[dict[str, Any]] = field(default_factory=list)
    test_events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    dedup: dict[str, float] = field(default_factory=dict)  # dedup key -> first seen
    received: int = 0
    duplicates: int = 0


class Datasets:
    def __init__(self, config: EmulatorConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.reset()

    def reset(self) -> None:
        self.datasets: dict[str, Dataset] = {}
        self.version = 0

    def get(self, dataset_id: str) -> Dataset | None:
        return self.datasets.get(dataset_id)

    def ensure(self, dataset_id: str) -> Dataset:
        ds = self.datasets.get(dataset_id)
        if ds is None:
            ds = self.datasets[dataset_id] = Dataset(dataset_id)
        return ds

    def node_fields(self, dataset_id: str) -> dict[str, Any]:
        return {"id": dataset_id, "name": f"Emulated dataset {dataset_id}", "is_consolidated_container": True}

    # ------------------------------------------------------------ validation
    def _invalid(self, i: int, title: str, msg: str, subcode: int | None = None) -> errors.GraphError:
        return errors.invalid_parameter_plain(subcode, title, f"data[{i}]: {msg}")

    def _validate(self, i: int, ev: Any, now: float) -> dict[str, Any]:
        if isinstance(ev, str):
            try:
                ev = orjson.loads(ev)
            except orjson.JSONDecodeError:
                raise self._invalid(i, "Invalid Event", "the event is not valid JSON.") from None
        if not isinstance(ev, dict):
            raise self._invalid(i, "Invalid Event", "each event must be an object.")
        name = ev.get("event_name")
        if not isinstance(name, str) or not name.strip():
            raise self._invalid(i, "Missing Event Name", "event_name is required.")
        raw_time = ev.get("event_time")
        try:
            if isinstance(raw_time, bool):
                raise ValueError
            event_time = int(raw_time)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise self._invalid(i, "Invalid Event Timestamp", "event_time is required, in unix seconds.") from None
        source = ev.get("action_source")
        if source not in ACTION_SOURCES:
            raise self._invalid(
                i, "Invalid Action Source", f"action_source must be one of {', '.join(sorted(ACTION_SOURCES))}."
            )
        days = self.config.physical_store_window_days if source == "physical_store" else self.config.event_window_days
        if event_time < now - days * 86400:
            if source == "physical_store":
                text = (
                    "The timestamp for this event is too far in the past. Offline events need to be "
                    f"uploaded within {days} days of when they occurred."
                )
            else:
                text = (
                    "The timestamp for this event is too far in the past. Events need to be sent from your "
                    f"server within {days} days of when they occurred. Enter a timestamp that has occurred "
                    f"within the last {days} days."
                )
            raise errors.invalid_parameter_plain(2804003, "Event Timestamp Too Old", text)
        if event_time > now + self.config.future_event_tolerance_s:
            raise self._invalid(
                i, "Event Timestamp In Future", "event_time is in the future; send events after they occur."
            )
        if source == "website" and not ev.get("event_source_url"):
            raise self._invalid(i, "Missing Event Source URL", "event_source_url is required for website events.")
        user_data = ev.get("user_data")
        if not isinstance(user_data, dict) or not any(
            user_data.get(k) not in (None, "", []) for k in (HASHED_USER_DATA | PLAIN_USER_DATA)
        ):
            raise self._invalid(
                i, "Missing User Data", "user_data must contain at least one customer information parameter."
            )
        if self.config.strict_hashes:
            for key in HASHED_USER_DATA:
                val = user_data.get(key)
                if val in (None, "", []):
                    continue
                vals = val if isinstance(val, list) else [val]
                for v in vals:
                    if not isinstance(v, str) or _HEX64.fullmatch(v) is None:
                        raise self._invalid(
                            i,
                            "Invalid User Data",
                            f"user_data.{key} must be a SHA-256 hash (64 lowercase hex characters).",
                        )
        custom = ev.get("custom_data") or {}
        if not isinstance(custom, dict):
            raise self._invalid(i, "Invalid Custom Data", "custom_data must be an object.")
        if name == "Purchase":
            value = custom.get("value")
            if value is None or value == "" or isinstance(value, bool):
                raise errors.invalid_parameter_plain(
                    2804009,
                    "Missing Value for Purchase Event",
                    f"data[{i}]: Purchase events must include custom_data.value and custom_data.currency.",
                )
            try:
                float(value)
            except (TypeError, ValueError):
                raise self._invalid(i, "Invalid Value", "custom_data.value must be a number.") from None
            currency = custom.get("currency")
            if not isinstance(currency, str) or _CURRENCY.fullmatch(currency) is None:
                raise errors.invalid_parameter_plain(
                    2804009,
                    "Missing Currency for Purchase Event",
                    f"data[{i}]: Purchase events must include custom_data.currency (ISO 4217).",
                )
        return ev

    @staticmethod
    def _dedup_key(ev: dict[str, Any]) -> tuple[str, float] | None:
        name = ev["event_name"]
        etime = int(ev["event_time"])
        custom = ev.get("custom_data") or {}
        if ev["action_source"] == "physical_store":
            order = custom.get("order_id") or ev.get("order_id")
            if order:
                item = custom.get("item_number") or ev.get("item_number") or ""
                return f"off|{etime}|{name}|{order}|{item}", 0.0
            ud = orjson.dumps(ev["user_data"], option=orjson.OPT_SORT_KEYS).decode()
            return f"offu|{etime}|{name}|{ud}", 0.0
        if ev.get("event_id"):
            return f"web|{name}|{ev['event_id']}", 1.0
        return None

    # ------------------------------------------------------------ ingest
    def ingest(self, dataset_id: str, data: Any, test_event_code: str | None) -> dict[str, Any]:
        now = self.clock.now()
        if data is None or data == "":
            raise errors.missing_params("data")
        if not isinstance(data, list):
            raise errors.invalid_param("Param data must be an array")
        if not data:
            raise errors.invalid_param("Param data must contain at least one event")
        if len(data) > self.config.max_events:
            raise errors.invalid_parameter_plain(
                None,
                "Too Many Events",
                f"A request can contain at most {self.config.max_events} events; this one has {len(data)}.",
            )
        events = [self._validate(i, ev, now) for i, ev in enumerate(data)]
        ds = self.ensure(dataset_id)
        ds.received += len(events)
        if test_event_code:
            ds.test_events.setdefault(test_event_code, []).extend(events)
        else:
            for ev in events:
                found = self._dedup_key(ev)
                if found is not None:
                    key, kind = found
                    window = self.config.dedup_window_s if kind == 0.0 else WEB_DEDUP_WINDOW_S
                    seen = ds.dedup.get(key)
                    if seen is not None and now - seen < window:
                        ds.duplicates += 1
                        continue
                    ds.dedup[key] = now
                ds.events.append(ev)
        self.version += 1
        return {"events_received": len(events), "messages": []}

    # ------------------------------------------------------------ views / state
    def events_view(self, dataset_id: str) -> dict[str, Any]:
        ds = self.datasets.get(dataset_id) or Dataset(dataset_id)
        return {
            "dataset_id": dataset_id,
            "events": ds.events,
            "test_events": ds.test_events,
            "events_received": ds.received,
            "duplicates_dropped": ds.duplicates,
        }

    def dump(self) -> dict[str, Any]:
        return {
            "datasets": [
                {
                    "id": d.id,
                    "events": d.events,
                    "test_events": d.test_events,
                    "dedup": d.dedup,
                    "received": d.received,
                    "duplicates": d.duplicates,
                }
                for d in self.datasets.values()
            ]
        }

    def load(self, state: dict[str, Any]) -> None:
        self.reset()
        for d in state.get("datasets", []):
            self.datasets[d["id"]] = Dataset(**d)
