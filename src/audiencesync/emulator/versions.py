"""Which Graph/Marketing API versions the emulator serves, and until when.

Why: Marketing API endpoints do not auto-upgrade an expired version; they fail
with 2635 (spec §1, §4). The table is spec §4's, kept once in `settings/versions.py`; "expired" is decided
with the emulator's injectable clock so tests can age a version out.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

from audiencesync.settings.versions import VERSIONS

LATEST = max(VERSIONS, key=lambda v: VERSIONS[v].released)
DEFAULT = "v25.0"  # what PYSDK pins; used for unversioned calls


def _ts(day: date | str | None) -> float | None:
    if isinstance(day, str):
        day = date.fromisoformat(day)
    return None if day is None else datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()


# version -> (released, Graph available until or None for "TBD"): the client's table (spec §4).
GRAPH_VERSIONS: dict[str, tuple[float, float | None]] = {
    name: (_ts(v.released) or 0.0, _ts(v.graph_until)) for name, v in VERSIONS.items()
}

# Marketing API versions that expire before their Graph date (spec §4).
MARKETING_EXPIRY: dict[str, float] = {n: t for n, v in VERSIONS.items() if (t := _ts(v.marketing_until)) is not None}

VERSION_RE = re.compile(r"v\d+\.\d+")


def is_version_segment(segment: str) -> bool:
    return VERSION_RE.fullmatch(segment) is not None


def is_available(version: str, now: float, *, marketing: bool = True) -> bool:
    """True when ``version`` is known and not expired at ``now``.

    Marketing routes (custom audiences) use the earlier Marketing API expiry when
    one is known; CAPI uses the Graph date (CAPI versions live at least 2 years).
    Versions released after ``now`` are still accepted (an emulator choice: the
    host clock may lag the version table).
    """
    entry = GRAPH_VERSIONS.get(version)
    if entry is None:
        return False
    until = entry[1]
    if marketing and version in MARKETING_EXPIRY:
        until = MARKETING_EXPIRY[version] if until is None else min(until, MARKETING_EXPIRY[version])
    return until is None or now < until
