"""The HTTP surface: Segment-, mParticle- and our own membership calls, health and metrics.

Every write route runs the same steps in the same order, so the status codes mean one thing:
401 before the body is read (nothing queued), 413 for a body or call over its limit, 400 for a
body that is not JSON, not of the route's shape, or whose every call is malformed, 429 with
`Retry-After` when the queue is over its bound, 503 when the server is stopping, and 200 only
after the changes are committed to the state file. A call that carries no membership is skipped
(counted in the answer), and a malformed call inside a batch is refused alone, so valid calls are
never lost for their neighbours.

Every refusal answers `{"success": false, "code": ..., "message": ...}`: `code` and `message` are
what Segment's and RudderStack's SDKs read to give up on a 4xx at once (without them the
RudderStack SDK retries for minutes); `error` repeats `message` for older readers. Every refused
request is logged on one line: reason, source, route, sizes; never a value or a credential.
"""

from __future__ import annotations

import logging
import uuid
import zlib
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from audiencesync.stream.auth import CHALLENGE, authorized
from audiencesync.stream.commerce import Accepted
from audiencesync.stream.members import CallError
from audiencesync.stream.metrics import CONTENT_TYPE
from audiencesync.stream.payloads import Parsed
from audiencesync.stream.queue import QueueFull, WriterStopped
from audiencesync.stream.runtime import StreamRuntime
from audiencesync.ui import create_dashboard

log = logging.getLogger(__name__)

Handler = Callable[[StreamRuntime, Any], Parsed]


