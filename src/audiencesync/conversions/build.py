"""Rows of a chunk to Conversions API events: map, hash the match keys, validate, LDU, event id.

This is the part of a conversions run that needs no state, so both doors share it: `conversions
send` builds each chunk of a file here and then drops what the ledger knows (`run.py`); `serve`
builds the commerce events of a call here when it accepts them (`stream/commerce.py`), so only
hashed events are queued, and the queued events are delivered by the same `run.send`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from audiencesync.conversions.mapping import EventMapper, Reject, Skip, event_id, order_event_id, order_id
from audiencesync.conversions.read import Chunk
from audiencesync.conversions.report import ConversionReport
from audiencesync.conversions.settings import ConversionsSettings, action_key
from audiencesync.conversions.userdata import build_user_data
from audiencesync.conversions.validate import check


class RejectSink(Protocol):
    """Where set-aside events go: the run's rejects file, or nowhere (the stream door counts them)."""

    def write(
        self, row: int | str, reason: str, event: dict[str, Any] | None = None, action: Any = None, order_id: Any = None
    ) -> None: ...


class NoRejectsFile:
    """A sink for a door that reports rejects as counts only."""

    def write(self, *args: Any, **kwargs: Any) -> None:
        return None


@dataclass
class Head:
    """A row that maps to an event: where it is, its name and time, and its id when it has an order id."""

    index: int
    row_no: int
    row: dict[str, Any]
    head: tuple[str, int]
    early_id: str | None


class EventBuilder:
    """Builds events chunk by chunk, counting skips, rejects and keys in `report`."""

    def __init__(
        self,
        settings: ConversionsSettings,
        report: ConversionReport,
        rejects: RejectSink,
        clock: Callable[[], float],
    ):
        self.settings = settings
        self.report = report
        self.rejects = rejects
        self.clock = clock
        self.mapper = EventMapper(settings)

    def heads(self, chunk: Chunk) -> list[Head]:
        """Name and time of each row that is an event; skipped and rejected rows are counted here."""
        report = self.report
        names = list(chunk.columns)
        heads: list[Head] = []
        for i, (row_no, values) in enumerate(zip(chunk.rows, zip(*chunk.columns.values(), strict=True), strict=True)):
            row = dict(zip(names, values, strict=True))
            try:
                name, when = self.mapper.head(row)
            except Skip as s:
                report.skip(s.reason)
                continue
            except Reject as r:
                report.reject(r.reason)
                self.rejects.write(row_no, r.reason, None, action_of(row), row.get("order_id"))
                continue
            order = order_id(row)
            heads.append(Head(i, row_no, row, (name, when), order_event_id(name, when, order) if order else None))
        return heads

    def build(self, chunk: Chunk, heads: list[Head]) -> dict[str, tuple[int, dict[str, Any]]]:
        """The valid events of these heads with `user_data`, LDU and `event_id`, by event id (a
        repeat inside the chunk is skipped as `duplicate_in_input`)."""
        report = self.report
        now = self.clock()
        built: list[tuple[Head, dict[str, Any]]] = []
        for h in heads:
            try:
                built.append((h, self.mapper.event(h.row, h.head)))
            except Reject as r:
                report.reject(r.reason)
                self.rejects.write(h.row_no, r.reason, None, action_of(h.row), h.row.get("order_id"))
        if not built:
            return {}
        positions = [h.index for h, _ in built]
        cols = chunk.columns
        if len(positions) < len(chunk):
            cols = {k: [v[i] for i in positions] for k, v in cols.items()}
        user = build_user_data(cols, len(positions), self.settings)
        report.count_keys(user.found, user.invalid)
        candidates: dict[str, tuple[int, dict[str, Any]]] = {}
        for j, (h, event) in enumerate(built):
            ud = user.rows[j]
            if ud:
                event["user_data"] = ud
            reason = check(event, now=now, window_days=self.settings.window_days)
            if reason is not None:
                report.reject(reason)
                self.rejects.write(h.row_no, reason, event, action_of(h.row))
                continue
            ldu = user.ldu[j]
            if ldu:
                event.update(ldu)
                report.ldu += 1
            eid = h.early_id or event_id(event)
            event["event_id"] = eid
            if eid in candidates:
                report.skip("duplicate_in_input")
                continue
            candidates[eid] = (h.row_no, event)
        return candidates


def build_events(
    rows: Sequence[Mapping[str, Any]], settings: ConversionsSettings, clock: Callable[[], float]
) -> tuple[list[dict[str, Any]], ConversionReport]:
    """Events for rows given in the conversions layout (the stream door's commerce calls), with the
    counts of what was skipped or rejected. Raw values stay in this call; the events are hashed."""
    report = ConversionReport(run_id="", dataset_id=settings.dataset_id, source="stream")
    report.read = len(rows)
    if not rows:
        return [], report
    builder = EventBuilder(settings, report, NoRejectsFile(), clock)
    chunk = chunk_of(rows)
    built = builder.build(chunk, builder.heads(chunk))
    return [event for _, event in built.values()], report


def chunk_of(rows: Sequence[Mapping[str, Any]], first: int = 1) -> Chunk:
    """Rows (dicts with any keys) as one column chunk; a key a row lacks is None there."""
    names: dict[str, None] = {}
    for r in rows:
        names.update(dict.fromkeys(r))
    return Chunk(list(range(first, first + len(rows))), {name: [r.get(name) for r in rows] for name in names})


def action_of(row: Mapping[str, Any]) -> str | None:
    action = row.get("product_action")
    return None if action is None else action_key(action)[:40]
