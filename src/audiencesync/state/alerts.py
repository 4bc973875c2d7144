"""`st.alert_conditions` and `st.alert_deliveries`: which alert conditions hold, and what each
webhook was last told about each, so an alert goes out once when a condition starts and once when
it ends, not at every run. A webhook is known by a hash of its URL, never the URL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb


@dataclass(frozen=True)
class Held:
    active: bool
    since: datetime
    reference: int | None


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def condition(con: duckdb.DuckDBPyConnection, kind: str, subject: str) -> Held | None:
    row = con.execute(
        "SELECT active, since, reference FROM st.alert_conditions WHERE kind = ? AND subject = ?", [kind, subject]
    ).fetchone()
    return Held(*row) if row else None


def set_condition(
    con: duckdb.DuckDBPyConnection, kind: str, subject: str, active: bool, reference: int | None = None
) -> None:
    """Record the condition's state; `since` moves only when the state changes."""
    con.execute(
        """INSERT INTO st.alert_conditions VALUES ($kind, $subject, $active, $now, $reference)
           ON CONFLICT (kind, subject) DO UPDATE SET
               since = CASE WHEN active = excluded.active THEN since ELSE excluded.since END,
               active = excluded.active, reference = excluded.reference""",
        {"kind": kind, "subject": subject, "active": active, "now": _now(), "reference": reference},
    )


def told(con: duckdb.DuckDBPyConnection, webhook: str, kind: str, subject: str) -> bool:
    """Whether the webhook was last told the condition holds (never told: it was not)."""
    row = con.execute(
        "SELECT active FROM st.alert_deliveries WHERE webhook = ? AND kind = ? AND subject = ?",
        [webhook, kind, subject],
    ).fetchone()
    return bool(row and row[0])


def set_told(con: duckdb.DuckDBPyConnection, webhook: str, kind: str, subject: str, active: bool) -> None:
    con.execute(
        """INSERT INTO st.alert_deliveries VALUES (?, ?, ?, ?, ?)
           ON CONFLICT (webhook, kind, subject) DO UPDATE SET active = excluded.active, sent_at = excluded.sent_at""",
        [webhook, kind, subject, active, _now()],
    )


def active(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, datetime]]:
    """The conditions that hold now: (kind, subject, since)."""
    return con.execute(
        "SELECT kind, subject, since FROM st.alert_conditions WHERE active ORDER BY since, kind, subject"
    ).fetchall()
