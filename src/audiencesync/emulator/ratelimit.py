"""Per-ad-account call budgets and Facebook's usage headers.

Why: clients must read ``X-Business-Use-Case-Usage`` and back off on 80003 with
``estimated_time_to_regain_access`` (spec §3.4). The emulator counts calls per
business object (the ad account for audience routes, the dataset for CAPI) in
a sliding window read from the injectable clock, so a test can exhaust a small
budget, advance the clock and see access come back.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import orjson

from . import errors
from .clock import Clock
from .config import EmulatorConfig


@dataclass
class Usage:
    pct: int
    reset_s: int
    regain_min: int


class RateLimiter:
    def __init__(self, config: EmulatorConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self._calls: dict[str, deque[float]] = {}

    def reset(self) -> None:
        self._calls.clear()

    def _window(self, bucket: str, now: float) -> deque[float]:
        calls = self._calls.get(bucket)
        if calls is None:
            calls = self._calls[bucket] = deque()
        horizon = now - self.config.rate_window_s
        while calls and calls[0] <= horizon:
            calls.popleft()
        return calls

    def usage(self, bucket: str | None) -> Usage:
        if bucket is None:
            return Usage(0, 0, 0)
        now = self.clock.now()
        calls = self._window(bucket, now)
        budget = self.config.calls_per_hour
        if not budget:
            return Usage(0, 0, 0)
        pct = int(len(calls) * 100 / budget)
        reset_s = math.ceil(calls[0] + self.config.rate_window_s - now) if calls else 0
        regain = 0
        if len(calls) >= budget:
            # access returns once enough calls have left the window
            idx = len(calls) - budget
            regain = max(1, math.ceil((calls[idx] + self.config.rate_window_s - now) / 60))
        return Usage(pct, max(reset_s, 0), regain)

    def hit(self, bucket: str | None, buc_type: str) -> Usage:
        """Count one call against ``bucket``; raise 80003 (with usage headers) when over budget."""
        if bucket is None:
            return Usage(0, 0, 0)
        budget = self.config.calls_per_hour
        now = self.clock.now()
        calls = self._window(bucket, now)
        if budget and len(calls) >= budget:
            use = self.usage(bucket)
            err = errors.throttled(use.regain_min)
            err.headers.update(self.headers(bucket, buc_type, use))
            raise err
        calls.append(now)
        return self.usage(bucket)

    @staticmethod
    def headers(bucket: str | None, buc_type: str, use: Usage) -> dict[str, str]:
        app = {"call_count": use.pct, "total_cputime": use.pct // 2, "total_time": use.pct // 2}
        out = {"x-app-usage": orjson.dumps(app).decode()}
        if bucket is None:
            out["x-business-use-case-usage"] = "{}"
            return out
        out["x-ad-account-usage"] = orjson.dumps(
            {
                "acc_id_util_pct": float(use.pct),
                "reset_time_duration": use.reset_s,
                "ads_api_access_tier": "standard_access",
            }
        ).decode()
        out["x-business-use-case-usage"] = orjson.dumps(
            {
                bucket: [
                    {
                        "type": buc_type,
                        "call_count": use.pct,
                        "total_cputime": use.pct // 2,
                        "total_time": use.pct // 2,
                        "estimated_time_to_regain_access": use.regain_min,
                        "ads_api_access_tier": "standard_access",
                    }
                ]
            }
        ).decode()
        return out
