"""``python -m audiencesync.emulator``: run the emulator without the CLI (for manual testing)."""

from __future__ import annotations

import argparse

from .server import serve


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m audiencesync.emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8787)
    parser.add_argument("--token", default="emulator-token")
    parser.add_argument("--app-secret", default=None)
    parser.add_argument("--state", default=None)
    args = parser.parse_args()
    serve(args.host, args.port, args.token, args.app_secret, args.state)


if __name__ == "__main__":
    main()
