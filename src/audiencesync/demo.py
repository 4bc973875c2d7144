"""The README's demo: sample data, the local Graph API emulator, a real sync, a change, a re-sync.

Everything runs through the same doors a user has: a config file on disk, `load_config`, the
pipeline's `sync`, the emulator over real HTTP on 127.0.0.1. Nothing here is a shortcut.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from rich.console import Console

from audiencesync.config import load_config

CONFIG = """\
meta:
  graph_url: {url}
  api_version: v26.0
  access_token: ${{META_ACCESS_TOKEN}}
  ad_account_id: "1234567890"
state: state.duckdb
sources:
  crm:
    type: duckdb
audiences:
  - name: VIP customers
    source: crm
    query: select * from read_csv('{csv}', all_varchar = true)
    primary_key: customer_id
    customer_file_source: USER_PROVIDED_ONLY
    forward: [email, phone, mobile_ad_id]
    multi_key: true
    match_on_attributes: true
    external_id: customer_id
    default_country: US
    mode: mirror
    min_size: 100
  - name: High value customers
    source: crm
    query: select * from read_csv('{csv}', all_varchar = true) where try_cast(ltv as double) >= 100
    primary_key: customer_id
    customer_file_source: USER_PROVIDED_ONLY
    multi_key: true
    default_country: US
    value: {{column: ltv, allow_zero: false}}
    min_size: 50
"""


def run_demo(workdir: Path, customers: int, console: Console) -> int:
    from audiencesync.emulator import EmulatorServer
    from audiencesync.matchkeys import match_table
    from audiencesync.matchkeys.report import describe_match
    from audiencesync.pipeline import sync
    from audiencesync.report import render
    from audiencesync.samples import generate_customers

    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    for stale in ("state.duckdb", "state.duckdb.wal"):
        (workdir / stale).unlink(missing_ok=True)
    csv = workdir / "customers.csv"
    table = generate_customers(customers, seed=7)
    pacsv.write_csv(table, csv)
    console.rule(f"1. {customers:,} messy sample customers written to {csv}")
    console.print(describe_match(match_table(table, default_country="US")))

    with EmulatorServer() as emu:
        console.rule(f"2. Local Graph API emulator at {emu.url}")
        config_path = workdir / "audiencesync.yml"
        config_path.write_text(CONFIG.format(url=emu.url, csv=csv))
        env = {**os.environ, "META_ACCESS_TOKEN": emu.token}
        cfg = load_config(config_path, env=env)

        console.rule("3. First sync: every member is new")
        first = sync(cfg)
        render(first, console)

        changed = _change(table, seed=11)
        pacsv.write_csv(changed, csv)
        console.rule("4. The source changed (customers left, changed email, joined): incremental sync")
        second = sync(cfg)
        render(second, console)

        console.rule("5. Nothing changed: a re-sync sends nothing")
        third = sync(cfg)
        render(third, console)

        console.rule("6. The emulator's audiences against the state")
        ok = _compare(emu.url, cfg.state, console)
    console.print(f"\nconfig: {config_path}\nstate:  {cfg.state}")
    console.print(
        "\nOpen the dashboard on this state (it prints its address and a one-time password):\n"
        f"  META_ACCESS_TOKEN={emu.token} .venv/bin/audiencesync ui --config {config_path}",
        highlight=False,
        soft_wrap=True,
    )
    return 0 if (first.ok and second.ok and third.ok and ok) else 1


def _change(table: pa.Table, seed: int) -> pa.Table:
    """Drop 8% of customers, give 5% a new email, and add 6% new ones."""
    from audiencesync.samples import generate_customers

    rng = random.Random(seed)
    n = table.num_rows
    keep = pa.array([rng.random() >= 0.08 for _ in range(n)])
    kept = table.filter(keep)
    emails = kept["email"].to_pylist()
    for i in range(len(emails)):
        if rng.random() < 0.05:
            emails[i] = f"changed.{i}.{rng.randrange(10**6)}@example.net"
    kept = kept.set_column(kept.schema.get_field_index("email"), "email", pa.array(emails, kept["email"].type))
    fresh = generate_customers(max(1, n * 6 // 100), seed=seed + 1000)
    fresh = fresh.set_column(0, "customer_id", pc.add(fresh["customer_id"], 10_000_000))
    return pa.concat_tables([kept, fresh.select(kept.column_names).cast(kept.schema)])


def _compare(url: str, state_path: str, console: Console) -> bool:
    from audiencesync.state import StateStore

    audiences = httpx.get(f"{url}/_emulator/audiences").json()
    audiences = audiences.get("data", audiences) if isinstance(audiences, dict) else audiences
    ok = True
    with StateStore(state_path) as store:
        for fb in store.facebook_audiences():
            members = httpx.get(f"{url}/_emulator/audiences/{fb.fb_id}/members", params={"count_only": 1}).json()
            on_fb = members.get("count", members.get("member_count"))
            expected = store.member_count(fb.fb_id)
            same = on_fb == expected
            ok &= same
            mark = "[green]equal[/green]" if same else "[red]DIFFERENT[/red]"
            console.print(f"  {fb.name:<34} emulator {on_fb!s:>6}  state {expected:>6}  {mark}")
    return ok
