"""The dashboard's Starlette app: pages (Jinja2), their JSON twins under `/api/`, login, two buttons.

Pages without a session redirect to the login form; `/api/` answers 401 without a session cookie or
a Bearer credential. A POST from a page carries the session's CSRF token. Reads run on worker
threads (the state file is leased there), so under `serve` the event loop keeps accepting calls.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from markupsafe import Markup, escape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from audiencesync.config import Config
from audiencesync.report import rate_range, size_range
from audiencesync.state.lease import StateBusy
from audiencesync.ui.actions import Busy, Runner
from audiencesync.ui.auth import COOKIE, Gate, Session
from audiencesync.ui.data import (
    DELIVERY_NAMES,
    OPERATION_NAMES,
    DashboardData,
    conversion_summary,
    epoch,
    fb_errors,
    version_warnings,
)
from audiencesync.ui.stream import StreamView

HERE = Path(__file__).parent
FAILED_LOGIN_PAUSE_S = 0.5
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "frame-ancestors 'none'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def _when(t: datetime | float | None) -> str:
    if t is None:
        return "-"
    if isinstance(t, int | float):
        t = datetime.fromtimestamp(t, UTC).replace(tzinfo=None)
    return t.strftime("%Y-%m-%d %H:%M:%S")


def _num(n: Any) -> str:
    if n is None:
        return "-"
    return f"{n:,.1f}" if isinstance(n, float) and not n.is_integer() else f"{int(n):,}"


def _code(text: str) -> Markup:
    """A sentence with `settings` in backticks, escaped, the settings set in <code>."""
    return Markup(re.sub(r"`([^`]+)`", r"<code>\1</code>", str(escape(text))))


def _templates() -> Jinja2Templates:
    t = Jinja2Templates(directory=str(HERE / "templates"))
    t.env.filters.update(
        num=_num,
        when=_when,
        pct=lambda x, total: f"{x / total:.0%}" if total else "-",
        size_range=size_range,
        rate=lambda pair: rate_range(*pair),
        operation=lambda c: "-" if c is None else f"{c} {OPERATION_NAMES.get(c, '')}".strip(),
        delivery=lambda c: "-" if c is None else f"{c} {DELIVERY_NAMES.get(c, '')}".strip(),
        reason=lambda r: str(r).replace("_", " "),
        code=_code,
    )
    t.env.globals["fb_errors"] = fb_errors
    return t


def credentials_of(config: Config) -> list[str]:
    """`ui.password` and `serve`'s bearer tokens: each opens the dashboard."""
    found = [config.ui.password] if config.ui.password else []
    return found + (list(config.serve.bearer_tokens) if config.serve else [])


