"""Commerce events from `serve` to the Conversions API: the conversions pipeline's second door.

mParticle's Offline Conversions integration forwards commerce events from a feed to Facebook; a
company that points its mParticle (or Segment) at `serve` gets the same here. Nothing below is a
copy of the conversions pipeline:

* **accept** (an HTTP worker thread, before the caller hears 200): the calls' commerce events, as
  rows of the conversions layout (`extract/mparticle.py` for mParticle, `segment_commerce_row`
  for Segment), are built by `conversions.build.build_events` (the mapping, hashing, validation,
  LDU and `event_id` of `conversions send`) and the built events, hashed, are written to the
  ingest log's `commerce_queue` (SQLite, fsynced). Raw values never reach the disk.
* **deliver** (a thread of its own, every `serve.flush_after` while events wait): the queue is
  handed to `conversions.run.send` as a `PreparedSource`, the run `conversions send` does: the
  state file is leased for the delivery, the `st.conversion_events` ledger skips what Facebook
  acknowledged before, batches of up to 1,000 go out with the shared Graph client, and each
  acknowledged batch is recorded. Only then are the settled events deleted from the queue.

Exactly once: an event leaves the queue only after the ledger recorded it. A crash between
Facebook's answer and that record re-sends the event with the same `event_id` (Facebook drops
the copy: offline events de-duplicate on event name, time and order id); a crash between the
record and the delete finds the event in the ledger and deletes it without sending.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from audiencesync.config import Config
from audiencesync.conversions.build import build_events
from audiencesync.conversions.mapping import EVENT_FIELDS
from audiencesync.conversions.queued import PreparedSource
from audiencesync.conversions.report import ConversionReport
from audiencesync.conversions.run import send
from audiencesync.conversions.settings import ConversionsSettings
from audiencesync.load.graph import GraphClient
from audiencesync.state.ingest import IngestLog
from audiencesync.stream.members import keys_of_trait
from audiencesync.stream.metrics import Metrics

log = logging.getLogger(__name__)

SEGMENT_ACTIONS = {
    "order completed": "purchase",
    "product added": "add_to_cart",
    "product added to wishlist": "add_to_wishlist",
    "checkout started": "checkout",
    "product viewed": "view_detail",
    "product removed": "remove_from_cart",
    "product removed from wishlist": "remove_from_wishlist",
    "order refunded": "refund",
    "product clicked": "click",
}
"""Segment's e-commerce spec (v2) event names, to mParticle's product actions; the conversions
mapping (`conversions.events`) then names the Facebook event, or skips the action."""

SINGLE_PRODUCT = frozenset({"product added", "product viewed", "product removed", "product added to wishlist",
                            "product removed from wishlist", "product clicked"})  # fmt: skip
"""Segment events whose properties are one product rather than a `products` list."""

SEGMENT_VALUE_FIELDS = ("value", "revenue", "total")
"""Where an order's value is, first found wins; none: the sum of the products' prices."""

SEGMENT_USED = frozenset({*SEGMENT_VALUE_FIELDS, "order_id", "checkout_id", "currency", "products", "product_id",
                          "sku", "name", "price", "quantity", "brand", "category", "variant", "url", "image_url",
                          "position", "coupon", "discount", "shipping", "tax", "subtotal", "affiliation"})  # fmt: skip
"""Properties the mapping reads or that describe the order; the rest go to `custom_data`."""

BACKOFF_START = 1.0
BACKOFF_MAX = 60.0
DELIVERY_WAIT_S = 3600.0
"""How long a delivery waits for the state file (a long `sync --full-refresh` may hold it)."""


def segment_commerce_row(call: Mapping[str, Any], context: Mapping[str, Any]) -> dict[str, Any] | None:
    """A Segment `track` of the e-commerce spec as a row of the conversions layout, or None.

    Identities: `userId` is the external id; `context.traits` (and `properties`) give the keys by
    their usual names (`email`, `phone`, `firstName`, `address.city`, ...); the device's
    `advertisingId` is the IDFA or GAID unless `adTrackingEnabled` is false.
    """
    event = call.get("event")
    name = event.strip().lower() if isinstance(event, str) else ""
    action = SEGMENT_ACTIONS.get(name)
    if action is None:
        return None
    props = call.get("properties") if isinstance(call.get("properties"), dict) else {}
    row: dict[str, Any] = {}
    traits = context.get("traits") if isinstance(context.get("traits"), dict) else {}
    for bag in (traits, traits.get("address"), props):
        if isinstance(bag, dict):
            for k, v in bag.items():
                if isinstance(k, str) and k not in EVENT_FIELDS and k not in SEGMENT_USED and keys_of_trait(k):
                    row.setdefault(k, v)
    row.pop("userId", None)
    if call.get("userId") not in (None, ""):
        row["customer_id"] = call.get("userId")
    device = context.get("device") if isinstance(context.get("device"), dict) else {}
    if device.get("advertisingId") and device.get("adTrackingEnabled") is not False:
        kind = str(device.get("type") or "").lower()
        row["idfa" if kind == "ios" else "gaid" if kind == "android" else "madid"] = device["advertisingId"]
    row["event_type"] = "commerce_event"
    row["product_action"] = action
    row["event_time"] = call.get("timestamp") or call.get("originalTimestamp") or call.get("sentAt")
    row["order_id"] = props.get("order_id") if props.get("order_id") not in (None, "") else props.get("checkout_id")
    row["currency"] = props.get("currency")
    row["value"] = next((props[f] for f in SEGMENT_VALUE_FIELDS if props.get(f) not in (None, "")), None)
    products = [props] if name in SINGLE_PRODUCT else props.get("products")
    row["products"] = [_product(p) for p in products] if isinstance(products, list) else products
    row["custom_attributes"] = {
        k: v for k, v in props.items() if k not in SEGMENT_USED and not (isinstance(k, str) and keys_of_trait(k))
    }
    return row


def _product(p: Any) -> Any:
    """A Segment product in mParticle's product shape (`product_id` or `sku` is the id)."""
    if not isinstance(p, dict):
        return p
    pid = next((p[f] for f in ("product_id", "sku", "id") if p.get(f) not in (None, "")), None)
    out = {"id": pid, "name": p.get("name"), "price": p.get("price"), "quantity": p.get("quantity")}
    out.update({k: p[k] for k in ("brand", "category") if p.get(k) is not None})
    return out


