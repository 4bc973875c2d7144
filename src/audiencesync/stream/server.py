"""Running the stream server: blocking for `audiencesync serve`, or on a thread for tests.

`python -m audiencesync.stream.server --config FILE` runs the same `serve` without the CLI (the
kill -9 test and the benchmark start it that way, as a process of its own).
"""

from __future__ import annotations

import argparse
import logging
import socket
import sys
import threading
import time
from pathlib import Path

import httpx
import uvicorn

from audiencesync.config import Config, load_config
from audiencesync.stream.app import create_app
from audiencesync.stream.runtime import StreamRuntime
from audiencesync.stream.settings import ServeSettings, serve_settings

log = logging.getLogger(__name__)


def _uvicorn_config(app: object, settings: ServeSettings, log_level: str = "warning") -> uvicorn.Config:
    return uvicorn.Config(
        app,  # type: ignore[arg-type]
        host=settings.host,
        port=settings.port,
        log_level=log_level,
        access_log=False,
        lifespan="on",
        http="h11",
        timeout_keep_alive=30,
    )


def serve(config_path: str | Path, *, log_level: str = "info") -> None:
    """Load the config, start the queue writer and flusher, and serve until interrupted.

    Raises ConfigError (naming the setting) before anything starts if the config is wrong.
    """
    config = load_config(config_path)
    settings = serve_settings(config)
    runtime = StreamRuntime(config, settings)
    app = create_app(runtime)
    logging.basicConfig(level=getattr(logging, log_level.upper(), logging.INFO), format="%(asctime)s %(message)s")
    print(
        f"audiencesync serve: listening on http://{settings.host}:{settings.port} "
        f"(stream audiences: {', '.join(sorted(runtime.audiences)) or 'none'}; "
        f"flush after {settings.flush_after:g}s or {settings.flush_size:,} changes)",
        flush=True,
    )
    uvicorn.Server(_uvicorn_config(app, settings)).run()


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class StreamServer:
    """The server on a background thread of this process (tests); a context manager."""

    def __init__(self, config: Config, runtime: StreamRuntime | None = None):
        self.runtime = runtime or StreamRuntime(config)
        self.settings = self.runtime.settings
        self.port = self.settings.port or free_port(self.settings.host)
        self.settings = self.settings.model_copy(update={"port": self.port})
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.settings.host}:{self.port}"

    def start(self, timeout: float = 15.0) -> StreamServer:
        server = uvicorn.Server(_uvicorn_config(create_app(self.runtime), self.settings))
        server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        self._server = server
        self._thread = threading.Thread(target=server.run, name=f"stream-{self.port}", daemon=True)
        self._thread.start()
        wait_healthy(self.url, timeout, alive=self._thread.is_alive)
        return self

    def stop(self, timeout: float = 30.0) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        self._server, self._thread = None, None

    def __enter__(self) -> StreamServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_healthy(url: str, timeout: float, alive: object = None) -> None:
    """Poll `/health` until it answers 200, or raise after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(alive) and not alive():
            raise RuntimeError(f"the stream server at {url} stopped while starting")
        try:
            if httpx.get(f"{url}/health", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"the stream server at {url} did not become healthy within {timeout}s")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m audiencesync.stream.server", description=__doc__)
    parser.add_argument("--config", "-c", default="audiencesync.yml")
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    from audiencesync.config import ConfigError

    try:
        serve(args.config, log_level=args.log_level)
    except ConfigError as e:
        print(e, file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
