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
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from audiencesync.config import ConfigError, load_config

if TYPE_CHECKING:
    from audiencesync.conversions.report import ConversionReport

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
    wait: Annotated[
        float,
        typer.Option(
            "--wait",
            help="Seconds to wait for the state file while `serve` or a sync uses it.",
            envvar="AUDIENCESYNC_WAIT",
        ),
    ] = 600.0,
) -> None:
    """Send the commerce events of FILE (or --query) as offline conversions; events already sent are skipped."""
    from audiencesync.conversions.read import ReadError, Source
    from audiencesync.conversions.report import render
    from audiencesync.conversions.run import Interrupted
    from audiencesync.conversions.run import send as run_send
    from audiencesync.conversions.settings import conversions_settings
    from audiencesync.report import emit
    from audiencesync.state.lease import StateBusy

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
            report = run_send(
                cfg,
                source,
                settings=settings,
                dry_run=dry_run,
                progress=progress,
                wait_s=wait,
                on_wait=lambda line: err.print(line, highlight=False, soft_wrap=True),
            )
    except StateBusy as e:
        err.print(f"[red]{e}[/red]", highlight=False)
        raise typer.Exit(3) from None
    except ReadError as e:
        err.print(f"[red]{e}[/red]")
        raise typer.Exit(2) from None
    except KeyboardInterrupt as e:
        err.print(interrupted_line(e.report if isinstance(e, Interrupted) else None), soft_wrap=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    raise typer.Exit(emit(report, as_json=as_json, render=render, console=console))


EXIT_INTERRUPTED = 130
"""128 + SIGINT, what a shell reports for a command stopped by Ctrl-C."""


def interrupted_line(report: ConversionReport | None) -> str:
    """One line for Ctrl-C: how much Facebook has (recorded, so never sent twice) and what happens next."""
    if report is None:
        return "interrupted before any event was sent"
    if report.dry_run:
        return "interrupted: dry run, nothing was sent"
    return f"interrupted: {report.sent:,} events sent and recorded; the next run skips them and sends the rest"


if __name__ == "__main__":
    app()
