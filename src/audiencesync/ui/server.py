"""`audiencesync ui`: the dashboard on its own, for deployments without `serve`.

It reads the state file under short leases, like `status`, so it can run beside `sync`, `run` or
`serve` all day. Without `ui.password` (or `serve.bearer_tokens`) it makes a one-time password and
prints it once, so the demo's state opens with one command.
"""

from __future__ import annotations

import secrets

import uvicorn

from audiencesync.config import Config
from audiencesync.ui.app import create_dashboard, credentials_of


def serve_dashboard(
    config: Config, *, host: str | None = None, port: int | None = None, read_only: bool = False
) -> None:
    """Serve until interrupted; prints where, and how to log in."""
    host = host or config.ui.host
    port = config.ui.port if port is None else port
    credentials = credentials_of(config)
    made = None
    if not credentials:
        made = secrets.token_urlsafe(12)
        credentials = [made]
    app = create_dashboard(config, credentials=credentials, read_only=read_only)
    print(f"audiencesync ui: the dashboard is at http://{host}:{port}/ (state {config.state})", flush=True)
    if made:
        print(f"log in with the one-time password {made}  (set ui.password to choose one)", flush=True)
    else:
        print("log in with ui.password or one of serve.bearer_tokens", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, http="h11")
