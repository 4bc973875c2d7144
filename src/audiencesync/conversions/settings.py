"""The `conversions:` section as the conversions door sees it.

The section's model and its names live in `audiencesync.settings.conversions` and are validated
with the rest of the file by `load_config`; this module hands the door its validated section.
"""

from __future__ import annotations

from audiencesync.config import Config, ConfigError
from audiencesync.settings.conversions import DEFAULT_EVENTS, ConversionsSettings, action_key

__all__ = ["DEFAULT_EVENTS", "ConversionsSettings", "action_key", "conversions_settings"]


def conversions_settings(config: Config) -> ConversionsSettings:
    """The validated `conversions:` section; a ConfigError when the file has none."""
    if config.conversions is None:
        raise ConfigError(["conversions: the section is missing (it needs at least dataset_id)"])
    return config.conversions
