"""Segment's and mParticle's payloads as their documentation shows them, and our own call.

Every accepted call becomes hashed changes: a raw email, phone or name never reaches a Change.
"""

from __future__ import annotations

import orjson
import pytest

from audiencesync.config import parse_config
from audiencesync.stream.members import CallError, Change
from audiencesync.stream.payloads import Parser
from audiencesync.stream.settings import ServeSettings, stream_audiences

from .conftest import KEY, sha, stream_audience

OTHER = "high_value_customers"


def parser(**limits) -> Parser:
    cfg = parse_config(
        {
            "meta": {"access_token": "t", "ad_account_id": "act_1"},
            "audiences": [
                stream_audience(default_country="US"),
                stream_audience(name="High value customers", key=OTHER, forward=["email"]),
            ],
        }
    )
    return Parser(stream_audiences(cfg), ServeSettings(write_key="k", **limits))


def personas(key: str = KEY, klass: str = "audience") -> dict:
    return {
        "personas": {
            "computation_class": klass,
            "computation_id": "aud_1mC0E8Ye2EJvNw4Yzhmu1Bj0vvk",
            "computation_key": key,
            "namespace": "spa_w5nb63B7YBKF6NHBs6VPGX",
            "space_id": "spa_w5nb63B7YBKF6NHBs6VPGX",
        }
    }


def engage_identify(user: str = "u1", member: bool = True, **traits) -> dict:
    """An Engage audience identify: the key as a true/false trait, `context.personas` set."""
    return {
        "type": "identify",
        "userId": user,
        "traits": {KEY: member, "email": "Peter.Gibbons@Initech.com", **traits},
        "context": personas(),
        "messageId": "personas_1mC0E8Ye2EJvNw4Yzhmu1Bj0vvk",
        "timestamp": "2024-05-20T16:09:55.473Z",
    }


def engage_track(user: str = "u1", member: bool = True) -> dict:
    return {
        "type": "track",
        "userId": user,
        "event": "Audience Entered" if member else "Audience Exited",
        "properties": {"audience_key": KEY, KEY: member},
        "context": {**personas(), "traits": {"email": "peter.gibbons@initech.com"}},
    }


def only(parsed) -> Change:
    assert len(parsed.changes) == 1
    return parsed.changes[0]


def test_engage_identify_enters_with_hashed_traits():
    c = only(
        parser().segment(
            engage_identify(
                phone="(415) 555-0100",
                firstName="Peter",
                last_name="Gibbons",
                address={"city": "Austin", "state": "TX", "postalCode": "78701", "country": "US"},
                birthday="1973-02-19",
            ),
            "identify",
        )
    )
    assert (c.audience_key, c.member) == (KEY, True)
    v = c.values
    assert v["email"] == sha("peter.gibbons@initech.com")
    assert v["phone"] == sha("14155550100")
    assert v["first_name"] == sha("peter") and v["first_initial"] == sha("p") and v["last_name"] == sha("gibbons")
    assert v["city"] == sha("austin") and v["state"] == sha("tx") and v["zip"] == sha("78701")
    assert v["country"] == sha("us")
    assert (v["birth_year"], v["birth_month"], v["birth_day"]) == (sha("1973"), sha("02"), sha("19"))
    assert v["external_id"] == "u1"
    assert c.pk == sha("user:u1")


def test_engage_identify_false_leaves():
    assert only(parser().segment(engage_identify(member=False), "identify")).member is False


def test_engage_track_entered_and_exited():
    entered = only(parser().segment(engage_track(member=True), "track"))
    exited = only(parser().segment(engage_track(member=False), "track"))
    assert (entered.member, exited.member) == (True, False)
    assert entered.values["email"] == sha("peter.gibbons@initech.com")
    assert entered.pk == exited.pk


def test_track_without_the_boolean_uses_the_event_name():
    call = engage_track(member=False)
    del call["properties"][KEY]
    assert only(parser().segment(call, "track")).member is False


