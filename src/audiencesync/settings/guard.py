"""The `guard:` section (top level, or per audience): what a sync refuses without `--force`."""

from __future__ import annotations

from pydantic import Field

from audiencesync.settings.common import Section


class GuardSettings(Section):
    """What a sync refuses to do without `--force`: the changes a broken export would cause."""

    max_remove_share: float = Field(0.5, ge=0, le=1)
    """The most of a Facebook audience one mirror or delete run may remove (0.5: half)."""
    allow_empty: bool = False
    """Whether a source that returns no members may empty the audience."""
