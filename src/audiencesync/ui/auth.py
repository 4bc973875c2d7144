"""Who may see the dashboard: a login form that sets a signed session cookie, or a Bearer header.

The credentials are `ui.password` and `serve`'s bearer tokens (or the one-time password `ui` makes
when neither is set). The cookie holds an expiry and a random session id, signed with HMAC-SHA256
under a key made when the process starts (a restart logs everyone out); forms carry a CSRF token
derived from the session id. Every comparison is constant-time; no credential is logged or echoed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass

COOKIE = "audiencesync_session"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Session:
    sid: str
    expires: float


class Gate:
    """Checks credentials, and signs and verifies session cookies and CSRF tokens."""

    def __init__(self, credentials: Iterable[str], max_age: float, key: bytes | None = None):
        self._credentials = tuple(c.encode("utf-8", "surrogatepass") for c in credentials if c)
        self.max_age = max_age
        self._key = key or secrets.token_bytes(32)

    @property
    def open(self) -> bool:
        """False when no credential is configured: then nobody logs in (`serve` with a write key only)."""
        return bool(self._credentials)

    def valid_credential(self, given: str | None) -> bool:
        if not given or not self._credentials:
            return False
        raw = given.encode("utf-8", "surrogatepass")
        return any(hmac.compare_digest(raw, c) for c in self._credentials)

    def bearer(self, header: str | None) -> bool:
        scheme, _, token = (header or "").strip().partition(" ")
        return scheme.lower() == "bearer" and self.valid_credential(token.strip())

    def _sign(self, payload: bytes) -> str:
        return _b64(hmac.new(self._key, payload, hashlib.sha256).digest())

    def new_cookie(self) -> str:
        body = json.dumps({"sid": secrets.token_urlsafe(18), "exp": time.time() + self.max_age}).encode()
        return f"{_b64(body)}.{self._sign(body)}"

    def session(self, cookie: str | None) -> Session | None:
        if not cookie or "." not in cookie:
            return None
        body_text, _, signature = cookie.partition(".")
        try:
            body = _unb64(body_text)
        except ValueError:
            return None
        if not hmac.compare_digest(signature, self._sign(body)):
            return None
        try:
            doc = json.loads(body)
            session = Session(str(doc["sid"]), float(doc["exp"]))
        except (ValueError, KeyError, TypeError):
            return None
        return session if session.expires > time.time() else None

    def csrf(self, session: Session) -> str:
        return self._sign(b"csrf:" + session.sid.encode())

    def csrf_ok(self, session: Session, given: str | None) -> bool:
        return bool(given) and hmac.compare_digest(str(given), self.csrf(session))
