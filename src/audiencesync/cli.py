"""The command-line door into the pipeline: every command here calls a stage; none re-implements one."""

from __future__ import annotations

import logging
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from audiencesync.config import Config, ConfigError, load_config, snake_case

if TYPE_CHECKING:
    from audiencesync.state.store import FacebookAudience, StateStore

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Keep Meta Custom Audiences in step with your data.")
audiences_app = typer.Typer(no_args_is_help=True, help="List or delete the Facebook audiences this project manages.")
app.add_typer(audiences_app, name="audiences")


def _mount_conversions() -> None:
    from audiencesync.conversions.cli import app as conversions_app

    app.add_typer(conversions_app, name="conversions", help="Forward offline sales to Meta's Conversions API.")


_mount_conversions()
console = Console() if sys.stdout.isatty() else Console(width=150)
err = Console(stderr=True)

ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="The YAML config file.", envvar="AUDIENCESYNC_CONFIG")]
WaitOpt = Annotated[
    float,
    typer.Option(
        "--wait",
        help="Seconds to wait for the state file while another command or `serve` uses it.",
        envvar="AUDIENCESYNC_WAIT",
    ),
]
DEFAULT_WAIT = 600.0


def _say_waiting(line: str) -> None:
    err.print(line, highlight=False, soft_wrap=True)


@contextmanager
def _state(cfg: Config, door: str, wait: float):
    """The state file for one command; a clear sentence and exit 3 if it stays in use."""
    from audiencesync.state.lease import StateBusy, lease

    try:
        with lease(cfg.state, door=door, wait_s=wait, on_wait=_say_waiting) as store:
            yield store
    except StateBusy as e:
        err.print(f"[red]{e}[/red]", highlight=False)
        raise typer.Exit(3) from None


DEFAULT_CONFIG = Path("audiencesync.yml")


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=err, show_path=False)],
    )


def _config(path: Path) -> Config:
    try:
        return load_config(path)
    except ConfigError as e:
        err.print(f"[red]{e}[/red]")
        raise typer.Exit(2) from None


@contextmanager
def _progress(enabled: bool):
    if not enabled:
        yield None
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:

        def factory(name: str, total: int):
            task = bar.add_task(name, total=max(total, 1))
            return lambda n: bar.advance(task, n)

        yield factory


