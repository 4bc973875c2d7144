"""Who may queue changes: the write key in Segment's basic-auth form, or a configured bearer token.

Segment's tracking API takes the write key as the basic-auth user name with an empty password;
mParticle senders put their key in the same place and their secret as the password, which is
checked on the mParticle routes when `mparticle_api_secret` is set (ignored otherwise). Every
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


def _basic(credentials: str) -> tuple[str, str] | None:
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    user, _, password = decoded.partition(":")
    return user, password


def authorized(header: str | None, settings: ServeSettings, *, secret: str | None = None) -> bool:
    """Whether an `Authorization` header carries the write key or one of the bearer tokens.

    With `secret` (the mParticle routes, when `mparticle_api_secret` is set) the basic-auth
    password must be that secret too."""
    if not header:
        return False
    scheme, _, credentials = header.strip().partition(" ")
    scheme = scheme.lower()
    if scheme == "basic" and settings.write_key:
        pair = _basic(credentials)
        if pair is None:
            return False
        user_ok = _same(pair[0], settings.write_key)
        secret_ok = _same(pair[1], secret) if secret is not None else True
        return user_ok and secret_ok
    if scheme == "bearer" and settings.bearer_tokens:
        token = credentials.strip()
        return any(_same(token, t) for t in settings.bearer_tokens) and bool(token)
    return False
