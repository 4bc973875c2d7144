"""The request log behind ``GET /_emulator/requests``.

Why: tests assert on what a client actually sent (how many calls, which
methods, how many rows, which errors came back). Entries never contain
parameter values, so raw tokens (``access_token``, ``appsecret_proof``) can
never reach the log; ``redact_query`` is the one helper used for any text log.
"""

from __future__ import annotations

import re
import threading
from collections import deque
from typing import Any

_SECRET_PARAMS = re.compile(r"(?i)(access_token|appsecret_proof|client_secret)=[^&]*")


def redact_query(query: str) -> str:
    return _SECRET_PARAMS.sub(lambda m: f"{m.group(1)}=REDACTED", query)


class RequestLog:
    def __init__(self, size: int) -> None:
        self._entries: deque[dict[str, Any]] = deque(maxlen=size)
        self._lock = threading.Lock()

    def add(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._entries.append(entry)

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
