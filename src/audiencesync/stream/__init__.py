"""Stream membership in: Segment- and mParticle-shaped calls, a durable queue, a flusher that syncs.

The stream is another door into the same pipeline: calls become hashed membership changes
(`payloads`, `members`), are committed to the ingest log before they are acknowledged (`queue`),
and are applied to `st.stream_members` and synced by `pipeline.sync` within seconds (`flusher`).
`app` is the HTTP surface, `server` runs it, `settings` reads the typed `serve:` section.
"""

from audiencesync.stream.settings import ServeSettings, serve_settings

__all__ = ["ServeSettings", "serve_settings"]
