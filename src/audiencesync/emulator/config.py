"""``EmulatorConfig``: every knob of the emulator in one plain dataclass.

Why a dataclass: tests, the demo and the CLI build it directly, and the model
reads only the business-rule fields (it never sees HTTP settings it ignores).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .matching import DEFAULT_MATCH_SEED, DEFAULT_MATCH_SHARES

# Terms from Meta's announcement of integrity flags (Sept 2025): health conditions and financial status.
DEFAULT_INTEGRITY_TERMS = ("arthritis", "diabetes", "credit score", "high income")


@dataclass
class EmulatorConfig:
    # --- authentication
    token: str = "emulator-token"
    app_secret: str | None = None
    appsecret_time_tolerance_s: float = 300.0  # window for appsecret_time (UNCONFIRMED on Graph)

    # --- rate limiting (per ad account / dataset)
    calls_per_hour: int | None = None  # budget per rate window; None = unlimited
    rate_window_s: float = 3600.0

    # --- audience rules
    processing_delay_s: float = 0.0  # counts / operation_status catch up after this delay
    strict_hashes: bool = True  # hashed keys must be 64 lowercase hex, else invalid entry
    max_audiences: int = 500  # per ad account and subtype
    tos_accepted: bool = True  # default for ad accounts created on first use
    value_based_tos_accepted: bool = True  # value-based terms, same
    min_delivery_size: int = 100  # delivery_status 300 below it
    max_rows: int = 10_000  # rows per /users or /usersreplace request
    session_ttl_s: float = 90 * 60  # upload / replace session lifetime
    replace_max_size: int = 100_000_000  # 2650/1870144 at or above this many members
    max_invalid_samples: int = 100

    # --- simulated user base and audience health (matching.py)
    match_shares: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_MATCH_SHARES))
    match_seed: str = DEFAULT_MATCH_SEED  # key of the hash that decides which values match
    low_match_threshold: float = 0.2  # operation_status 411 when matched/members is below it ...
    low_match_min_members: int = 100  # ... and the audience has at least this many members
    high_invalid_threshold: float = 0.2  # 412 when invalid/received of the last session is above it
    count_floor: int = 1000  # approximate counts of 1..count_floor-1 matched people read count_floor (0 = off)
    count_significant_digits: int | None = 2  # bounds rounded down/up to this many digits (None = exact)
    integrity_terms: list[str] = field(default_factory=lambda: list(DEFAULT_INTEGRITY_TERMS))

    # --- Conversions API
    max_events: int = 1_000
    event_window_days: int = 7
    physical_store_window_days: int = 62
    future_event_tolerance_s: float = 600.0  # event_time this far ahead is still accepted (UNCONFIRMED)
    dedup_window_s: float = 7 * 86400  # offline de-duplication window

    # --- HTTP
    default_version: str = "v25.0"  # for unversioned calls
    max_url_bytes: int = 65_536  # longer URLs get an HTML 414 page
    max_body_bytes: int = 256 * 1024 * 1024

    # --- state
    state_path: str | None = None
    state_save_interval_s: float = 30.0
    request_log_size: int = 10_000
    start_time: float | None = None  # initial clock value; None = wall clock
