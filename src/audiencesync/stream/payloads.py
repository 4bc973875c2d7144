"""The shapes the server accepts, each turned into membership changes for configured audiences.

* Segment's (and RudderStack's) Tracking API: `identify` and `track` (single, or in `/v1/batch`).
  Engage marks an audience call with `context.personas` (`computation_class: audience`,
  `computation_key`) and carries the membership as a true/false trait (identify: `traits`, or
  `context.traits` where RudderStack's SDK puts them) or property (track) named by the key.
* mParticle: an Events API batch (`user_identities`, `user_attributes`, `deleted_user_attributes`,
  `device_info`, `events`) whose true/false user attribute names an audience (a deleted one is a
  leave), a bulk list of such batches, or a Firehose `audience_membership_change_request`
  (`user_profiles[].audiences[].action` add/delete). Batches are read by `extract/mparticle.py`, the
  module the conversions door reads mParticle files with.
* Commerce: mParticle `commerce_event`s and Segment e-commerce tracks (`Order Completed`, ...) become
  rows of the conversions layout (`Parsed.commerce`, raw values, in memory only) when the
  `conversions:` section has `stream: true`; `stream/commerce.py` builds, hashes and queues them.
  Otherwise they are counted (`Parsed.commerce_events`) and skipped as `commerce_not_forwarded`.
* Our own: `{"audience": key, "user_id": ..., "in": true|false, "traits": {...}}`, one or a list.

Each call of a request is one of three things: *used* (it carries a membership of a configured
stream audience: its changes are queued), *skipped* (it carries none: an ordinary `track`/`page`,
an unconfigured audience, a development mParticle batch; counted by reason in `Parsed.skipped`,
never an error), or *refused* (malformed: a flag that is not true/false, an id that is not a
string, a field over its length). A refused call inside a batch is refused alone (listed by
position in `Parsed.refused`) so the valid calls beside it are not lost; a request is refused
whole only when it is over a limit (413), not a body of the right shape, or when all its calls
are refused. Messages name fields and audience keys, never a person's values.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from audiencesync.config import AudienceSettings, snake_case
from audiencesync.extract import mparticle as mp
from audiencesync.stream.commerce import segment_commerce_row
from audiencesync.stream.members import CallError, Change, Person, changes_for, keys_of_trait
from audiencesync.stream.settings import ServeSettings

MAX_PROBLEMS = 20


MPARTICLE_DEVICE_IDS = tuple(name for name, _ in mp.ADVERTISING_IDS)
HASHED_ENCODINGS = ("sha256", "sha-256", "sha_256")
TRUE_WORDS = {"true": True, "false": False}
SEGMENT_OTHER_TYPES = ("page", "screen", "group", "alias")
"""Segment / RudderStack call types that never carry a membership: skipped, not refused."""


def mparticle_identity(name: str) -> str:
    """An mParticle identity name folded so every SDK's spelling of it is one string."""
    return mp.fold(name)


