"""The configuration file: parsed, expanded and validated before any call to Meta is made.

Every error names the setting (as a dotted path) and the reason, so a typo stops the run at once
instead of half-way through an upload. Secrets come from the environment through `${VAR}`; their
values never appear in an error message.

Each section is a typed model of its own in `audiencesync.settings` (which never imports this
module); `Config` puts them together, so the whole file, `conversions:` and `serve:` included, is
validated in one pass, and adds the checks that span sections (`cross_section_problems`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, model_validator

from audiencesync.settings.alerts import AlertSettings
from audiencesync.settings.audience import FORWARDABLE, AudienceSettings, ValueSettings
from audiencesync.settings.common import Section, parse_duration, snake_case
from audiencesync.settings.conversions import ConversionsSettings
from audiencesync.settings.errors import ConfigError, Loc, config_problems, problems
from audiencesync.settings.guard import GuardSettings
from audiencesync.settings.health import HealthSettings
from audiencesync.settings.meta import MetaSettings, RetrySettings
from audiencesync.settings.rejects import RejectsSettings
from audiencesync.settings.serve import ServeSettings
from audiencesync.settings.source import STREAM, STREAM_SOURCE, SourceSettings
from audiencesync.settings.spark import SPARK_EXTRA, SparkSettings
from audiencesync.settings.ui import UiSettings

__all__ = [
    "FORWARDABLE",
    "AlertSettings",
    "AudienceSettings",
    "Config",
    "ConfigError",
    "ConversionsSettings",
    "GuardSettings",
    "HealthSettings",
    "MetaSettings",
    "RejectsSettings",
    "RetrySettings",
    "ServeSettings",
    "SourceSettings",
    "SparkSettings",
    "UiSettings",
    "ValueSettings",
    "cross_section_problems",
    "load_config",
    "parse_config",
    "parse_duration",
    "snake_case",
]

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class Config(Section):
    meta: MetaSettings
    state: str = ".audiencesync/state.duckdb"
    guard: GuardSettings = GuardSettings()
    sources: dict[str, SourceSettings] = Field(default_factory=dict)
    audiences: list[AudienceSettings] = Field(default_factory=list)
    conversions: ConversionsSettings | None = None
    serve: ServeSettings | None = None
    alerts: AlertSettings = AlertSettings()
    rejects: RejectsSettings = RejectsSettings()
    health: HealthSettings = HealthSettings()
    spark: SparkSettings | None = None
    """The Spark engine's settings; sources with `engine: spark` use them (defaults: `local[2]`)."""
    ui: UiSettings = UiSettings()

    @model_validator(mode="after")
    def _cross(self) -> Config:
        found = cross_section_problems(self)
        if found:
            raise problems(found)
        return self

    def source_of(self, audience: AudienceSettings) -> SourceSettings:
        """The source an audience reads: its entry under `sources`, or for `source: stream` (when no
        source has that name) the implicit stream source, whose members arrive through `serve`."""
        if audience.source in self.sources:
            return self.sources[audience.source]
        if audience.source == STREAM:
            return STREAM_SOURCE
        raise ConfigError([f"audiences ({audience.name}).source: no source named {audience.source!r} under `sources`"])

    def guard_for(self, audience: AudienceSettings) -> GuardSettings:
        return audience.guard or self.guard

    def audience(self, name_or_key: str) -> AudienceSettings:
        for a in self.audiences:
            if name_or_key in (a.name, a.key):
                return a
        raise ConfigError([f"audiences: no audience named {name_or_key!r}"])


def cross_section_problems(config: Config) -> list[tuple[Loc, str]]:
    """The checks no single section can make: audience keys, sources, `meta.app_id` for Facebook
    IDs and, when there is a `serve:` section, the settings a stream audience cannot use."""
    found: list[tuple[Loc, str]] = []
    keys: set[str] = set()
    for i, a in enumerate(config.audiences):
        here: Loc = ("audiences", i)
        if a.key in keys:
            found.append(((*here, "key"), f"{a.key!r} is used by another audience"))
        keys.add(a.key)
        if a.source not in config.sources and a.source != STREAM:
            found.append(((*here, "source"), f"no source named {a.source!r} under `sources`"))
            continue
        src = config.source_of(a)
        if src.engine == "spark":
            found += [((*here, setting), reason) for setting, reason in _spark_audience_problems(a)]
        elif a.table is not None:
            found.append(((*here, "table"), "only a source with `engine: spark` reads a table; use `query`"))
        elif src.type != "stream" and not a.query:
            found.append(((*here, "query"), f"a {src.type} source needs a query"))
        if "facebook_id" in a.forward and not config.meta.app_id:
            found.append(((*here, "forward"), "facebook_id needs meta.app_id (Facebook IDs are app-scoped)"))
        if config.serve is not None and src.type == "stream":
            found += [((*here, setting), reason) for setting, reason in _stream_audience_problems(a)]
    return found


