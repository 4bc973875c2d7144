"""Audience health: what Facebook says about an audience we write to (spec §2.2).

Read after a run's writes (matched-size bounds, operation and delivery status, integrity flags),
checked before the first write (flagged, deleted or expired, no longer shared with us), and the ad
account's Custom Audience terms. Reads never fail a run; what they find can stop an audience
before anything is sent, with a sentence saying what to do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from audiencesync.load.graph import GraphClient, GraphError

HEALTH_FIELDS: dict[str, float] = {
    "approximate_count_lower_bound": 0,
    "approximate_count_upper_bound": 0,
    "operation_status": 0,
    "delivery_status": 0,
    "data_source": 0,
    "time_updated": 0,
    "fields_violating_integrity_policy": 0,
    "usage_restriction": 25.0,
    "is_eligible_for_sac_campaigns": 22.0,
}
"""Field → the first API version that serves it (spec §2.2): `usage_restriction` came with v25.0 and is
reported, never acted on (its meaning is not documented); `is_eligible_for_sac_campaigns` (housing,
employment, credit) from the first version after 2025-01."""

PREFLIGHT_FIELDS = ["operation_status", "fields_violating_integrity_policy", "permission_for_actions"]

FLAGGED = 471
LOW_MATCH_RATE = 0.2
"""Below this share of the members we hold, Facebook reports 411 (low match rate) too."""

DELETED_SUBCODE = 1487366
FLAGGED_WRITE_SUBCODE = 1713230
"""A write refused because the audience is flagged (operation_status 471), found mid-run."""
UNSHARED_SUBCODE = 1487301


def health_fields(api_version: str) -> list[str]:
    try:
        version = float(api_version.lstrip("v"))
    except ValueError:
        version = 0.0
    return [name for name, since in HEALTH_FIELDS.items() if version >= since]


def _code(v: Any) -> int | None:
    if isinstance(v, dict):
        v = v.get("code")
    try:
        return int(v) if v is not None else None
    except (TypeError, ValueError):
        return None


def _description(v: Any) -> str | None:
    return str(v.get("description")) if isinstance(v, dict) and v.get("description") else None


COUNT_FLOOR = 1000
"""Facebook reports any matched size up to this as this number: it says "at most", not "exactly"."""


@dataclass
class Health:
    """One read of an audience, with the members we hold in it."""

    fb_id: str
    lower: int | None = None
    upper: int | None = None
    operation_code: int | None = None
    operation_description: str | None = None
    delivery_code: int | None = None
    delivery_description: str | None = None
    data_source: str | None = None
    time_updated: int | None = None
    flagged_fields: list[str] = field(default_factory=list)
    members_held: int = 0
    usage_restriction: str | None = None
    sac_eligible: bool | None = None
    problem: str | None = None

    @property
    def match_rate(self) -> tuple[float | None, float | None]:
        """Matched people / members we hold, as a range from the rounded bounds (capped at 1)."""
        if not self.members_held or self.lower is None or self.upper is None or self.lower < 0:
            return None, None
        lower = 0 if self.lower == self.upper == COUNT_FLOOR else self.lower  # then it means "at most"
        return (
            round(min(lower / self.members_held, 1.0), 4),
            round(min(self.upper / self.members_held, 1.0), 4),
        )

    @property
    def warning(self) -> str | None:
        if self.problem:
            return self.problem
        if self.operation_code == FLAGGED or self.flagged_fields:
            return "flagged"
        high = self.match_rate[1]
        if self.operation_code == 411 or (high is not None and high < LOW_MATCH_RATE):
            return "low match"
        return None


def read_health(client: GraphClient, fb_id: str, members_held: int) -> Health:
    """One GET of the audience's health fields; raises GraphError (the caller logs and goes on)."""
    node = client.get_node(fb_id, health_fields(client.settings.api_version))
    source = node.get("data_source")
    return Health(
        fb_id=fb_id,
        lower=_int(node.get("approximate_count_lower_bound")),
        upper=_int(node.get("approximate_count_upper_bound")),
        operation_code=_code(node.get("operation_status")),
        operation_description=_description(node.get("operation_status")),
        delivery_code=_code(node.get("delivery_status")),
        delivery_description=_description(node.get("delivery_status")),
        data_source="/".join(str(source[k]) for k in ("type", "sub_type") if source.get(k))
        if isinstance(source, dict)
        else None,
        time_updated=_int(node.get("time_updated")),
        flagged_fields=[str(f) for f in node.get("fields_violating_integrity_policy") or []],
        members_held=members_held,
        usage_restriction=str(node["usage_restriction"]) if node.get("usage_restriction") else None,
        sac_eligible=_bool(node.get("is_eligible_for_sac_campaigns")),
    )