def test_identify_without_personas_finds_the_audience_trait():
    call = {"userId": "u2", "traits": {KEY: "true", OTHER: False, "email": "a@b.co"}}
    parsed = parser().segment(call, "identify")
    assert {(c.audience_key, c.member) for c in parsed.changes} == {(KEY, True), (OTHER, False)}


def test_anonymous_id_is_enough():
    c = only(parser().segment({"anonymousId": "anon-7", "traits": {KEY: True}}, "identify"))
    assert c.pk == sha("anon:anon-7") and "external_id" not in c.values


def test_segment_batch_with_shared_context():
    body = {
        "batch": [
            {"type": "identify", "userId": "a", "traits": {KEY: True, "email": "a@x.io"}},
            {"type": "track", "userId": "b", "event": "Audience Exited", "properties": {KEY: False}},
        ],
        "context": {"library": {"name": "analytics-python"}},
    }
    parsed = parser().segment(body, "batch")
    assert [(c.pk, c.member) for c in parsed.changes] == [(sha("user:a"), True), (sha("user:b"), False)]


def test_device_advertising_id_is_the_madid():
    idfa = "AEBE52E7-03EE-455A-B3C4-E57283966239"
    call = {"userId": "u", "traits": {KEY: True}, "context": {"device": {"advertisingId": idfa}}}
    assert only(parser().segment(call, "identify")).values["madid"] == idfa.lower()


def test_prehashed_email_passes_through_once():
    h = sha("someone@example.com")
    assert only(parser().segment(engage_identify(email=h.upper()), "identify")).values["email"] == h


def test_invalid_values_are_dropped_and_counted_not_fatal():
    call = {"userId": "u", "traits": {KEY: True, "email": "not-an-email", "gender": "?"}}
    parsed = parser().segment(call, "identify")
    assert "email" not in only(parsed).values
    assert parsed.invalid[("EMAIL", "not_an_email")] == 1 and parsed.invalid[("GEN", "unknown_gender")] == 1


def test_raw_values_never_reach_a_change():
    call = engage_identify(phone="+1 415 555 0100", firstName="Peter", address={"city": "Austin"})
    blob = orjson.dumps([c.values for c in parser().segment(call, "identify").changes]).decode().lower()
    for raw in ("peter", "initech", "4155550100", "austin"):
        assert raw not in blob


@pytest.mark.parametrize(
    ("call", "kind", "reason"),
    [
        (engage_identify() | {"context": personas(klass="trait")}, "identify", "not_an_audience"),
        (engage_identify() | {"context": personas(key="nope")}, "identify", "unconfigured_audience"),
        ({"userId": "u", "traits": {"email": "a@b.co"}}, "identify", "no_membership"),
        ({"type": "page", "userId": "u"}, "batch", "not_a_membership_call"),
        ({"userId": "u", "event": "Signed Up", "properties": {"plan": "pro"}}, "track", "no_membership"),
        ({"userId": "u", "event": "Order Completed", "properties": {"total": 3}}, "track", "commerce_not_forwarded"),
    ],
)
def test_calls_without_a_membership_are_skipped_by_reason(call, kind, reason):
    body = {"batch": [call]} if kind == "batch" else call
    parsed = parser().segment(body, kind)
    assert parsed.changes == [] and parsed.skipped == {reason: 1} and parsed.calls == 0


@pytest.mark.parametrize(
    ("call", "kind", "message"),
    [
        ({"userId": "u", "traits": {KEY: "maybe"}}, "identify", f"traits.{KEY}: must be true or false"),
        ({"traits": {KEY: True}}, "identify", "userId or anonymousId is required"),
        ({"userId": ["u"], "traits": {KEY: True}}, "identify", "userId: must be a string"),
        ({"userId": "u", "traits": "x"}, "identify", "traits: must be an object"),
        ({"userId": "u", "traits": {KEY: True}}, "batch", "type: identify or track is required"),
        ({"type": "<script>", "userId": "u"}, "batch", "type: must be one of identify, track"),
    ],
)
def test_malformed_calls_say_why(call, kind, message):
    body = {"batch": [call]} if kind == "batch" else call
    with pytest.raises(CallError, match=message) as e:
        parser().segment(body, kind)
    assert e.value.status == 400
    assert "Peter" not in str(e.value)


