"""Events built earlier and waiting to be delivered: the second door's source.

`serve` builds the commerce events of a call when it accepts them (hashed, validated, with their
`event_id`; `build.build_events`) and queues them durably (`state/ingest.py`). A delivery reads
them back as a `PreparedSource` and hands it to `run.send`, the run `conversions send` does: the
ledger (`st.conversion_events`) skips what Facebook acknowledged before, the same batching and
retries send the rest. `settled` collects the ids that need no more sending, so the caller removes
exactly those from the queue, after the run recorded them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

Reader = Callable[[int, int], list[tuple[int, dict[str, Any]]]]
"""(after_seq, limit) → up to `limit` queued (seq, event) pairs with seq > after_seq, in seq order."""


@dataclass
class PreparedSource:
    """Queued events, read in pages of `page` so memory stays bounded."""

    read: Reader
    upto: int
    name: str = "stream"
    page: int = 5_000
    settled: set[str] = field(default_factory=set)
    """Event ids acknowledged now or before, or refused for good: safe to remove from the queue."""

    def batches(self) -> Iterator[list[tuple[int, dict[str, Any]]]]:
        after = 0
        while after < self.upto:
            items = [(seq, ev) for seq, ev in self.read(after, self.page) if seq <= self.upto]
            if not items:
                return
            yield items
            after = items[-1][0]