def _spark_audience_problems(a: AudienceSettings) -> list[tuple[str, str]]:
    """What an audience needs on the Spark engine; pyspark is checked here so a missing extra stops
    the run before any call (it is looked up, never imported: the embedded path never loads it)."""
    import importlib.util

    found = []
    if not a.query and not a.table:
        found.append(("query", "a spark source needs a Spark SQL `query` or a `table`"))
    if not a.primary_key:
        found.append(("primary_key", "the spark engine needs a primary key column (one member per key)"))
    if importlib.util.find_spec("pyspark") is None:
        found.append(("source", f"its source has engine: spark, but pyspark is not installed ({SPARK_EXTRA})"))
    return found


def _stream_audience_problems(a: AudienceSettings) -> list[tuple[str, str]]:
    """Settings a stream audience cannot use: its source is the members table the server keeps."""
    found = []
    if a.value is not None:
        found.append(("value", "a stream audience has no value column; value-based needs a query source"))
    if "facebook_id" in a.forward:
        found.append(("forward", "facebook_id is not available to a stream audience (no Facebook IDs)"))
    if a.columns:
        found.append(("columns", "a stream audience's columns are fixed; traits map by their names"))
    if a.external_id not in (None, "external_id"):
        found.append(("external_id", "a stream member's external id is its userId; remove this setting"))
    if a.query or a.primary_key:
        found.append(("query", "a stream audience has no query; its members arrive through serve"))
    return found


def _expand(node: Any, path: Loc, env: dict[str, str], missing: list[tuple[Loc, str]]) -> Any:
    """Substitute `${VAR}`; a variable that is not set is a problem naming the setting, for every
    setting. An optional setting is optional by leaving its line out: a written `${VAR}` says the
    setting is wanted, so dropping it when the variable is missing would silently change what is sent
    (no `meta.app_secret` means no appsecret_proof; no `meta.app_id` means a misleading error later)."""
    if isinstance(node, dict):
        return {k: _expand(v, (*path, str(k)), env, missing) for k, v in node.items()}
    if isinstance(node, list):
        return [_expand(v, (*path, i), env, missing) for i, v in enumerate(node)]
    if isinstance(node, str) and "${" in node:
        unset = [name for name in _VAR.findall(node) if name not in env]
        if unset:
            missing.append((path, f"environment variable {unset[0]} is not set"))
            return node
        return _VAR.sub(lambda m: env[m.group(1)], node)
    return node


def load_config(path: str | Path, env: dict[str, str] | None = None) -> Config:
    """Read, expand and validate a config file; raise ConfigError naming every bad setting."""
    p = Path(path)
    if not p.exists():
        raise ConfigError([f"config file {str(p)!r} does not exist"])
    try:
        raw = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError([f"{p}: not valid YAML ({getattr(e, 'problem', None) or 'parse error'})"]) from None
    return parse_config(raw, env=env, base_dir=p.parent)


def parse_config(raw: dict[str, Any], env: dict[str, str] | None = None, base_dir: Path | None = None) -> Config:
    if not isinstance(raw, dict):
        raise ConfigError(["the file must be a mapping with `meta:` and `audiences:`"])
    missing: list[tuple[Loc, str]] = []
    expanded = _expand(raw, (), dict(os.environ if env is None else env), missing)
    if missing:
        raise ConfigError(config_problems(missing, raw))
    try:
        cfg = Config.model_validate(expanded)
    except ValidationError as e:
        raise ConfigError(config_problems(e, expanded)) from None
    if base_dir is not None and not Path(cfg.state).is_absolute():
        cfg = cfg.model_copy(update={"state": str(base_dir / cfg.state)})
    return cfg
