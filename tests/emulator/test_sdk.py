"""Meta's official facebook-business SDK as a client of the emulator (issue 3, "Tests").

The SDK's base URL is ``FacebookSession.GRAPH``; each test points its own
session at the emulator. ``crash_log=False`` keeps the SDK from reporting
crashes to Facebook.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from facebook_business.adobjects.adaccount import AdAccount
from facebook_business.adobjects.customaudience import CustomAudience
from facebook_business.adobjects.serverside.action_source import ActionSource
from facebook_business.adobjects.serverside.custom_data import CustomData
from facebook_business.adobjects.serverside.event import Event
from facebook_business.adobjects.serverside.event_request import EventRequest
from facebook_business.adobjects.serverside.user_data import UserData
from facebook_business.api import FacebookAdsApi
from facebook_business.exceptions import FacebookRequestError

from audiencesync.emulator import EmulatorServer

from .conftest import Graph, rand_hash, sha


def sdk_api(server: EmulatorServer, token: str | None = None, app_secret: str | None = None) -> FacebookAdsApi:
    api = FacebookAdsApi.init(
        access_token=token or server.token, app_secret=app_secret, api_version="v25.0", crash_log=False
    )
    api._session.GRAPH = server.url
    return api


@pytest.fixture
def api(server: EmulatorServer) -> Iterator[FacebookAdsApi]:
    yield sdk_api(server)


def create(api: FacebookAdsApi, name: str = "sdk", **extra: object) -> CustomAudience:
    params = {
        CustomAudience.Field.name: name,
        CustomAudience.Field.subtype: CustomAudience.Subtype.custom,
        CustomAudience.Field.customer_file_source: CustomAudience.CustomerFileSource.user_provided_only,
        **extra,
    }
    return AdAccount("act_1", api=api).create_custom_audience(params=params)


def raises(fn, *args, **kwargs) -> FacebookRequestError:  # type: ignore[no-untyped-def]
    with pytest.raises(FacebookRequestError) as info:
        fn(*args, **kwargs)
    return info.value


def test_create_add_remove_read(api: FacebookAdsApi, graph: Graph) -> None:
    graph.exact_counts()
    aud = create(api, description="from the SDK")
    assert aud["id"].isdigit()
    ca = CustomAudience(aud["id"], api=api)
    users = [["mary@example.com", "Mary", "15559876543"], ["john_smith@gmail.com", "John", "16505551212"]]
    resp = ca.add_users(["EMAIL", "FN", "PHONE"], users, is_raw=True)
    body = resp.json()
    assert body["num_received"] == 2 and body["num_invalid_entries"] == 0 and body["audience_id"] == aud["id"]
    members = graph.members(aud["id"])
    assert {
        "EMAIL": "f1904cf1a9d73a55fa5de0ac823c4403ded71afd4c3248d00bdcd0866552bb79",
        "FN": sha("mary"),
        "PHONE": "1ef970831d7963307784fa8688e8fce101a15685d62aa765fed23f3a2c576a4e",
    } in members
    # remove_users sends DELETE with its parameters in the query string
    resp = ca.remove_users(["EMAIL", "FN", "PHONE"], users[:1], is_raw=True)
    assert resp.json()["num_received"] == 1
    assert len(graph.members(aud["id"])) == 1
    assert graph.emu("GET", "/requests").json()[-1]["http_method"] == "DELETE"
    fields = ca.api_get(
        fields=[
            CustomAudience.Field.name,
            CustomAudience.Field.description,
            CustomAudience.Field.approximate_count_lower_bound,
            CustomAudience.Field.operation_status,
            CustomAudience.Field.data_source,
        ]
    )
    assert fields[CustomAudience.Field.name] == "sdk"
    assert fields[CustomAudience.Field.description] == "from the SDK"
    assert fields[CustomAudience.Field.approximate_count_lower_bound] == 1
    assert fields[CustomAudience.Field.operation_status]["code"] == 200
    assert fields[CustomAudience.Field.data_source]["sub_type"] == "MULTI_HASHES"


def test_single_key_schema_and_sessions(api: FacebookAdsApi, graph: Graph) -> None:
    ca = CustomAudience(create(api)["id"], api=api)
    session = {"session_id": 123, "batch_seq": 1, "last_batch_flag": False, "estimated_num_total": 3}
    r1 = ca.add_users(CustomAudience.Schema.email_hash, ["a@x.com", "b@x.com"], session=session).json()
    session = {"session_id": 123, "batch_seq": 2, "last_batch_flag": True}
    r2 = ca.add_users(CustomAudience.Schema.email_hash, ["c@x.com"], session=session).json()
    assert (r1["session_id"], r2["session_id"]) == ("123", "123")
    assert r2["num_received"] == 3
    sessions = ca.get_sessions(params={"session_id": 123})
    assert sessions[0]["num_received"] == "3" and sessions[0]["stage"] == "finished"
    assert sorted(m["EMAIL"] for m in graph.members(ca["id"])) == sorted(
        sha(e) for e in ("a@x.com", "b@x.com", "c@x.com")
    )
    # session finished
    err = raises(
        ca.add_users,
        CustomAudience.Schema.email_hash,
        ["d@x.com"],
        session={"session_id": 123, "batch_seq": 3, "last_batch_flag": True},
    )
    assert (err.api_error_code(), err.api_error_subcode()) == (2650, 1870159)


def test_list_audiences_with_cursor(api: FacebookAdsApi) -> None:
    ids = {create(api, name=f"n{i}")["id"] for i in range(5)}
    cursor = AdAccount("act_1", api=api).get_custom_audiences(fields=["name"], params={"limit": 2})
    got = {a["id"] for a in cursor}
    assert got == ids


def test_update_and_delete(api: FacebookAdsApi) -> None:
    ca = CustomAudience(create(api)["id"], api=api)
    ca.api_update(params={"name": "renamed"})
    assert ca.api_get(fields=["name"])["name"] == "renamed"
    ca.api_delete()
    err = raises(CustomAudience(ca["id"], api=api).api_get, fields=["name"])
    assert (err.api_error_code(), err.api_error_subcode()) == (100, 33)


def test_missing_customer_file_source(api: FacebookAdsApi) -> None:
    err = raises(AdAccount("act_1", api=api).create_custom_audience, params={"name": "x", "subtype": "CUSTOM"})
    assert err.api_error_code() == 100
    assert "customer_file_source" in err.api_error_message()
    assert err.http_status() == 400


def test_audience_cap(api: FacebookAdsApi, server: EmulatorServer) -> None:
    server.config.max_audiences = 2
    create(api)
    create(api)
    err = raises(create, api)
    assert err.api_error_code() == 2654
    assert "maximum number" in err.body()["error"]["error_user_msg"]


def test_schema_lock(api: FacebookAdsApi) -> None:
    ca = CustomAudience(create(api)["id"], api=api)
    ca.add_users(["EMAIL", "FN"], [["a@x.com", "A"]], is_raw=True)
    err = raises(ca.add_users, CustomAudience.Schema.email_hash, ["a@x.com"])
    assert err.api_error_code() == 2650
    assert "FILE_IMPORTED.MULTI_HASHES" in err.api_error_message()


def test_replace_in_progress(api: FacebookAdsApi) -> None:
    ca = CustomAudience(create(api)["id"], api=api)
    payload = CustomAudience.format_params(CustomAudience.Schema.email_hash, ["a@x.com"])["payload"]
    ca.create_users_replace(params={"payload": payload, "session": {"session_id": 1, "batch_seq": 1}})
    err = raises(ca.add_users, CustomAudience.Schema.email_hash, ["b@x.com"])
    assert (err.api_error_code(), err.api_error_subcode()) == (2650, 1870145)
    err = raises(ca.create_users_replace, params={"payload": payload, "session": {"session_id": 2, "batch_seq": 1}})
    assert (err.api_error_code(), err.api_error_subcode()) == (2650, 1870145)
    ca.create_users_replace(
        params={"payload": payload, "session": {"session_id": 1, "batch_seq": 2, "last_batch_flag": True}}
    )
    err = raises(ca.create_users_replace, params={"payload": payload, "session": {"session_id": 1, "batch_seq": 3}})
    assert (err.api_error_code(), err.api_error_subcode()) == (2650, 1870159)


def test_too_many_rows(api: FacebookAdsApi) -> None:
    ca = CustomAudience(create(api)["id"], api=api)
    hashes = [rand_hash() for _ in range(10_001)]
    err = raises(ca.add_users, CustomAudience.Schema.email_hash, hashes, pre_hashed=True)
    assert err.api_error_code() == 100


def test_bad_token(server: EmulatorServer) -> None:
    bad = sdk_api(server, token="not-the-token")
    err = raises(AdAccount("act_1", api=bad).get_custom_audiences, fields=["name"])
    assert err.api_error_code() == 190
    assert "not-the-token" not in str(err.body())


def test_appsecret_proof(server: EmulatorServer) -> None:
    server.config.app_secret = "s3cret"
    good = sdk_api(server, app_secret="s3cret")
    assert create(good)["id"]
    wrong = sdk_api(server, app_secret="other")
    err = raises(create, wrong)
    assert err.api_error_code() == 100
    assert err.api_error_message() == "Invalid appsecret_proof provided in the API argument"
    err = raises(create, sdk_api(server))
    assert err.api_error_code() == 100 and "appsecret_proof" in err.api_error_message()


def test_throttling(api: FacebookAdsApi, server: EmulatorServer) -> None:
    server.config.calls_per_hour = 3
    ca = CustomAudience(create(api)["id"], api=api)
    ca.api_get(fields=["name"])
    ca.api_get(fields=["name"])
    err = raises(ca.api_get, fields=["name"])
    assert err.api_error_code() == 80003
    assert err.api_transient_error() is True
    usage = err.http_headers()["x-business-use-case-usage"]
    assert '"estimated_time_to_regain_access":' in usage and '"type":"custom_audience"' in usage


def test_health_fields_through_the_sdk(api: FacebookAdsApi, graph: Graph) -> None:
    """The fields of issue 12 item 7 as Meta's SDK reads them (its own field types and enums)."""
    graph.emu("POST", "/config", {"match_shares": {"EMAIL": 1.0}}).raise_for_status()
    ca = CustomAudience(create(api, name="SDK health")["id"], api=api)
    ca.add_users(CustomAudience.Schema.email_hash, [f"user{i}@example.com" for i in range(1234)])
    wanted = [
        CustomAudience.Field.approximate_count_lower_bound,
        CustomAudience.Field.approximate_count_upper_bound,
        CustomAudience.Field.operation_status,
        CustomAudience.Field.delivery_status,
        CustomAudience.Field.data_source,
        CustomAudience.Field.time_updated,
        CustomAudience.Field.fields_violating_integrity_policy,
        CustomAudience.Field.usage_restriction,
        CustomAudience.Field.is_eligible_for_sac_campaigns,
    ]
    got = ca.api_get(fields=wanted)
    assert got[CustomAudience.Field.approximate_count_lower_bound] == 1200
    assert got[CustomAudience.Field.approximate_count_upper_bound] == 1300
    assert got[CustomAudience.Field.operation_status]["code"] == 200
    assert got[CustomAudience.Field.delivery_status]["code"] == 200
    assert got[CustomAudience.Field.data_source]["sub_type"] == "HASHES_OR_USER_IDS"
    assert isinstance(got[CustomAudience.Field.time_updated], int)
    assert got[CustomAudience.Field.is_eligible_for_sac_campaigns] is True
    assert CustomAudience.Field.usage_restriction not in got  # no restriction
    graph.emu(
        "POST",
        f"/audiences/{ca['id']}",
        {"flagged": True, "usage_restriction": CustomAudience.UsageRestriction.exclusion_only},
    ).raise_for_status()
    got = ca.api_get(fields=wanted)
    assert got[CustomAudience.Field.operation_status]["code"] == 471
    assert got[CustomAudience.Field.delivery_status]["code"] == 400
    assert got[CustomAudience.Field.fields_violating_integrity_policy] == ["name"]
    assert got[CustomAudience.Field.usage_restriction] == "EXCLUSION_ONLY"
    err = raises(ca.add_users, CustomAudience.Schema.email_hash, ["new@example.com"])
    assert (err.api_error_code(), err.api_error_subcode()) == (100, 1713230)
    err = raises(ca.api_update, params={"name": "renamed"})
    assert (err.api_error_code(), err.api_error_subcode()) == (100, 1713228)
    account = AdAccount("act_1", api=api).api_get(fields=[AdAccount.Field.tos_accepted])
    assert account[AdAccount.Field.tos_accepted] == {"custom_audience_tos": 1, "value_based_custom_audience_tos": 1}
    graph.emu("POST", f"/audiences/{ca['id']}", {"deleted": True}).raise_for_status()
    err = raises(ca.api_get, fields=[CustomAudience.Field.name])
    assert (err.api_error_code(), err.api_error_subcode()) == (100, 1487366)
    assert list(AdAccount("act_1", api=api).get_custom_audiences(fields=["name"])) == []


def test_capi_through_the_sdk(api: FacebookAdsApi, graph: Graph) -> None:
    event = Event(
        event_name="Purchase",
        event_time=int(graph.emu("GET", "/clock").json()["now"]) - 3600,
        action_source=ActionSource.PHYSICAL_STORE,
        user_data=UserData(email="mary@example.com", phone="15559876543"),
        custom_data=CustomData(value=12.5, currency="usd", order_id="o-1"),
    )
    response = EventRequest(pixel_id="424242", events=[event, event]).execute()
    assert response.events_received == 2
    stored = graph.emu("GET", "/datasets/424242/events").json()
    assert len(stored["events"]) == 1 and stored["duplicates_dropped"] == 1
    assert stored["events"][0]["user_data"]["em"] == [sha("mary@example.com")]
    bad = Event(
        event_name="Purchase",
        event_time=int(time.time()),
        action_source=ActionSource.PHYSICAL_STORE,
        user_data=UserData(email="a@b.com"),
    )
    err = raises(EventRequest(pixel_id="424242", events=[bad]).execute)
    assert (err.api_error_code(), err.api_error_subcode()) == (100, 2804009)
