"""The `serve:` section and the stream audiences, as the stream door sees them.

`ServeSettings` lives in `audiencesync.settings.serve` and is validated with the rest of the file
by `load_config`, together with what a stream audience may not set (`config.cross_section_problems`);
this module hands the door its validated section and its audiences.
"""

from __future__ import annotations

from audiencesync.config import AudienceSettings, Config, ConfigError
from audiencesync.settings.serve import ServeSettings

__all__ = ["ServeSettings", "serve_settings", "stream_audiences"]


def serve_settings(config: Config) -> ServeSettings:
    """The validated `serve:` section; a ConfigError when the file has none."""
    if config.serve is None:
        raise ConfigError(["serve: the config file has no `serve:` section (host, port, write_key, ...)"])
    return config.serve


def stream_audiences(config: Config) -> dict[str, AudienceSettings]:
    """The configured audiences whose members arrive through the server, by audience key."""
    return {a.key: a for a in config.audiences if config.source_of(a).type == "stream"}
