"""The Meta Graph API client: one place that speaks `spec/graph-api.md`.

Why its own client instead of the SDK: the SDK puts DELETE payloads in the URL (large removals
break), has no retry policy, and cannot honour the usage headers. This client sends every payload
in a JSON body, retries only what Facebook says is transient (with jittered backoff that waits at
least `estimated_time_to_regain_access`), and turns the rest into errors a person can act on.
The token travels in the Authorization header, never in a URL, and never in an exception.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from audiencesync.config import MetaSettings

log = logging.getLogger(__name__)

TRANSIENT_CODES = frozenset({1, 2, 4, 17, 32, 341, 613, *range(80000, 80015)})
REPLACE_BUSY = (2650, 1870145)
REPLACE_GLITCH = (2650, 1870148)
MAX_ROWS_PER_REQUEST = 10_000
MAX_EVENTS_PER_REQUEST = 1_000


@dataclass
class GraphError(Exception):
    """An error answered by Facebook (or a failure to get an answer at all)."""

    message: str
    code: int | None = None
    subcode: int | None = None
    type: str | None = None
    user_title: str | None = None
    user_msg: str | None = None
    is_transient: bool = False
    fbtrace_id: str | None = None
    http_status: int | None = None
    retry_after_s: float | None = None
    network: bool = False
    attempts: int = 1

    def __post_init__(self) -> None:
        super().__init__(self.message)

    @property
    def transient(self) -> bool:
        """Whether waiting and sending the same request again can succeed (spec §3.3)."""
        if self.network or self.is_transient:
            return True
        if self.http_status is not None and self.http_status >= 500 and self.code is None:
            return True
        if self.code in TRANSIENT_CODES:
            return True
        return (self.code, self.subcode) in (REPLACE_BUSY, REPLACE_GLITCH)

    def __str__(self) -> str:
        return self.explain()

    def explain(self) -> str:
        """A sentence a person can act on; Facebook's text only as a supplement."""
        ref = f"code {self.code}" + (f"/{self.subcode}" if self.subcode else "")
        hint = _HINTS.get((self.code, self.subcode)) or _HINTS.get((self.code, None))
        if self.network:
            return f"no usable answer from Facebook: {self.message}"
        detail = self.user_msg or self.message
        if hint:
            return f"{hint} ({ref}; Facebook says: {detail})"
        return f"Facebook refused the request ({ref}): {detail}"


_HINTS: dict[tuple[int | None, int | None], str] = {
    (190, None): "the access token is invalid or expired: create a new token and update meta.access_token",
    (190, 463): "the access token has expired: create a new token and update meta.access_token",
    (102, None): "the API session is invalid: create a new access token",
    (2655, None): "the Custom Audience terms are not accepted on this ad account: accept them in Ads Manager",
    (2663, None): "the Custom Audience terms are not accepted on this ad account: accept them in Ads Manager",
    (2664, None): "the corporate Custom Audience terms are not accepted: accept them in Business Manager",
    (200, 1870034): "the Custom Audience terms are not accepted on this ad account: accept them in Ads Manager",
    (200, 1870090): "the Custom Audience terms are not accepted on this ad account: accept them in Ads Manager",
    (2654, None): "Facebook could not create the audience (an ad account holds at most 500 custom audiences; "
    "delete unused ones) ",
    (100, 1713230): "the audience is flagged for integrity restrictions (operation_status 471), so Facebook "
    "refuses every upload to it; nothing more was sent. In Ads Manager, review the audience and change or remove the "
    "flagged wording (a customer-file audience cannot be edited: delete it there and let the next run create a new "
    "one), or ask for a review; the sync does not retry it until the flag is gone",
    (100, 1487366): "the audience no longer exists on Facebook (deleted in Ads Manager, or expired unused): run "
    "`audiencesync sync --recreate` to forget it and create a new one",
    (1487366, None): "the audience no longer exists on Facebook (deleted in Ads Manager, or expired unused): run "
    "`audiencesync sync --recreate` to forget it and create a new one",
    (100, 1487301): "the audience is shared with this ad account without edit rights (Custom Audience Unavailable): "
    "ask its owner to share it again, or delete it from the state and let the next run create one of your own",
    (1487301, None): "the audience is shared with this ad account without edit rights (Custom Audience Unavailable): "
    "ask its owner to share it again, or delete it from the state and let the next run create one of your own",
    (2650, None): "Facebook refused the audience update (an audience that received single-key uploads "
    "cannot take multi-key ones, and the reverse)",
    (2650, 1870145): "a replace session is still open on this audience (operation_status 414), one this state "
    "does not know (a run whose state file was lost, or another machine); Facebook closes it at most 90 minutes "
    "after it began. Nothing was lost: run again after that",
    (2650, 1870158): "the replace session ran past Facebook's 90 minutes; the next run starts a new one",
    (2650, 1870159): "the replace session had already ended; the next run re-plans from what Facebook holds",
    (2656, None): "the audience has lookalike audiences built from it: delete those lookalikes first",
    (294, None): "the token lacks the ads_management permission",
    (200, None): "permission denied on this ad account",
    (2635, None): "this Graph API version is no longer served: raise meta.api_version",
    (80003, None): "Facebook throttles custom-audience calls on this ad account",
}


