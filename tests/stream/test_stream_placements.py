"""Every place a membership flag, a trait or an identity can stand, per sender (issue 11)."""

from __future__ import annotations

import base64

import pytest

from audiencesync.config import parse_config
from audiencesync.stream.auth import authorized
from audiencesync.stream.members import CallError
from audiencesync.stream.payloads import Parser, mparticle_identity
from audiencesync.stream.settings import ServeSettings, stream_audiences

from .conftest import KEY, sha, stream_audience

OTHER = "high_value_customers"


def parser(**serve) -> Parser:
    cfg = parse_config(
        {
            "meta": {"access_token": "t", "ad_account_id": "act_1"},
            "audiences": [
                stream_audience(default_country="US"),
                stream_audience(name="High value customers", key=OTHER),
            ],
        }
    )
    return Parser(stream_audiences(cfg), ServeSettings(write_key="k", **serve))


def memberships(parsed) -> list[tuple[str, bool]]:
    return [(c.audience_key, c.member) for c in parsed.changes]


# -- Segment / RudderStack: where the flag stands ------------------------------------------------

ENGAGE = {"personas": {"computation_class": "audience", "computation_key": KEY}}


@pytest.mark.parametrize(
    "call",
    [
        {"userId": "u", "traits": {KEY: True}},  # Segment's SDK, Engage without personas
        {"userId": "u", "context": {"traits": {KEY: True}}},  # RudderStack's SDK: traits only in context
        {"userId": "u", "traits": {KEY: True}, "context": ENGAGE},  # Engage
        {"userId": "u", "context": {**ENGAGE, "traits": {KEY: True}}},  # Engage through RudderStack
        {"userId": "u", "traits": {KEY: "true"}},  # a string flag
    ],
)
def test_identify_flag_placements(call):
    assert memberships(parser().segment(call, "identify")) == [(KEY, True)]


def test_identify_top_level_traits_win_over_context_traits():
    call = {"userId": "u", "traits": {KEY: False}, "context": {"traits": {KEY: True, OTHER: True}}}
    assert set(memberships(parser().segment(call, "identify"))) == {(KEY, False), (OTHER, True)}


def test_identify_flag_in_the_batch_level_context():
    body = {"batch": [{"type": "identify", "userId": "u"}], "context": {"traits": {KEY: True}}}
    assert memberships(parser().segment(body, "batch")) == [(KEY, True)]


@pytest.mark.parametrize(
    ("call", "member"),
    [
        ({"userId": "u", "event": "x", "properties": {KEY: True}}, True),
        ({"userId": "u", "event": "Audience Entered", "properties": {"audience_key": KEY}}, True),
        ({"userId": "u", "event": "Audience Exited", "properties": {"audience_key": KEY}}, False),
        ({"userId": "u", "event": "Audience Exited", "properties": {}, "context": ENGAGE}, False),
        ({"userId": "u", "event": "x", "properties": {KEY: False}, "context": ENGAGE}, False),
    ],
)
def test_track_flag_placements(call, member):
    assert memberships(parser().segment(call, "track")) == [(KEY, member)]


def test_track_context_traits_are_profile_traits_not_a_membership():
    call = {"userId": "u", "event": "Signed Up", "context": {"traits": {KEY: True}}}
    assert parser().segment(call, "track").skipped == {"no_membership": 1}


def test_track_entered_for_an_unconfigured_audience_is_skipped():
    call = {"userId": "u", "event": "Audience Entered", "properties": {"audience_key": "elsewhere"}}
    assert parser().segment(call, "track").skipped == {"unconfigured_audience": 1}


# -- Segment / RudderStack: where identities and traits stand ------------------------------------


def test_identity_placements():
    call = {
        "anonymousId": "anon-1",
        "userId": "u-1",
        "traits": {KEY: True, "first_name": "Ann"},
        "context": {
            "traits": {"email": "Ann@Example.com", "address": {"postalCode": "94107", "city": "San Francisco"}},
            "device": {"advertisingId": "607258D9-C28B-43AD-95ED-E9593025D5A1", "adTrackingEnabled": True},
        },
    }
    (c,) = parser().segment(call, "identify").changes
    assert c.pk == sha("user:u-1") and c.values["external_id"] == "u-1"
    assert c.values["email"] == sha("ann@example.com") and c.values["first_name"] == sha("ann")
    assert c.values["zip"] == sha("94107") and c.values["city"] == sha("sanfrancisco")
    assert c.values["madid"] == "607258d9-c28b-43ad-95ed-e9593025d5a1"


def test_anonymous_id_alone_and_ad_tracking_off():
    call = {
        "anonymousId": "a-1",
        "traits": {KEY: True},
        "context": {"device": {"advertisingId": "x", "adTrackingEnabled": False}},
    }
    (c,) = parser().segment(call, "identify").changes
    assert c.pk == sha("anon:a-1") and "madid" not in c.values and "external_id" not in c.values


def test_type_is_never_echoed_and_messages_have_no_typo():
    with pytest.raises(CallError) as e:
        parser().segment({"batch": [{"type": "<img src=x>" * 3, "userId": "u"}]}, "batch")
    assert "<img" not in str(e.value)
    with pytest.raises(CallError) as e:
        parser().segment({"type": "track", "userId": "u", "traits": {KEY: True}}, "identify")
    assert "track" not in str(e.value) and "does not match the endpoint" in str(e.value)
    with pytest.raises(CallError) as e:
        parser().segment({"userId": "u", "event": "x", "properties": {}, "context": ENGAGE}, "track")
    assert "propertie " not in str(e.value) and "true/false property is missing" in str(e.value)


