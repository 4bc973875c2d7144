"""Who may queue changes: the write key in Segment's basic-auth form, or a configured bearer token.

Segment's tracking API takes the write key as the basic-auth user name with an empty password;
mParticle senders put their key in the same place (their secret as password is ignored). Every
comparison is constant-time, and a credential is never logged or echoed.
"""

from __future__ import annotations

import base64
import binascii
import hmac

from audiencesync.stream.settings import ServeSettings

CHALLENGE = 'Basic realm="audiencesync", charset="UTF-8"'


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass"))


def _basic_user(credentials: str) -> str | None:
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    user, _, _password = decoded.partition(":")
    return user


def authorized(header: str | None, settings: ServeSettings) -> bool:
    """Whether an `Authorization` header carries the write key or one of the bearer tokens."""
    if not header:
        return False
    scheme, _, credentials = header.strip().partition(" ")
    scheme = scheme.lower()
    if scheme == "basic" and settings.write_key:
        user = _basic_user(credentials)
        return user is not None and _same(user, settings.write_key)
    if scheme == "bearer" and settings.bearer_tokens:
        token = credentials.strip()
        return any(_same(token, t) for t in settings.bearer_tokens) and bool(token)
    return False
