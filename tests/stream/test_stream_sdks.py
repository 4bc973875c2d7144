"""The official client SDKs, unmodified, pointed at `serve` over real HTTP on 127.0.0.1.

Each is set up with its own settings only (write key / API key and secret, host or data plane
URL, gzip where offered): memberships enter and leave Facebook, a mixed batch loses nothing, and
an error (400, 401) makes the client give up at once instead of retrying for minutes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from .conftest import KEY, WRITE_KEY, sha

MULTI = "Ordered in the last 30 days"
SECRET = "mp-api-secret"
GIVE_UP_WITHIN = 10.0  # seconds an SDK may take to give up on a refused request

pytestmark = [pytest.mark.timeout(120), pytest.mark.filterwarnings("ignore::SyntaxWarning")]


def within(seconds: float, fn: Callable[[], Any]) -> float:
    """Run `fn` on a thread; fail if it has not returned within `seconds` (a hung flush or exit)."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as e:
            box["error"] = e

    t0 = time.monotonic()
    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), f"the client did not return within {seconds}s"
    if "error" in box:
        raise box["error"]
    return time.monotonic() - t0


# -- Segment: segment-analytics-python ------------------------------------------------------------


@pytest.fixture
def segment_client() -> Iterator[Callable[..., Any]]:
    from segment.analytics import Client

    clients: list[Any] = []

    def make(url: str, write_key: str = WRITE_KEY, errors: list[Any] | None = None) -> Any:
        c = Client(
            write_key=write_key,
            host=url,
            gzip=True,
            on_error=(lambda e, batch: errors.append(e)) if errors is not None else None,
            upload_interval=0.05,
        )
        clients.append(c)
        return c

    yield make
    for c in clients:
        within(GIVE_UP_WITHIN, c.shutdown)


def test_segment_sdk_identify_and_track_enter_and_leave(server_for, fb, segment_client):
    srv = server_for()
    seg = segment_client(srv.url)
    engage = {"personas": {"computation_class": "audience", "computation_key": KEY}}
    seg.identify("seg-1", {KEY: True, "email": "one@example.com", "firstName": "Una"}, context=engage)
    seg.track("seg-2", "Audience Entered", {"audience_key": KEY, KEY: True}, context=engage)
    within(GIVE_UP_WITHIN, seg.flush)
    fb.wait_for(lambda: fb.column(MULTI, "EXTERN_ID") == {"seg-1", "seg-2"})
    assert sha("one@example.com") in fb.column(MULTI, "EMAIL")
    seg.identify("seg-1", {KEY: False}, context=engage)
    seg.track("seg-2", "Audience Exited", {"audience_key": KEY, KEY: False}, context=engage)
    within(GIVE_UP_WITHIN, seg.flush)
    fb.wait_for(lambda: not fb.column(MULTI, "EXTERN_ID"))


def test_segment_sdk_mixed_batch_loses_nothing(server_for, fb, segment_client):
    srv = server_for()
    errors: list[Any] = []
    seg = segment_client(srv.url, errors=errors)
    seg.page("seg-page", "Home")
    seg.track("seg-plain", "Order Completed", {"total": 3})
    seg.identify("seg-ordinary", {"plan": "pro"})
    seg.identify("seg-other", {"some_unconfigured_audience": True})
    seg.identify("seg-in", {KEY: True})
    seg.identify("seg-bad", {KEY: "perhaps"})  # malformed: refused alone
    seg.screen("seg-screen", "Settings")
    within(GIVE_UP_WITHIN, seg.flush)
    fb.wait_for(lambda: fb.column(MULTI, "EXTERN_ID") == {"seg-in"})
    assert errors == []


def test_segment_sdk_wrong_write_key_gives_up_at_once(server_for, segment_client):
    srv = server_for()
    errors: list[Any] = []
    seg = segment_client(srv.url, write_key="not-the-key", errors=errors)
    seg.identify("seg-1", {KEY: True})
    took = within(GIVE_UP_WITHIN, seg.flush)
    assert took < GIVE_UP_WITHIN
    assert [(e.status, e.code) for e in errors] == [(401, "unauthorized")]
    assert srv.runtime.stats.pending == 0