def _bool(v: Any) -> bool | None:
    if isinstance(v, bool) or v is None:
        return v
    return str(v).lower() in ("true", "1")


def _int(v: Any) -> int | None:
    try:
        return int(v) if v is not None else None
    except (TypeError, ValueError):
        return None


# -- before the first write ----------------------------------------------------------------------


@dataclass
class Preflight:
    """What the read before the first write found: `problem` stops the audience; `note` is shown."""

    problem: str | None = None  # "flagged" | "deleted" | "unshared"
    message: str | None = None
    note: str | None = None
    flagged_fields: list[str] = field(default_factory=list)


def flagged_sentence(name: str, fb_id: str, fields: list[str]) -> str:
    named = ", ".join(fields) if fields else "not named by Facebook"
    return (
        f"Facebook audience {name} ({fb_id}) is flagged for integrity restrictions (operation_status 471; "
        f"fields violating the policy: {named}), so Facebook refuses every upload to it. Nothing was sent. "
        "In Ads Manager, review the audience and change or remove the flagged wording (a customer-file audience "
        "cannot be edited: delete it there and let the next run create a new one), or ask for a review; "
        "the sync does not retry it until the flag is gone"
    )


def deleted_sentence(name: str, fb_id: str) -> str:
    return (
        f"Facebook audience {name} ({fb_id}) no longer exists on Facebook (deleted in Ads Manager, or expired "
        "unused). Nothing was sent and no new audience was created; ads that used it have stopped. Run "
        "`audiencesync sync --recreate` to forget it and create a new audience (then point your ad sets at it)"
    )


def unshared_sentence(name: str, fb_id: str) -> str:
    return (
        f"Facebook audience {name} ({fb_id}) is a shared audience this ad account may no longer change "
        "(code 100/1487301, Custom Audience Unavailable): its owner stopped sharing it or took away edit "
        "rights. Nothing was sent. Ask the owning business to share it again with edit rights, or delete it "
        "from the state with `audiencesync audiences delete` and let the next run create one of your own"
    )


OPERATION_NOTES = {
    414: "Facebook reports operation_status 414 (a replace is in progress on this audience)",
    415: "Facebook reports operation_status 415 (the last replace failed or timed out; a full refresh repairs it)",
    100: "Facebook reports operation_status 100 (expiring: not used in an active ad set for 2 years)",
}


def preflight(client: GraphClient, name: str, fb_id: str) -> Preflight:
    """Read operation_status (and who may edit) before the first write to an existing audience.
    A read failure other than 'deleted' raises GraphError: the caller logs it and goes on."""
    try:
        node = client.get_node(fb_id, PREFLIGHT_FIELDS)
    except GraphError as e:
        if DELETED_SUBCODE in (e.code, e.subcode) or (e.code, e.subcode) == (100, 33):
            return Preflight("deleted", deleted_sentence(name, fb_id))
        if UNSHARED_SUBCODE in (e.code, e.subcode):
            return Preflight("unshared", unshared_sentence(name, fb_id))
        raise
    code = _code(node.get("operation_status"))
    fields = [str(f) for f in node.get("fields_violating_integrity_policy") or []]
    if code == FLAGGED:
        return Preflight("flagged", flagged_sentence(name, fb_id, fields), flagged_fields=fields)
    perms = node.get("permission_for_actions")
    if isinstance(perms, dict) and perms.get("can_edit") is False:
        return Preflight("unshared", unshared_sentence(name, fb_id))
    return Preflight(note=OPERATION_NOTES.get(code) if code is not None else None)


def tos_link(client: GraphClient) -> str:
    return f"https://business.facebook.com/ads/manage/customaudiences/tos/?act={client.settings.ad_account_id}"


def missing_terms(client: GraphClient, *, value_based: bool) -> str | None:
    """A sentence if the ad account lacks the Custom Audience terms (or the value-based ones a
    value-based audience needs); None when accepted. Raises GraphError when the read fails."""
    node = client.call("GET", f"/{client.account}", {"fields": "tos_accepted"})
    tos = node.get("tos_accepted") or {}
    accepted = set(tos) if isinstance(tos, dict) else set()
    if "custom_audience_tos" not in accepted:
        return (
            f"the Custom Audience terms are not accepted on ad account {client.account}: nothing was sent. "
            f"Accept them at {tos_link(client)} (as a person with admin rights on the account), then run again"
        )
    if value_based and "value_based_custom_audience_tos" not in accepted:
        return (
            f"the value-based Custom Audience terms are not accepted on ad account {client.account}, and this "
            f"audience is value-based: nothing was sent. Accept them at {tos_link(client)}, then run again"
        )
    return None
