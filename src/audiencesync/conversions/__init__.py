"""Offline conversions: store and call-centre sales to Meta's Conversions API (`action_source: physical_store`).

mParticle's Facebook Offline Conversions integration, moved from the retired Offline Conversions API
to the Conversions API. See docs/conversions.md.
"""

from audiencesync.conversions.read import Source
from audiencesync.conversions.run import send
from audiencesync.conversions.settings import ConversionsSettings, conversions_settings

__all__ = ["ConversionsSettings", "Source", "conversions_settings", "send"]