def test_segment_sdk_all_malformed_batch_gives_up_at_once(server_for, segment_client):
    srv = server_for()
    errors: list[Any] = []
    seg = segment_client(srv.url, errors=errors)
    seg.identify("seg-1", {KEY: "perhaps"})
    within(GIVE_UP_WITHIN, seg.flush)
    assert [(e.status, e.code) for e in errors] == [(400, "invalid_call")]
    assert "must be true or false" in errors[0].message


# -- RudderStack: rudder-sdk-python --------------------------------------------------------------


@pytest.fixture
def rudder_client() -> Iterator[Callable[..., Any]]:
    from rudderstack.analytics.client import Client

    clients: list[Any] = []

    def make(url: str, write_key: str = WRITE_KEY, errors: list[Any] | None = None) -> Any:
        c = Client(
            write_key=write_key,
            host=url,  # the data plane URL
            gzip=True,
            on_error=(lambda e, batch: errors.append(e)) if errors is not None else None,
            upload_interval=0.05,
        )
        clients.append(c)
        return c

    yield make
    for c in clients:
        within(GIVE_UP_WITHIN, c.shutdown)


def test_rudder_sdk_identify_traits_in_context_enter_and_leave(server_for, fb, rudder_client):
    srv = server_for()
    rs = rudder_client(srv.url)
    rs.identify("rs-1", {KEY: True, "email": "rs@example.com"})  # the SDK sends them as context.traits
    rs.track("rs-2", "Audience Entered", {"audience_key": KEY})
    within(GIVE_UP_WITHIN, rs.flush)
    fb.wait_for(lambda: fb.column(MULTI, "EXTERN_ID") == {"rs-1", "rs-2"})
    assert sha("rs@example.com") in fb.column(MULTI, "EMAIL")
    rs.identify("rs-1", {KEY: False})
    rs.track("rs-2", "Audience Exited", {"audience_key": KEY})
    within(GIVE_UP_WITHIN, rs.flush)
    fb.wait_for(lambda: not fb.column(MULTI, "EXTERN_ID"))


def test_rudder_sdk_mixed_batch_loses_nothing(server_for, fb, rudder_client):
    srv = server_for()
    errors: list[Any] = []
    rs = rudder_client(srv.url, errors=errors)
    rs.page("rs-page", name="Home")
    rs.track("rs-plain", "Order Completed", {"total": 3})
    rs.identify("rs-ordinary", {"plan": "pro"})
    rs.identify("rs-in", {KEY: True})
    rs.identify("rs-bad", {KEY: "perhaps"})
    rs.group("rs-group", "g-1")
    within(GIVE_UP_WITHIN, rs.flush)
    fb.wait_for(lambda: fb.column(MULTI, "EXTERN_ID") == {"rs-in"})
    assert errors == []


@pytest.mark.parametrize("wrong_key", [True, False])
def test_rudder_sdk_error_paths_do_not_hang_flush_or_exit(server_for, rudder_client, wrong_key):
    """Before issue 11 the error body had no `code`: the SDK raised KeyError and retried for minutes."""
    srv = server_for()
    errors: list[Any] = []
    rs = rudder_client(srv.url, write_key="nope" if wrong_key else WRITE_KEY, errors=errors)
    rs.identify("rs-1", {KEY: True} if wrong_key else {KEY: "perhaps"})
    within(GIVE_UP_WITHIN, rs.flush)
    within(GIVE_UP_WITHIN, rs.shutdown)
    want = (401, "unauthorized") if wrong_key else (400, "invalid_call")
    assert [(e.status, e.code) for e in errors] == [want]
    assert srv.runtime.stats.pending == 0


# -- mParticle: the `mparticle` Events API SDK ----------------------------------------------------


def mparticle_api(url: str, key: str = WRITE_KEY, secret: str = SECRET) -> Any:
    import mparticle

    config = mparticle.Configuration()
    config.api_key = key
    config.api_secret = secret
    config.host = f"{url}/v2"
    return mparticle.EventsApi(config)


