"""The Custom Audiences model: ad accounts, audiences, upload sessions and their rules.

Why: this is the "backend" in moto's sense. It holds all state and enforces
Facebook's business rules (spec §2, checklist §7 items 4 and 5) in plain
Python. It never sees HTTP: it takes already-decoded parameters, reads time
from the injectable clock and raises ``GraphError`` for rule violations, which
the routing layer renders as Facebook's envelope.

Rules implemented here (choices for UNCONFIRMED items are listed in
``docs/emulator.md``):

* any ``act_{id}`` is an ad account on first use, terms accepted unless the
  config or ``/_emulator/accounts/{id}`` says otherwise;
* create: ``customer_file_source`` required for CUSTOM, enums checked,
  ``retention_days`` 1–180, per-subtype cap (2654), terms (2663),
  ``enable_fetch_or_create``, lookalikes from a live seed (flagged seed →
  100/1713232);
* the data-source lock: the first upload fixes single-key
  (``HASHES_OR_USER_IDS``) or multi-key (``MULTI_HASHES``); a different kind
  later is 2650 with Facebook's data-source message;
* value-based audiences need ``LOOKALIKE_VALUE`` and others must not send it;
* sessions: cumulative ``num_received`` (a re-sent ``batch_seq`` is counted
  once), ``last_batch_flag`` closes, 90-minute expiry, replace subcodes
  1870144/145/147/158/159;
* a simulated user base (``matching.py``) decides which members match;
  ``approximate_count_*`` report the matched count (visible after the optional
  processing delay), rounded as documented; ``delivery_status`` 300 below
  ``min_delivery_size`` matched people;
* ``operation_status``: 410 until the first upload is processed → 200; 411
  when the matched share is below ``low_match_threshold``; 412 when the last
  session's invalid share is above ``high_invalid_threshold``; 414 during a
  replace; 415 after a replace that timed out; 100 when marked expiring; 471
  when flagged for integrity; any code forced by the emulator endpoint;
* integrity flags (set by the emulator endpoint or by ``integrity_terms`` in
  the name/description/rule): uploads → 100/1713230, edits of customer-file
  and lookalike audiences → 100/1713228, edits of other audiences that do not
  change the flagged fields and rule → 100/1713231, lookalikes → 100/1713232;
* terms per ad account (custom-audience and value-based): create/edit 2663,
  uploads 200/1870090;
* delete with live lookalikes → 2656; deleted through the API → 100/33;
  deleted or expired behind the client's back → 100/1487366; a shared
  audience the account may no longer change → 100/1487301 on writes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from . import errors
from .clock import Clock
from .coerce import as_bool, as_int, as_str
from .config import EmulatorConfig
from .matching import Matcher, check_shares
from .members import MemberSet, no_gc
from .payload import IDENTITY_KEYS, PreparedRows, Schema, prepare

SUBTYPES = frozenset(
    {
        "CUSTOM", "PRIMARY", "WEBSITE", "APP", "OFFLINE_CONVERSION", "CLAIM", "MANAGED", "PARTNER",
        "VIDEO", "LOOKALIKE", "ENGAGEMENT", "BAG_OF_ACCOUNTS", "STUDY_RULE_AUDIENCE", "FOX",
        "MEASUREMENT", "REGULATED_CATEGORIES_AUDIENCE", "BIDDING", "EXCLUSION",
        "MESSENGER_SUBSCRIBER_LIST",
    }
)  # fmt: skip
FILE_SOURCES = frozenset({"USER_PROVIDED_ONLY", "PARTNER_PROVIDED_ONLY", "BOTH_USER_AND_PARTNER_PROVIDED"})

OPERATION_STATUS_TEXT = {
    0: "Status not available.",
    100: "This audience is expiring: it has not been used in an active ad set for over 2 years and will be "
    "deleted if it stays unused for 90 days.",
    200: "Normal: there are no issues with this audience.",
    400: "Warning: this audience has a non-blocking issue.",
    410: "No upload: this audience has not been populated yet.",
    411: "Low match rate: a low share of the people in this audience were matched.",
    412: "High rate of invalid entries in the last upload session: the customer file has unusable data.",
    414: "Replace in progress: the audience is being replaced.",
    415: "Replace error: the last replace did not complete.",
    441: "This audience is being populated.",
    450: "This audience is out of date.",
    470: "The owning ad account is inactive.",
    471: "The custom audience or lookalike is blocked because it suggests the use of information (e.g., health, "
    "financial) not allowed under Meta's terms, and is restricted from running ads. Review the audience and "
    "remove prohibited information, or choose a different one.",
    500: "Error: an unexpected error occurred.",
}
DELIVERY_STATUS_TEXT = {
    200: "This audience is ready for use.",
    300: "This audience is too small to use. Add more people to it.",
    400: "This audience is unavailable because of policy restrictions.",
}

# Readable CustomAudience fields (PYSDK CustomAudience.Field); anything else is "nonexisting".
AUDIENCE_FIELDS = frozenset(
    [
        "account_id",
        "approximate_count_lower_bound",
        "approximate_count_upper_bound",
        "audience_labels",
        "customer_file_source",
        "data_source",
        "data_source_types",
        "datafile_custom_audience_uploading_status",
        "delete_time",
        "delivery_status",
        "description",
        "excluded_custom_audiences",
        "external_event_source",
        "fields_violating_integrity_policy",
        "household_audience",
        "id",
        "included_custom_audiences",
        "is_eligible_for_sac_campaigns",
        "is_household",
        "is_snapshot",
        "is_value_based",
        "lookalike_audience_ids",
        "lookalike_spec",
        "messenger_marketing_messages_page",
        "name",
        "operation_status",
        "opt_out_link",
        "owner_business",
        "page_deletion_marked_delete_time",
        "permission_for_actions",
        "pixel_id",
        "regulated_audience_spec",
        "retention_days",
        "rev_share_policy_id",
        "rule",
        "rule_aggregation",
        "rule_v2",
        "seed_audience",
        "sharing_status",
        "subtype",
        "time_content_updated",
        "time_created",
        "time_updated",
        "usage_restriction",
    ]
)
# Fields that exist only from some API version on (spec §2.2): usage_restriction came with PYSDK 25.0.0,
# is_eligible_for_sac_campaigns in 2025-01 (v22.0 was the first version released after it).
FIELD_MIN_VERSION = {"usage_restriction": (25, 0), "is_eligible_for_sac_campaigns": (22, 0)}
USAGE_RESTRICTIONS = frozenset({"EXCLUSION_ONLY", "NONE", "NO_DERIVATIVES"})
INTEGRITY_FIELDS = ("name", "description", "rule")
# operation_status codes from which a replace may start (spec: "Normal"; warnings about the data allowed)
REPLACE_FROM = frozenset({100, 200, 410, 411, 412, 415})
ACCOUNT_FIELDS = frozenset({"id", "account_id", "name", "tos_accepted", "currency", "account_status"})

UPDATABLE = (
    "name", "description", "opt_out_link", "rule", "lookalike_spec", "audience_labels",
    "use_in_campaigns", "use_for_products", "allowed_domains", "pixel_id",
)  # fmt: skip
MAX_SESSIONS_KEPT = 1000


@dataclass
class AdAccount:
    id: str  # digits only, without "act_"
    tos_accepted: bool
    name: str = ""
    value_based_tos_accepted: bool = True


@dataclass
class UploadSession:
    session_id: str
    kind: str  # "users" | "replace"
    start_time: float
    batches: dict[int, tuple[int, int, int]] = field(default_factory=dict)  # seq -> received, invalid, ok
    estimated_num_total: int | None = None
    end_time: float | None = None
    state: str = "open"  # open | finished | expired
    schema: Schema | None = None
    staging: MemberSet | None = None
    _anon_seq: int = 0

    def totals(self) -> tuple[int, int, int]:
        r = i = ok = 0
        for a, b, c in self.batches.values():
            r += a
            i += b
            ok += c
        return r, i, ok


@dataclass
class Audience:
    id: str
    account_id: str
    name: str
    subtype: str
    time_created: float
    description: str | None = None
    customer_file_source: str | None = None
    is_value_based: bool = False
    retention_days: int | None = None
    origin_audience_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # opt_out_link, lookalike_spec, labels, ...
    time_updated: float = 0.0
    time_content_updated: float | None = None
    deleted: bool = False
    delete_time: float | None = None
    schema_kind: str | None = None  # "single" | "multi" after the first upload
    members: MemberSet = field(default_factory=MemberSet)
    count_history: list[tuple[float, int, int]] = field(default_factory=list)  # (visible_at, members, matched)
    first_upload_ready_at: float | None = None
    status_override: int | None = None  # forced operation_status (e.g. 441)
    replace_session: str | None = None  # session id of the replace in progress
    replace_failed: bool = False
    sessions: dict[str, UploadSession] = field(default_factory=dict)
    last_session_id: str | None = None
    flagged: bool = False  # integrity flag (operation_status 471)
    integrity_fields: list[str] = field(default_factory=list)  # fields_violating_integrity_policy
    match_shares: dict[str, float] = field(default_factory=dict)  # per-audience overrides of the config's
    removed_reason: str | None = None  # "deleted" | "expired": removed behind the client's back (1487366)
    expiring: bool = False  # operation_status 100
    unshared: bool = False  # a shared audience this account may no longer change (1487301)
    usage_restriction: str | None = None
    sac_eligible: bool | None = None  # None: derived (customer-file CUSTOM and not flagged)


def _new_session_id() -> str:
    return str(random.randrange(10**17, 2**63 - 1))


class Backend:
    """All emulator state plus the rules. One instance per emulator app."""

    def __init__(self, config: EmulatorConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.reset()

    def reset(self) -> None:
        self.accounts: dict[str, AdAccount] = {}
        self.audiences: dict[str, Audience] = {}
        self._next_id = 23850000000000000 + random.randrange(10**12) * 1000
        self.version = 0  # bumped on every mutation (persistence saves when it moved)
        self._matchers: dict[Any, Matcher] = {}

    def _touch(self) -> None:
        self.version += 1

    def _new_id(self) -> str:
        self._next_id += 1
        return str(self._next_id)

    # ------------------------------------------------------------ accounts
    def account(self, account_id: str) -> AdAccount:
        acct = self.accounts.get(account_id)
        if acct is None:
            acct = AdAccount(
                account_id,
                self.config.tos_accepted,
                name=f"Emulated ad account {account_id}",
                value_based_tos_accepted=self.config.value_based_tos_accepted,
            )
            self.accounts[account_id] = acct
            self._touch()
        return acct

    def set_account(
        self, account_id: str, *, tos_accepted: bool | None = None, value_based_tos_accepted: bool | None = None
    ) -> AdAccount:
        acct = self.account(account_id)
        if tos_accepted is not None:
            acct.tos_accepted = tos_accepted
        if value_based_tos_accepted is not None:
            acct.value_based_tos_accepted = value_based_tos_accepted
        self._touch()
        return acct

    @staticmethod
    def tos_map(acct: AdAccount) -> dict[str, int]:
        """The ``tos_accepted`` map of the ad account node: the accepted terms, each with 1."""
        out = {}
        if acct.tos_accepted:
            out["custom_audience_tos"] = 1
        if acct.value_based_tos_accepted:
            out["value_based_custom_audience_tos"] = 1
        return out

    def account_fields(self, account_id: str) -> dict[str, Any]:
        acct = self.account(account_id)
        return {
            "id": f"act_{acct.id}",
            "account_id": acct.id,
            "name": acct.name,
            "tos_accepted": self.tos_map(acct),
            "currency": "USD",
            "account_status": 1,
        }

    # ------------------------------------------------------------ lookup
    def find(self, audience_id: str) -> Audience | None:
        """The audience, deleted or not (``None`` if it never existed)."""
        return self.audiences.get(audience_id)

    def live(self, audience_id: str, method: str) -> Audience:
        aud = self.audiences.get(audience_id)
        if aud is None:
            raise errors.unsupported_request(method, audience_id)
        if aud.deleted:
            raise self.gone_error(aud, method)
        self._tick(aud, self.clock.now())
        return aud

    @staticmethod
    def gone_error(aud: Audience, method: str) -> errors.GraphError:
        """Deleted through the API: 100/33 like any missing object; behind the client's back: 100/1487366."""
        if aud.removed_reason:
            return errors.audience_deleted(aud.id, aud.removed_reason)
        return errors.unsupported_request(method, aud.id)

    # ------------------------------------------------------------ matching (the simulated user base)
    def effective_shares(self, aud: Audience) -> dict[str, float]:
        shares = dict(self.config.match_shares)
        shares.update(aud.match_shares)
        return shares

    def matcher_for(self, aud: Audience) -> Matcher:
        shares = self.effective_shares(aud)
        sig = (self.config.match_seed, tuple(sorted(shares.items())))
        matcher = self._matchers.get(sig)
        if matcher is None:
            if len(self._matchers) >= 64:
                self._matchers.clear()
            matcher = self._matchers[sig] = Matcher(shares, self.config.match_seed)
        return matcher

    def _sync_matching(self, aud: Audience) -> None:
        """Recount the audience when its match settings changed (or on first use / after loading)."""
        matcher = self.matcher_for(aud)
        current = aud.members.matcher
        if current is matcher:
            return
        if current is not None and current.signature == matcher.signature:
            aud.members.matcher = matcher
            return
        aud.members.set_matcher(matcher)
        if aud.replace_session is not None:
            sess = aud.sessions.get(aud.replace_session)
            if sess is not None and sess.staging is not None:
                sess.staging.set_matcher(matcher)
        total = len(aud.members)
        ratio = aud.members.matched / total if total else 0.0
        aud.count_history = [(t, n, min(n, round(n * ratio))) for t, n, _ in aud.count_history]
        if aud.count_history:
            t, n, _ = aud.count_history[-1]
            if n == total:
                aud.count_history[-1] = (t, n, aud.members.matched)

    # ------------------------------------------------------------ integrity
    def is_flagged(self, aud: Audience) -> bool:
        """Flagged itself, or a lookalike of a flagged seed."""
        if aud.flagged:
            return True
        if aud.subtype == "LOOKALIKE" and aud.origin_audience_id:
            seed = self.audiences.get(aud.origin_audience_id)
            return seed is not None and seed.flagged
        return False

    def violating_fields(self, aud: Audience) -> list[str]:
        if aud.flagged:
            return list(aud.integrity_fields)
        seed = self.audiences.get(aud.origin_audience_id or "")
        return list(seed.integrity_fields) if seed is not None and seed.flagged else []

    def term_fields(self, name: Any, description: Any, rule: Any) -> list[str]:
        """Which of name/description/rule contain one of ``integrity_terms`` (case-insensitive)."""
        terms = [t.lower() for t in self.config.integrity_terms if isinstance(t, str) and t.strip()]
        if not terms:
            return []
        out = []
        for fname, value in zip(INTEGRITY_FIELDS, (name, description, rule), strict=True):
            if value in (None, ""):
                continue
            text = (value if isinstance(value, str) else repr(value)).lower()
            if any(t in text for t in terms):
                out.append(fname)
        return out

    # ------------------------------------------------------------ create / update / delete
    def create_audience(self, account_id: str, params: dict[str, Any]) -> dict[str, Any]:
        now = self.clock.now()
        acct = self.account(account_id)
        subtype = (as_str(params.get("subtype"), "subtype") or "CUSTOM").upper()
        if subtype not in SUBTYPES:
            raise errors.invalid_param(
                f"Param subtype must be one of {{{', '.join(sorted(SUBTYPES))}}} - got {subtype}"
            )
        name = as_str(params.get("name"), "name") or ""
        description = as_str(params.get("description"), "description")
        source = as_str(params.get("customer_file_source"), "customer_file_source")
        if source is not None:
            source = source.upper()
            if source not in FILE_SOURCES:
                raise errors.invalid_param(
                    f"Param customer_file_source must be one of {{{', '.join(sorted(FILE_SOURCES))}}} - got {source}"
                )
        if subtype == "CUSTOM" and not source:
            raise errors.missing_params("customer_file_source")
        is_value_based = as_bool(params.get("is_value_based"), "is_value_based")
        retention = as_int(params.get("retention_days"), "retention_days")
        if retention is not None and not 1 <= retention <= 180:
            raise errors.invalid_param("Param retention_days must be a number between 1 and 180")
        origin_id = as_str(params.get("origin_audience_id"), "origin_audience_id")
        seed: Audience | None = None
        if subtype == "LOOKALIKE":
            if not origin_id:
                raise errors.missing_params("origin_audience_id")
            seed = self.audiences.get(origin_id)
            if seed is None or seed.deleted or seed.account_id != account_id:
                raise errors.invalid_param(
                    f"Invalid origin audience: {origin_id}",
                    msg="The origin audience does not exist or does not belong to this ad account.",
                )
            if self.is_flagged(seed):
                raise errors.flagged_seed()
        if is_value_based and subtype != "CUSTOM":
            raise errors.invalid_param("Param is_value_based is only valid for CUSTOM audiences")
        usage = as_str(params.get("usage_restriction"), "usage_restriction")
        if usage is not None:
            usage = usage.upper()
            if usage not in USAGE_RESTRICTIONS:
                raise errors.invalid_param(
                    f"Param usage_restriction must be one of {{{', '.join(sorted(USAGE_RESTRICTIONS))}}} - got {usage}"
                )

        if as_bool(params.get("enable_fetch_or_create"), "enable_fetch_or_create"):
            for aud in self.audiences.values():
                if (
                    not aud.deleted
                    and aud.account_id == account_id
                    and aud.name == name
                    and aud.subtype == subtype
                    and aud.customer_file_source == source
                    and aud.is_value_based == is_value_based
                    and aud.origin_audience_id == origin_id
                ):
                    return {"id": aud.id}

        if not acct.tos_accepted:
            raise errors.tos_not_accepted_on_create(account_id)
        if is_value_based and not acct.value_based_tos_accepted:
            raise errors.value_based_tos_not_accepted(account_id, upload=False)
        live_same = sum(
            1
            for a in self.audiences.values()
            if not a.deleted and a.account_id == account_id and (a.subtype == "LOOKALIKE") == (subtype == "LOOKALIKE")
        )
        if live_same >= self.config.max_audiences:
            kind = "lookalike audiences" if subtype == "LOOKALIKE" else "custom audiences"
            raise errors.create_failed(
                f"You have reached the maximum number of {kind} ({self.config.max_audiences}) for ad "
                f"account {account_id}. Delete audiences you no longer use and try again.",
                title="Audience Limit Reached",
            )

        extra: dict[str, Any] = {}
        for key in (
            "opt_out_link", "lookalike_spec", "audience_labels", "rule", "pixel_id",
            "use_in_campaigns", "use_for_products", "allowed_domains", "prefill",
        ):  # fmt: skip
            if params.get(key) is not None:
                extra[key] = params[key]
        aud = Audience(
            id=self._new_id(),
            account_id=account_id,
            name=name,
            subtype=subtype,
            time_created=now,
            time_updated=now,
            description=description,
            customer_file_source=source,
            is_value_based=is_value_based,
            retention_days=retention,
            origin_audience_id=origin_id if seed is not None else None,
            extra=extra,
            usage_restriction=usage,
        )
        found = self.term_fields(name, description, extra.get("rule"))
        if found:
            aud.flagged = True
            aud.integrity_fields = found
        self.audiences[aud.id] = aud
        self._touch()
        return {"id": aud.id}

    def update_audience(self, audience_id: str, params: dict[str, Any]) -> dict[str, Any]:
        aud = self.live(audience_id, "POST")
        if aud.unshared:
            raise errors.audience_unavailable(aud.id)
        was_flagged = self.is_flagged(aud)
        if was_flagged:
            if aud.subtype in ("CUSTOM", "LOOKALIKE"):
                raise errors.flagged_edit_blocked()
            needed = set(self.violating_fields(aud))
            if aud.extra.get("rule") is not None:
                needed.add("rule")
            if not needed <= set(params):
                raise errors.flagged_edit_needs_fields()
        acct = self.account(aud.account_id)
        if not acct.tos_accepted:
            raise errors.tos_not_accepted_on_create(aud.account_id)
        if aud.is_value_based and not acct.value_based_tos_accepted:
            raise errors.value_based_tos_not_accepted(aud.account_id, upload=False)
        if "is_value_based" in params and as_bool(params["is_value_based"], "is_value_based") != aud.is_value_based:
            raise errors.invalid_param(
                "Cannot change is_value_based of an existing audience",
                msg="An audience cannot switch between value-based and non-value-based.",
            )
        if "customer_file_source" in params:
            source = (as_str(params["customer_file_source"], "customer_file_source") or "").upper()
            if source not in FILE_SOURCES:
                raise errors.invalid_param(f"Param customer_file_source must be one of {sorted(FILE_SOURCES)}")
            aud.customer_file_source = source
        if "retention_days" in params:
            retention = as_int(params["retention_days"], "retention_days")
            if retention is not None and not 1 <= retention <= 180:
                raise errors.invalid_param("Param retention_days must be a number between 1 and 180")
            aud.retention_days = retention
        if "name" in params:
            aud.name = as_str(params["name"], "name") or ""
        if "description" in params:
            aud.description = as_str(params["description"], "description")
        for key in UPDATABLE:
            if key not in ("name", "description") and key in params:
                aud.extra[key] = params[key]
        if was_flagged or any(k in params for k in INTEGRITY_FIELDS):
            found = self.term_fields(aud.name, aud.description, aud.extra.get("rule"))
            if was_flagged:  # every flagged field (and the rule) changed: the audience is reviewed again
                aud.flagged = bool(found)
                aud.integrity_fields = found
            elif found:
                aud.flagged = True
                aud.integrity_fields = found
        aud.time_updated = self.clock.now()
        self._touch()
        return {"success": True}

    def delete_audience(self, audience_id: str) -> dict[str, Any]:
        aud = self.live(audience_id, "DELETE")
        if aud.unshared:
            raise errors.audience_unavailable(aud.id)
        if self._lookalikes_of(aud):
            raise errors.delete_with_lookalikes()
        aud.deleted = True
        aud.delete_time = self.clock.now()
        aud.replace_session = None
        self._touch()
        return {"success": True}

    def _lookalikes_of(self, aud: Audience) -> list[str]:
        return [
            a.id
            for a in self.audiences.values()
            if a.origin_audience_id == aud.id and not a.deleted and a.subtype == "LOOKALIKE"
        ]

    # ------------------------------------------------------------ reading
    def list_audiences(self, account_id: str) -> list[Audience]:
        """Live audiences of the account, newest first (an emulator choice)."""
        self.account(account_id)
        auds = [a for a in self.audiences.values() if a.account_id == account_id and not a.deleted]
        now = self.clock.now()
        for a in auds:
            self._tick(a, now)
        auds.sort(key=lambda a: int(a.id), reverse=True)
        return auds

    def visible_counts(self, aud: Audience, now: float) -> tuple[int, int]:
        """(members, matched) as Facebook shows them: ``processing_delay_s`` after each change."""
        hist = aud.count_history
        for i in range(len(hist) - 1, -1, -1):
            if hist[i][0] <= now:
                if i:
                    del hist[:i]
                return hist[0][1], hist[0][2]
        return 0, 0

    def visible_count(self, aud: Audience, now: float) -> int:
        """The matched count the approximate counts and delivery status are based on."""
        return self.visible_counts(aud, now)[1]

    def approximate_bounds(self, matched: int) -> tuple[int, int]:
        """``approximate_count_lower_bound``/``_upper_bound`` for a matched count (an emulator choice).

        0 stays 0; below ``count_floor`` both bounds are the floor; above it the count is rounded
        down and up to ``count_significant_digits`` digits (12,345 → 12,000..13,000).
        """
        if matched <= 0:
            return 0, 0
        floor = self.config.count_floor or 0
        if matched < floor:
            return floor, floor
        digits = self.config.count_significant_digits
        if not digits or digits < 1:
            return matched, matched
        step = 10 ** max(0, len(str(matched)) - digits)
        return matched // step * step, -(-matched // step) * step

    def last_session(self, aud: Audience) -> UploadSession | None:
        sess = aud.sessions.get(aud.last_session_id or "")
        if sess is None and aud.sessions:
            sess = max(reversed(aud.sessions.values()), key=lambda x: x.start_time)
        return sess

    def operation_status(self, aud: Audience, now: float) -> int:
        if aud.status_override is not None:
            return aud.status_override
        if self.is_flagged(aud):
            return 471
        if aud.subtype != "CUSTOM":
            return 100 if aud.expiring else 200
        if aud.replace_session is not None:
            return 414
        if aud.replace_failed:
            return 415
        if aud.expiring:
            return 100
        if aud.first_upload_ready_at is None or now < aud.first_upload_ready_at:
            return 410
        last = self.last_session(aud)
        if last is not None:
            received, invalid, _ = last.totals()
            if received and invalid / received > self.config.high_invalid_threshold:
                return 412
        total, matched = self.visible_counts(aud, now)
        if total and total >= self.config.low_match_min_members and matched / total < self.config.low_match_threshold:
            return 411
        return 200

    def delivery_status(self, aud: Audience, now: float, op: int | None = None) -> int:
        if op is None:
            op = self.operation_status(aud, now)
        if op == 471 or self.is_flagged(aud):
            return 400
        if aud.subtype == "LOOKALIKE":
            seed = self.audiences.get(aud.origin_audience_id or "")
            matched = 0
            if seed is not None:
                self._sync_matching(seed)
                matched = self.visible_count(seed, now)
        else:
            matched = self.visible_count(aud, now)
        return 300 if matched < self.config.min_delivery_size else 200

    def sac_eligible(self, aud: Audience) -> bool:
        if aud.sac_eligible is not None:
            return aud.sac_eligible
        return aud.subtype == "CUSTOM" and not self.is_flagged(aud)

    def audience_fields(self, aud: Audience) -> dict[str, Any]:
        """Every readable field that has a value (Graph omits the others)."""
        now = self.clock.now()
        op = self.operation_status(aud, now)
        if aud.subtype == "LOOKALIKE":
            lower = upper = -1
        else:
            lower, upper = self.approximate_bounds(self.visible_count(aud, now))
        delivery = self.delivery_status(aud, now, op)
        if aud.schema_kind is None:
            data_source = {"type": "UNKNOWN", "sub_type": "ANYTHING", "creation_params": "[]"}
        else:
            sub = "HASHES_OR_USER_IDS" if aud.schema_kind == "single" else "MULTI_HASHES"
            data_source = {"type": "FILE_IMPORTED", "sub_type": sub, "creation_params": "[]"}
        if aud.subtype == "LOOKALIKE":
            data_source = {"type": "SEED_BASED", "sub_type": "LOOKALIKE", "creation_params": "[]"}
        out: dict[str, Any] = {
            "id": aud.id,
            "account_id": aud.account_id,
            "name": aud.name,
            "description": aud.description,
            "subtype": aud.subtype,
            "customer_file_source": aud.customer_file_source,
            "approximate_count_lower_bound": lower,
            "approximate_count_upper_bound": upper,
            "data_source": data_source,
            "delivery_status": {"code": delivery, "description": DELIVERY_STATUS_TEXT[delivery]},
            "operation_status": {"code": op, "description": OPERATION_STATUS_TEXT.get(op, "Status.")},
            "is_value_based": aud.is_value_based,
            "lookalike_audience_ids": self._lookalikes_of(aud) or None,
            "lookalike_spec": aud.extra.get("lookalike_spec"),
            "retention_days": aud.retention_days if aud.retention_days is not None else 0,
            "time_created": int(aud.time_created),
            "time_updated": int(aud.time_updated),
            "time_content_updated": int(aud.time_content_updated) if aud.time_content_updated else None,
            "opt_out_link": aud.extra.get("opt_out_link"),
            "audience_labels": aud.extra.get("audience_labels"),
            "rule": aud.extra.get("rule"),
            "pixel_id": aud.extra.get("pixel_id"),
            "sharing_status": {"sharing_relationship_id": 0, "status": "NOT_SHARED"},
            "permission_for_actions": {
                "can_edit": not aud.unshared,
                "can_see_insight": "True",
                "can_share": "True",
                "subtype_supports_lookalike": aud.subtype == "CUSTOM",
                "supports_recipient_lookalike": False,
            },
            "data_source_types": None,
            "is_household": False,
            "is_snapshot": False,
            "delete_time": int(aud.delete_time) if aud.delete_time else None,
            "seed_audience": int(aud.origin_audience_id) if aud.origin_audience_id else None,
            "fields_violating_integrity_policy": self.violating_fields(aud) or None,
            "usage_restriction": aud.usage_restriction if aud.usage_restriction not in (None, "NONE") else None,
            "is_eligible_for_sac_campaigns": self.sac_eligible(aud),
        }
        return {k: v for k, v in out.items() if v is not None}

    # ------------------------------------------------------------ uploads
    def _tick(self, aud: Audience, now: float) -> None:
        """Bring the audience up to date: match settings, and a replace session that outlived its
        90 minutes (the audience keeps what arrived)."""
        self._sync_matching(aud)
        sid = aud.replace_session
        if sid is None:
            return
        sess = aud.sessions.get(sid)
        if sess is None:
            aud.replace_session = None
            return
        if now >= sess.start_time + self.config.session_ttl_s:
            sess.state = "expired"
            sess.end_time = sess.start_time + self.config.session_ttl_s
            if sess.staging is not None:
                aud.members.replace_with(sess.staging)
                sess.staging = None
                self._content_changed(aud, now)
            aud.replace_session = None
            aud.replace_failed = True
            self._touch()

    def _content_changed(self, aud: Audience, now: float, *, upload: bool = True) -> None:
        aud.time_content_updated = now
        aud.time_updated = now
        ready = now + self.config.processing_delay_s
        aud.count_history.append((ready, len(aud.members), aud.members.matched))
        if upload and aud.first_upload_ready_at is None:
            aud.first_upload_ready_at = ready

    def _check_uploadable(self, aud: Audience, *, replace: bool) -> None:
        acct = self.account(aud.account_id)
        if not acct.tos_accepted:
            raise errors.tos_not_accepted_on_upload(aud.account_id)
        if aud.is_value_based and not acct.value_based_tos_accepted:
            raise errors.value_based_tos_not_accepted(aud.account_id, upload=True)
        if aud.unshared:
            raise errors.audience_unavailable(aud.id)
        if self.is_flagged(aud):
            raise errors.flagged_upload()
        if aud.subtype != "CUSTOM":
            raise errors.invalid_param(
                f"Users cannot be added to or removed from a {aud.subtype} audience",
                msg="Only customer-file (CUSTOM) audiences accept user uploads.",
            )
        if aud.replace_session is not None and not replace:
            raise errors.update_failed(
                subcode=1870145,
                title="Audience Update In Progress",
                msg="A replace is in progress for this audience. Wait until its operation_status is "
                "Normal (200), then try again.",
                is_transient=True,
            )

    def _check_schema(self, aud: Audience, prepared: PreparedRows, *, removal: bool) -> None:
        kind = prepared.schema.kind
        if aud.schema_kind is not None and aud.schema_kind != kind:
            have = "MULTI_HASHES" if aud.schema_kind == "multi" else "HASHES_OR_USER_IDS"
            want = prepared.schema.data_source
            raise errors.update_failed(
                f"This audience was created from data source FILE_IMPORTED.{have}, which does not "
                f"support data source FILE_IMPORTED.{want}.",
                title="Data Source Mismatch",
                msg=f"This audience holds {'multi-key' if have == 'MULTI_HASHES' else 'single-key'} data; "
                "upload with the same kind of schema.",
            )
        if removal:
            return
        if aud.is_value_based and not prepared.schema.has_value:
            raise errors.invalid_param(
                "Value-based audiences require LOOKALIKE_VALUE in the schema",
                title="Missing Customer Value",
                msg="This audience is value-based: every upload must include LOOKALIKE_VALUE.",
            )
        if not aud.is_value_based and prepared.schema.has_value:
            raise errors.invalid_param(
                "LOOKALIKE_VALUE is only allowed for value-based audiences",
                title="Not A Value-Based Audience",
                msg="Create the audience with is_value_based=true to upload customer values.",
            )

    def _prepare(self, payload: Any, *, removal: bool) -> PreparedRows:
        return prepare(
            payload,
            strict_hashes=self.config.strict_hashes,
            max_rows=self.config.max_rows,
            max_samples=self.config.max_invalid_samples,
            removal=removal,
        )

    @staticmethod
    def _session_spec(session: Any) -> tuple[str | None, int | None, bool, int | None]:
        if session is None:
            return None, None, True, None
        if not isinstance(session, dict):
            raise errors.invalid_param("Param session must be an object")
        sid = as_str(session.get("session_id"), "session.session_id")
        seq = as_int(session.get("batch_seq"), "session.batch_seq")
        last = as_bool(session.get("last_batch_flag"), "session.last_batch_flag")
        est = as_int(session.get("estimated_num_total"), "session.estimated_num_total")
        if sid is not None:
            sid = sid.strip()
            if not sid.isdigit():
                raise errors.invalid_param("Param session.session_id must be a positive integer")
        return sid, seq, last, est

    @staticmethod
    def _finished_error(sess: UploadSession) -> errors.GraphError:
        if sess.state == "expired":
            return errors.update_failed(
                subcode=1870158,
                title="Replace Session Timed Out" if sess.kind == "replace" else "Upload Session Timed Out",
                msg="This session started more than 90 minutes ago; start a new session.",
            )
        return errors.update_failed(
            subcode=1870159,
            title="Replace Session Finished" if sess.kind == "replace" else "Upload Session Finished",
            msg="This session already received its last batch (last_batch_flag); start a new session.",
        )

    def _remember(self, aud: Audience, sess: UploadSession) -> None:
        aud.sessions[sess.session_id] = sess
        aud.last_session_id = sess.session_id
        if len(aud.sessions) > MAX_SESSIONS_KEPT:
            for sid in list(aud.sessions)[: len(aud.sessions) - MAX_SESSIONS_KEPT]:
                if aud.sessions[sid].state != "open" and sid != aud.replace_session:
                    del aud.sessions[sid]

    def _users_session(self, aud: Audience, session: Any, now: float) -> tuple[UploadSession, int, bool]:
        sid, seq, last, est = self._session_spec(session)
        sess = aud.sessions.get(sid) if sid is not None else None
        if sess is not None:
            if sess.state == "open" and now >= sess.start_time + self.config.session_ttl_s:
                sess.state = "expired"
                sess.end_time = sess.start_time + self.config.session_ttl_s
            if sess.state != "open" or sess.kind != "users":
                raise self._finished_error(sess)
        else:
            sess = UploadSession(sid or _new_session_id(), "users", now, estimated_num_total=est)
        if seq is None:
            sess._anon_seq -= 1
            seq = sess._anon_seq
        if session is None:
            last = True
        if est is not None:
            sess.estimated_num_total = est
        return sess, seq, last

    def _response(self, aud_id: str, sess: UploadSession, prepared: PreparedRows) -> dict[str, Any]:
        received, invalid, _ = sess.totals()
        return {
            "audience_id": aud_id,
            "session_id": sess.session_id,
            "num_received": received,
            "num_invalid_entries": invalid,
            "invalid_entry_samples": prepared.samples,
        }

    def upload_users(
        self, audience_id: str, payload: Any, session: Any, *, removal: bool, method: str = "POST"
    ) -> dict[str, Any]:
        """``POST`` (add) or ``DELETE`` (remove) ``/{audience_id}/users``."""
        with no_gc():
            return self._upload_users(audience_id, payload, session, removal=removal, method=method)

    def _upload_users(
        self, audience_id: str, payload: Any, session: Any, *, removal: bool, method: str
    ) -> dict[str, Any]:
        aud = self.live(audience_id, method)
        now = self.clock.now()
        self._check_uploadable(aud, replace=False)
        prepared = self._prepare(payload, removal=removal)
        self._check_schema(aud, prepared, removal=removal)
        sess, seq, last = self._users_session(aud, session, now)
        # --- all checks passed: apply
        if removal:
            aud.members.remove(ident for ident, _ in prepared.rows)
        else:
            aud.members.add(prepared.rows, prepared.shape)
            if aud.schema_kind is None:
                aud.schema_kind = prepared.schema.kind
        sess.batches[seq] = (prepared.num_received, prepared.num_invalid, len(prepared.rows))
        if last:
            sess.state = "finished"
            sess.end_time = now
        self._remember(aud, sess)
        if not removal or prepared.rows:
            self._content_changed(aud, now, upload=not removal)
        self._touch()
        return self._response(aud.id, sess, prepared)

    def replace_users(self, audience_id: str, payload: Any, session: Any) -> dict[str, Any]:
        """``POST /{audience_id}/usersreplace`` (spec §2.5)."""
        with no_gc():
            return self._replace_users(audience_id, payload, session)

    def _replace_users(self, audience_id: str, payload: Any, session: Any) -> dict[str, Any]:
        aud = self.live(audience_id, "POST")
        now = self.clock.now()
        self._check_uploadable(aud, replace=True)
        if session is None:
            raise errors.missing_params("session")
        sid, seq, last, est = self._session_spec(session)
        if sid is None:
            raise errors.missing_params("session.session_id")
        if seq is None:
            raise errors.missing_params("session.batch_seq")
        active = aud.replace_session
        existing = aud.sessions.get(sid)
        restart = False
        if seq == 1:
            if active is not None and active != sid:
                raise errors.update_failed(
                    subcode=1870145,
                    title="Audience Update In Progress",
                    msg="Another replace session is in progress for this audience. Wait until its "
                    "operation_status is Normal (200).",
                    is_transient=True,
                )
            if existing is not None and active != sid:
                raise self._finished_error(existing)
            op = self.operation_status(aud, now)
            if active is None and op not in REPLACE_FROM:
                raise errors.update_failed(
                    subcode=1870145,
                    title="Audience Update In Progress",
                    msg=f"The audience's operation_status is {op}; replace needs Normal (200).",
                    is_transient=True,
                )
            if len(aud.members) >= self.config.replace_max_size:
                raise errors.update_failed(
                    subcode=1870144,
                    title="DFCA Size Not Supported For Replace",
                    msg=f"Audiences with {self.config.replace_max_size} or more people cannot be replaced.",
                )
            restart = True
        elif active is None or active != sid:
            if existing is not None and existing.kind == "replace":
                raise self._finished_error(existing)
            raise errors.update_failed(
                subcode=1870147,
                title="Invalid Upload Batch for Replace",
                msg="A replace session must start with batch_seq 1.",
            )
        prepared = self._prepare(payload, removal=False)
        self._check_schema(aud, prepared, removal=False)
        sess = existing if (existing is not None and not restart) else None
        if sess is not None and sess.schema is not None and sess.schema != prepared.schema:
            raise errors.invalid_param(
                "Data is missing or does not match schema: the schema changed within the replace session",
                title="Schema Changed",
                msg="All batches of a replace session must use the same schema.",
            )
        # --- apply
        if sess is None:
            sess = UploadSession(sid, "replace", now, estimated_num_total=est, schema=prepared.schema)
            sess.staging = MemberSet(aud.members.matcher)
            aud.replace_session = sid
            aud.replace_failed = False
        if est is not None:
            sess.estimated_num_total = est
        assert sess.staging is not None
        sess.staging.add(prepared.rows, prepared.shape)
        sess.batches[seq] = (prepared.num_received, prepared.num_invalid, len(prepared.rows))
        if aud.schema_kind is None:
            aud.schema_kind = prepared.schema.kind
        self._remember(aud, sess)
        if last:
            aud.members.replace_with(sess.staging)
            sess.staging = None
            sess.state = "finished"
            sess.end_time = now
            aud.replace_session = None
            self._content_changed(aud, now)
        self._touch()
        return self._response(aud.id, sess, prepared)

    def remove_from_all(self, account_id: str, payload: Any, session: Any) -> dict[str, Any]:
        """``DELETE /act_{id}/usersofanyaudience``: remove the people from every customer-file CA."""
        with no_gc():
            return self._remove_from_all(account_id, payload, session)

    def _remove_from_all(self, account_id: str, payload: Any, session: Any) -> dict[str, Any]:
        now = self.clock.now()
        if not self.account(account_id).tos_accepted:
            raise errors.tos_not_accepted_on_upload(account_id)
        prepared = self._prepare(payload, removal=True)
        sid, _, _, _ = self._session_spec(session)
        idents = [ident for ident, _ in prepared.rows]
        for aud in self.audiences.values():
            if aud.account_id != account_id or aud.deleted or aud.subtype != "CUSTOM" or aud.unshared:
                continue
            self._tick(aud, now)
            removed = aud.members.remove(idents)
            if aud.replace_session is not None:
                staging = aud.sessions[aud.replace_session].staging
                if staging is not None:
                    staging.remove(idents)
            if removed:
                self._content_changed(aud, now, upload=False)
        self._touch()
        return {
            "account_id": account_id,
            "session_id": sid or _new_session_id(),
            "num_received": prepared.num_received,
            "num_invalid_entries": prepared.num_invalid,
            "invalid_entry_samples": prepared.samples,
        }

    def sessions(self, audience_id: str, session_id: str | None) -> list[dict[str, Any]]:
        aud = self.live(audience_id, "GET")
        now = self.clock.now()
        out = []
        for sess in sorted(aud.sessions.values(), key=lambda s: s.start_time, reverse=True):
            if session_id is not None and sess.session_id != session_id:
                continue
            if sess.state == "open" and now >= sess.start_time + self.config.session_ttl_s:
                sess.state = "expired"
                sess.end_time = sess.start_time + self.config.session_ttl_s
            received, invalid, ok = sess.totals()
            if sess.state == "open":
                est = sess.estimated_num_total
                progress = min(99, received * 100 // est) if est else 0
                stage = "uploading"
            else:
                progress = 100
                stage = "finished" if sess.state == "finished" else "timed_out"
            out.append(
                {
                    "session_id": sess.session_id,
                    "start_time": str(int(sess.start_time)),
                    "end_time": str(int(sess.end_time)) if sess.end_time is not None else "0",
                    "num_received": str(received),
                    "num_invalid_entries": str(invalid),
                    "num_matched": str(ok),
                    "progress": progress,
                    "stage": stage,
                }
            )
        return out

    # ------------------------------------------------------------ emulator-only views
    def set_status(self, audience_id: str, code: int | None) -> dict[str, Any]:
        """Force ``operation_status``: 471 flags the audience, 200/``None`` clears flags and forced codes."""
        return self.admin_update(audience_id, {"operation_status": code})

    ADMIN_KEYS = frozenset(
        {
            "operation_status", "flagged", "fields_violating_integrity_policy", "match_shares", "deleted",
            "expired", "expiring", "unshared", "usage_restriction", "is_eligible_for_sac_campaigns",
        }
    )  # fmt: skip

    def admin_update(self, audience_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /_emulator/audiences/{id}``: the knobs tests turn. Raises ``ValueError`` on a bad body."""
        aud = self.audiences.get(audience_id)
        if aud is None:
            raise errors.unsupported_request("POST", audience_id)
        unknown = set(body) - self.ADMIN_KEYS
        if unknown:
            raise ValueError(f"unknown keys {sorted(unknown)}; known: {sorted(self.ADMIN_KEYS)}")
        if not body:
            raise ValueError(f"give at least one of {sorted(self.ADMIN_KEYS)}")
        for key in ("flagged", "deleted", "expired", "expiring", "unshared"):
            if key in body and not isinstance(body[key], bool):
                raise ValueError(f"{key} must be a boolean")
        code = body.get("operation_status")
        if code is not None and (isinstance(code, bool) or not isinstance(code, int)):
            raise ValueError("operation_status must be an integer or null")
        fields_v = body.get("fields_violating_integrity_policy")
        if fields_v is not None and (
            not isinstance(fields_v, list) or not all(f in INTEGRITY_FIELDS for f in fields_v)
        ):
            raise ValueError(f"fields_violating_integrity_policy must be a list of {list(INTEGRITY_FIELDS)}")
        shares = body.get("match_shares")
        if shares is not None:
            shares = check_shares(shares, IDENTITY_KEYS, allow_null=True)
        usage = body.get("usage_restriction")
        if usage is not None and usage not in USAGE_RESTRICTIONS:
            raise ValueError(f"usage_restriction must be one of {sorted(USAGE_RESTRICTIONS)} or null")
        sac = body.get("is_eligible_for_sac_campaigns")
        if sac is not None and not isinstance(sac, bool):
            raise ValueError("is_eligible_for_sac_campaigns must be a boolean or null")

        now = self.clock.now()
        if "operation_status" in body:
            if code == 471:
                body.setdefault("flagged", True)
                aud.status_override = None
            elif code in (None, 200):
                aud.status_override = None
                aud.flagged = False
                aud.integrity_fields = []
                aud.expiring = False
            else:
                aud.status_override = code
        if "flagged" in body:
            aud.flagged = body["flagged"]
            if aud.flagged:
                aud.integrity_fields = list(
                    fields_v
                    or aud.integrity_fields
                    or self.term_fields(aud.name, aud.description, aud.extra.get("rule"))
                    or ["name"]
                )
            else:
                aud.integrity_fields = []
        elif fields_v is not None:
            aud.integrity_fields = list(fields_v)
            aud.flagged = bool(fields_v)
        if "match_shares" in body:
            if shares is None:
                aud.match_shares = {}
            else:
                for name, share in shares.items():
                    if share is None:
                        aud.match_shares.pop(name, None)
                    else:
                        aud.match_shares[name] = share
        for key, reason in (("deleted", "deleted"), ("expired", "expired")):
            if key not in body:
                continue
            if body[key]:
                aud.deleted = True
                aud.removed_reason = reason
                aud.delete_time = now
                aud.replace_session = None
            elif aud.deleted:
                aud.deleted = False
                aud.removed_reason = None
                aud.delete_time = None
        if "expiring" in body:
            aud.expiring = body["expiring"]
        if "unshared" in body:
            aud.unshared = body["unshared"]
        if "usage_restriction" in body:
            aud.usage_restriction = usage
        if "is_eligible_for_sac_campaigns" in body:
            aud.sac_eligible = sac
        aud.time_updated = now
        self._touch()
        return self.summary(aud)

    def summary(self, aud: Audience) -> dict[str, Any]:
        now = self.clock.now()
        self._tick(aud, now)
        total, matched = self.visible_counts(aud, now)
        lower, upper = self.approximate_bounds(matched) if aud.subtype != "LOOKALIKE" else (-1, -1)
        op = self.operation_status(aud, now)
        last = self.last_session(aud)
        last_view = None
        if last is not None:
            received, invalid, _ = last.totals()
            last_view = {"session_id": last.session_id, "num_received": received, "num_invalid_entries": invalid}
        return {
            "id": aud.id,
            "account_id": aud.account_id,
            "name": aud.name,
            "subtype": aud.subtype,
            "data_source": (
                None
                if aud.schema_kind is None
                else ("HASHES_OR_USER_IDS" if aud.schema_kind == "single" else "MULTI_HASHES")
            ),
            "is_value_based": aud.is_value_based,
            "member_count": len(aud.members),
            "matched_count": aud.members.matched,
            "approximate_count": matched,
            "approximate_count_lower_bound": lower,
            "approximate_count_upper_bound": upper,
            "operation_status": op,
            "delivery_status": self.delivery_status(aud, now, op),
            "replace_in_progress": aud.replace_session is not None,
            "last_session": last_view,
            "flagged": self.is_flagged(aud),
            "fields_violating_integrity_policy": self.violating_fields(aud),
            "match_shares": self.effective_shares(aud),
            "match_share_overrides": dict(aud.match_shares),
            "expiring": aud.expiring,
            "unshared": aud.unshared,
            "usage_restriction": aud.usage_restriction,
            "is_eligible_for_sac_campaigns": self.sac_eligible(aud),
            "deleted": aud.deleted,
            "removed": aud.removed_reason,
            "visible_member_count": total,
        }

    def members_view(self, audience_id: str, *, count_only: bool = False) -> dict[str, Any]:
        aud = self.audiences.get(audience_id)
        if aud is None:
            raise errors.unsupported_request("GET", audience_id)
        self._tick(aud, self.clock.now())
        out: dict[str, Any] = {
            "audience_id": aud.id,
            "schema_kind": aud.schema_kind,
            "count": len(aud.members),
        }
        if not count_only:
            out["members"] = aud.members.as_dicts()
        return out

    # ------------------------------------------------------------ persistence
    def dump(self) -> dict[str, Any]:
        def sess_dump(s: UploadSession) -> dict[str, Any]:
            return {
                "session_id": s.session_id,
                "kind": s.kind,
                "start_time": s.start_time,
                "batches": [[k, *v] for k, v in s.batches.items()],
                "estimated_num_total": s.estimated_num_total,
                "end_time": s.end_time,
                "state": s.state,
                "schema": [s.schema.kind, list(s.schema.keys)] if s.schema else None,
                "staging": s.staging.dump() if s.staging is not None else None,
            }

        return {
            "next_id": self._next_id,
            "accounts": [
                {
                    "id": a.id,
                    "tos_accepted": a.tos_accepted,
                    "name": a.name,
                    "value_based_tos_accepted": a.value_based_tos_accepted,
                }
                for a in self.accounts.values()
            ],
            "audiences": [
                {
                    "id": a.id,
                    "account_id": a.account_id,
                    "name": a.name,
                    "subtype": a.subtype,
                    "time_created": a.time_created,
                    "description": a.description,
                    "customer_file_source": a.customer_file_source,
                    "is_value_based": a.is_value_based,
                    "retention_days": a.retention_days,
                    "origin_audience_id": a.origin_audience_id,
                    "extra": a.extra,
                    "time_updated": a.time_updated,
                    "time_content_updated": a.time_content_updated,
                    "deleted": a.deleted,
                    "delete_time": a.delete_time,
                    "schema_kind": a.schema_kind,
                    "members": a.members.dump(),
                    "first_upload_ready_at": a.first_upload_ready_at,
                    "status_override": a.status_override,
                    "replace_session": a.replace_session,
                    "replace_failed": a.replace_failed,
                    "sessions": [sess_dump(s) for s in a.sessions.values()],
                    "last_session_id": a.last_session_id,
                    "flagged": a.flagged,
                    "integrity_fields": a.integrity_fields,
                    "match_shares": a.match_shares,
                    "removed_reason": a.removed_reason,
                    "expiring": a.expiring,
                    "unshared": a.unshared,
                    "usage_restriction": a.usage_restriction,
                    "sac_eligible": a.sac_eligible,
                }
                for a in self.audiences.values()
            ],
        }

    def load(self, state: dict[str, Any]) -> None:
        self.reset()
        self._next_id = int(state.get("next_id", self._next_id))
        for a in state.get("accounts", []):
            self.accounts[a["id"]] = AdAccount(
                a["id"],
                bool(a["tos_accepted"]),
                a.get("name", ""),
                value_based_tos_accepted=bool(a.get("value_based_tos_accepted", True)),
            )
        for d in state.get("audiences", []):
            members = MemberSet.load(d.pop("members", []))
            sessions = d.pop("sessions", [])
            aud = Audience(**{k: v for k, v in d.items()})
            if aud.status_override == 471:  # state files from before the integrity flag
                aud.status_override = None
                aud.flagged = True
                aud.integrity_fields = aud.integrity_fields or ["name"]
            aud.members = members
            aud.count_history = [(0.0, len(members), 0)]  # matched: recounted on first use
            for s in sessions:
                schema = Schema(s["schema"][0], tuple(s["schema"][1])) if s.get("schema") else None
                sess = UploadSession(
                    s["session_id"],
                    s["kind"],
                    s["start_time"],
                    batches={int(b[0]): (b[1], b[2], b[3]) for b in s["batches"]},
                    estimated_num_total=s["estimated_num_total"],
                    end_time=s["end_time"],
                    state=s["state"],
                    schema=schema,
                    staging=MemberSet.load(s["staging"]) if s.get("staging") is not None else None,
                )
                aud.sessions[sess.session_id] = sess
            self.audiences[aud.id] = aud
        self._touch()
