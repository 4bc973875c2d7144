"""Running the emulator: in-process for tests and demos, or blocking for the CLI.

Why: tests, benches and the demo need a real HTTP server on a free port that
is up before the first request, and stopped cleanly; the CLI needs a blocking
``serve()`` that prints what to connect to. Both use uvicorn with two
settings that matter for faithfulness: a large h11 event size (so URLs up to
and beyond 64 KB reach the app, which answers Facebook-style 414 HTML pages
itself instead of uvicorn's 400), and no uvicorn access log (it would print
``access_token`` query values; the app logs redacted lines instead).
"""

from __future__ import annotations

import logging
import socket
import sys
import threading
import time
from typing import Any

import httpx
import uvicorn

from .app import EmulatorApp, create_app
from .config import EmulatorConfig

H11_MAX_EVENT = 4 * 1024 * 1024


def _uvicorn_config(app: EmulatorApp, host: str, port: int, log_level: str) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        lifespan="on",
        http="h11",
        h11_max_incomplete_event_size=H11_MAX_EVENT,
        timeout_keep_alive=30,
    )


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class EmulatorServer:
    """An emulator on a background thread. Use as a context manager, or call ``start``/``stop``.

    >>> with EmulatorServer() as server:  # doctest: +SKIP
    ...     httpx.get(f"{server.url}/v25.0/act_1/customaudiences", params={"access_token": server.token})
    """

    def __init__(self, config: EmulatorConfig | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.config = config or EmulatorConfig()
        self.host = host
        self.port = port or _free_port(host)
        self.app = create_app(self.config)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def token(self) -> str:
        return self.config.token

    @property
    def emulator(self) -> Any:
        return self.app.emulator

    def start(self, timeout: float = 10.0) -> EmulatorServer:
        server = uvicorn.Server(_uvicorn_config(self.app, self.host, self.port, "warning"))
        server.install_signal_handlers = lambda: None  # type: ignore[method-assign]  # not the main thread
        self._server = server
        self._thread = threading.Thread(target=server.run, name=f"emulator-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._thread.is_alive():
                raise RuntimeError(f"emulator failed to start on {self.url}")
            try:
                if httpx.get(f"{self.url}/_emulator/health", timeout=0.5).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"emulator did not answer on {self.url} within {timeout}s")

    def stop(self, timeout: float = 10.0) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        self._server = None
        self._thread = None

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(
    host: str = "127.0.0.1",
    port: int = 8787,
    token: str = "emulator-token",
    app_secret: str | None = None,
    state_path: str | None = None,
    **settings: Any,
) -> None:
    """Run the emulator in the foreground until interrupted (the ``audiencesync emulator`` command).

    Prints the base URL and the token. With ``state_path`` the state is loaded at
    start if the file exists, saved every ``state_save_interval_s`` seconds when
    it changed, and saved at shutdown. Extra keyword arguments are
    ``EmulatorConfig`` fields.
    """
    config = EmulatorConfig(token=token, app_secret=app_secret, state_path=state_path, **settings)
    app = create_app(config)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s"))
    lg = logging.getLogger("audiencesync.emulator")  # the access log propagates to it: one handler, one line
    lg.setLevel(logging.INFO)
    lg.addHandler(handler)
    base = f"http://{host}:{port}"
    print(f"Graph API emulator listening on {base}", flush=True)
    print(f"  base URL : {base}  (Graph routes: {base}/v25.0/...)", flush=True)
    print(f"  token    : {token}", flush=True)
    if app_secret:
        print("  app secret set: appsecret_proof is required", flush=True)
    if state_path:
        print(f"  state    : {state_path}", flush=True)
    print(f"  inspect  : {base}/_emulator/audiences, {base}/_emulator/requests", flush=True)
    uvicorn.Server(_uvicorn_config(app, host, port, "warning")).run()
