"""Which Graph/Marketing API versions the emulator serves, and until when.

Why: Marketing API endpoints do not auto-upgrade an expired version; they fail
with 2635 (spec §1, §4). The table below is spec §4's; "expired" is decided
with the emulator's injectable clock so tests can age a version out.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

LATEST = "v26.0"
DEFAULT = "v25.0"  # what PYSDK pins; used for unversioned calls


def _ts(day: str) -> float:
    return datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC).timestamp()


# version -> (released, Graph available until or None for "TBD")
GRAPH_VERSIONS: dict[str, tuple[float, float | None]] = {
    "v19.0": (_ts("2024-01-23"), _ts("2026-05-21")),
    "v20.0": (_ts("2024-05-21"), _ts("2026-09-24")),
    "v21.0": (_ts("2024-10-02"), _ts("2027-01-21")),
    "v22.0": (_ts("2025-01-21"), _ts("2027-05-20")),
    "v23.0": (_ts("2025-05-29"), _ts("2027-10-08")),
    "v24.0": (_ts("2025-10-08"), _ts("2028-02-18")),
    "v25.0": (_ts("2026-02-18"), _ts("2028-07-29")),
    "v26.0": (_ts("2026-07-29"), None),
}

# Marketing API versions that expire before their Graph date (spec §4, GRAPHDOC changelog).
MARKETING_EXPIRY: dict[str, float] = {
    "v23.0": _ts("2026-06-09"),
    "v24.0": _ts("2026-10-06"),
}

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
