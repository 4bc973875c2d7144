"""HTTP layer of the emulator: routes, request parsing and response shaping.

Why: this is the only module that knows about HTTP. It turns any request a
real Graph client sends (query string, form, multipart or JSON body; object
parameters as JSON strings; ``method=DELETE`` overrides; tokens in a parameter
or an ``Authorization`` header) into plain calls on the model
(``model.Backend``, ``capi.Datasets``), and renders the result or the
``GraphError`` exactly as Facebook does: JSON, HTTP 400 for errors,
``x-fb-trace-id``/``facebook-api-version`` and usage headers on every Graph
response.

Order of a Graph request: URL length (HTML 414) → parameters → fault plan →
token and proof → API version (2635) → object/edge resolution (100/33, 2500) →
rate budget (80003) → model call.

``/_emulator/...`` endpoints are routed separately and can never collide with a
Graph path (Graph object ids never start with an underscore).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import time
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, fields
from typing import Any
from urllib.parse import parse_qsl, unquote_plus, urlencode

import orjson
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.types import Receive, Scope, Send

from . import auth, errors, persistence, versions
from .capi import Datasets
from .clock import Clock
from .config import EmulatorConfig
from .faults import FaultPlan, FaultRule
from .matching import check_shares
from .members import no_gc
from .model import ACCOUNT_FIELDS, AUDIENCE_FIELDS, FIELD_MIN_VERSION, Audience, Backend
from .payload import IDENTITY_KEYS
from .ratelimit import RateLimiter, Usage
from .reqlog import RequestLog, redact_query

log = logging.getLogger("audiencesync.emulator")
access_log = logging.getLogger("audiencesync.emulator.access")

# Parameters that arrive JSON-encoded in query/form encodings (spec §1).
OBJECT_PARAMS = frozenset(
    {
        "payload", "session", "data", "lookalike_spec", "progress", "filtering", "rule", "audience_labels",
        "app_ids", "page_ids", "platforms", "allowed_domains", "subscription_info", "inclusions",
        "exclusions", "event_sources", "prefill",
    }
)  # fmt: skip
SECRET_PARAMS = ("access_token", "appsecret_proof", "appsecret_time")
ACT_RE = re.compile(r"act_(\d+)")
ID_RE = re.compile(r"\d+")
DEFAULT_LIMIT = 25
X_FB_REV = "1019395212"

Handler = Callable[[dict[str, Any]], Any]


def _unquote_plus(text: str) -> str:
    """``unquote_plus`` at C speed for the common case.

    A form-encoded 10,000-row payload carries ~150,000 escapes; urllib decodes
    them one by one in Python. Turning ``%XX`` into ``\\xXX`` and using the
    ``unicode_escape`` codec does the same in C. Anything unusual (raw
    non-ASCII, a malformed escape, bytes that are not UTF-8) falls back to
    urllib, so the result is always exactly ``unquote_plus``'s.
    """
    if "%" not in text:
        return text.replace("+", " ")
    if not text.isascii():
        return unquote_plus(text)
    try:
        fast = text.replace("\\", "\\\\").replace("+", " ").replace("%", "\\x")
        return fast.encode("latin-1").decode("unicode_escape").encode("latin-1").decode("utf-8")
    except (UnicodeError, ValueError):
        return unquote_plus(text)


def parse_form(body: str) -> list[tuple[str, str]]:
    """``application/x-www-form-urlencoded`` → pairs; fast for multi-megabyte JSON values."""
    out = []
    for part in body.split("&"):
        if part:
            key, _, value = part.partition("=")
            out.append((_unquote_plus(key), _unquote_plus(value)))
    return out


def _split_fields(text: str) -> list[str]:
    """Split ``fields`` on top-level commas (commas inside ``{...}`` belong to a sub-selection)."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth = max(0, depth - 1)
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def _version_tuple(version: str) -> tuple[int, int]:
    major, _, minor = version.lstrip("v").partition(".")
    try:
        return int(major), int(minor or 0)
    except ValueError:
        return (0, 0)


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, headers=headers, media_type="application/json")


@dataclass
class Target:
    """What a Graph path resolved to: the handler, its rate bucket and BUC type."""

    handler: Handler
    bucket: str | None
    buc_type: str


