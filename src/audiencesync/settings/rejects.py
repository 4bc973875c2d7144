"""The `rejects:` section: how long the rejected members of each run are kept in the state."""

from __future__ import annotations

from pydantic import Field

from audiencesync.settings.common import Section


class RejectsSettings(Section):
    """Rows with an invalid match-key value, by primary key, key and reason (never the value)."""

    retention_days: int = Field(14, ge=0, le=3650)
    """Runs older than this lose their rejected rows at the next run; 0 keeps none."""