class Skip(Exception):
    """A call that carries no membership of a configured stream audience: counted, not an error.

    `reason` is one of a few fixed words (it is a metric label and goes in the answer)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class Parsed:
    """What a request amounts to: changes to queue, and what was counted but not queued."""

    changes: list[Change] = field(default_factory=list)
    invalid: Counter[tuple[str, str]] = field(default_factory=Counter)
    commerce_events: int = 0
    """Commerce events received (forwarded or not)."""
    commerce: list[dict[str, Any]] = field(default_factory=list, repr=False)
    """Commerce events to forward, as rows of the conversions layout: raw values, never stored as such."""
    calls: int = 0
    """Calls used: each made at least one change or carried commerce events to forward."""
    skipped: Counter[str] = field(default_factory=Counter)
    """Calls that carry no membership, by reason."""
    refused: list[str] = field(default_factory=list)
    """Malformed calls refused alone inside a batch, each `where: why` (never a value)."""
    received: int = 0
    firehose: bool = False

    def summary(self) -> dict[str, object]:
        """What the answer says about the calls: how many were used, skipped (why) and refused."""
        out: dict[str, object] = {
            "received": self.received,
            "used": self.calls,
            "skipped": sum(self.skipped.values()),
            "refused": len(self.refused),
        }
        if self.skipped:
            out["skipped_by_reason"] = dict(sorted(self.skipped.items()))
        if self.refused:
            more = len(self.refused) - MAX_PROBLEMS
            out["refused_calls"] = self.refused[:MAX_PROBLEMS] + ([f"... and {more} more"] if more > 0 else [])
        return out


class Parser:
    """Maps calls to the configured stream audiences, within the configured field limits."""

    def __init__(self, audiences: Mapping[str, AudienceSettings], settings: ServeSettings, *, commerce: bool = False):
        self.audiences = dict(audiences)
        self.settings = settings
        self.commerce = commerce
        """Whether commerce events are forwarded (`conversions.stream: true`) or counted and skipped."""
        self._countries = {k: a.default_country for k, a in self.audiences.items()}

    # -- entry points, one per endpoint family ---------------------------------------------------

    def segment(self, body: Any, kind: str) -> Parsed:
        """`kind` is identify, track or batch (the endpoint the body came to)."""
        if kind == "batch":
            if not isinstance(body, dict) or not isinstance(body.get("batch"), list):
                raise CallError("the body must be an object with a `batch` list of identify/track calls")
            shared = body.get("context") if isinstance(body.get("context"), dict) else {}
            calls = body["batch"]
            self._check_count(calls)
            return self._each(calls, "batch", lambda call: self._segment_call(call, None, shared), sized=True)
        if not isinstance(body, dict):
            raise CallError(f"the body must be a Segment {kind} call (a JSON object)")
        return self._each([body], None, lambda call: self._segment_call(call, kind, {}))

    def mparticle(self, body: Any) -> Parsed:
        """An Events API batch, a bulk list of them, or a Firehose audience membership request."""
        if isinstance(body, list):
            self._check_count(body)
            return self._each(body, "batches", self._mparticle_batch, sized=True)
        if not isinstance(body, dict):
            raise CallError("the body must be an mParticle batch object, a list of batches, or a membership request")
        if body.get("type") == "audience_membership_change_request":
            profiles = body.get("user_profiles") or []
            if not isinstance(profiles, list):
                raise CallError("user_profiles: must be a list")
            self._check_count(profiles)
            parsed = self._each(profiles, "user_profiles", self._firehose_profile, sized=True)
            parsed.firehose = True
            return parsed
        return self._each([body], None, self._mparticle_batch)

    def membership(self, body: Any) -> Parsed:
        """Our own call: one object, a list of them, or `{"batch": [...]}`."""
        if isinstance(body, dict) and isinstance(body.get("batch"), list):
            body = body["batch"]
        if isinstance(body, list):
            self._check_count(body)
            return self._each(body, "batch", self._own_call, sized=True)
        if not isinstance(body, dict):
            raise CallError('the body must be {"audience": key, "user_id": ..., "in": true|false, "traits": {...}}')
        return self._each([body], None, self._own_call)

    # -- each call of one request: used, skipped or refused alone --------------------------------

    def _each(
        self, calls: list[Any], where: str | None, one: Callable[[Any], Parsed], *, sized: bool = False
    ) -> Parsed:
        """Over-limit refuses the request (413); a malformed call is refused alone, unless it is the
        only kind of call there is (a single call, or a batch of nothing else): then 400."""
        out = Parsed(received=len(calls))
        for i, call in enumerate(calls):
            at = f"{where}[{i}]" if where else ""
            if sized and len(orjson.dumps(call)) > self.settings.max_call_bytes:
                raise CallError(f"{at}: the call is larger than {self.settings.max_call_bytes} bytes", status=413)
            try:
                got = one(call)
            except Skip as s:
                out.skipped[s.reason] += 1
                continue
            except CallError as e:
                if e.status == 413:
                    raise CallError(f"{at}: {e}" if at else str(e), status=413) from None
                out.refused.append(f"{at}: {e}" if at else str(e))
                continue
            out.changes += got.changes
            out.invalid.update(got.invalid)
            out.commerce_events += got.commerce_events
            out.commerce += got.commerce
            out.skipped.update(got.skipped)
            if got.changes or got.commerce:
                out.calls += 1
            elif not got.skipped:
                out.skipped["no_membership"] += 1
        if out.refused and len(out.refused) == len(calls):
            more = len(out.refused) - MAX_PROBLEMS
            shown = out.refused[:MAX_PROBLEMS] + ([f"... and {more} more"] if more > 0 else [])
            raise CallError("; ".join(shown) + ("; no call in this request could be used" if where else ""))
        return out

    def _check_count(self, calls: list[Any]) -> None:
        if len(calls) > self.settings.max_calls:
            raise CallError(f"{len(calls)} calls in one request; the limit is {self.settings.max_calls}", status=413)

    # -- Segment -----------------------------------------------------------------------------------

    def _segment_call(self, call: Any, kind: str | None, shared: Mapping[str, Any]) -> Parsed:
        if not isinstance(call, dict):
            raise CallError("a call must be a JSON object")
        given = call.get("type")
        kind = kind or given
        if kind is None:
            raise CallError("type: identify or track is required for each call of a batch")
        if given is not None and given != kind:
            raise CallError("type: does not match the endpoint the call was sent to")
        if kind in SEGMENT_OTHER_TYPES:
            raise Skip("not_a_membership_call")
        if kind not in ("identify", "track"):
            raise CallError("type: must be one of identify, track, page, screen, group or alias")
        context = {**shared, **self._object(call.get("context"), "context")}
        bag_name = "traits" if kind == "identify" else "properties"
        bag = self._object(call.get(bag_name), bag_name)
        person = Person(
            user_id=self._id(call.get("userId"), "userId"),
            anonymous_id=self._id(call.get("anonymousId"), "anonymousId"),
        )
        if person.user_id is None and person.anonymous_id is None:
            raise CallError("userId or anonymousId is required")
        context_traits = self._object(context.get("traits"), "context.traits")
        for source in (bag, context_traits) if kind == "identify" else (context_traits, bag):
            self._add_traits(person, source, bag_name if source is bag else "context.traits")
            self._add_traits(person, self._object(source.get("address"), "address"), "address")
        device = context.get("device") if isinstance(context.get("device"), dict) else {}
        if device.get("advertisingId") and device.get("adTrackingEnabled") is not False:
            self._add_traits(person, {"madid": device["advertisingId"]}, "context.device")
        row = segment_commerce_row(call, context) if kind == "track" else None
        try:
            memberships = self._segment_memberships(call, kind, bag, bag_name, context)
        except Skip:
            if row is None:
                raise
            return self._commerce_only([row], 1)
        parsed = self._changes(person, memberships)
        if row is not None:
            parsed.commerce_events = 1
            parsed.commerce = [row] if self.commerce else []
        return parsed

    def _commerce_only(self, rows: list[dict[str, Any]], n: int) -> Parsed:
        """A call whose only content is commerce: used when forwarding is on, else skipped."""
        parsed = Parsed(commerce=rows if self.commerce else [], commerce_events=n)
        if not self.commerce:
            parsed.skipped["commerce_not_forwarded"] += 1
        return parsed

    def _segment_memberships(
        self, call: dict[str, Any], kind: str, bag: Mapping[str, Any], bag_name: str, context: Mapping[str, Any]
    ) -> dict[str, bool]:
        """The flags, from `traits` then `context.traits` (identify; RudderStack's SDK sends only the
        latter) or `properties` (track); a call with none is skipped, not refused."""
        bags: list[tuple[Mapping[str, Any], str]] = [(bag, bag_name)]
        if kind == "identify":
            bags.append((self._object(context.get("traits"), "context.traits"), "context.traits"))
        personas = context.get("personas")
        if isinstance(personas, dict) and personas.get("computation_class") is not None:
            if personas.get("computation_class") != "audience":
                raise Skip("not_an_audience")
            key = personas.get("computation_key")
            if not isinstance(key, str) or not key:
                raise CallError("context.personas.computation_key: the audience key is missing")
            if key not in self.audiences:
                raise Skip("unconfigured_audience")
            for source, name in bags:
                if key in source:
                    return {key: self._flag(source[key], f"{name}.{key}")}
            entered = _entered(call.get("event")) if kind == "track" else None
            if entered is None:
                what = "trait" if kind == "identify" else "property"
                raise CallError(f"{bag_name}.{key}: the audience's true/false {what} is missing")
            return {key: entered}
        found: dict[str, bool] = {}
        for source, name in bags:
            for k in source:
                if k in self.audiences and k not in found:
                    found[k] = self._flag(source[k], f"{name}.{k}")
        if kind == "track" and not found:
            key = bag.get("audience_key")
            entered = _entered(call.get("event"))
            if isinstance(key, str) and entered is not None:
                if key not in self.audiences:
                    raise Skip("unconfigured_audience")
                found = {key: entered}
        if not found:
            raise Skip("no_membership")
        return found

    # -- mParticle ---------------------------------------------------------------------------------

    def _mparticle_batch(self, batch: Any) -> Parsed:
        if not isinstance(batch, dict):
            raise CallError("a batch must be a JSON object")
        identities = self._object(batch.get("user_identities"), "user_identities")
        attributes = self._object(batch.get("user_attributes"), "user_attributes")
        deleted = batch.get("deleted_user_attributes") or []
        if not isinstance(deleted, list):
            raise CallError("deleted_user_attributes: must be a list of attribute names")
        events = batch.get("events") or []
        if not isinstance(events, list):
            raise CallError("events: must be a list")
        device = self._object(batch.get("device_info"), "device_info")
        environment = batch.get("environment", mp.DEFAULT_ENVIRONMENT)
        if not isinstance(environment, str) or mp.environment(batch) not in self.settings.mparticle_environments:
            raise Skip("environment")
        commerce = sum(1 for e in events if mp.is_commerce(e))
        memberships = {k: self._flag(attributes[k], f"user_attributes.{k}") for k in attributes if k in self.audiences}
        for k in deleted:
            if isinstance(k, str) and k in self.audiences and k not in memberships:
                memberships[k] = False
        rows = mp.flatten_batch(batch, commerce_only=True) if commerce and self.commerce else []
        if not memberships:
            if commerce:
                return self._commerce_only(rows, commerce)
            raise Skip("no_membership")
        found = mp.MParticlePerson(mpid=batch.get("mpid"))
        mp.read_identities(identities, found)
        where = f"user_identities.{found.customer_field}"
        customer = self._id(found.customer_id, where) if found.customer_field else None
        person = Person(
            user_id=customer,
            anonymous_id=f"mpid:{self._id(found.mpid, 'mpid')}" if found.mpid is not None else None,
        )
        self._add_traits(person, found.keys, "user_identities")
        reserved = mp.RESERVED_ATTRIBUTES
        plain = {k: v for k, v in attributes.items() if not (isinstance(k, str) and k.lower() in reserved)}
        self._add_traits(person, {**plain, **mp.reserved_attributes(attributes)}, "user_attributes")
        madid = mp.MParticlePerson(keys=mp.advertising_ids(device)).madid
        self._add_traits(person, {"madid": madid} if madid else {}, "device_info")
        parsed = self._changes(person, memberships)
        parsed.commerce_events = commerce
        parsed.commerce = rows
        return parsed

    def _firehose_profile(self, profile: Any) -> Parsed:
        if not isinstance(profile, dict):
            raise CallError("a user profile must be a JSON object")
        audiences = profile.get("audiences") or []
        if not isinstance(audiences, list):
            raise CallError("audiences: must be a list")
        memberships: dict[str, bool] = {}
        unconfigured = False
        for j, aud in enumerate(audiences):
            if not isinstance(aud, dict):
                raise CallError(f"audiences[{j}]: must be an object")
            action = aud.get("action")
            if action not in ("add", "delete"):
                continue
            key = self._mparticle_audience(aud)
            if key is None:
                unconfigured = True
                continue
            memberships[key] = action == "add"
        if not memberships:
            raise Skip("unconfigured_audience" if unconfigured else "no_membership")
        person = Person()
        invalid: Counter[tuple[str, str]] = Counter()
        for field_name in ("user_identities", "device_identities"):
            items = profile.get(field_name) or []
            if not isinstance(items, list):
                raise CallError(f"{field_name}: must be a list")
            for j, ident in enumerate(items):
                self._firehose_identity(person, ident, f"{field_name}[{j}]", invalid)
        mpid = profile.get("mpid")
        if person.user_id is None and mpid is not None:
            person.anonymous_id = f"mpid:{self._id(mpid, 'mpid')}"
        parsed = self._changes(person, memberships)
        parsed.invalid.update(invalid)
        return parsed

    def _firehose_identity(self, person: Person, ident: Any, at: str, invalid: Counter[tuple[str, str]]) -> None:
        if not isinstance(ident, dict):
            raise CallError(f"{at}: must be an object")
        kind, encoding, value = ident.get("type"), str(ident.get("encoding") or "raw").lower(), ident.get("value")
        if value is None:
            return
        hashed = encoding in HASHED_ENCODINGS
        if encoding != "raw" and not hashed:
            invalid[(str(kind), f"{encoding}_encoded")] += 1
            return
        folded = mp.fold(kind) if isinstance(kind, str) else ""
        if folded in mp.CUSTOMER_IDS:
            uid = self._id(value, f"{at}.value")
            if hashed:
                person.anonymous_id = person.anonymous_id or f"customer-sha256:{uid}"
            else:
                person.user_id = uid
        elif folded in mp.IDENTITY_KEYS:
            self._add_traits(person, {mp.IDENTITY_KEYS[folded]: value}, f"{at}.value")
        elif kind in MPARTICLE_DEVICE_IDS and not hashed:
            self._add_traits(person, {"madid": value}, f"{at}.value")

    def _mparticle_audience(self, aud: Mapping[str, Any]) -> str | None:
        name, ident = aud.get("audience_name"), aud.get("audience_id")
        for key, a in self.audiences.items():
            if (isinstance(name, str) and (key == snake_case(name) or a.name == name)) or (
                ident is not None and key == str(ident)
            ):
                return key
        return None

    # -- ours --------------------------------------------------------------------------------------

    def _own_call(self, call: Any) -> Parsed:
        if not isinstance(call, dict):
            raise CallError("a call must be a JSON object")
        key = call.get("audience")
        if not isinstance(key, str) or not key:
            raise CallError("audience: the audience key is required")
        if key not in self.audiences:
            raise Skip("unconfigured_audience")
        if "in" not in call:
            raise CallError("in: true (entered) or false (left) is required")
        member = self._flag(call["in"], "in")
        person = Person(
            user_id=self._id(call.get("user_id"), "user_id"),
            anonymous_id=self._id(call.get("anonymous_id"), "anonymous_id"),
        )
        self._add_traits(person, self._object(call.get("traits"), "traits"), "traits")
        return self._changes(person, {key: member})

    # -- shared checks -----------------------------------------------------------------------------

    def _changes(self, person: Person, memberships: Mapping[str, bool]) -> Parsed:
        changes, invalid = changes_for(person, memberships, self._countries)
        return Parsed(changes=changes, invalid=invalid)

    def _add_traits(self, person: Person, traits: Mapping[str, Any], where: str) -> None:
        """Only traits that name a key are kept (and checked); anything else is ignored, unread."""
        limit = self.settings.max_value_length
        for name, value in traits.items():
            if not isinstance(name, str) or not keys_of_trait(name):
                continue
            if isinstance(value, str) and len(value) > limit:
                raise CallError(f"{where}.{name}: longer than {limit} characters")
            if isinstance(value, list | dict) and len(orjson.dumps(value)) > limit:
                raise CallError(f"{where}.{name}: longer than {limit} characters")
            person.add({name: value})

    def _id(self, value: Any, where: str) -> str | None:
        if value is None or value == "":
            return None
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise CallError(f"{where}: must be a string")
        text = str(value)
        if len(text) > self.settings.max_id_length:
            raise CallError(f"{where}: longer than {self.settings.max_id_length} characters")
        return text

    @staticmethod
    def _object(value: Any, where: str) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise CallError(f"{where}: must be an object")
        return value

    @staticmethod
    def _flag(value: Any, where: str) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in TRUE_WORDS:
            return TRUE_WORDS[value.strip().lower()]
        raise CallError(f"{where}: must be true or false")


def _entered(event: Any) -> bool | None:
    """Engage's track calls are named `Audience Entered` / `Audience Exited`."""
    if not isinstance(event, str):
        return None
    name = event.strip().lower()
    return True if name == "audience entered" else False if name == "audience exited" else None