def _json(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


class _Refused(Exception):
    def __init__(self, status: int, reason: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.reason, self.headers = status, reason, headers


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, decompressed if gzip'd, refusing (413) as soon as it passes `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _Refused(413, "too_large", f"the body is larger than {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _Refused(413, "too_large", f"the body is larger than {limit} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        return raw
    if encoding != "gzip":
        raise _Refused(415, "unsupported_encoding", "Content-Encoding must be gzip or none")
    inflater = zlib.decompressobj(wbits=47)
    try:
        out = inflater.decompress(raw, limit + 1)
    except zlib.error:
        raise _Refused(400, "bad_gzip", "the body is not valid gzip") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise _Refused(413, "too_large", f"the body is larger than {limit} bytes once decompressed")
    return out


def refusal(code: str, message: str) -> dict[str, Any]:
    """An error body in the shape the Segment, RudderStack and mParticle clients parse."""
    return {"success": False, "code": code, "message": message, "error": message}


def _source(request: Request, family: str) -> str:
    """Who sent it, for the log: the route family and the client's product name (no version, no id)."""
    agent = request.headers.get("user-agent", "").split("/", 1)[0].strip()
    agent = "".join(c if c.isalnum() or c in "-_." else "-" for c in agent)[:40] or "unknown"
    return f"{family}:{agent}"


def _ingest(
    limit: Callable[[StreamRuntime], int],
    handle: Handler,
    reply: Callable[[Parsed], dict[str, Any]],
    family: str,
    secret: Callable[[StreamRuntime], str | None] = lambda rt: None,
):
    """A write route: authenticate, read, parse, queue durably, answer.

    Parsing and hashing run on a worker thread, so one large batch does not hold up the event loop.
    """

    async def endpoint(request: Request) -> Response:
        rt: StreamRuntime = request.app.state.runtime
        size, calls = request.headers.get("content-length", "?"), None
        try:
            if not authorized(request.headers.get("authorization"), rt.settings, secret=secret(rt)):
                raise _Refused(401, "unauthorized", "a valid write key or bearer token is required",
                               {"WWW-Authenticate": CHALLENGE})  # fmt: skip
            raw = await _read_body(request, limit(rt))
            size = str(len(raw))
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError:
                raise _Refused(400, "not_json", "the body is not valid JSON") from None
            calls = _count(body)
            try:
                parsed = await run_in_threadpool(handle, rt, body)
            except CallError as e:
                raise _Refused(e.status, "too_large" if e.status == 413 else "invalid_call", str(e)) from None
            try:
                await rt.writer.put(parsed.changes)
            except QueueFull as e:
                raise _Refused(429, "queue_full", str(e), {"Retry-After": str(e.retry_after)}) from None
            except WriterStopped as e:
                raise _Refused(503, "unavailable", str(e), {"Retry-After": "5"}) from None
            commerce = await _queue_commerce(rt, parsed)
        except _Refused as r:
            rt.metrics.add("rejected", r.reason)
            log.warning(
                "refused request: status=%d reason=%s source=%s route=%s body_bytes=%s calls=%s",
                r.status, r.reason, _source(request, family), request.url.path, size, calls,
            )  # fmt: skip
            return _json(refusal(r.reason, str(r)), r.status, r.headers)
        except ClientDisconnect:
            rt.metrics.add("rejected", "client_disconnected")
            log.warning(
                "refused request: status=400 reason=client_disconnected source=%s route=%s body_bytes=%s calls=%s",
                _source(request, family), request.url.path, size, calls,
            )  # fmt: skip
            return Response(status_code=400)
        if parsed.refused:
            log.warning(
                "refused calls: reason=invalid_call source=%s route=%s body_bytes=%s calls=%d refused=%d used=%d",
                _source(request, family), request.url.path, size, parsed.received, len(parsed.refused), parsed.calls,
            )  # fmt: skip
        for key, n in Counter(c.audience_key for c in parsed.changes).items():
            rt.metrics.add("accepted", key, n)
        for label, n in parsed.invalid.items():
            rt.metrics.add("invalid_values", label, n)
        for reason, n in parsed.skipped.items():
            rt.metrics.add("skipped_calls", reason, n)
        if parsed.commerce_events:
            rt.metrics.commerce(parsed.commerce_events)
            if commerce is None:
                rt.metrics.commerce_accepted(0, {"commerce_not_forwarded": parsed.commerce_events}, {})
        out = reply(parsed)
        if parsed.commerce_events:
            out["commerce_events"] = _commerce_summary(parsed, commerce)
        return _json(out)

    return endpoint


async def _queue_commerce(rt: StreamRuntime, parsed: Parsed) -> Accepted | None:
    """Commerce events built, hashed and queued durably before the answer (`stream/commerce.py`);
    None when forwarding is off. A failed write is a 503: the client sends again, and an event
    already queued is not queued twice (same `event_id`)."""
    if rt.commerce is None or not parsed.commerce:
        return None
    try:
        return await run_in_threadpool(rt.commerce.accept, parsed.commerce)
    except Exception as e:
        log.exception("queuing commerce events failed")
        raise _Refused(503, "unavailable", f"commerce events could not be queued ({type(e).__name__})",
                       {"Retry-After": "5"}) from None  # fmt: skip


def _commerce_summary(parsed: Parsed, accepted: Accepted | None) -> dict[str, Any]:
    if accepted is not None:
        return accepted.summary()
    return {
        "received": parsed.commerce_events,
        "queued": 0,
        "skipped_by_reason": {"commerce_not_forwarded": parsed.commerce_events},
        "note": "set `stream: true` in the conversions: section to forward commerce events to the Conversions API",
    }


def _count(body: Any) -> int:
    """How many calls a body holds, for the log (a guess before parsing; never a value)."""
    if isinstance(body, list):
        return len(body)
    if isinstance(body, dict):
        for name in ("batch", "user_profiles"):
            if isinstance(body.get(name), list):
                return len(body[name])
    return 1


def _segment(kind: str) -> Handler:
    return lambda rt, body: rt.parser.segment(body, kind)


def _segment_reply(parsed: Parsed) -> dict[str, Any]:
    return {"success": True, "accepted": len(parsed.changes), **parsed.summary()}


def _mparticle_reply(parsed: Parsed) -> dict[str, Any]:
    out: dict[str, Any] = {"success": True, "accepted": len(parsed.changes), **parsed.summary()}
    if parsed.firehose:
        out.update({"type": "audience_membership_change_response", "id": str(uuid.uuid4())})
    return out


async def health(request: Request) -> Response:
    rt: StreamRuntime = request.app.state.runtime
    report = rt.health()
    return _json(report, 200 if rt.healthy() else 503)


async def metrics(request: Request) -> Response:
    rt: StreamRuntime = request.app.state.runtime
    return Response(rt.render_metrics(), media_type=CONTENT_TYPE)


def create_app(runtime: StreamRuntime, *, manage: bool = True) -> Starlette:
    """The ASGI app; with `manage` its lifespan starts and stops the runtime's threads."""
    body = lambda rt: rt.settings.max_body_bytes  # noqa: E731
    call = lambda rt: rt.settings.max_call_bytes  # noqa: E731
    secret = lambda rt: rt.settings.mparticle_api_secret  # noqa: E731
    mparticle = _ingest(body, lambda rt, b: rt.parser.mparticle(b), _mparticle_reply, "mparticle", secret)
    routes = [
        Route("/v1/identify", _ingest(call, _segment("identify"), _segment_reply, "segment"), methods=["POST"]),
        Route("/v1/track", _ingest(call, _segment("track"), _segment_reply, "segment"), methods=["POST"]),
        Route("/v1/batch", _ingest(body, _segment("batch"), _segment_reply, "segment"), methods=["POST"]),
        Route("/v1/import", _ingest(body, _segment("batch"), _segment_reply, "segment"), methods=["POST"]),
        Route("/v1/mparticle", mparticle, methods=["POST"]),
        Route("/v2/events", mparticle, methods=["POST"]),
        Route("/v2/bulkevents", mparticle, methods=["POST"]),
        Route(
            "/v1/membership",
            _ingest(body, lambda rt, b: rt.parser.membership(b), _segment_reply, "membership"),
            methods=["POST"],
        ),
        Route("/health", health, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Mount("/", app=create_dashboard(runtime.config, runtime=runtime)),  # the dashboard: every other path
    ]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if manage:
            runtime.start()
        try:
            yield
        finally:
            if manage:
                runtime.stop()

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.runtime = runtime
    return app
