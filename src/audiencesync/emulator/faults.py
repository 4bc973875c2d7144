"""The fault plan: rules that make the next N matching Graph calls misbehave.

Why: a client's retry, back-off and idempotency logic can only be tested if
the server fails on demand (spec §7 item 7): Graph errors with any
code/subcode, HTML 5xx pages, delays, throttling, and connections dropped
before the request is applied or after it was applied (a lost acknowledgement).
This module only stores and matches rules; ``app.py`` carries them out.
"""

from __future__ import annotations

import itertools
import re
import threading
from dataclasses import dataclass
from typing import Any

from . import errors

# Default texts for error faults that only give a code (spec §3.3).
DEFAULT_MESSAGES = {
    1: ("An unknown error occurred", True, "OAuthException"),
    2: ("An unexpected error has occurred. Please retry your request later.", True, "OAuthException"),
    4: ("(#4) Application request limit reached", True, "OAuthException"),
    17: ("(#17) User request limit reached", True, "OAuthException"),
    32: ("(#32) Page request limit reached", True, "OAuthException"),
    190: ("Error validating access token: Session has expired.", False, "OAuthException"),
    200: ("(#200) Permissions error", False, "OAuthException"),
    294: (
        "(#294) Managing advertisements requires the extended permission ads_management and an "
        "application that is included in the allowlist",
        False,
        "OAuthException",
    ),
    341: ("(#341) Application limit reached", True, "OAuthException"),
    368: ("(#368) The action attempted has been deemed abusive or is otherwise disallowed", False, "OAuthException"),
    613: ("(#613) Calls to this api have exceeded the rate limit.", True, "OAuthException"),
    2650: ("(#2650) Failed to update the custom audience", False, "OAuthException"),
    80003: (
        "(#80003) There have been too many calls to this ad-account. Wait a bit and try again.",
        True,
        "OAuthException",
    ),
}


@dataclass
class FaultRule:
    id: int
    path: str
    method: str | None = None
    count: int = 1
    error: dict[str, Any] | None = None
    http_status: int | None = None
    delay_s: float = 0.0
    drop: str | None = None  # "before" | "after"
    throttle: bool = False
    regain_minutes: int = 1
    fired: int = 0

    def __post_init__(self) -> None:
        self._re = re.compile(self.path)

    def matches(self, methods: tuple[str, ...], path: str) -> bool:
        if self.method is not None and self.method.upper() not in methods:
            return False
        return bool(self._re.search(path) or self._re.search(path.lstrip("/")))

    def graph_error(self) -> errors.GraphError:
        spec = dict(self.error or {})
        code = int(spec.get("code", 1))
        default_msg, default_transient, default_type = DEFAULT_MESSAGES.get(
            code, (f"(#{code}) Emulated error", False, "OAuthException")
        )
        return errors.GraphError(
            code,
            str(spec.get("message", default_msg)),
            type=str(spec.get("type", default_type)),
            subcode=spec.get("error_subcode"),
            user_title=spec.get("error_user_title"),
            user_msg=spec.get("error_user_msg"),
            is_transient=bool(spec.get("is_transient", default_transient)),
            http_status=int(spec.get("http_status", 400)),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "method": self.method,
            "path": self.path,
            "count": self.count,
            "fired": self.fired,
            "error": self.error,
            "http_status": self.http_status,
            "delay_s": self.delay_s,
            "drop": self.drop,
            "throttle": self.throttle,
        }


class FaultPlan:
    def __init__(self) -> None:
        self._rules: list[FaultRule] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def add(self, spec: dict[str, Any]) -> FaultRule:
        """Validate and add a rule; raises ``ValueError`` with a readable reason."""
        if not isinstance(spec, dict):
            raise ValueError("a fault rule is a JSON object")
        known = {"method", "path", "count", "error", "http_status", "delay_s", "drop", "throttle",
                 "regain_minutes"}  # fmt: skip
        unknown = set(spec) - known
        if unknown:
            raise ValueError(f"unknown keys: {sorted(unknown)}")
        actions = [k for k in ("error", "http_status", "drop", "throttle") if spec.get(k)]
        if len(actions) > 1:
            raise ValueError(f"give at most one of error, http_status, drop, throttle (got {actions})")
        if not actions and not spec.get("delay_s"):
            raise ValueError("give one of error, http_status, delay_s, drop, throttle")
        if spec.get("drop") not in (None, "before", "after"):
            raise ValueError('drop must be "before" or "after"')
        if spec.get("error") is not None and not isinstance(spec["error"], dict):
            raise ValueError("error must be an object with at least a code")
        try:
            re.compile(spec.get("path", ".*"))
        except re.error as exc:
            raise ValueError(f"bad path regex: {exc}") from None
        count = int(spec.get("count", 1))
        if count < 1:
            raise ValueError("count must be at least 1")
        with self._lock:
            rule = FaultRule(
                id=next(self._ids),
                path=spec.get("path", ".*"),
                method=spec.get("method"),
                count=count,
                error=spec.get("error"),
                http_status=int(spec["http_status"]) if spec.get("http_status") else None,
                delay_s=float(spec.get("delay_s") or 0.0),
                drop=spec.get("drop"),
                throttle=bool(spec.get("throttle")),
                regain_minutes=int(spec.get("regain_minutes", 1)),
            )
            self._rules.append(rule)
        return rule

    def match(self, methods: tuple[str, ...], path: str) -> FaultRule | None:
        """The first live rule matching; consumes one of its ``count``."""
        with self._lock:
            for rule in self._rules:
                if rule.matches(methods, path):
                    rule.count -= 1
                    rule.fired += 1
                    if rule.count <= 0:
                        self._rules.remove(rule)
                    return rule
        return None

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r.as_dict() for r in self._rules]

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()
