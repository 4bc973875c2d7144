"""`st.audience_health`: the history of what Facebook said about each audience we write to."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import duckdb

from audiencesync.load.health import Health

KEEP_READS = 500
"""Reads kept per Facebook audience."""

COLUMNS = (
    "fb_id",
    "read_at",
    "lower",
    "upper",
    "operation_code",
    "delivery_code",
    "data_source",
    "time_updated",
    "members_held",
    "flagged_count",
    "flagged_fields",
    "problem",
    "usage_restriction",
    "sac_eligible",
)


def record(con: duckdb.DuckDBPyConnection, h: Health) -> None:
    con.execute(
        f"INSERT INTO st.audience_health ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
        [
            h.fb_id,
            datetime.now(UTC).replace(tzinfo=None),
            h.lower,
            h.upper,
            h.operation_code,
            h.delivery_code,
            h.data_source,
            h.time_updated,
            h.members_held,
            len(h.flagged_fields),
            ",".join(h.flagged_fields) or None,
            h.problem,
            h.usage_restriction,
            h.sac_eligible,
        ],
    )
    con.execute(
        """DELETE FROM st.audience_health WHERE fb_id = $id AND read_at < (
               SELECT min(read_at) FROM (
                   SELECT read_at FROM st.audience_health WHERE fb_id = $id ORDER BY read_at DESC LIMIT $keep))""",
        {"id": h.fb_id, "keep": KEEP_READS},
    )


def _health(row: tuple[Any, ...]) -> tuple[datetime, Health]:
    d = dict(zip(COLUMNS, row, strict=True))
    return d["read_at"], Health(
        fb_id=d["fb_id"],
        lower=d["lower"],
        upper=d["upper"],
        operation_code=d["operation_code"],
        delivery_code=d["delivery_code"],
        data_source=d["data_source"],
        time_updated=d["time_updated"],
        members_held=d["members_held"],
        flagged_fields=d["flagged_fields"].split(",") if d["flagged_fields"] else [],
        problem=d["problem"],
        usage_restriction=d["usage_restriction"],
        sac_eligible=d["sac_eligible"],
    )


def history(con: duckdb.DuckDBPyConnection, fb_id: str, limit: int = 50) -> list[tuple[datetime, Health]]:
    """The latest reads of one audience, oldest first."""
    rows = con.execute(
        f"SELECT {', '.join(COLUMNS)} FROM st.audience_health WHERE fb_id = ? ORDER BY read_at DESC LIMIT ?",
        [fb_id, limit],
    ).fetchall()
    return [_health(r) for r in reversed(rows)]


def last(con: duckdb.DuckDBPyConnection, fb_id: str) -> tuple[datetime, Health] | None:
    found = history(con, fb_id, limit=1)
    return found[0] if found else None


def as_dict(read_at: datetime, h: Health) -> dict[str, Any]:
    """The JSON shape `status --json` and `history --json` print."""
    low, high = h.match_rate
    return {
        "read_at": read_at,
        "matched_lower": h.lower,
        "matched_upper": h.upper,
        "members_held": h.members_held,
        "match_rate_low": low,
        "match_rate_high": high,
        "operation_status": h.operation_code,
        "delivery_status": h.delivery_code,
        "data_source": h.data_source,
        "flagged_fields": h.flagged_fields,
        "usage_restriction": h.usage_restriction,
        "eligible_for_sac_campaigns": h.sac_eligible,
        "warning": h.warning,
    }
