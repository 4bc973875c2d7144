"""`audiencesync conversions send`: forward offline sales to the Conversions API from the shell.

Mounted by the main CLI as a sub-command group; it only parses options, shows progress and prints
the report. The work is `audiencesync.conversions.run.send`, the same door the tests and the
benchmark use.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from audiencesync.config import ConfigError, load_config

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Forward offline sales to Meta's Conversions API.")
console = Console()
err = Console(stderr=True)


@contextmanager
def _progress(enabled: bool, total: int | None) -> Iterator[Callable[[int], None] | None]:
    if not enabled:
        yield None
        return
    with Progress(
        TextColumn("events"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task("events", total=total)
        yield lambda n: bar.advance(task, n)


@app.callback()
def conversions() -> None:
    """Offline sales (store, call centre, custom feeds) to the Conversions API as physical_store events."""


@app.command()
def send(
    file: Annotated[
        Path | None,
        typer.Argument(help="CSV, Parquet, JSON/JSONL (flat events or mParticle batches), or a DuckDB database."),
    ] = None,
    config: Annotated[
        Path, typer.Option("--config", "-c", help="The YAML config file.", envvar="AUDIENCESYNC_CONFIG")
    ] = Path("audiencesync.yml"),
    query: Annotated[
        str | None,
        typer.Option(
            "--query", "-q", help="SQL over DuckDB; a data FILE is the view `events`, a database is attached."
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Map, validate and report; send nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Send the commerce events of FILE (or --query) as offline conversions; events already sent are skipped."""
    from audiencesync.conversions.read import ReadError, Source
    from audiencesync.conversions.report import render
    from audiencesync.conversions.run import send as run_send
    from audiencesync.conversions.settings import conversions_settings
    from audiencesync.report import emit

    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=err, show_path=False)],
    )
    try:
        cfg = load_config(config)
        settings = conversions_settings(cfg)
    except ConfigError as e:
        err.print(f"[red]{e}[/red]")
        raise typer.Exit(2) from None
    try:
        source = Source(file, query=query)
        show = not as_json and sys.stderr.isatty()
        with _progress(show, source.total() if show else None) as progress:
            report = run_send(cfg, source, settings=settings, dry_run=dry_run, progress=progress)
    except ReadError as e:
        err.print(f"[red]{e}[/red]")
        raise typer.Exit(2) from None
    raise typer.Exit(emit(report, as_json=as_json, render=render, console=console))


if __name__ == "__main__":
    app()