def mparticle_batch(customer: str | None, member: bool | None = True, env: str = "production", **kw) -> Any:
    import mparticle

    batch = mparticle.Batch()
    batch.environment = env
    identities = mparticle.UserIdentities()
    if customer:
        identities.customerid = customer
    identities.email = f"{customer or 'anon'}@example.com"
    batch.user_identities = identities
    attributes: dict[str, Any] = {"$firstname": "Milton"}
    if member is not None:
        attributes[KEY] = member
    batch.user_attributes = attributes
    event = mparticle.AppEvent(event_name="Viewed", custom_event_type="navigation")
    batch.events = [event]
    for name, value in kw.items():
        setattr(batch, name, value)
    return batch


def test_mparticle_sdk_customerid_enters_and_leaves_with_extern_id(server_for, fb):
    srv = server_for({"mparticle_api_secret": SECRET})
    api = mparticle_api(srv.url)
    within(GIVE_UP_WITHIN, lambda: api.upload_events(mparticle_batch("mp-1")))
    within(GIVE_UP_WITHIN, lambda: api.bulk_upload_events([mparticle_batch("mp-2"), mparticle_batch("mp-3")]))
    fb.wait_for(lambda: fb.column(MULTI, "EXTERN_ID") == {"mp-1", "mp-2", "mp-3"})
    assert sha("mp-1@example.com") in fb.column(MULTI, "EMAIL")
    within(GIVE_UP_WITHIN, lambda: api.upload_events(mparticle_batch("mp-1", False)))
    gone = mparticle_batch("mp-2", None, deleted_user_attributes=[KEY])  # deleting the attribute is a leave
    within(GIVE_UP_WITHIN, lambda: api.upload_events(gone))
    fb.wait_for(lambda: fb.column(MULTI, "EXTERN_ID") == {"mp-3"})


def test_mparticle_sdk_mixed_bulk_loses_nothing(server_for, fb):
    srv = server_for({"mparticle_api_secret": SECRET})
    api = mparticle_api(srv.url)
    bulk = [
        mparticle_batch("mp-plain", None),  # no audience attribute
        mparticle_batch("mp-dev", True, env="development"),  # development: not the production audience
        mparticle_batch("mp-in", True),
    ]
    within(GIVE_UP_WITHIN, lambda: api.bulk_upload_events(bulk))
    fb.wait_for(lambda: fb.column(MULTI, "EXTERN_ID") == {"mp-in"})
    assert srv.runtime.stats.pending == 0 or fb.column(MULTI, "EXTERN_ID") == {"mp-in"}


@pytest.mark.parametrize(("key", "secret"), [("wrong", SECRET), (WRITE_KEY, "wrong-secret")])
def test_mparticle_sdk_bad_key_or_secret_is_401_at_once(server_for, key, secret):
    import mparticle

    srv = server_for({"mparticle_api_secret": SECRET})
    api = mparticle_api(srv.url, key, secret)
    with pytest.raises(mparticle.rest.ApiException) as e:
        within(GIVE_UP_WITHIN, lambda: api.upload_events(mparticle_batch("mp-1")))
    assert e.value.status == 401
    assert srv.runtime.stats.pending == 0


def test_refused_requests_are_logged_on_one_line_without_values(server_for, caplog):
    srv = server_for({"mparticle_api_secret": SECRET})
    api = mparticle_api(srv.url, WRITE_KEY, "wrong-secret")
    import mparticle

    with caplog.at_level(logging.WARNING, logger="audiencesync.stream.app"), pytest.raises(mparticle.rest.ApiException):
        within(GIVE_UP_WITHIN, lambda: api.upload_events(mparticle_batch("secret-customer")))
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("refused request")]
    assert len(lines) == 1 and "\n" not in lines[0]
    assert "reason=unauthorized" in lines[0] and "source=mparticle:" in lines[0] and "body_bytes=" in lines[0]
    assert "secret-customer" not in lines[0] and SECRET not in lines[0] and WRITE_KEY not in lines[0]