def create_dashboard(
    config: Config,
    *,
    runtime: Any | None = None,
    credentials: list[str] | None = None,
    read_only: bool = False,
) -> Starlette:
    """The dashboard for one config; `runtime` is `serve`'s StreamRuntime (None: no Stream numbers)."""
    gate = Gate(credentials if credentials is not None else credentials_of(config), config.ui.session_max_age)
    data = DashboardData(config)
    stream = StreamView(runtime)
    runner = Runner(config)
    templates = _templates()
    keys = {a.key for a in config.audiences}
    stream_keys = {a.key for a in config.audiences if config.source_of(a).type == "stream"}

    def session_of(request: Request) -> Session | None:
        return gate.session(request.cookies.get(COOKIE))

    def render(request: Request, name: str, status: int = 200, **context: Any) -> Response:
        session = session_of(request)
        context.update(
            csrf=gate.csrf(session) if session else "",
            read_only=read_only,
            has_stream=runtime is not None,
            nav=name.removesuffix(".html"),
            stream_keys=stream_keys,
            can_log_in=gate.open,
        )
        response = templates.TemplateResponse(request, name, context, status_code=status)
        response.headers.update(SECURITY_HEADERS)
        return response

    def page(fn: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            if session_of(request) is None:
                return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
            try:
                return await fn(request)
            except StateBusy as e:
                return render(request, "busy.html", 503, message=str(e))

        return endpoint

    def api(fn: Callable[[Request], Awaitable[Any]]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            by_bearer = gate.bearer(request.headers.get("authorization"))
            session = None if by_bearer else session_of(request)
            if not by_bearer and session is None:
                return _json({"error": "log in, or send Authorization: Bearer <ui.password or a serve token>"},
                             401, {"WWW-Authenticate": 'Bearer realm="audiencesync"'})  # fmt: skip
            token = request.headers.get("x-csrf-token")
            if request.method == "POST" and session is not None and not gate.csrf_ok(session, token):
                return _json({"error": "missing or wrong X-CSRF-Token"}, 403)
            try:
                return _json(await fn(request))
            except StateBusy as e:
                return _json({"error": str(e)}, 503)
            except _NotFound as e:
                return _json({"error": str(e)}, 404)
            except _Refused as e:
                return _json({"error": str(e)}, e.status)

        return endpoint

    # -- login ------------------------------------------------------------------------------------

    async def login_form(request: Request) -> Response:
        return render(request, "login.html", next=_safe_next(request.query_params.get("next")), failed=False)

    async def login(request: Request) -> Response:
        form = await request.form()
        target = _safe_next(str(form.get("next") or "/"))
        if not gate.valid_credential(str(form.get("password") or "")):
            await asyncio.sleep(FAILED_LOGIN_PAUSE_S)
            return render(request, "login.html", 401, next=target, failed=True)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(COOKIE, gate.new_cookie(), max_age=int(gate.max_age), httponly=True, samesite="strict")
        return response

    async def logout(request: Request) -> Response:
        session = session_of(request)
        form = await request.form()
        if session is not None and not gate.csrf_ok(session, str(form.get("csrf") or "")):
            return Response("missing or wrong CSRF token", 403)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE)
        return response

    # -- pages ------------------------------------------------------------------------------------

    async def audiences_page(request: Request) -> Response:
        reading = await run_in_threadpool(data.audiences)
        return render(request, "audiences.html", rows=reading.value, reading=reading, versions=version_warnings(config))

    def _key(request: Request) -> str:
        key = request.path_params["key"]
        if key not in keys:
            raise _NotFound(f"no audience {key!r} in the config")
        return key

    async def audience_page(request: Request) -> Response:
        try:
            key = _key(request)
        except _NotFound as e:
            return render(request, "busy.html", 404, message=str(e))
        reading = await run_in_threadpool(data.audience, key)
        return render(request, "audience.html", key=key, page=reading.value, reading=reading, outcome=None)

    async def run_button(request: Request) -> Response:
        session = session_of(request)
        form = await request.form()
        if session is None or not gate.csrf_ok(session, str(form.get("csrf") or "")):
            return Response("missing or wrong CSRF token", 403)
        try:
            key = _key(request)
        except _NotFound as e:
            return render(request, "busy.html", 404, message=str(e))
        if read_only or key in stream_keys:
            return Response("this dashboard does not run syncs for this audience", 403)
        dry_run = request.url.path.endswith("/dry-run")
        try:
            outcome = await run_in_threadpool(runner.run, key, dry_run=dry_run)
        except Busy as e:
            return render(request, "busy.html", 409, message=str(e))
        reading = await run_in_threadpool(data.audience, key)
        return render(request, "audience.html", key=key, page=reading.value, reading=reading, outcome=outcome)

    async def stream_page(request: Request) -> Response:
        return render(request, "stream.html", stream=stream.snapshot())

    async def conversions_page(request: Request) -> Response:
        reading = await run_in_threadpool(data.conversions)
        return render(request, "conversions.html", runs=reading.value, datasets=conversion_summary(reading.value),
                      reading=reading)  # fmt: skip

    # -- JSON -------------------------------------------------------------------------------------

    async def api_audiences(request: Request) -> Any:
        reading = await run_in_threadpool(data.audiences)
        rows = [_audience_json(r) for r in reading.value]
        warnings = version_warnings(config)
        return {"read_at": reading.read_at, "busy": reading.busy, "warnings": warnings, "audiences": rows}

    async def api_audience(request: Request) -> Any:
        key = _key(request)
        reading = await run_in_threadpool(data.audience, key)
        p = reading.value
        cov = p["coverage"]
        return {
            "read_at": reading.read_at,
            "busy": reading.busy,
            "audience": key,
            "facebook": [_fb_json(f) for f in p["facebook"]],
            "runs": [_run_json(r) for r in p["runs"]],
            "coverage": {
                "members": cov.members,
                "by_key": cov.by_key,
                "strong_keys": {str(k): n for k, n in sorted(cov.strong.items())},
                "two_or_more_strong": cov.two_or_more_strong,
                "phone_only": cov.phone_only,
            },
            "invalid": [{"key": k, "reason": r, "count": n} for (k, r), n in p["invalid"].items()],
            "invalid_runs": p["invalid_runs"],
            "suggestions": [dataclasses.asdict(s) for s in p["suggestions"]],
            "chart": p["chart"],
        }

    async def api_run(request: Request) -> Any:
        key = _key(request)
        if read_only or key in stream_keys:
            raise _Refused(403, "this dashboard does not run syncs for this audience")
        try:
            outcome = await run_in_threadpool(runner.run, key, dry_run=request.url.path.endswith("/dry-run"))
        except Busy as e:
            raise _Refused(409, str(e)) from None
        return outcome.as_dict()

    async def api_stream(request: Request) -> Any:
        return stream.snapshot() or {"error": "no stream here: the Stream numbers live in `audiencesync serve`"}

    async def api_conversions(request: Request) -> Any:
        reading = await run_in_threadpool(data.conversions)
        runs = [{**r, "started_at": epoch(r["started_at"]), "finished_at": epoch(r["finished_at"])}
                for r in reading.value]
        summary = [{k: v for k, v in d.items() if k != "last"} for d in conversion_summary(reading.value)]
        return {"read_at": reading.read_at, "busy": reading.busy, "datasets": summary, "runs": runs}

    routes = [
        Route("/", page(audiences_page), methods=["GET"]),
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/audiences/{key}", page(audience_page), methods=["GET"]),
        Route("/audiences/{key}/dry-run", page(run_button), methods=["POST"]),
        Route("/audiences/{key}/sync", page(run_button), methods=["POST"]),
        Route("/stream", page(stream_page), methods=["GET"]),
        Route("/conversions", page(conversions_page), methods=["GET"]),
        Route("/api/audiences", api(api_audiences), methods=["GET"]),
        Route("/api/audiences/{key}", api(api_audience), methods=["GET"]),
        Route("/api/audiences/{key}/dry-run", api(api_run), methods=["POST"]),
        Route("/api/audiences/{key}/sync", api(api_run), methods=["POST"]),
        Route("/api/stream", api(api_stream), methods=["GET"]),
        Route("/api/conversions", api(api_conversions), methods=["GET"]),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    return Starlette(routes=routes)


class _NotFound(LookupError):
    pass


class _Refused(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _safe_next(target: str | None) -> str:
    """Only a path on this site: never `//host` or a full URL (an open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    response = JSONResponse(_plain(body), status_code=status, headers=headers)
    response.headers.update(SECURITY_HEADERS)
    return response


def _plain(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    if isinstance(v, datetime):
        return epoch(v)
    return v


def _fb_json(f: Any) -> dict[str, Any]:
    v = f.view
    low, high = f.match_rate
    return {
        "name": v.name,
        "kind": v.kind,
        "fb_id": v.fb_id,
        "members": v.members,
        "matched_lower": v.lower,
        "matched_upper": v.upper,
        "match_rate_low": low,
        "match_rate_high": high,
        "operation_status": v.operation_code,
        "delivery_status": v.delivery_code,
        "health_read_at": epoch(v.read_at),
        "warnings": f.warnings,
    }


def _run_json(r: Any) -> dict[str, Any]:
    rep = r.report
    fbs = rep.get("facebook") or []
    return {
        "run_id": r.run_id,
        "status": r.status,
        "started_at": epoch(r.started_at),
        "finished_at": epoch(r.finished_at),
        "duration_s": rep.get("duration_s"),
        "adds": sum(int(f.get("adds") or 0) for f in fbs),
        "removes": sum(int(f.get("removes") or 0) for f in fbs),
        "received": sum(int(f.get("num_received") or 0) for f in fbs),
        "invalid_entries": sum(int(f.get("num_invalid_entries") or 0) for f in fbs),
        "errors": fb_errors(rep),
    }


def _audience_json(row: Any) -> dict[str, Any]:
    return {
        "key": row.key,
        "name": row.name,
        "stream": row.stream,
        "in_config": row.settings is not None,
        "warnings": row.warnings,
        "last_run": _run_json(row.last_run) if row.last_run else None,
        "facebook": [_fb_json(f) for f in row.facebook],
    }
