"""Offline conversions: store and call-centre sales to Meta's Conversions API (`action_source: physical_store`).

mParticle's Facebook Offline Conversions integration, moved from the retired Offline Conversions API
to the Conversions API. See docs/conversions.md.

The names below load on first use, so importing the package does not pull in the HTTP client and
the pipeline.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "ConversionsSettings": "audiencesync.conversions.settings",
    "conversions_settings": "audiencesync.conversions.settings",
    "Source": "audiencesync.conversions.read",
    "PreparedSource": "audiencesync.conversions.queued",
    "build_events": "audiencesync.conversions.build",
    "send": "audiencesync.conversions.run",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'audiencesync.conversions' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