@pytest.mark.parametrize("kind", ["page", "screen", "group", "alias"])
def test_other_call_types_are_skipped(kind):
    parsed = parser().segment(
        {"batch": [{"type": kind, "userId": "u"}, {"type": "identify", "userId": "v", "traits": {KEY: True}}]}, "batch"
    )
    assert parsed.skipped == {"not_a_membership_call": 1} and parsed.calls == 1 and parsed.summary()["used"] == 1


# -- mParticle Events API --------------------------------------------------------------------------


@pytest.mark.parametrize("spelling", ["customerid", "customer_id", "customerId", "CustomerId", "CUSTOMER_ID"])
def test_mparticle_customer_id_spellings(spelling):
    batch = {"environment": "production", "user_identities": {spelling: "cust-1"}, "user_attributes": {KEY: True}}
    (c,) = parser().mparticle(batch).changes
    assert c.values["external_id"] == "cust-1" and c.pk == sha("user:cust-1")


@pytest.mark.parametrize(
    "spelling", ["mobile_number", "mobileNumber", "MobileNumber", "phone_number_2", "phoneNumber3"]
)
def test_mparticle_phone_spellings(spelling):
    batch = {"user_identities": {spelling: "+1 415 555 0123"}, "user_attributes": {KEY: True}, "mpid": 7}
    (c,) = parser().mparticle(batch).changes
    assert c.values["phone"] == sha("14155550123") and c.pk == sha("anon:mpid:7")


def test_mparticle_identity_folding():
    assert {mparticle_identity(s) for s in ("customer_id", "customerid", "CustomerId", "customer-id")} == {"customerid"}


def test_mparticle_deleted_attribute_is_a_leave():
    batch = {"user_identities": {"customerid": "c"}, "deleted_user_attributes": [KEY, "$firstname", "unrelated"]}
    assert memberships(parser().mparticle(batch)) == [(KEY, False)]
    both = {"user_identities": {"customerid": "c"}, "user_attributes": {KEY: True}, "deleted_user_attributes": [KEY]}
    assert memberships(parser().mparticle(both)) == [(KEY, True)]
    with pytest.raises(CallError, match="deleted_user_attributes: must be a list"):
        parser().mparticle({"user_identities": {"customerid": "c"}, "deleted_user_attributes": KEY})


def test_mparticle_environment_filter():
    dev = {"environment": "development", "user_identities": {"customerid": "c"}, "user_attributes": {KEY: True}}
    assert parser().mparticle(dev).skipped == {"environment": 1} and not parser().mparticle(dev).changes
    assert memberships(parser(mparticle_environments=["production", "development"]).mparticle(dev)) == [(KEY, True)]
    prod_only = parser(mparticle_environments="development")
    assert prod_only.mparticle({**dev, "environment": "production"}).skipped == {"environment": 1}
    assert memberships(parser().mparticle({k: v for k, v in dev.items() if k != "environment"})) == [(KEY, True)]


def test_mparticle_bulk_mixed_loses_nothing():
    bulk = [
        {"environment": "production", "user_identities": {"customerid": "plain"}, "user_attributes": {"tier": "gold"}},
        {"environment": "development", "user_identities": {"customerid": "dev"}, "user_attributes": {KEY: True}},
        {"environment": "production", "user_identities": {"customerid": "bad"}, "user_attributes": {KEY: "perhaps"}},
        {"environment": "production", "user_identities": {"customerid": "in"}, "user_attributes": {KEY: True}},
    ]
    parsed = parser().mparticle(bulk)
    assert [c.values["external_id"] for c in parsed.changes] == ["in"]
    assert parsed.skipped == {"no_membership": 1, "environment": 1}
    assert parsed.refused == [f"batches[2]: user_attributes.{KEY}: must be true or false"]


@pytest.mark.parametrize("kind", ["customer", "customer_id", "customerid", "CustomerId"])
def test_firehose_customer_types(kind):
    body = {
        "type": "audience_membership_change_request",
        "user_profiles": [
            {
                "mpid": "1",
                "user_identities": [{"type": kind, "encoding": "raw", "value": "cust-9"}],
                "audiences": [{"audience_id": 1, "audience_name": "Ordered in the last 30 days", "action": "add"}],
            }
        ],
    }
    (c,) = parser().mparticle(body).changes
    assert c.values["external_id"] == "cust-9"


# -- our own ---------------------------------------------------------------------------------------


def test_own_call_for_an_unconfigured_audience_is_skipped():
    parsed = parser().membership(
        [{"audience": "elsewhere", "user_id": "a", "in": True}, {"audience": KEY, "user_id": "b", "in": True}]
    )
    assert parsed.skipped == {"unconfigured_audience": 1} and len(parsed.changes) == 1


# -- settings and the mParticle secret -------------------------------------------------------------


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_mparticle_secret_is_checked_only_when_configured():
    s = ServeSettings(write_key="k", mparticle_api_secret="s3")
    assert authorized(basic("k", "s3"), s, secret=s.mparticle_api_secret)
    assert not authorized(basic("k", "nope"), s, secret=s.mparticle_api_secret)
    assert not authorized(basic("k", ""), s, secret=s.mparticle_api_secret)
    assert authorized(basic("k", "anything"), s)  # the Segment routes ignore the password
    assert "s3" not in repr(s)


def test_mparticle_environments_setting():
    assert ServeSettings(write_key="k").mparticle_environments == ("production",)
    assert ServeSettings(
        write_key="k", mparticle_environments=["Production", "development"]
    ).mparticle_environments == (
        "production",
        "development",
    )
    with pytest.raises(ValueError, match="mParticle environments"):
        ServeSettings(write_key="k", mparticle_environments=[])