@dataclass
class Usage:
    """The latest usage Facebook reported; the client slows down before it hits the wall."""

    app_pct: float = 0.0
    account_pct: float = 0.0
    regain_access_min: float = 0.0
    seen: dict[str, Any] = field(default_factory=dict)

    @property
    def pressure(self) -> float:
        return max(self.app_pct, self.account_pct)


class GraphClient:
    """Thread-safe; one per run. `sleep` and `rng` are injectable so tests don't wait."""

    def __init__(
        self,
        settings: MetaSettings,
        *,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        transport: httpx.BaseTransport | None = None,
    ):
        self.settings = settings
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self.usage = Usage()
        self.calls = 0
        self.retries = 0
        self._http = httpx.Client(
            base_url=f"{settings.graph_url}/{settings.api_version}",
            timeout=settings.retry.timeout_s,
            headers={"Authorization": f"OAuth {settings.access_token}", "User-Agent": "audiencesync"},
            limits=httpx.Limits(max_connections=settings.max_in_flight + 2),
            transport=transport,
        )
        self._proof = (
            hmac.new(settings.app_secret.encode(), settings.access_token.encode(), hashlib.sha256).hexdigest()
            if settings.app_secret
            else None
        )
        redact_http_logs(settings.access_token, self._proof)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> GraphClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def account(self) -> str:
        return f"act_{self.settings.ad_account_id}"

    # -- the retry loop ------------------------------------------------------------------------

    def call(self, method: str, path: str, params: dict[str, Any] | None = None) -> Any:
        """One Graph call with the retry policy; GET parameters go in the query, others in a JSON body."""
        retry = self.settings.retry
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._once(method, path, params or {})
            except GraphError as err:
                err.attempts = attempt
                if not err.transient or attempt >= retry.max_attempts:
                    raise
                if (err.code, err.subcode) == REPLACE_GLITCH and attempt >= 2:
                    raise
                delay = self._backoff(attempt, err)
                if delay is None:
                    raise
                with self._lock:
                    self.retries += 1
                log.warning(
                    "transient failure on %s %s (%s); retry %d in %.1fs",
                    method,
                    _redact_path(path),
                    err.code or err.http_status or "network",
                    attempt,
                    delay,
                )
                self._sleep(delay)

    def _backoff(self, attempt: int, err: GraphError) -> float | None:
        retry = self.settings.retry
        delay = min(retry.max_delay_s, retry.base_delay_s * (2 ** (attempt - 1)))
        delay *= 0.5 + self._rng.random()
        if err.retry_after_s:
            if err.retry_after_s > retry.max_delay_s:
                err.message += f" (Facebook asks to wait {err.retry_after_s / 60:.0f} min; run again later)"
                return None
            delay = max(delay, err.retry_after_s * (1 + 0.1 * self._rng.random()))
        return delay

    def _once(self, method: str, path: str, params: dict[str, Any]) -> Any:
        if self._proof:
            params = {**params, "appsecret_proof": self._proof}
        if self.usage.pressure >= 95:
            self._sleep(self.settings.retry.base_delay_s)
        with self._lock:
            self.calls += 1
        try:
            if method == "GET":
                resp = self._http.request(method, path, params=_flatten_query(params))
            else:
                resp = self._http.request(
                    method, path, content=orjson.dumps(params), headers={"Content-Type": "application/json"}
                )
        except httpx.TimeoutException:
            raise GraphError("the request timed out", network=True) from None
        except httpx.TransportError as e:
            raise GraphError(f"connection failed ({type(e).__name__})", network=True) from None
        self._note_usage(resp.headers)
        try:
            body = orjson.loads(resp.content)
        except orjson.JSONDecodeError:
            raise GraphError(
                f"HTTP {resp.status_code} with a non-JSON body", http_status=resp.status_code, network=True
            ) from None
        if isinstance(body, dict) and "error" in body:
            raise self._error(body["error"], resp)
        if resp.status_code >= 400:
            raise GraphError(f"HTTP {resp.status_code}", http_status=resp.status_code, network=resp.status_code >= 500)
        if isinstance(body, dict) and body.get("success") is False:
            raise GraphError("Facebook answered success=false", http_status=resp.status_code)
        return body

    def _error(self, e: dict[str, Any], resp: httpx.Response) -> GraphError:
        regain = self.usage.regain_access_min if e.get("code") in TRANSIENT_CODES else 0.0
        return GraphError(
            message=_scrub(str(e.get("message", "unknown error")), self.settings.access_token),
            code=_int(e.get("code")),
            subcode=_int(e.get("error_subcode")),
            type=e.get("type"),
            user_title=e.get("error_user_title"),
            user_msg=_scrub(str(e["error_user_msg"]), self.settings.access_token) if e.get("error_user_msg") else None,
            is_transient=bool(e.get("is_transient")),
            fbtrace_id=e.get("fbtrace_id"),
            http_status=resp.status_code,
            retry_after_s=regain * 60 if regain else None,
        )

    def _note_usage(self, headers: httpx.Headers) -> None:
        app = _json_header(headers.get("x-app-usage"))
        acct = _json_header(headers.get("x-ad-account-usage"))
        buc = _json_header(headers.get("x-business-use-case-usage"))
        u = Usage()
        if isinstance(app, dict):
            u.app_pct = max(float(app.get(k) or 0) for k in ("call_count", "total_cputime", "total_time"))
        if isinstance(acct, dict):
            u.account_pct = float(acct.get("acc_id_util_pct") or 0)
        if isinstance(buc, dict):
            for entries in buc.values():
                for entry in entries if isinstance(entries, list) else []:
                    pct = max(float(entry.get(k) or 0) for k in ("call_count", "total_cputime", "total_time"))
                    u.account_pct = max(u.account_pct, pct)
                    u.regain_access_min = max(
                        u.regain_access_min, float(entry.get("estimated_time_to_regain_access") or 0)
                    )
        self.usage = u

    # -- Custom Audiences ---------------------------------------------------------------------

    def create_custom_audience(self, **fields: Any) -> str:
        body = self.call("POST", f"/{self.account}/customaudiences", {"subtype": "CUSTOM", **fields})
        return str(body["id"])

    def list_custom_audiences(self, fields: list[str], page_size: int = 100) -> Iterator[dict[str, Any]]:
        params: dict[str, Any] = {"fields": ",".join(fields), "limit": page_size}
        while True:
            page = self.call("GET", f"/{self.account}/customaudiences", params)
            yield from page.get("data", [])
            after = (page.get("paging") or {}).get("cursors", {}).get("after")
            if not after or "next" not in (page.get("paging") or {}):
                return
            params = {**params, "after": after}

    def get_node(self, node_id: str, fields: list[str]) -> dict[str, Any]:
        return self.call("GET", f"/{node_id}", {"fields": ",".join(fields)})

    def delete_node(self, node_id: str) -> None:
        self.call("DELETE", f"/{node_id}")

    def users(
        self,
        method: str,
        audience_id: str,
        schema: str | list[str],
        data: list[Any],
        *,
        session: dict[str, Any] | None = None,
        app_ids: list[str] | None = None,
        edge: str = "users",
    ) -> dict[str, Any]:
        """Add (POST), remove (DELETE) or replace (edge=usersreplace) one batch of rows."""
        if len(data) > MAX_ROWS_PER_REQUEST:
            raise ValueError(f"a batch holds at most {MAX_ROWS_PER_REQUEST} rows, got {len(data)}")
        payload: dict[str, Any] = {"schema": schema, "data": data}
        if isinstance(schema, list):
            payload["is_raw"] = True
        if app_ids:
            payload["app_ids"] = app_ids
        params: dict[str, Any] = {"payload": payload}
        if session is not None:
            params["session"] = session
        return self.call(method, f"/{audience_id}/{edge}", params)

    def send_events(self, dataset_id: str, events: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        if len(events) > MAX_EVENTS_PER_REQUEST:
            raise ValueError(f"a request holds at most {MAX_EVENTS_PER_REQUEST} events, got {len(events)}")
        # The Conversions API is versioned apart (`meta.capi_version`): an absolute URL overrides the base.
        url = f"{self.settings.graph_url}/{self.settings.conversions_version}/{dataset_id}/events"
        return self.call("POST", url, {"data": events, **{k: v for k, v in extra.items() if v}})


def _int(v: Any) -> int | None:
    try:
        return int(v) if v is not None else None
    except (TypeError, ValueError):
        return None


def _json_header(value: str | None) -> Any:
    if not value:
        return None
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return None


def _flatten_query(params: dict[str, Any]) -> dict[str, str]:
    return {k: (v if isinstance(v, str) else orjson.dumps(v).decode()) for k, v in params.items() if v is not None}


def _scrub(text: str, token: str) -> str:
    return text.replace(token, "[token]") if token else text


def _redact_path(path: str) -> str:
    return path.split("?", 1)[0]


# -- secrets out of the HTTP libraries' logs ---------------------------------------------------

HTTP_LOGGERS = ("httpx", "httpcore", "hpack")
"""httpx logs every request URL at INFO; httpcore (and hpack, under HTTP/2) trace at DEBUG."""

_SECRET_PARAM = re.compile(r"(?i)\b(access_token|appsecret_proof)=[^&\s\"'#]*")
REDACTED = "[redacted]"
MIN_SECRET_CHARS = 8
"""Shorter values (test tokens like `t`) are not searched for: they would blank out ordinary text.
Meta's tokens are far longer and an appsecret_proof is 64 hex characters."""


class SecretRedactor(logging.Filter):
    """Rewrites a record's text before any handler sees it: query values of `access_token` and
    `appsecret_proof`, and every secret value a client registered, wherever it appears.

    Why a filter and not a cleaner URL: a GET has no body, so its appsecret_proof must travel in the
    query (spec §4), and httpx writes that URL into "HTTP Request: GET ..." lines, which `audiencesync
    serve` and `sync -v` print. A filter on the libraries' own loggers catches every handler, present or
    future (basicConfig, pytest's caplog, a user's logging config).
    """

    def __init__(self) -> None:
        super().__init__()
        self._secrets: tuple[str, ...] = ()
        self._lock = threading.Lock()

    def add(self, *secrets: str | None) -> None:
        """A tuple swapped whole, so a thread filtering a record never sees it change mid-loop."""
        with self._lock:
            fresh = {s for s in secrets if s and len(s) >= MIN_SECRET_CHARS and s not in self._secrets}
            if fresh:
                self._secrets = (*self._secrets, *sorted(fresh, key=len, reverse=True))

    def redact(self, text: str) -> str:
        text = _SECRET_PARAM.sub(lambda m: f"{m.group(1)}={REDACTED}", text)
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True  # a malformed record; logging reports it without our help
        clean = self.redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


_REDACTOR = SecretRedactor()


def redact_http_logs(*secrets: str | None) -> None:
    """Install the redactor on the HTTP libraries' loggers (idempotent) and register `secrets`.

    A logger's filters only see records logged on that very logger, not its children's, so each
    `httpcore.*` logger that exists (httpcore creates them on import) gets the filter itself.
    """
    _REDACTOR.add(*secrets)
    known = list(logging.root.manager.loggerDict)
    names = {*HTTP_LOGGERS, *(name for name in known if name.split(".", 1)[0] in HTTP_LOGGERS)}
    for name in names:
        logger = logging.getLogger(name)
        if _REDACTOR not in logger.filters:
            logger.addFilter(_REDACTOR)