def test_a_bad_call_is_refused_alone_and_named_by_position():
    bad = {"type": "identify", "userId": "b", "traits": {KEY: "perhaps"}}
    body = {
        "batch": [engage_identify("a"), bad, {"type": "identify", "userId": "x", "traits": {}}, engage_identify("c")]
    }
    parsed = parser().segment(body, "batch")
    assert len(parsed.changes) == 2 and parsed.calls == 2 and parsed.skipped == {"no_membership": 1}
    assert parsed.refused == [f"batch[1]: traits.{KEY}: must be true or false"]
    with pytest.raises(CallError, match=r"batch\[0\]: traits\.") as e:
        parser().segment({"batch": [bad]}, "batch")
    assert "no call in this request could be used" in str(e.value)


def test_limits_are_413_and_400():
    with pytest.raises(CallError, match="limit is 2") as e:
        parser(max_calls=2).segment({"batch": [engage_identify()] * 3}, "batch")
    assert e.value.status == 413
    big = engage_identify(notes="x" * 40_000)
    with pytest.raises(CallError, match=r"batch\[0\]: the call is larger than 32768 bytes") as e:
        parser().segment({"batch": [big]}, "batch")
    assert e.value.status == 413
    with pytest.raises(CallError, match="userId: longer than 256 characters") as e:
        parser().segment(engage_identify("u" * 300), "identify")
    assert e.value.status == 400
    with pytest.raises(CallError, match=r"traits\.email: longer than 1024 characters"):
        parser().segment(engage_identify(email="a" * 2000 + "@x.io"), "identify")


# -- mParticle ---------------------------------------------------------------------------------


def mparticle_batch(member: bool | None = True, **over) -> dict:
    """An Events API batch as mParticle's docs show it, with the audience as a user attribute."""
    attrs = {"$firstname": "Milton", "$lastname": "Waddams", "$city": "Austin", "$country": "US"}
    if member is not None:
        attrs[KEY] = member
    return {
        "environment": "production",
        "mpid": 1234567890,
        "user_identities": {"customer_id": "cust-42", "email": "milton@initech.com", "mobile_number": "+14155550123"},
        "user_attributes": attrs,
        "device_info": {"ios_advertising_id": "607258D9-C28B-43AD-95ED-E9593025D5A1"},
        "events": [{"event_type": "custom_event", "data": {"event_name": "Viewed", "custom_event_type": "navigation"}}],
        **over,
    }


def commerce_event() -> dict:
    return {
        "event_type": "commerce_event",
        "data": {
            "product_action": {
                "action": "purchase",
                "transaction_id": "T-1001",
                "total_amount": 19.99,
                "products": [{"id": "sku-1", "name": "Stapler", "price": 19.99, "quantity": 1}],
            },
            "currency_code": "USD",
        },
    }


def test_mparticle_events_batch_with_audience_attribute():
    c = only(parser().mparticle(mparticle_batch()))
    assert (c.audience_key, c.member, c.pk) == (KEY, True, sha("user:cust-42"))
    v = c.values
    assert v["external_id"] == "cust-42" and v["email"] == sha("milton@initech.com")
    assert v["phone"] == sha("14155550123") and v["first_name"] == sha("milton") and v["last_name"] == sha("waddams")
    assert v["madid"] == "607258d9-c28b-43ad-95ed-e9593025d5a1" and v["country"] == sha("us")


def test_mparticle_bulk_list_of_batches():
    parsed = parser().mparticle([mparticle_batch(True), mparticle_batch(False, mpid=5, user_identities={})])
    assert [(c.member, c.pk) for c in parsed.changes] == [(True, sha("user:cust-42")), (False, sha("anon:mpid:5"))]


def test_mparticle_commerce_events_are_counted_not_forwarded():
    parsed = parser().mparticle(mparticle_batch(None, events=[commerce_event(), commerce_event()]))
    assert parsed.changes == [] and parsed.commerce_events == 2 and parsed.commerce == []
    assert parsed.skipped == {"commerce_not_forwarded": 1}
    both = parser().mparticle(mparticle_batch(True, events=[commerce_event()]))
    assert len(both.changes) == 1 and both.commerce_events == 1