class Emulator:
    """Wires the model, clock, faults, rate limits and request log to HTTP."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.clock = Clock(config.start_time)
        self.backend = Backend(config, self.clock)
        self.datasets = Datasets(config, self.clock)
        self.limiter = RateLimiter(config, self.clock)
        self.faults = FaultPlan()
        self.requests = RequestLog(config.request_log_size)
        self.saver: persistence.AutoSaver | None = None

    def reset(self) -> None:
        self.backend.reset()
        self.datasets.reset()
        self.limiter.reset()
        self.faults.clear()
        self.requests.clear()
        self.clock.reset()
        if self.config.start_time is not None:
            self.clock.set(self.config.start_time)

    # ================================================================ parsing
    async def _params(self, request: Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(
            parse_qsl(request.scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        )
        if request.method in ("POST", "DELETE", "PUT", "PATCH"):
            ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if ctype == "multipart/form-data":
                form = await request.form(max_files=1000, max_fields=100_000, max_part_size=self.config.max_body_bytes)
                for key, value in form.multi_items():
                    if isinstance(value, UploadFile):
                        params[key] = (await value.read()).decode("utf-8", "replace")
                    else:
                        params[key] = value
            else:
                body = await request.body()
                if body.strip():
                    if ctype == "application/json" or (not ctype and body.lstrip()[:1] in (b"{", b"[")):
                        try:
                            with no_gc():
                                decoded = orjson.loads(body)
                        except orjson.JSONDecodeError:
                            raise errors.invalid_param("Invalid JSON in request body") from None
                        if not isinstance(decoded, dict):
                            raise errors.invalid_param("The JSON request body must be an object")
                        params.update(decoded)
                    else:
                        params.update(parse_form(body.decode("utf-8", "replace")))
        for key in OBJECT_PARAMS:
            value = params.get(key)
            if isinstance(value, str) and value.lstrip()[:1] in ("{", "["):
                try:
                    with no_gc():
                        params[key] = orjson.loads(value)
                except orjson.JSONDecodeError:
                    raise errors.invalid_param(f"Param {key} must be a JSON object or array") from None
        return params

    @staticmethod
    def _token(request: Request, params: dict[str, Any]) -> str | None:
        token = params.get("access_token")
        if token:
            return str(token)
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() in ("bearer", "oauth") and value.strip():
            return value.strip()
        return None

    @staticmethod
    def _rows(params: dict[str, Any]) -> int | None:
        payload = params.get("payload")
        if isinstance(payload, dict) and isinstance(payload.get("data"), list):
            return len(payload["data"])
        data = params.get("data")
        if isinstance(data, list):
            return len(data)
        return None

    # ================================================================ fields
    @staticmethod
    def _requested_fields(params: dict[str, Any]) -> list[str]:
        raw = params.get("fields")
        if raw is None or raw == "":
            return ["id"]
        if isinstance(raw, str) and raw.lstrip().startswith("["):
            try:
                raw = orjson.loads(raw)
            except orjson.JSONDecodeError:
                raise errors.invalid_param("Param fields must be a comma-separated list") from None
        names = raw if isinstance(raw, list) else _split_fields(str(raw))
        # field expansion ("operation_status{code}") and modifiers (".limit(5)") select the whole field here
        out = [re.split(r"[{.]", str(n), maxsplit=1)[0].strip() for n in names]
        return [n for n in out if n] or ["id"]

    @staticmethod
    def _check_audience_fields(wanted: list[str], version: str) -> None:
        """Unknown fields, and fields newer than the requested API version, are "nonexisting"."""
        served = _version_tuple(version)
        for name in wanted:
            if name not in AUDIENCE_FIELDS or served < FIELD_MIN_VERSION.get(name, (0, 0)):
                raise errors.nonexisting_field(name, "CustomAudience")

    def _audience_view(self, aud: Audience, wanted: list[str], version: str) -> dict[str, Any]:
        self._check_audience_fields(wanted, version)
        values = self.backend.audience_fields(aud)
        out = {n: values[n] for n in wanted if n in values}
        out["id"] = aud.id
        return out

    # ================================================================ graph handlers
    def _resolve(self, method: str, segments: list[str], request: Request, version: str) -> Target:
        if not segments:
            raise errors.unknown_path("/")
        node = segments[0]
        edge = segments[1] if len(segments) > 1 else None
        if len(segments) > 2:
            raise errors.unknown_path("/" + "/".join(segments[2:]))
        backend = self.backend

        act = ACT_RE.fullmatch(node)
        if act:
            account_id = act.group(1)
            if edge is None:
                if method != "GET":
                    raise errors.unsupported_request(method, node)
                return Target(lambda p: self._account_get(account_id, p), account_id, "ads_management")
            if edge == "customaudiences":
                if method == "GET":
                    return Target(
                        lambda p: self._list_audiences(account_id, p, request, version), account_id, "custom_audience"
                    )
                if method == "POST":
                    return Target(lambda p: backend.create_audience(account_id, p), account_id, "custom_audience")
                raise errors.unsupported_request(method, node)
            if edge == "usersofanyaudience":
                if method == "DELETE":
                    return Target(
                        lambda p: backend.remove_from_all(account_id, p.get("payload"), p.get("session")),
                        account_id,
                        "custom_audience",
                    )
                raise errors.unsupported_request(method, node)
            raise errors.unknown_path("/" + edge)

        if ID_RE.fullmatch(node):
            aud = backend.find(node)
            if aud is not None:
                if aud.deleted:
                    raise backend.gone_error(aud, method)
                acct = aud.account_id
                aid = aud.id
                if edge is None:
                    if method == "GET":
                        return Target(
                            lambda p: self._audience_view(backend.live(aid, "GET"), self._requested_fields(p), version),
                            acct,
                            "custom_audience",
                        )
                    if method == "POST":
                        return Target(lambda p: backend.update_audience(aid, p), acct, "custom_audience")
                    if method == "DELETE":
                        return Target(lambda p: backend.delete_audience(aid), acct, "custom_audience")
                    raise errors.unsupported_request(method, node)
                if edge == "users":
                    if method in ("POST", "DELETE"):
                        removal = method == "DELETE"
                        return Target(
                            lambda p: backend.upload_users(
                                aid, p.get("payload"), p.get("session"), removal=removal, method=method
                            ),
                            acct,
                            "custom_audience",
                        )
                    raise errors.unsupported_request(method, node)
                if edge == "usersreplace":
                    if method == "POST":
                        return Target(
                            lambda p: backend.replace_users(aid, p.get("payload"), p.get("session")),
                            acct,
                            "custom_audience",
                        )
                    raise errors.unsupported_request(method, node)
                if edge == "sessions":
                    if method == "GET":
                        return Target(lambda p: self._sessions(aid, p), acct, "custom_audience")
                    raise errors.unsupported_request(method, node)
                raise errors.unknown_path("/" + edge)
            if edge == "events":
                if method == "POST":
                    return Target(lambda p: self._capi(node, p), node, "ads_management")
                raise errors.unsupported_request(method, node)
            if edge is None and method == "GET" and self.datasets.get(node) is not None:
                return Target(lambda p: self._dataset_get(node, p), node, "ads_management")
        raise errors.unsupported_request(method, node)

    def _account_get(self, account_id: str, params: dict[str, Any]) -> dict[str, Any]:
        wanted = self._requested_fields(params)
        for name in wanted:
            if name not in ACCOUNT_FIELDS:
                raise errors.nonexisting_field(name, "AdAccount")
        values = self.backend.account_fields(account_id)
        out = {n: values[n] for n in wanted if n in values}
        out["id"] = values["id"]
        return out

    def _dataset_get(self, dataset_id: str, params: dict[str, Any]) -> dict[str, Any]:
        values = self.datasets.node_fields(dataset_id)
        wanted = self._requested_fields(params)
        for name in wanted:
            if name not in values:
                raise errors.nonexisting_field(name, "AdsPixel")
        return {n: values[n] for n in [*wanted, "id"]}

    def _capi(self, dataset_id: str, params: dict[str, Any]) -> dict[str, Any]:
        code = params.get("test_event_code")
        return self.datasets.ingest(dataset_id, params.get("data"), str(code) if code else None)

    def _sessions(self, audience_id: str, params: dict[str, Any]) -> dict[str, Any]:
        sid = params.get("session_id")
        data = self.backend.sessions(audience_id, str(sid) if sid not in (None, "") else None)
        return {"data": data}

    @staticmethod
    def _cursor(aud_id: str) -> str:
        return base64.urlsafe_b64encode(aud_id.encode()).decode().rstrip("=")

    @staticmethod
    def _uncursor(cursor: str) -> str:
        try:
            return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        except (ValueError, UnicodeDecodeError):
            raise errors.invalid_param("Invalid cursor") from None

    @staticmethod
    def _filter_value(values: dict[str, Any], path: str) -> Any:
        cur: Any = values
        for part in path.split("."):
            if not isinstance(cur, dict):
                return None
            cur = cur.get(part)
        return cur

    def _matches(self, values: dict[str, Any], flt: dict[str, Any]) -> bool:
        field_name = str(flt.get("field", ""))
        op = str(flt.get("operator", "EQUAL")).upper()
        want = flt.get("value")
        have = self._filter_value(values, field_name)
        as_text = str(have) if have is not None else ""
        try:
            if op == "EQUAL":
                return as_text == str(want)
            if op == "NOT_EQUAL":
                return as_text != str(want)
            if op == "IN":
                return as_text in {str(v) for v in (want or [])}
            if op == "NOT_IN":
                return as_text not in {str(v) for v in (want or [])}
            if op == "CONTAIN":
                return str(want).lower() in as_text.lower()
            if op == "NOT_CONTAIN":
                return str(want).lower() not in as_text.lower()
            num_have, num_want = float(have), float(want)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return False
        return {
            "GREATER_THAN": num_have > num_want,
            "GREATER_THAN_OR_EQUAL": num_have >= num_want,
            "LESS_THAN": num_have < num_want,
            "LESS_THAN_OR_EQUAL": num_have <= num_want,
        }.get(op, False)

    def _list_audiences(
        self, account_id: str, params: dict[str, Any], request: Request, version: str
    ) -> dict[str, Any]:
        wanted = self._requested_fields(params)
        self._check_audience_fields(wanted, version)
        auds = self.backend.list_audiences(account_id)
        filtering = params.get("filtering")
        if filtering:
            if not isinstance(filtering, list) or not all(isinstance(f, dict) for f in filtering):
                raise errors.invalid_param("Param filtering must be an array of {field, operator, value}")
            auds = [a for a in auds if all(self._matches(self.backend.audience_fields(a), f) for f in filtering)]
        limit = params.get("limit")
        try:
            limit_n = int(limit) if limit not in (None, "") else DEFAULT_LIMIT
        except (TypeError, ValueError):
            raise errors.invalid_param("Param limit must be an integer") from None
        if limit_n < 1:
            limit_n = DEFAULT_LIMIT
        ids = [a.id for a in auds]
        start, end = 0, limit_n
        if params.get("after"):
            after = self._uncursor(str(params["after"]))
            start = ids.index(after) + 1 if after in ids else len(ids)
            end = start + limit_n
        elif params.get("before"):
            before = self._uncursor(str(params["before"]))
            end = ids.index(before) if before in ids else 0
            start = max(0, end - limit_n)
        page = auds[start:end]
        out: dict[str, Any] = {"data": [self._audience_view(a, wanted, version) for a in page]}
        if page:
            paging: dict[str, Any] = {
                "cursors": {"before": self._cursor(page[0].id), "after": self._cursor(page[-1].id)}
            }
            base = f"{str(request.base_url).rstrip('/')}/{version}/act_{account_id}/customaudiences"
            keep = {k: v for k, v in params.items() if k in ("fields", "limit", "access_token", "filtering")}
            keep["limit"] = limit_n
            if isinstance(keep.get("filtering"), list | dict):
                keep["filtering"] = orjson.dumps(keep["filtering"]).decode()
            if isinstance(keep.get("fields"), list):
                keep["fields"] = ",".join(keep["fields"])
            if end < len(auds):
                paging["next"] = f"{base}?{urlencode({**keep, 'after': paging['cursors']['after']})}"
            if start > 0:
                paging["previous"] = f"{base}?{urlencode({**keep, 'before': paging['cursors']['before']})}"
            out["paging"] = paging
        return out

    # ================================================================ the graph endpoint
    def _base_headers(self, trace: str, version: str) -> dict[str, str]:
        return {
            "x-fb-trace-id": trace,
            "x-fb-rev": X_FB_REV,
            "x-fb-debug": base64.b64encode(trace.encode() * 4).decode(),
            "facebook-api-version": version,
        }

    @staticmethod
    async def _drop(request: Request) -> bool:
        """Close the connection without any response bytes; True if that was possible."""
        transport = request.scope.get("emulator.transport")
        if transport is None:
            return False
        transport.abort()
        await asyncio.sleep(0)
        return True

    async def graph(self, request: Request) -> Response:
        started = time.perf_counter()
        trace = errors.new_trace_id()
        scope = request.scope
        raw_path: str = request.url.path
        segments = [s for s in raw_path.split("/") if s]
        version = self.config.default_version
        if segments and versions.is_version_segment(segments[0]):
            version = segments.pop(0)
        sub_path = "/" + "/".join(segments)
        headers = self._base_headers(trace, version)
        entry: dict[str, Any] = {
            "time": self.clock.now(),
            "method": request.method,
            "http_method": request.method,
            "path": raw_path,
            "version": version,
            "status": None,
            "error_code": None,
            "error_subcode": None,
            "rows": None,
            "fbtrace_id": trace,
            "fault": None,
        }
        suppress = False
        bucket: str | None = None
        buc_type = "custom_audience"
        try:
            url_len = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"") + 1
            if url_len > self.config.max_url_bytes:
                entry["status"] = 414
                return HTMLResponse(errors.html_error_page(414), status_code=414, headers=headers)
            params = await self._params(request)
            suppress = str(params.pop("suppress_http_code", "")) == "1"
            method = request.method
            override = str(params.get("method", "")).upper()
            if method == "POST" and override in ("DELETE", "GET"):
                method = override
                params.pop("method", None)
            entry["method"] = method
            entry["rows"] = self._rows(params)
            entry["params"] = sorted(k for k in params if k not in SECRET_PARAMS)

            rule = self.faults.match((request.method, method), sub_path)
            if rule is not None:
                entry["fault"] = rule.id
                early = await self._apply_fault(rule, request, headers, entry)
                if early is not None:
                    return early

            token = self._token(request, params)
            proof = params.get("appsecret_proof")
            proof_time = params.get("appsecret_time")
            for key in SECRET_PARAMS:
                params.pop(key, None)
            auth.check(
                self.config,
                token,
                str(proof) if proof else None,
                str(proof_time) if proof_time else None,
                self.clock.now(),
            )
            is_capi = len(segments) == 2 and segments[1] == "events"
            if not versions.is_available(version, self.clock.now(), marketing=not is_capi):
                raise errors.deprecated_version(version, versions.LATEST)
            if token:
                params["access_token"] = token  # for paging links only; removed from logs above
            target = self._resolve(method, segments, request, version)
            bucket, buc_type = target.bucket, target.buc_type
            usage = self.limiter.hit(bucket, buc_type)
            headers.update(self.limiter.headers(bucket, buc_type, usage))
            body = target.handler(params)
            if isinstance(body, dict) and "events_received" in body:
                body["fbtrace_id"] = trace
            if rule is not None and rule.drop == "after":
                entry["status"] = "dropped-after"
                if await self._drop(request):
                    return Response(b"", status_code=500)
                raise RuntimeError("emulator fault: connection dropped after the request was applied")
            entry["status"] = 200
            return _json(body, 200, headers)
        except errors.GraphError as exc:
            if not any(k.lower() == "x-app-usage" for k in exc.headers):
                headers.update(self.limiter.headers(bucket, buc_type, self._usage_or_zero(bucket)))
            headers.update(exc.headers)
            status = 200 if suppress else exc.http_status
            entry["status"] = status
            entry["error_code"] = exc.code
            entry["error_subcode"] = exc.subcode
            return _json(exc.envelope(trace), status, headers)
        finally:
            entry["duration_ms"] = round((time.perf_counter() - started) * 1000, 3)
            self.requests.add(entry)
            if access_log.isEnabledFor(logging.INFO):
                query = redact_query((scope.get("query_string") or b"").decode("latin-1"))
                access_log.info(
                    "%s %s%s -> %s%s",
                    entry["method"],
                    raw_path,
                    f"?{query}" if query else "",
                    entry["status"],
                    f" (#{entry['error_code']})" if entry["error_code"] else "",
                )

    def _usage_or_zero(self, bucket: str | None) -> Usage:
        return self.limiter.usage(bucket)

    async def _apply_fault(
        self, rule: FaultRule, request: Request, headers: dict[str, str], entry: dict[str, Any]
    ) -> Response | None:
        if rule.delay_s:
            await asyncio.sleep(rule.delay_s)
        if rule.drop == "before":
            if await self._drop(request):
                entry["status"] = "dropped-before"
                return Response(b"", status_code=500)
            raise RuntimeError("emulator fault: connection dropped before the request was applied")
        if rule.http_status:
            entry["status"] = rule.http_status
            return HTMLResponse(errors.html_error_page(rule.http_status), status_code=rule.http_status, headers=headers)
        if rule.error is not None:
            raise rule.graph_error()
        if rule.throttle:
            err = errors.throttled(rule.regain_minutes)
            over = Usage(100, int(rule.regain_minutes * 60), rule.regain_minutes)
            bucket = self._guess_bucket(request)
            err.headers.update(RateLimiter.headers(bucket, "custom_audience", over))
            raise err
        return None

    def _guess_bucket(self, request: Request) -> str:
        segments = [s for s in request.url.path.split("/") if s]
        if segments and versions.is_version_segment(segments[0]):
            segments.pop(0)
        if not segments:
            return "0"
        m = ACT_RE.fullmatch(segments[0])
        if m:
            return m.group(1)
        aud = self.backend.find(segments[0])
        return aud.account_id if aud is not None else segments[0]

    # ================================================================ /_emulator endpoints
    async def _body(self, request: Request) -> dict[str, Any]:
        raw = await request.body()
        if not raw.strip():
            return {}
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise _EmuError(400, "the body must be JSON") from None
        if not isinstance(data, dict):
            raise _EmuError(400, "the body must be a JSON object")
        return data

    async def emu_health(self, request: Request) -> Response:
        return _json({"ok": True, "now": self.clock.now()})

    async def emu_audiences(self, request: Request) -> Response:
        auds = sorted(self.backend.audiences.values(), key=lambda a: int(a.id))
        return _json([self.backend.summary(a) for a in auds])

    async def emu_audience(self, request: Request) -> Response:
        aud_id = request.path_params["audience_id"]
        if request.method == "GET":
            aud = self.backend.find(aud_id)
            if aud is None:
                raise _EmuError(404, f"no audience {aud_id}")
            return _json(self.backend.summary(aud))
        body = await self._body(request)
        if self.backend.find(aud_id) is None:
            raise _EmuError(404, f"no audience {aud_id}")
        try:
            return _json(self.backend.admin_update(aud_id, body))
        except ValueError as exc:
            raise _EmuError(400, str(exc)) from None

    async def emu_members(self, request: Request) -> Response:
        aud_id = request.path_params["audience_id"]
        if self.backend.find(aud_id) is None:
            raise _EmuError(404, f"no audience {aud_id}")
        count_only = request.query_params.get("count_only", "").lower() in ("1", "true", "yes")
        return _json(self.backend.members_view(aud_id, count_only=count_only))

    async def emu_requests(self, request: Request) -> Response:
        if request.method == "DELETE":
            self.requests.clear()
            return _json({"success": True})
        return _json(self.requests.list())

    async def emu_faults(self, request: Request) -> Response:
        if request.method == "DELETE":
            self.faults.clear()
            return _json({"success": True})
        if request.method == "GET":
            return _json(self.faults.list())
        raw = await request.body()
        try:
            spec = orjson.loads(raw) if raw.strip() else None
        except orjson.JSONDecodeError:
            raise _EmuError(400, "the body must be JSON") from None
        specs = spec if isinstance(spec, list) else [spec]
        try:
            rules = [self.faults.add(s) for s in specs]  # type: ignore[arg-type]
        except (ValueError, TypeError) as exc:
            raise _EmuError(400, str(exc)) from None
        out = [r.as_dict() for r in rules]
        return _json(out if isinstance(spec, list) else out[0])

    async def emu_clock(self, request: Request) -> Response:
        if request.method == "POST":
            body = await self._body(request)
            if "now" in body:
                self.clock.set(float(body["now"]))
            if "advance_s" in body:
                self.clock.advance(float(body["advance_s"]))
            if "now" not in body and "advance_s" not in body:
                raise _EmuError(400, 'give {"advance_s": seconds} or {"now": unix_seconds}')
        return _json({"now": self.clock.now(), "offset_s": self.clock.offset})

    async def emu_reset(self, request: Request) -> Response:
        self.reset()
        return _json({"success": True})

    async def emu_account(self, request: Request) -> Response:
        raw_id = request.path_params["account_id"]
        account_id = raw_id[4:] if raw_id.startswith("act_") else raw_id
        if not account_id.isdigit():
            raise _EmuError(400, "account id must be act_<digits> or <digits>")
        if request.method == "POST":
            body = await self._body(request)
            known = {"tos_accepted", "value_based_tos_accepted"}
            if set(body) - known:
                raise _EmuError(400, f"unknown keys {sorted(set(body) - known)}; known: {sorted(known)}")
            for key in known:
                if body.get(key) is not None and not isinstance(body[key], bool):
                    raise _EmuError(400, f"{key} must be a boolean")
            self.backend.set_account(
                account_id,
                tos_accepted=body.get("tos_accepted"),
                value_based_tos_accepted=body.get("value_based_tos_accepted"),
            )
        acct = self.backend.account(account_id)
        return _json(
            {
                "id": f"act_{acct.id}",
                "account_id": acct.id,
                "tos_accepted": acct.tos_accepted,
                "value_based_tos_accepted": acct.value_based_tos_accepted,
                "tos_map": self.backend.tos_map(acct),
            }
        )

    async def emu_dataset_events(self, request: Request) -> Response:
        return _json(self.datasets.events_view(request.path_params["dataset_id"]))

    async def emu_config(self, request: Request) -> Response:
        names = {f.name for f in fields(EmulatorConfig)} - {"token", "app_secret", "state_path"}
        if request.method == "POST":
            body = await self._body(request)
            bad = set(body) - names
            if bad:
                raise _EmuError(400, f"unknown or read-only settings: {sorted(bad)}")
            body = self._check_special_settings(body)
            for key, value in body.items():
                current = getattr(self.config, key)
                numeric = (int, float)
                same_kind = (
                    value is None
                    or current is None
                    or (
                        (isinstance(current, bool) == isinstance(value, bool))
                        and (isinstance(value, type(current)) or (type(current) in numeric and type(value) in numeric))
                    )
                )
                if not same_kind:
                    raise _EmuError(400, f"{key} must be a {type(current).__name__}")
            for key, value in body.items():
                setattr(self.config, key, value)
        out = {n: getattr(self.config, n) for n in sorted(names)}
        out["app_secret_set"] = bool(self.config.app_secret)
        return _json(out)

    def _check_special_settings(self, body: dict[str, Any]) -> dict[str, Any]:
        """Validation beyond "same type" for the settings that need it; ``match_shares`` merges."""
        body = dict(body)
        if "match_shares" in body:
            try:
                shares = check_shares(body["match_shares"], IDENTITY_KEYS, allow_null=True)
            except ValueError as exc:
                raise _EmuError(400, str(exc)) from None
            merged = dict(self.config.match_shares)
            for name, share in shares.items():
                if share is None:
                    merged.pop(name, None)
                else:
                    merged[name] = share
            body["match_shares"] = merged
        if "integrity_terms" in body:
            terms = body["integrity_terms"]
            if not isinstance(terms, list) or not all(isinstance(t, str) for t in terms):
                raise _EmuError(400, "integrity_terms must be a list of strings")
        for key in ("low_match_threshold", "high_invalid_threshold"):
            value = body.get(key)
            if key in body and (isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1):
                raise _EmuError(400, f"{key} must be a number in [0, 1]")
        if "match_seed" in body and not isinstance(body["match_seed"], str):
            raise _EmuError(400, "match_seed must be a string")
        digits = body.get("count_significant_digits")
        if digits is not None and (isinstance(digits, bool) or not isinstance(digits, int) or digits < 1):
            raise _EmuError(400, "count_significant_digits must be a positive integer or null")
        floor = body.get("count_floor")
        if "count_floor" in body and (isinstance(floor, bool) or not isinstance(floor, int) or floor < 0):
            raise _EmuError(400, "count_floor must be a non-negative integer")
        return body

    async def emu_not_found(self, request: Request) -> Response:
        return _json({"error": f"unknown emulator endpoint {request.method} {request.url.path}"}, 404)


class _EmuError(Exception):
    """An error of an /_emulator/ endpoint (plain JSON, not the Graph envelope)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _emu(fn: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    async def wrapper(request: Request) -> Response:
        try:
            return await fn(request)
        except _EmuError as exc:
            return _json({"error": exc.message}, exc.status)
        except errors.GraphError as exc:
            return _json({"error": exc.message}, 404 if exc.subcode == 33 else 400)

    return wrapper


class EmulatorApp(Starlette):
    """Starlette plus one thing: it keeps uvicorn's transport in the scope so a fault can drop it."""

    emulator: Emulator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            cycle = getattr(send, "__self__", None)  # uvicorn's RequestResponseCycle.send
            transport = getattr(cycle, "transport", None)
            if transport is not None:
                scope["emulator.transport"] = transport
        await super().__call__(scope, receive, send)


def create_app(config: EmulatorConfig | None = None) -> EmulatorApp:
    """Build the ASGI app. ``app.emulator`` (and ``app.state.emulator``) give direct model access."""
    config = config or EmulatorConfig()
    emu = Emulator(config)

    @asynccontextmanager
    async def lifespan(app: Starlette):  # type: ignore[no-untyped-def]
        if config.state_path:
            loaded = persistence.load(config.state_path, emu.backend, emu.datasets)
            log.info("emulator state %s from %s", "loaded" if loaded else "will be saved to", config.state_path)
            emu.saver = persistence.AutoSaver(
                config.state_path, emu.backend, emu.datasets, config.state_save_interval_s
            )
            emu.saver.start()
            if not loaded:
                emu.saver._saved = (-1, -1)
        try:
            yield
        finally:
            if emu.saver is not None:
                await emu.saver.stop()

    all_methods = ["GET", "POST", "DELETE", "PUT", "PATCH"]
    emu_routes = [
        Route("/health", _emu(emu.emu_health), methods=["GET"]),
        Route("/audiences", _emu(emu.emu_audiences), methods=["GET"]),
        Route("/audiences/{audience_id}", _emu(emu.emu_audience), methods=["GET", "POST"]),
        Route("/audiences/{audience_id}/members", _emu(emu.emu_members), methods=["GET"]),
        Route("/requests", _emu(emu.emu_requests), methods=["GET", "DELETE"]),
        Route("/faults", _emu(emu.emu_faults), methods=["GET", "POST", "DELETE"]),
        Route("/clock", _emu(emu.emu_clock), methods=["GET", "POST"]),
        Route("/reset", _emu(emu.emu_reset), methods=["POST"]),
        Route("/accounts/{account_id}", _emu(emu.emu_account), methods=["GET", "POST"]),
        Route("/datasets/{dataset_id}/events", _emu(emu.emu_dataset_events), methods=["GET"]),
        Route("/config", _emu(emu.emu_config), methods=["GET", "POST"]),
        Route("/{rest:path}", emu.emu_not_found, methods=all_methods),
    ]
    app = EmulatorApp(
        routes=[
            Mount("/_emulator", routes=emu_routes),
            Route("/{path:path}", emu.graph, methods=all_methods),
        ],
        lifespan=lifespan,
    )
    app.emulator = emu
    app.state.emulator = emu
    return app