@dataclass
class Accepted:
    """What the commerce events of one request became: queued, or counted with a reason."""

    received: int = 0
    queued: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"received": self.received, "queued": self.queued}
        if self.skipped:
            out["skipped_by_reason"] = dict(sorted(self.skipped.items()))
        if self.rejected:
            out["rejected_by_reason"] = dict(sorted(self.rejected.items()))
        return out


class CommerceDoor:
    """Accepts commerce events into the queue and delivers the queue on a thread of its own."""

    def __init__(
        self,
        config: Config,
        settings: ConversionsSettings,
        ingest: IngestLog,
        metrics: Metrics,
        *,
        every: float,
        client: GraphClient | None = None,
        clock: Callable[[], float] = time.time,
        deliver: Callable[..., ConversionReport] = send,
    ):
        self.config = config
        self.settings = settings
        self.ingest = ingest
        self.metrics = metrics
        self.every = every
        self.clock = clock
        self._send = deliver
        self.client = client or GraphClient(config.meta)
        self._own_client = client is None
        self._cond = threading.Condition()
        self._wake = False
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="stream-commerce", daemon=True)
        self._delay = 0.0
        self.retry_at = 0.0
        self.failed_in_a_row = 0
        self.last_error: str | None = None

    # -- accept ------------------------------------------------------------------------------

    def accept(self, rows: list[dict[str, Any]]) -> Accepted:
        """Build and durably queue the events; returns once they are on disk. Raw rows stay here."""
        events, report = build_events(rows, self.settings, self.clock)
        added = self.ingest.append_commerce(events)
        out = Accepted(received=len(rows), queued=len(events), skipped=dict(report.skipped),
                       rejected=dict(report.rejected))  # fmt: skip
        if len(events) > added:
            out.skipped["already_queued"] = out.skipped.get("already_queued", 0) + len(events) - added
        self.metrics.commerce_accepted(added, out.skipped, out.rejected)
        if added:
            with self._cond:
                self._wake = True
                self._cond.notify_all()
        return out

    # -- deliver -----------------------------------------------------------------------------

    def start(self) -> CommerceDoor:
        self._warm_up()
        self._thread.start()
        return self

    def _warm_up(self) -> None:
        """Build one made-up event before the first call: the first use of the vectorized match keys
        loads pyarrow's pandas bridge (seconds on a busy machine), which a client should not wait for."""
        sample = {"product_action": "purchase", "event_time": self.clock(), "value": 1, "currency": "USD",
                  "email": "warm-up@example.invalid"}  # fmt: skip
        build_events([sample], self.settings, self.clock)

    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 30.0) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        self._thread.join(timeout)
        if self._own_client and not self._thread.is_alive():
            self.client.close()

    def _run(self) -> None:
        next_check = 0.0
        while True:
            with self._cond:
                while not self._stop and not self._wake and time.time() < next_check:
                    self._cond.wait(max(0.0, next_check - time.time()))
                if self._stop:
                    return
                self._wake = False
            try:
                next_check = self.step()
            except Exception as exc:  # the queue file failed; events stay queued, the thread goes on
                log.exception("the commerce delivery failed a step")
                next_check = self._failed(f"commerce step failed: {type(exc).__name__}")

    def step(self) -> float:
        """Deliver when due; return when to look again (a Unix time)."""
        now = time.time()
        n, oldest, _ = self.ingest.commerce_depth()
        if n == 0:
            return now + 3600.0
        due = max(oldest + self.every if n < self.settings.batch_size else now, self.retry_at)
        if now < due:
            return due
        self.deliver()
        return time.time()

    def deliver(self) -> ConversionReport | None:
        """One delivery of everything queued now; settled events leave the queue after it."""
        n, _, top = self.ingest.commerce_depth()
        if n == 0:
            return None
        source = PreparedSource(self.ingest.read_commerce, top, name="serve")
        report: ConversionReport | None = None
        try:
            report = self._send(
                self.config, source, settings=self.settings, client=self.client, clock=self.clock,
                wait_s=DELIVERY_WAIT_S, on_wait=log.info, door="serve (commerce)",
            )  # fmt: skip
            error = report.error
        except Exception as exc:
            log.exception("a commerce delivery failed; its events stay queued")
            error = f"delivery raised {type(exc).__name__}"
        removed = self.ingest.delete_commerce(source.settled)
        if report is not None:
            self.metrics.commerce_delivered(report.sent, report.skipped, report.rejected)
            log.info("commerce delivery: %d sent, %d settled and removed from the queue, %d rejected",
                     report.sent, removed, sum(report.rejected.values()))  # fmt: skip
        if error:
            self._failed(error)
        else:
            self._delay, self.retry_at, self.failed_in_a_row = 0.0, 0.0, 0
        return report

    def _failed(self, error: str) -> float:
        """Back off (1 s doubling to a minute); returns when to try again."""
        self._delay = min(BACKOFF_MAX, self._delay * 2 if self._delay else BACKOFF_START)
        self.retry_at = time.time() + self._delay
        self.failed_in_a_row += 1
        self.last_error = error
        log.error("commerce delivery: %s; retrying in %.0fs", error, self._delay)
        return self.retry_at

    def status(self) -> dict[str, Any]:
        n, oldest, _ = self.ingest.commerce_depth()
        return {
            "alive": self.alive(),
            "queued": n,
            "oldest_age_seconds": round(max(0.0, time.time() - oldest), 3) if oldest else 0.0,
            "failed_deliveries_in_a_row": self.failed_in_a_row,
            "last_error": self.last_error,
        }