def test_mparticle_batch_without_membership_or_commerce_is_skipped():
    parsed = parser().mparticle(mparticle_batch(None))
    assert parsed.changes == [] and parsed.skipped == {"no_membership": 1}


def firehose(*profiles: dict) -> dict:
    return {
        "type": "audience_membership_change_request",
        "id": "61414618-9724-40ef-b03c-f646c95552a8",
        "timestamp_ms": 1583958296525,
        "firehose_version": "2.1.1",
        "account": {"account_id": 123456, "account_settings": {}},
        "user_profiles": list(profiles),
    }


def profile(action: str = "add", audience: str = "Ordered in the last 30 days", **over) -> dict:
    return {
        "mpid": "12345",
        "user_identities": [
            {"type": "customer", "encoding": "raw", "value": "cust-42"},
            {"type": "email", "encoding": "sha256", "value": sha("milton@initech.com")},
            {"type": "mobile_number", "encoding": "md5", "value": "e179e95c00e7718ab4a23840f992ea63"},
        ],
        "device_identities": [
            {"type": "google_advertising_id", "encoding": "raw", "value": "31a22ef0-f119-48d4-b009-a217a26a862a"}
        ],
        "audiences": [{"audience_id": 456, "audience_name": audience, "action": action}],
        **over,
    }


def test_firehose_membership_change_add_and_delete():
    parsed = parser().mparticle(firehose(profile("add"), profile("delete", audience="High value customers")))
    assert parsed.firehose
    add, delete = parsed.changes
    assert (add.audience_key, add.member, delete.audience_key, delete.member) == (KEY, True, OTHER, False)
    assert add.values["email"] == sha("milton@initech.com")
    assert add.values["madid"] == "31a22ef0-f119-48d4-b009-a217a26a862a"
    assert "phone" not in add.values
    assert parsed.invalid[("mobile_number", "md5_encoded")] == 2


def test_firehose_verification_request_queues_nothing():
    parsed = parser().mparticle({k: v for k, v in firehose().items() if k != "user_profiles"})
    assert parsed.changes == [] and parsed.firehose


def test_firehose_unknown_audience_is_skipped():
    parsed = parser().mparticle(firehose(profile(audience="Churned"), profile()))
    assert parsed.skipped == {"unconfigured_audience": 1} and len(parsed.changes) == 1


def test_firehose_matches_audience_id_as_key():
    cfg = parse_config(
        {"meta": {"access_token": "t", "ad_account_id": "act_1"}, "audiences": [stream_audience(key="456")]}
    )
    p = Parser(stream_audiences(cfg), ServeSettings(write_key="k"))
    assert only(p.mparticle(firehose(profile(audience="Renamed in mParticle")))).audience_key == "456"


# -- ours --------------------------------------------------------------------------------------


def test_own_membership_call():
    c = only(parser().membership({"audience": KEY, "user_id": "u9", "in": False, "traits": {"email": "x@y.io"}}))
    assert (c.member, c.pk, c.values["email"]) == (False, sha("user:u9"), sha("x@y.io"))


def test_own_membership_list_and_errors():
    calls = [{"audience": KEY, "user_id": "a", "in": True}, {"audience": OTHER, "user_id": "b", "in": False}]
    parsed = parser().membership(calls)
    assert len(parsed.changes) == 2
    with pytest.raises(CallError, match="in: true"):
        parser().membership({"audience": KEY, "user_id": "a"})
    with pytest.raises(CallError, match="audience: the audience key is required"):
        parser().membership({"user_id": "a", "in": True})


def test_the_same_user_is_the_same_member_whatever_the_shape():
    seg = only(parser().segment({"userId": "cust-42", "traits": {KEY: True}}, "identify"))
    own = only(parser().membership({"audience": KEY, "user_id": "cust-42", "in": True}))
    mp = only(parser().mparticle(mparticle_batch()))
    assert seg.pk == own.pk == mp.pk
