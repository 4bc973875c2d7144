"""The config file's sections, one typed model each; leaf modules that never import `config.py`.

    errors.py       ConfigError; `problem()` for validators; `config_problems()`, the one formatter
    common.py       the strict `Section` base, `snake_case`, `parse_duration`
    meta.py         `meta:` (MetaSettings, with RetrySettings under `meta.retry`)
    source.py       a `sources:` entry (SourceSettings; STREAM_SOURCE, the implicit stream source)
    guard.py        `guard:`, top level or per audience (GuardSettings)
    audience.py     an `audiences:` entry (AudienceSettings, with ValueSettings under `value`)
    conversions.py  `conversions:` (ConversionsSettings, its event names and limits)
    serve.py        `serve:` (ServeSettings)
    alerts.py       `alerts:` (AlertSettings, with WebhookSettings under `webhooks`)
    rejects.py      `rejects:` (RejectsSettings: how long rejected rows are kept)
    health.py       `health:` (HealthSettings: how often Facebook's view is read back)
    versions.py     not a section: the table of API version release and expiry dates
    ui.py           `ui:` (UiSettings): the dashboard's address and password

`audiencesync.config` assembles them into `Config`, with the checks across sections, reads the file
and expands `${VAR}`.
"""
