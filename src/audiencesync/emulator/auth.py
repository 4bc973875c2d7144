"""Access-token and ``appsecret_proof`` checks (spec §4).

Why a module of its own: the rules are small but security-flavoured and easy
to get subtly wrong (constant-time comparison, both proof forms), and they
must never echo a token back. The routing layer extracts the values from the
request; this module only decides.

* the token must equal the configured one (190 otherwise, 104 when missing);
* with an app secret configured, ``appsecret_proof`` is required and must be
  HMAC-SHA256(app_secret, token) — or, when ``appsecret_time`` is sent,
  HMAC-SHA256(app_secret, token + "|" + appsecret_time) with the time within
  a tolerance window of the emulator clock.
"""

from __future__ import annotations

import hashlib
import hmac

from . import errors
from .config import EmulatorConfig


def proof_for(app_secret: str, token: str, appsecret_time: str | int | None = None) -> str:
    msg = token if appsecret_time is None else f"{token}|{appsecret_time}"
    return hmac.new(app_secret.encode(), msg.encode(), hashlib.sha256).hexdigest()


def check(
    config: EmulatorConfig,
    token: str | None,
    proof: str | None,
    proof_time: str | None,
    now: float,
) -> None:
    if not token:
        raise errors.missing_token()
    if not hmac.compare_digest(token.encode(), config.token.encode()):
        raise errors.invalid_token()
    if not config.app_secret:
        return
    if not proof:
        raise errors.missing_proof()
    if proof_time:
        try:
            t = int(proof_time)
        except ValueError:
            raise errors.invalid_proof() from None
        if abs(now - t) > config.appsecret_time_tolerance_s:
            raise errors.invalid_proof()
        expected = proof_for(config.app_secret, token, proof_time)
    else:
        expected = proof_for(config.app_secret, token)
    if not hmac.compare_digest(proof.lower().encode(), expected.encode()):
        raise errors.invalid_proof()
