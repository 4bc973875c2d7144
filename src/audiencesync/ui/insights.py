"""What would raise an audience's match rate most, worked out from its own counts.

Each suggestion names how many members it concerns and the setting or column to change; they are
ranked by that number. The inputs are counts only: the key coverage of the rows Facebook holds
(`state.dashboard.coverage`), the invalid values of the recent runs, and the keys each run found.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from audiencesync.settings.audience import AudienceSettings
from audiencesync.state.dashboard import STRONG_KEYS, Coverage

KEY_NAMES = {
    "EMAIL": "email",
    "PHONE": "phone",
    "MADID": "mobile advertiser id",
    "EXTERN_ID": "external id",
    "FN": "first name",
    "LN": "last name",
    "FI": "first initial",
    "GEN": "gender",
    "DOBY": "birth year",
    "DOBM": "birth month",
    "DOBD": "birth day",
    "CT": "city",
    "ST": "state",
    "ZIP": "zip",
    "COUNTRY": "country",
    "LOOKALIKE_VALUE": "value",
    "UID": "Facebook id",
}

FIXES = {
    ("PHONE", "too_short_for_country"): "check the phone column (a missing area code, or a country of its own: "
    "a `country` column or `default_country`)",
    ("PHONE", "too_long_for_country"): "check the phone column (numbers of another country need their "
    "+country code or a `country` column)",
    ("PHONE", "unknown_country_code"): "write phones with a valid +country code",
    ("PHONE", "no_digits"): "the phone column holds text that is not a number",
    ("PHONE", "not_a_phone"): "check the phone column",
    ("EMAIL", "not_an_email"): "the email column holds values without a valid address",
    ("GEN", "unknown_gender"): "map the gender column to f/m (female/male, woman/man are read too)",
    ("COUNTRY", "not_a_country"): "write countries as ISO codes or English names",
    ("DOBY", "two_digit_year"): "write birth years with four digits",
    ("DOBM", "out_of_range"): "dates may be day-first: set `date_order: DMY`",
    ("DOBD", "out_of_range"): "dates may be day-first: set `date_order: DMY`",
    ("ZIP", "nothing_left"): "the zip column holds values with no letters or digits",
    ("MADID", "zero_madid"): "all-zero advertising ids are opted-out devices; nothing to fix",
    ("LOOKALIKE_VALUE", "not_a_number"): "the value column holds text that is not a number",
}


@dataclass(frozen=True)
class Suggestion:
    members: int
    text: str


def _pct(n: int, total: int) -> str:
    if not total:
        return "0%"
    return "under 1%" if 0 < n / total < 0.005 else f"{n / total:.0%}"


def invalid_totals(reports: list[dict[str, Any]]) -> dict[tuple[str, str], int]:
    """Invalid values by (key, reason), summed over the given runs' reports."""
    total: Counter[tuple[str, str]] = Counter()
    for rep in reports:
        for key, reasons in (rep.get("invalid") or {}).items():
            for reason, n in reasons.items():
                total[(key, reason)] += int(n)
    return dict(sorted(total.items(), key=lambda kv: (-kv[1], kv[0])))


def _found_shares(reports: list[dict[str, Any]]) -> dict[str, float]:
    """Share of normalized members with each key, from the latest run that normalized any."""
    for rep in reports:
        normalized = int(rep.get("normalized") or 0)
        if normalized:
            return {k: int(n) / normalized for k, n in (rep.get("keys_found") or {}).items()}
    return {}


def suggestions(audience: AudienceSettings, cov: Coverage, reports: list[dict[str, Any]]) -> list[Suggestion]:
    """Ranked suggestions for one audience; `reports` are its recent runs' reports, newest first."""
    out: list[Suggestion] = []
    members = cov.members
    if not members:
        return out
    shares = _found_shares(reports)
    if cov.phone_only and not audience.default_country and cov.by_key.get("COUNTRY", 0) < members:
        out.append(Suggestion(cov.phone_only, f"{_pct(cov.phone_only, members)} of members ({cov.phone_only:,}) "
                              "have only a phone and the audience has no `default_country`: set it, so numbers "
                              "written without +country code are read in the right country"))  # fmt: skip
    attributes = ("FN", "LN", "ZIP", "CT", "ST", "COUNTRY", "GEN", "DOBY")
    if audience.multi_key and not audience.match_on_attributes:
        found = [k for k in attributes if shares.get(k)]
        if found:
            gain = round(members * max(shares[k] for k in found))
            names = ", ".join(KEY_NAMES[k] for k in found[:4])
            out.append(Suggestion(gain, f"the source has {names}, … that the multi-key audience does not send: "
                                  f"`match_on_attributes: true` would add keys to about {gain:,} members"))  # fmt: skip
    if not audience.multi_key and len(audience.forward) > 1 and cov.two_or_more_strong:
        n = cov.two_or_more_strong
        out.append(Suggestion(n, f"{n:,} members have two or more of email, phone and mobile id, sent in separate "
                              "audiences: `multi_key: true` adds one audience with all of a person's keys in one row"))
    missing_strong = [k for k in STRONG_KEYS if shares.get(k) and k not in cov.sent_keys]
    for k in missing_strong:
        gain = round(members * shares[k])
        out.append(Suggestion(gain, f"the source has a {KEY_NAMES[k]} for about {gain:,} members that no Facebook "
                              f"audience of this one carries: add it to `forward` or set `multi_key: true`"))
    none = cov.strong.get(0, 0)
    if none:
        out.append(Suggestion(none, f"{_pct(none, members)} of members ({none:,}) have no email, phone or mobile "
                              "id in what Facebook holds: they can match only by name and place; add a column "
                              "with one of them"))  # fmt: skip
    latest = next((r for r in reports if r.get("normalized")), None)
    for (key, reason), n in list(invalid_totals([latest] if latest else []).items())[:4]:
        fix = FIXES.get((key, reason))
        if fix and reason != "zero_madid":
            name = KEY_NAMES.get(key, key)
            out.append(Suggestion(n, f"{n:,} {name} values were refused in the last run that read changes "
                                  f"({reason.replace('_', ' ')}): {fix}"))
    return sorted(out, key=lambda s: -s.members)