@app.command()
def sync(
    config: ConfigOpt = DEFAULT_CONFIG,
    audience: Annotated[
        list[str] | None, typer.Option("--audience", "-a", help="Only this audience (repeatable).")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Plan and report; send nothing.")] = False,
    full_refresh: Annotated[
        bool, typer.Option("--full-refresh", help="Replace each audience whole (usersreplace).")
    ] = False,
    force: Annotated[
        bool,
        typer.Option("--force", help="This run only: go past the guard (empty source, too many removals)."),
    ] = False,
    recreate: Annotated[
        bool,
        typer.Option(
            "--recreate",
            help="A Facebook audience deleted or expired on Facebook is forgotten and created anew "
            "(ad sets must then be pointed at the new one).",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
    wait: WaitOpt = DEFAULT_WAIT,
) -> None:
    """Sync the configured audiences: send only what changed since the last run."""
    from audiencesync.pipeline import Interrupted
    from audiencesync.pipeline import sync as run_sync
    from audiencesync.plan.planner import PlanError
    from audiencesync.report import emit, render
    from audiencesync.state.lease import StateBusy

    _setup_logging(verbose)
    cfg = _config(config)
    try:
        with _progress(not as_json and sys.stderr.isatty()) as progress:
            report = run_sync(
                cfg,
                audiences=audience,
                dry_run=dry_run,
                full_refresh=full_refresh,
                force=force,
                progress=progress,
                wait_s=wait,
                on_wait=_say_waiting,
                recreate=recreate,
            )
    except StateBusy as e:
        err.print(f"[red]{e}[/red]", highlight=False)
        raise typer.Exit(3) from None
    except PlanError as e:
        err.print(f"[red]{e}[/red]")
        raise typer.Exit(2) from None
    except Interrupted as e:
        a = e.audience
        err.print(f"{a.name}: {a.error}.", highlight=False, soft_wrap=True)
        raise typer.Exit(130) from None
    except KeyboardInterrupt:
        err.print("interrupted (Ctrl-C) before anything was sent; the next run starts afresh.", soft_wrap=True)
        raise typer.Exit(130) from None
    raise typer.Exit(emit(report, as_json=as_json, render=render, console=console))


@app.command()
def status(
    config: ConfigOpt = DEFAULT_CONFIG,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
    wait: WaitOpt = DEFAULT_WAIT,
) -> None:
    """The Facebook audiences in the state, their members, and each audience's last run."""
    import json

    from audiencesync.state import health

    cfg = _config(config)
    with _state(cfg, "status", wait) as store:
        audiences = []
        for fb in store.facebook_audiences():
            read = health.last(store.con, fb.fb_id)
            audiences.append(
                {
                    "audience_key": fb.audience_key,
                    "name": fb.name,
                    "fb_id": fb.fb_id,
                    "kind": fb.kind,
                    "members": store.member_count(fb.fb_id),
                    "to_settle": _to_settle(store, fb),
                    "health": health.as_dict(*read) if read else None,
                }
            )
        runs = store.last_runs()
    configured = {a.key for a in cfg.audiences}
    orphans = sorted({a["audience_key"] for a in audiences} - configured)
    from audiencesync.settings.versions import meta_warnings

    warnings = meta_warnings(cfg.meta.api_version, cfg.meta.capi_version)
    if as_json:
        doc = {"facebook_audiences": audiences, "last_runs": runs, "not_in_config": orphans, "warnings": warnings}
        print(json.dumps(doc, default=str, indent=2))
        return
    for w in warnings:
        console.print(f"[yellow]warning: {w}[/yellow]", highlight=False)
    from audiencesync.report import rate_range, size_range

    table = Table("audience", "Facebook audience", "id", "kind", "members", "to settle")
    for a in audiences:
        table.add_row(a["audience_key"], a["name"], a["fb_id"], a["kind"], f"{a['members']:,}", a["to_settle"])
    console.print(table)
    read = [a for a in audiences if a["health"]]
    if read:
        health_table = Table(
            "Facebook audience", "last read", "matched", "match rate", "operation", "delivery", "warning"
        )
        for a in read:
            h = a["health"]
            health_table.add_row(
                a["name"],
                str(h["read_at"])[:19],
                size_range(h["matched_lower"], h["matched_upper"]),
                rate_range(h["match_rate_low"], h["match_rate_high"]),
                str(h["operation_status"] if h["operation_status"] is not None else "-"),
                str(h["delivery_status"] if h["delivery_status"] is not None else "-"),
                h["warning"] or "",
            )
        console.print(health_table)
    last = Table("audience", "last run", "status", "note")
    for r in runs:
        rep = r["report"] or {}
        note = rep.get("error") or "; ".join(
            f"{f['name']}: {f['message']}" for f in rep.get("facebook", []) if f.get("message")
        )
        last.add_row(r["audience_key"], str(r["finished_at"]), r["status"], note or "")
    console.print(last)
    for key in orphans:
        console.print(
            f"[yellow]{key}: no longer in the config; `audiencesync audiences delete {key}` "
            "deletes its Facebook audiences[/yellow]"
        )


def _audience_key(cfg: Config, audience: str) -> str:
    """The state's key of an audience named by key or name; one no longer configured by its name's key."""
    return next((a.key for a in cfg.audiences if audience in (a.key, a.name)), snake_case(audience))


@app.command()
def history(
    audience: Annotated[str, typer.Argument(help="The audience's key or name.")],
    config: ConfigOpt = DEFAULT_CONFIG,
    limit: Annotated[int, typer.Option("--limit", "-n", help="Reads per Facebook audience.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
    wait: WaitOpt = DEFAULT_WAIT,
) -> None:
    """What Facebook said after each run's writes: matched size and match rate, statuses, flags."""
    import json

    from audiencesync.report import rate_range, size_range
    from audiencesync.state import health

    cfg = _config(config)
    key = _audience_key(cfg, audience)
    with _state(cfg, "history", wait) as store:
        fbs = store.facebook_audiences(key)
        rows = [(fb, read_at, h) for fb in fbs for read_at, h in health.history(store.con, fb.fb_id, limit)]
    if not fbs:
        err.print(f"[red]no Facebook audience of {audience!r} in the state[/red]")
        raise typer.Exit(1)
    if as_json:
        doc = [{"kind": fb.kind, "fb_id": fb.fb_id, **health.as_dict(t, h)} for fb, t, h in rows]
        print(json.dumps(doc, default=str, indent=2))
        return
    table = Table("read at", "kind", "id", "held", "matched", "match rate", "operation", "delivery", "warning")
    for fb, read_at, h in rows:
        table.add_row(
            str(read_at)[:19],
            fb.kind,
            fb.fb_id,
            f"{h.members_held:,}",
            size_range(h.lower, h.upper),
            rate_range(*h.match_rate),
            str(h.operation_code if h.operation_code is not None else "-"),
            str(h.delivery_code if h.delivery_code is not None else "-"),
            (h.warning or "") + (f" ({', '.join(h.flagged_fields)})" if h.flagged_fields else ""),
        )
    console.print(table)


@app.command()
def rejects(
    audience: Annotated[str, typer.Argument(help="The audience's key or name.")],
    config: ConfigOpt = DEFAULT_CONFIG,
    run_id: Annotated[str | None, typer.Option("--run", help="This run's rejects (default: the latest run's).")] = None,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV with run, time, primary key, key, reason.")] = False,
    wait: WaitOpt = DEFAULT_WAIT,
) -> None:
    """Source rows whose match-key values Facebook would not take: primary key, key and reason (never the value)."""
    import csv

    from audiencesync.state import rejects as rejects_state

    cfg = _config(config)
    key = _audience_key(cfg, audience)
    with _state(cfg, "rejects", wait) as store:
        found = rejects_state.runs(store.con, key)
        rows = rejects_state.listing(store.con, key, run_id)
    if run_id is not None and run_id not in {r[0] for r in found}:
        err.print(f"[red]no rejected rows kept for run {run_id!r} of {audience!r}[/red]")
        raise typer.Exit(1)
    if as_csv:
        out = csv.writer(sys.stdout)
        out.writerow(["run_id", "rejected_at", "primary_key", "key", "reason"])
        out.writerows([r.run_id, r.rejected_at.isoformat(timespec="seconds"), r.pk, r.key, r.reason] for r in rows)
        return
    if not rows:
        console.print(f"no rejected rows kept for {audience!r} (kept for {cfg.rejects.retention_days} days)")
        return
    console.print(f"run {rows[0].run_id} ({str(rows[0].rejected_at)[:19]}): {len(rows):,} rejected values")
    table = Table("primary key", "key", "reason")
    for r in rows:
        table.add_row(r.pk, r.key, r.reason)
    console.print(table)
    if len(found) > 1:
        others = ", ".join(f"{rid} ({n:,})" for rid, _, n in found if rid != rows[0].run_id)
        console.print(f"other runs with rejects (--run ID): {others}", highlight=False)


def _to_settle(store: StateStore, fb: FacebookAudience) -> str:
    """What the next sync does before anything else, so `status` never looks clean when it is not."""
    notes = []
    unknown = store.ledger.pending_count(fb.fb_id, "add") + store.ledger.pending_count(fb.fb_id, "remove")
    if unknown:
        notes.append(f"{unknown:,} rows sent without a recorded answer: re-sent next run")
    if store.ledger.replace_session(fb.fb_id):
        notes.append("a replace session was interrupted: resumed next run")
    elif fb.replace_pending:
        notes.append("contents unknown to this state: replaced by the next mirror run")
    return "; ".join(notes)


@audiences_app.command("list")
def audiences_list(config: ConfigOpt = DEFAULT_CONFIG, wait: WaitOpt = DEFAULT_WAIT) -> None:
    """Facebook audiences on the ad account, marking the ones this project manages."""
    from audiencesync.load.graph import GraphClient, GraphError

    cfg = _config(config)
    with _state(cfg, "audiences list", wait) as store:
        ours = {fb.fb_id: fb for fb in store.facebook_audiences()}
    with GraphClient(cfg.meta) as client:
        table = Table("id", "name", "managed as", "approx. members")
        try:
            for ca in client.list_custom_audiences(["id", "name", "approximate_count_lower_bound"]):
                fb = ours.get(str(ca["id"]))
                table.add_row(
                    str(ca["id"]),
                    ca.get("name", ""),
                    f"{fb.audience_key}/{fb.kind}" if fb else "-",
                    str(ca.get("approximate_count_lower_bound", "")),
                )
        except GraphError as e:
            err.print(f"[red]{e.explain()}[/red]")
            raise typer.Exit(1) from None
        console.print(table)


@audiences_app.command("delete")
def audiences_delete(
    name: Annotated[str, typer.Argument(help="The audience's key or name.")],
    config: ConfigOpt = DEFAULT_CONFIG,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
    wait: WaitOpt = DEFAULT_WAIT,
) -> None:
    """Delete an audience's Facebook audiences (permanent: ads using them stop)."""
    from audiencesync.config import snake_case
    from audiencesync.load.audiences import delete_audience
    from audiencesync.load.graph import GraphClient

    cfg = _config(config)
    with _state(cfg, "audiences delete", wait) as store, GraphClient(cfg.meta) as client:
        keys = {fb.audience_key for fb in store.facebook_audiences()}
        key = name if name in keys else snake_case(name)
        if key not in keys:
            match = [a.key for a in cfg.audiences if a.name == name]
            key = match[0] if match else key
        if key not in keys:
            err.print(f"[red]no Facebook audiences recorded for {name!r}[/red]")
            raise typer.Exit(1)
        if any(a.key == key for a in cfg.audiences):
            err.print(f"[yellow]{name!r} is still in the config: the next sync would create it again[/yellow]")
        if not yes and not typer.confirm(f"Delete the Facebook audiences of {key!r}?"):
            raise typer.Exit(1)
        failed = False
        for fb_name, fb_id, problem in delete_audience(client, store, key):
            if problem:
                failed = True
                err.print(f"[red]{fb_name} ({fb_id}): {problem}[/red]")
            else:
                console.print(f"deleted {fb_name} ({fb_id})")
        raise typer.Exit(1 if failed else 0)


@app.command()
def run(
    config: ConfigOpt = DEFAULT_CONFIG,
    once: Annotated[
        bool, typer.Option("--once", help="Sync every scheduled audience once and exit (for cron beside `serve`).")
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Run each audience on its `schedule` (a cron expression or an interval like 15m), until stopped.

    `serve` runs the same schedules itself; `run` is for deployments without a stream."""
    from audiencesync.report import render
    from audiencesync.schedule import Scheduler, run_forever

    _setup_logging(verbose)
    cfg = _config(config)
    if not once:
        run_forever(cfg, console)
        return
    scheduler = Scheduler(cfg, on_report=lambda report: render(report, console))
    for key in scheduler.audiences:
        scheduler.run_now(key)
    scheduler.read_health()
    failed = [k for k, r in scheduler.state.items() if r.consecutive_failures]
    raise typer.Exit(1 if failed else 0)


@app.command()
def serve(config: ConfigOpt = DEFAULT_CONFIG) -> None:
    """Accept Segment, mParticle and plain membership calls; sync stream audiences within seconds."""
    from audiencesync.stream.cli import serve_command

    serve_command(config)


@app.command()
def ui(
    config: ConfigOpt = DEFAULT_CONFIG,
    host: Annotated[str | None, typer.Option(help="Interface to listen on (default ui.host, 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (default ui.port, 8089).")] = None,
    read_only: Annotated[bool, typer.Option("--read-only", help="No 'sync now' or 'dry run' buttons.")] = False,
) -> None:
    """The web dashboard on the state file, for deployments without `serve` (which serves it at `/`)."""
    from audiencesync.ui.server import serve_dashboard

    serve_dashboard(_config(config), host=host, port=port, read_only=read_only)


@app.command()
def emulator(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8787,
    token: Annotated[str, typer.Option(help="The access token the emulator accepts.")] = "emulator-token",
    app_secret: Annotated[str | None, typer.Option(help="When set, appsecret_proof is required.")] = None,
    state: Annotated[Path | None, typer.Option(help="Keep the emulator's audiences in this file.")] = None,
) -> None:
    """Run the local Graph API emulator (Custom Audiences and the Conversions API)."""
    from audiencesync.emulator.server import serve

    serve(host=host, port=port, token=token, app_secret=app_secret, state_path=str(state) if state else None)


@app.command()
def demo(
    workdir: Annotated[Path, typer.Option(help="Where the demo writes its data, config and state.")] = Path(
        "demo-output"
    ),
    customers: Annotated[int, typer.Option(help="How many sample customers.")] = 2000,
) -> None:
    """Sample data, the local emulator, a real sync, a change, a second sync, both reports."""
    from audiencesync.demo import run_demo

    raise typer.Exit(run_demo(workdir, customers, console))


@app.command()
def version() -> None:
    """Print the installed version."""
    from audiencesync import __version__

    console.print(__version__)


def main() -> None:
    os.environ.setdefault("PYTHONIOENCODING", "utf-8")
    app()


if __name__ == "__main__":
    main()
