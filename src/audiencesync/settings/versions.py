"""Graph and Marketing API versions: the one table of release and expiry dates (spec §4).

The client warns before its configured version stops being served, and the emulator refuses the
expired ones with 2635 from the same table, so the two never disagree. Marketing API versions
(Custom Audiences) expire sooner than the Graph API's; the Conversions API follows the Graph
dates (each version supported for at least two years), which is why `meta.capi_version` is set
apart from `meta.api_version`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

DEFAULT_API_VERSION = "v26.0"
WARN_DAYS = 90
"""`status` warns when the configured version expires within this many days."""


@dataclass(frozen=True)
class Version:
    released: date
    graph_until: date | None
    """None: Meta has not announced it yet (TBD)."""
    marketing_until: date | None = None
    """Earlier than `graph_until` when Meta says so; None means the Graph date applies."""

    def until(self, *, marketing: bool) -> date | None:
        if marketing and self.marketing_until is not None:
            return self.marketing_until if self.graph_until is None else min(self.marketing_until, self.graph_until)
        return self.graph_until


VERSIONS: dict[str, Version] = {
    "v19.0": Version(date(2024, 1, 23), date(2026, 5, 21)),
    "v20.0": Version(date(2024, 5, 21), date(2026, 9, 24)),
    "v21.0": Version(date(2024, 10, 2), date(2027, 1, 21)),
    "v22.0": Version(date(2025, 1, 21), date(2027, 5, 20)),
    "v23.0": Version(date(2025, 5, 29), date(2027, 10, 8), date(2026, 6, 9)),
    "v24.0": Version(date(2025, 10, 8), date(2028, 2, 18), date(2026, 11, 10)),
    "v25.0": Version(date(2026, 2, 18), date(2028, 7, 29), date(2027, 2, 23)),
    "v26.0": Version(date(2026, 7, 29), None),
    "v27.0": Version(date(2026, 11, 4), None),
}
"""Spec §4 (Meta's Marketing API versions table as of Nov 2026 for the Marketing dates)."""


def expires(version: str, *, marketing: bool = True) -> date | None:
    """The last day `version` is served (exclusive), None when unknown or not announced."""
    v = VERSIONS.get(version)
    return v.until(marketing=marketing) if v else None


def version_warning(version: str, *, marketing: bool = True, today: date | None = None, setting: str) -> str | None:
    """A sentence when `version` is unknown, expired, or expires within WARN_DAYS; None otherwise."""
    today = today or datetime.now(UTC).date()
    if version not in VERSIONS:
        return f"{setting} {version} is not a version this release knows; check Meta's versions table"
    until = expires(version, marketing=marketing)
    if until is None:
        return None
    left = (until - today).days
    if left <= 0:
        return f"{setting} {version} expired on {until.isoformat()}: refused (2635); set {DEFAULT_API_VERSION}"
    if left <= WARN_DAYS:
        return (
            f"{setting} {version} expires on {until.isoformat()} (in {left} days); "
            f"set {DEFAULT_API_VERSION} or later before then"
        )
    return None


def meta_warnings(api_version: str, capi_version: str | None, *, today: date | None = None) -> list[str]:
    """`status`'s version warnings: the Marketing API version, and the Conversions API's when set apart."""
    found = [version_warning(api_version, today=today, setting="meta.api_version")]
    if capi_version:
        found.append(version_warning(capi_version, marketing=False, today=today, setting="meta.capi_version"))
    return [w for w in found if w]
