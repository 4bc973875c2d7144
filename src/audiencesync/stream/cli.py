"""`audiencesync serve`: the command the CLI wires to `serve_command`."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from audiencesync.config import ConfigError
from audiencesync.stream.server import serve


def serve_command(config: Path = Path("audiencesync.yml")) -> None:
    """Accept Segment, mParticle and plain membership calls and keep stream audiences in step, in seconds."""
    try:
        serve(config)
    except ConfigError as e:
        Console(stderr=True).print(f"[red]{e}[/red]")
        raise typer.Exit(2) from None
