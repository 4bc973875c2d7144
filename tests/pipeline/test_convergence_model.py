"""Model-based tests of the sync's promise: after a clean run, every Facebook audience holds exactly
what the source says it should, whatever happened before (issue 9).

Two hypothesis state machines play the world against the emulator, one per door:

`BatchMachine` (`pipeline.sync` over a CSV): one configured audience, "Chaos", that becomes two
Facebook audiences, `Chaos (email)` (one hashed email per member) and `Chaos` (multi-key rows of
EXTERN_ID, EMAIL, PHONE, MADID). Its rules are what users and the world do:

- members join, leave, change their email or phone (or lose their email), come back unchanged or
  changed;
- a run goes wrong (`Trouble`): ONE Facebook audience fails on its adds (POST) or its removals
  (DELETE) with a permanent error (200 permission, 190/463 expired token), a transient one past
  the retry budget (code 2, HTML 502, connection dropped before the request was applied), a lost
  acknowledgement (`drop: after`: applied, answer lost) past the budget or once, or throttling
  within the budget; or the process dies after some acknowledged batches (`after_batch` raises);
- a bad export drops some members for one run that goes wrong, then the same members are back;
- the mode switches between mirror and upsert; a full refresh; the state file is lost;
- a bad export drops more than half of the members: the guard must refuse that mirror run without
  `force` and leave Facebook as it was (only where `sync` has `force`; every other run passes
  `force=True` with the guard at its defaults).

`StreamMachine` (the `serve` door: Segment identify calls → the durable queue → the flusher's
`pipeline.sync(..., include_stream=True)` over `st.stream_members`): users enter, leave, change
their email, come back with the same or new traits; flushes run in the same kinds of trouble.

After trouble the faults are cleared but nothing is checked. The invariant is checked only after a
CLEAN run (no fault armed, no crash), and once more by a last clean run when an example ends,
against the emulator's members read over HTTP (`/_emulator/audiences/{id}/members`), never
against our own state file. What Facebook must hold then (`Model`):

- mirror (and the stream door): exactly the rows the current source requires, also right after
  the state file was lost (the next mirror run is expected to replace the audiences);
- upsert: members present have exactly their current rows (a changed member's old rows are gone);
  members who left keep the rows of their last clean sync. Where the world made that ambiguous (a
  run in trouble saw the member with other rows, or could remove them because it ran in mirror
  mode or as a full refresh, or the state file was lost), those rows are allowed, not required;
- a full refresh replaces each audience with what the source requires; upsert leavers' rows are
  then allowed, not required. So after a full refresh that went wrong, which the next run may
  finish.

Expected rows come from `matchkeys.match_value`, as `tests/test_convergence.py` computes them.

Each run of the suite explores new histories (20 batch and 8 stream examples of up to 10 and 8
steps, with batches of 7 rows); a pass takes well under a minute. A failure is printed as the steps
that lead to it; hypothesis shrinks each distinct failure for up to a few minutes first (hence the
long timeouts) and replays it first on the next run (`.hypothesis/`). `KNOWN` replays the failing
examples found so far, step by step, as deterministic regressions; a newly printed one can be
pasted there as it is.
"""

from __future__ import annotations

import ast
import contextlib
import inspect
import math
import os
import random
import shutil
import sys
import tempfile
import textwrap
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, ClassVar, Literal

import httpx
import pytest
import yaml
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule, run_state_machine_as_test

from audiencesync import matchkeys, pipeline
from audiencesync.config import Config, load_config
from audiencesync.load.graph import GraphClient
from audiencesync.plan import planner
from audiencesync.report import RunReport

Mode = Literal["mirror", "upsert"]
Kind = Literal["email", "multi"]
KINDS: tuple[Kind, ...] = ("email", "multi")
Rows = dict[Kind, set[Any]]
"""Per Facebook audience, its rows: hashed emails, or frozensets of (key, value) pairs."""

ATTEMPTS = 3
"""The retry budget here (meta.retry.max_attempts)."""
IN_FLIGHT = 2
"""meta.max_in_flight: two batches of an audience travel at once."""
PAST_BUDGET = ATTEMPTS * IN_FLIGHT
"""A fault firing this many times outlasts the budget of every request in flight."""

HAS_FORCE = "force" in inspect.signature(pipeline.sync).parameters
"""`sync(cfg, force=True)` runs past the guard (a mirror run removing more than half of an audience,
or reading an empty source). Before the guard existed, `force` did not either; the guard rule then
never runs."""

FAULTS: dict[str, dict[str, Any]] = {
    "permission error 200": {"error": {"code": 200}, "count": 1},
    "expired token 190/463": {"error": {"code": 190, "error_subcode": 463}, "count": 1},
    "transient code 2 past the retry budget": {
        "error": {"code": 2, "message": "Service temporarily unavailable", "is_transient": True},
        "count": PAST_BUDGET,
    },
    "HTML 502 past the retry budget": {"http_status": 502, "count": PAST_BUDGET},
    "dropped before applying, past the retry budget": {"drop": "before", "count": PAST_BUDGET},
    "lost acknowledgement past the retry budget": {"drop": "after", "count": PAST_BUDGET},
    "lost acknowledgement once (retried)": {"drop": "after", "count": 1},
    "throttled once": {"throttle": True, "regain_minutes": 0, "count": 1},
}

SEEDS = st.integers(min_value=0, max_value=2**16)


# -- trouble: what makes a run stop part-way -----------------------------------------------------


@dataclass(frozen=True)
class Fault:
    """A fault armed on ONE Facebook audience's adds (POST) or removals (DELETE)."""

    audience: Kind
    method: Literal["POST", "DELETE"]
    fault: str


@dataclass(frozen=True)
class CrashAfter:
    """The process dies after this many acknowledged batches."""

    batches: int


Trouble = Fault | CrashAfter

TROUBLE = st.one_of(
    st.builds(Fault, st.sampled_from(KINDS), st.sampled_from(["POST", "DELETE"]), st.sampled_from(sorted(FAULTS))),
    st.builds(CrashAfter, st.integers(min_value=1, max_value=6)),
)


class Crash(Exception):
    """Stands for the process dying between two acknowledged batches."""


def crash_after(n: int) -> Callable[[], None]:
    """An `after_batch` callback that raises Crash at the n-th acknowledged batch."""
    acked = 0

    def after_batch() -> None:
        nonlocal acked
        acked += 1
        if acked >= n:
            raise Crash()

    return after_batch


# -- the emulator, over HTTP ------------------------------------------------------------------------


class Facebook:
    """The emulator's audiences and members, and its fault plan, over one HTTP client (a new httpx
    client builds a TLS context: 60 ms each call)."""

    def __init__(self, url: str):
        self.http = httpx.Client(base_url=url, timeout=30)

    def reset(self) -> None:
        self.http.post("/_emulator/reset").raise_for_status()

    def fault(self, rule: dict[str, Any]) -> None:
        self.http.post("/_emulator/faults", json=rule).raise_for_status()

    def clear_faults(self) -> None:
        self.http.delete("/_emulator/faults").raise_for_status()

    def let_time_pass(self, seconds: float) -> None:
        self.http.post("/_emulator/clock", json={"advance_s": seconds}).raise_for_status()

    def ids(self, names: dict[Kind, str]) -> dict[Kind, str]:
        """The live audience of each name; a twin (two of one name) fails the test."""
        body = self.http.get("/_emulator/audiences").json()
        live = [a for a in (body["audiences"] if isinstance(body, dict) else body) if not a.get("deleted")]
        ids: dict[Kind, str] = {}
        for kind, name in names.items():
            found = [a["id"] for a in live if a.get("name") == name]
            assert len(found) <= 1, f"{len(found)} live Facebook audiences named {name!r} (a twin was created)"
            if found:
                ids[kind] = found[0]
        return ids

    def rows(self, names: dict[Kind, str]) -> Rows:
        out: Rows = {"email": set(), "multi": set()}
        for kind, fb_id in self.ids(names).items():
            r = self.http.get(f"/_emulator/audiences/{fb_id}/members")
            r.raise_for_status()
            members = r.json()["members"]
            out[kind] = {m["EMAIL"] for m in members} if kind == "email" else {frozenset(m.items()) for m in members}
        return out


# -- members and the rows Facebook should hold for them ------------------------------------------


@dataclass(frozen=True)
class Person:
    """One member's source row; every value is unique to its member, so no two share a row."""

    cid: str
    email: str
    phone: str = ""
    idfa: str = ""


@cache
def rows_of(p: Person) -> tuple[str | None, frozenset[tuple[str, str]]]:
    """The email audience's row (a hashed email, or None) and the multi-key audience's row."""
    email = matchkeys.match_value("EMAIL", p.email)
    phone = matchkeys.match_value("PHONE", p.phone, country="US")
    madid = matchkeys.match_value("MADID", p.idfa)
    extern = matchkeys.match_value("EXTERN_ID", p.cid)
    multi = {k: v for k, v in (("EXTERN_ID", extern), ("EMAIL", email), ("PHONE", phone), ("MADID", madid)) if v}
    return (str(email) if email else None), frozenset((k, str(v)) for k, v in multi.items())


def rows(people: Iterable[Person]) -> Rows:
    out: Rows = {"email": set(), "multi": set()}
    for p in people:
        email, multi = rows_of(p)
        if email:
            out["email"].add(email)
        out["multi"].add(multi)
    return out


@dataclass
class Model:
    """What the source holds, and what Facebook must (and may) hold after the next clean run."""

    mode: Mode = "mirror"
    source: dict[str, Person] = field(default_factory=dict)
    gone: dict[str, Person] = field(default_factory=dict)
    """Members who left, with their last row: they may come back."""
    settled: dict[str, Person] = field(default_factory=dict)
    """Per member, the row Facebook holds after the last clean run (upsert leavers included)."""
    maybe: set[Person] = field(default_factory=set)
    """Rows Facebook may or may not hold (upsert only; a clean mirror run clears them)."""
    seen: dict[str, set[Person]] = field(default_factory=dict)
    """The rows runs in trouble saw per member since the last clean run."""
    exposed: set[str] = field(default_factory=set)
    """Members absent from a run in trouble that could remove them (mirror or full refresh)."""
    state_lost: bool = False
    replace_pending: bool = False
    """A full refresh went wrong: the next run may finish it, replacing with the source of then."""

    def attempted(self, full: bool) -> None:
        """A run that may have stopped anywhere, having sent any part of its plan."""
        for pk, p in self.source.items():
            self.seen.setdefault(pk, set()).add(p)
        if self.mode == "mirror" or full:
            self.exposed |= (self.settled.keys() | self.seen.keys()) - self.source.keys()
        self.replace_pending |= full

    def settle(self, full: bool) -> None:
        """A clean run finished: Facebook now holds `required()`, and at most `allowed()`."""
        full = full or self.replace_pending
        if self.mode == "mirror":
            self.settled, self.maybe = dict(self.source), set()
        else:
            kept: dict[str, Person] = {}
            for pk, p in self.settled.items():
                seen = self.seen.get(pk, set())
                if pk in self.source:
                    if self.state_lost:  # old rows that no state file knows any more
                        self.maybe |= ({p} | seen) - {self.source[pk]}
                elif full or self.state_lost or pk in self.exposed or seen - {p}:
                    self.maybe |= {p} | seen
                else:
                    kept[pk] = p
            for pk, seen in self.seen.items():
                if pk not in self.source and pk not in self.settled:
                    self.maybe |= seen  # joined and left between clean runs; trouble may have sent them
            self.settled = {**kept, **self.source}
        self.seen, self.exposed, self.state_lost, self.replace_pending = {}, set(), False, False

    def required(self) -> Rows:
        return rows(self.settled.values())

    def allowed(self) -> Rows:
        req, extra = self.required(), rows(self.maybe)
        return {k: req[k] | extra[k] for k in KINDS}


# -- what both machines share ---------------------------------------------------------------------


class Door(RuleBasedStateMachine):
    """Helpers shared by both machines (no rules here): the example's directory, the emulator, the
    check. `emu` and `base` are bound per test by `bind`."""

    emu: ClassVar[Any] = None
    base: ClassVar[Path] = Path()
    names: ClassVar[dict[Kind, str]] = {}

    def __init__(self) -> None:
        super().__init__()
        self.fb = Facebook(self.emu.url)
        self.fb.reset()  # the emulator outlives the examples
        self.root = Path(tempfile.mkdtemp(dir=self.base))
        self.serial = 0
        self.owner: dict[Any, str] = {}

    def close(self) -> None:
        self.fb.http.close()
        shutil.rmtree(self.root, ignore_errors=True)

    def remember(self, p: Person) -> Person:
        """Note whose rows these are, to name members in a failure."""
        self.owner.update(dict.fromkeys(filter(None, rows_of(p)), p.cid))
        return p

    def next_serial(self) -> int:
        self.serial += 1
        return self.serial

    def arm(self, trouble: Trouble) -> Callable[[], None] | None:
        """Arm a Fault on its one Facebook audience (its id in the path); a CrashAfter becomes the
        `after_batch` callback to pass."""
        if isinstance(trouble, CrashAfter):
            return crash_after(trouble.batches)
        fb_id = self.fb.ids(self.names).get(trouble.audience)
        if fb_id is not None:
            self.fb.fault({"method": trouble.method, "path": rf"^/{fb_id}/users(replace)?$", **FAULTS[trouble.fault]})
        return None

    def who(self, found: set[Any]) -> str:
        names = sorted(self.owner.get(r, "?") for r in found)
        return ", ".join(names[:8]) + (f", … ({len(names)} in all)" if len(names) > 8 else "")

    def check(self, need: Rows, may: Rows, after: str) -> None:
        """Facebook holds every row of `need`, and nothing outside `may`."""
        got = self.fb.rows(self.names)
        problems = []
        for kind in KINDS:
            missing, extra = need[kind] - got[kind], got[kind] - may[kind]
            if missing:
                problems.append(f"{self.names[kind]!r} lacks {len(missing)} row(s) of: {self.who(missing)}")
            if extra:
                problems.append(f"{self.names[kind]!r} holds {len(extra)} row(s) it should not, of: {self.who(extra)}")
        assert not problems, f"after {after}: " + "; ".join(problems)

    def pick(self, pool: dict[str, Any], share: float, seed: int, at_least: int = 1) -> list[str]:
        keys = sorted(pool)
        n = min(len(keys), max(at_least, math.ceil(len(keys) * share)))
        return random.Random(seed).sample(keys, n)


def meta_settings(emu: Any) -> dict[str, Any]:
    return {
        "graph_url": emu.url,
        "access_token": "${META_ACCESS_TOKEN}",
        "ad_account_id": "act_1234567890",
        "max_in_flight": IN_FLIGHT,
        "retry": {"base_delay_s": 0.001, "max_delay_s": 0.01, "max_attempts": ATTEMPTS},
    }


# -- the batch door ---------------------------------------------------------------------------------


class BatchMachine(Door):
    """`pipeline.sync` over a CSV source; see the module docstring."""

    names: ClassVar[dict[Kind, str]] = {"email": "Chaos (email)", "multi": "Chaos"}

    def __init__(self) -> None:
        super().__init__()
        self.csv = self.root / "customers.csv"
        self.model = Model()
        self.verified = False
        self.cfg = self.config()
        self.client = GraphClient(self.cfg.meta)  # one per example, for its TLS context's 60 ms

    def teardown(self) -> None:
        """The example's last run is a clean one too: check it, unless a step already failed."""
        try:
            if sys.exc_info()[1] is None:
                self.clean_run()
        finally:
            self.client.close()
            self.close()

    # -- helpers ----------------------------------------------------------------------------------

    def config(self) -> Config:
        """The minimal config: an email audience and a multi-key one, no attributes, min_size 1."""
        doc: dict[str, Any] = {
            "meta": meta_settings(self.emu),
            "state": "state.duckdb",
            "sources": {"crm": {"type": "duckdb"}},
            "audiences": [
                {
                    "name": "Chaos",
                    "source": "crm",
                    "query": f"select * from read_csv('{self.csv}', all_varchar = true)",
                    "primary_key": "customer_id",
                    "external_id": "customer_id",
                    "customer_file_source": "USER_PROVIDED_ONLY",
                    "default_country": "US",
                    "forward": ["email"],
                    "multi_key": True,
                    "min_size": 1,
                    "mode": self.model.mode,
                }
            ],
        }
        if HAS_FORCE:
            doc["guard"] = {"max_remove_share": 0.5, "allow_empty": False}  # the defaults, written out
        path = self.root / "audiencesync.yml"
        path.write_text(yaml.safe_dump(doc))
        return load_config(path, env={"META_ACCESS_TOKEN": self.emu.token})

    def new_person(self, cid: str | None = None) -> Person:
        n = self.next_serial()
        p = Person(
            cid or f"C{n:05d}", f"m{n}@example.com", f"+1 415 555 {n:04d}", f"{n:08x}-0000-4000-8000-000000000001"
        )
        return self.remember(p)

    def write_source(self) -> None:
        lines = ["customer_id,email,phone,idfa"]
        lines += [f"{p.cid},{p.email},{p.phone},{p.idfa}" for p in self.model.source.values()]
        self.csv.write_text("\n".join(lines) + "\n")
        self.verified = False

    def run(self, *, force: bool = True, **kw: Any) -> RunReport:
        if HAS_FORCE:
            kw["force"] = force
        return pipeline.sync(self.cfg, client=self.client, **kw)

    def troubled_run(self, trouble: Trouble, full: bool = False) -> None:
        """A run that may stop anywhere; nothing is checked after it."""
        after_batch = self.arm(trouble)
        self.model.attempted(full)
        self.verified = False
        try:
            with contextlib.suppress(Crash):
                self.run(full_refresh=full, after_batch=after_batch)
        finally:
            self.fb.clear_faults()

    def clean_run(self, full: bool = False) -> None:
        """No fault armed, no crash: the run must succeed and Facebook must equal the model."""
        self.fb.clear_faults()
        report = self.run(full_refresh=full)
        if self.model.state_lost and any("1870145" in (a.error or "") for a in report.audiences):
            # A replace session the lost state file had open: nothing can write until Facebook
            # closes it (90 minutes). The run must say so (checked here), and converge after.
            assert all("Nothing was lost: run again after that" in (a.error or "") for a in report.audiences)
            self.fb.let_time_pass(91 * 60)
            report = self.run(full_refresh=full)
        assert report.ok, f"a clean run failed: {[(a.status, a.error) for a in report.audiences]}"
        self.model.settle(full)
        what = f"a clean {self.model.mode} run" + (" (full refresh)" if full else "")
        self.check(self.model.required(), self.model.allowed(), what)
        self.verified = True

    # -- the world ---------------------------------------------------------------------------------

    @initialize(n=st.integers(min_value=20, max_value=40), mode=st.sampled_from(["mirror", "upsert"]))
    def start(self, n: int, mode: Mode) -> None:
        self.model.mode = mode
        self.cfg = self.config()
        for _ in range(n):
            p = self.new_person()
            self.model.source[p.cid] = p
        self.write_source()
        self.clean_run()

    @rule(n=st.integers(min_value=1, max_value=8))
    def join(self, n: int) -> None:
        for _ in range(n):
            p = self.new_person()
            self.model.source[p.cid] = p
        self.write_source()

    @precondition(lambda self: len(self.model.source) > 1)
    @rule(share=st.sampled_from([0.1, 0.2, 0.3]), seed=SEEDS)
    def leave(self, share: float, seed: int) -> None:
        for pk in self.pick(self.model.source, share, seed):
            self.model.gone[pk] = self.model.source.pop(pk)
        self.write_source()

    @precondition(lambda self: self.model.source)
    @rule(key=st.sampled_from(["email", "phone", "email removed"]), share=st.sampled_from([0.1, 0.3]), seed=SEEDS)
    def change_keys(self, key: str, share: float, seed: int) -> None:
        for pk in self.pick(self.model.source, share, seed):
            p, fresh = self.model.source[pk], self.new_person(pk)
            if key == "email":
                p = Person(pk, fresh.email, p.phone, p.idfa)
            elif key == "phone":
                p = Person(pk, p.email, fresh.phone, p.idfa)
            else:
                p = Person(pk, "", p.phone, p.idfa)
            self.model.source[pk] = self.remember(p)
        self.write_source()

    @precondition(lambda self: self.model.gone)
    @rule(changed=st.booleans(), share=st.sampled_from([0.5, 1.0]), seed=SEEDS)
    def come_back(self, changed: bool, share: float, seed: int) -> None:
        for pk in self.pick(self.model.gone, share, seed):
            p = self.model.gone.pop(pk)
            if changed:
                fresh = self.new_person(pk)
                p = self.remember(Person(pk, fresh.email, fresh.phone, p.idfa))
            self.model.source[pk] = p
        self.write_source()

    @rule(mode=st.sampled_from(["mirror", "upsert"]))
    def switch_mode(self, mode: Mode) -> None:
        self.model.mode = mode
        self.cfg = self.config()
        self.verified = False

    @rule()
    def lose_the_state_file(self) -> None:
        for name in ("state.duckdb", "state.duckdb.wal"):
            (self.root / name).unlink(missing_ok=True)
        self.model.state_lost = True
        self.verified = False

    # -- runs in trouble ------------------------------------------------------------------------

    @rule(trouble=TROUBLE, full=st.booleans())
    def run_in_trouble(self, trouble: Trouble, full: bool) -> None:
        self.troubled_run(trouble, full)

    @precondition(lambda self: len(self.model.source) > 1)
    @rule(share=st.sampled_from([0.2, 0.4]), seed=SEEDS, trouble=TROUBLE)
    def one_bad_export_in_trouble(self, share: float, seed: int, trouble: Trouble) -> None:
        """A bad export drops some members for one run, which goes wrong; then the export is fixed
        and the same members are back, unchanged."""
        dropped = self.pick(self.model.source, share, seed)
        whole = dict(self.model.source)
        self.model.source = {pk: p for pk, p in whole.items() if pk not in dropped}
        self.write_source()
        self.troubled_run(trouble)
        self.model.source = whole
        self.write_source()

    @precondition(lambda self: HAS_FORCE and self.verified and self.model.mode == "mirror")
    @rule(share=st.sampled_from([0.6, 0.8, 1.0]), seed=SEEDS, fixed=st.booleans())
    def bad_export_is_refused(self, share: float, seed: int, fixed: bool) -> None:
        """Without force, a mirror run that would remove more than half of an audience (or read an
        empty source) is refused, and Facebook is left as it was."""
        before = self.fb.rows(self.names)
        dropped = self.pick(self.model.source, share, seed, at_least=len(self.model.source) // 2 + 1)
        whole = dict(self.model.source)
        self.model.source = {pk: p for pk, p in whole.items() if pk not in dropped}
        self.write_source()
        report = self.run(force=False)
        statuses = [a.status for a in report.audiences]
        assert statuses and all(s in ("failed", "refused") for s in statuses), f"not refused: {statuses}"
        assert self.fb.rows(self.names) == before, "a refused run changed Facebook"
        if fixed:  # the export is fixed: the same members are back, unchanged
            self.model.source = whole
            self.write_source()
            self.verified = True
        else:  # they really left
            self.model.gone.update({pk: whole[pk] for pk in dropped})

    # -- clean runs: the invariant --------------------------------------------------------------

    @rule()
    def sync_clean(self) -> None:
        self.clean_run()

    @rule()
    def full_refresh(self) -> None:
        self.clean_run(full=True)


# -- the stream door --------------------------------------------------------------------------------

STREAM_KEY = "order_completed_last_30days"


def identify(uid: str, member: bool, email: str | None = None) -> dict[str, Any]:
    """A Segment Engage identify call: `uid` enters (or leaves) the audience, with an email trait."""
    return {
        "type": "identify",
        "userId": uid,
        "traits": {STREAM_KEY: member, **({"email": email} if email else {})},
        "context": {"personas": {"computation_class": "audience", "computation_key": STREAM_KEY}},
    }


class StreamMachine(Door):
    """Segment calls through the stream door's parser and durable queue; the flusher flushes when
    a rule says so (its thread is not started). The audience is a mirror of its members."""

    names: ClassVar[dict[Kind, str]] = {"email": "Ordered (email)", "multi": "Ordered"}

    def __init__(self) -> None:
        super().__init__()
        from audiencesync.stream.runtime import StreamRuntime

        self.members: dict[str, Person] = {}
        self.gone: dict[str, Person] = {}
        self.cfg = self.config()
        self.client = GraphClient(self.cfg.meta)
        self.after_batch: Callable[[], None] | None = None
        self.rt = StreamRuntime(self.cfg, client=self.client, sync=self.sync)
        self.rt.writer.start()

    def teardown(self) -> None:
        try:
            if sys.exc_info()[1] is None:
                self.clean_flush()
        finally:
            self.rt.writer.stop()
            self.rt.stop()
            self.client.close()
            self.close()

    def config(self) -> Config:
        doc = {
            "meta": meta_settings(self.emu),
            "state": "state.duckdb",
            "serve": {"write_key": "wk_test", "flush_after": "1h"},
            "audiences": [
                {
                    "name": "Ordered",
                    "key": STREAM_KEY,
                    "source": "stream",
                    "customer_file_source": "USER_PROVIDED_ONLY",
                    "forward": ["email"],
                    "multi_key": True,
                    "min_size": 1,
                }
            ],
        }
        path = self.root / "audiencesync.yml"
        path.write_text(yaml.safe_dump(doc))
        return load_config(path, env={"META_ACCESS_TOKEN": self.emu.token})

    def sync(self, *args: Any, **kw: Any) -> RunReport:
        """The flusher's sync, with the crash callback of the flush in trouble, if any."""
        return pipeline.sync(*args, after_batch=self.after_batch, **kw)

    def send(self, calls: list[dict[str, Any]]) -> None:
        """Calls accepted as the HTTP door accepts them: parsed, hashed, durably queued."""
        parsed = self.rt.parser.segment({"batch": calls}, "batch")
        self.rt.writer.put_blocking(parsed.changes)

    def flush(self) -> dict[str, str]:
        """One flush of everything waiting (as the server, nothing when nothing waits); the errors
        by audience key."""
        waiting = self.rt.flusher.waiting()
        return self.rt.flusher.flush(waiting).errors if waiting else {}

    def clean_flush(self) -> None:
        self.fb.clear_faults()
        errors = self.flush()
        assert not errors, f"a clean flush failed: {errors}"
        want = rows(self.members.values())
        self.check(want, want, "a clean flush")

    def new_user(self, uid: str | None = None) -> Person:
        n = self.next_serial()
        return self.remember(Person(uid or f"u{n}", f"s{n}@example.com"))

    # -- the world ---------------------------------------------------------------------------------

    @initialize(n=st.integers(min_value=10, max_value=30))
    def start(self, n: int) -> None:
        for _ in range(n):
            p = self.new_user()
            self.members[p.cid] = p
        self.send([identify(p.cid, True, p.email) for p in self.members.values()])
        self.clean_flush()

    @rule(n=st.integers(min_value=1, max_value=6))
    def enter(self, n: int) -> None:
        fresh = [self.new_user() for _ in range(n)]
        self.members.update((p.cid, p) for p in fresh)
        self.send([identify(p.cid, True, p.email) for p in fresh])

    @precondition(lambda self: self.members)
    @rule(share=st.sampled_from([0.1, 0.3]), seed=SEEDS)
    def leave(self, share: float, seed: int) -> None:
        self.send([identify(uid, False) for uid in self.depart(share, seed)])

    @precondition(lambda self: self.members)
    @rule(share=st.sampled_from([0.1, 0.3]), seed=SEEDS)
    def change_email(self, share: float, seed: int) -> None:
        calls = []
        for uid in self.pick(self.members, share, seed):
            p = self.members[uid] = self.new_user(uid)
            calls.append(identify(uid, True, p.email))
        self.send(calls)

    @precondition(lambda self: self.gone)
    @rule(changed=st.booleans(), share=st.sampled_from([0.5, 1.0]), seed=SEEDS)
    def come_back(self, changed: bool, share: float, seed: int) -> None:
        self.send([identify(p.cid, True, p.email) for p in self.back(share, seed, changed)])

    @rule(trouble=TROUBLE)
    def flush_in_trouble(self, trouble: Trouble) -> None:
        with self.trouble(trouble):
            self.flush()

    @precondition(lambda self: self.members)
    @rule(share=st.sampled_from([0.2, 0.4]), seed=SEEDS, trouble=TROUBLE)
    def leave_during_a_failing_flush_and_come_back(self, share: float, seed: int, trouble: Trouble) -> None:
        """Some users leave, the flush goes wrong, they come back with the same traits."""
        self.send([identify(uid, False) for uid in self.depart(share, seed)])
        with self.trouble(trouble):
            self.flush()
        self.send([identify(p.cid, True, p.email) for p in self.back(1.0, seed, changed=False)])

    @rule()
    def flush_clean(self) -> None:
        self.clean_flush()

    # -- helpers ----------------------------------------------------------------------------------

    def depart(self, share: float, seed: int) -> list[str]:
        leaving = self.pick(self.members, share, seed)
        for uid in leaving:
            self.gone[uid] = self.members.pop(uid)
        return leaving

    def back(self, share: float, seed: int, changed: bool) -> list[Person]:
        out = []
        for uid in self.pick(self.gone, share, seed):
            p = self.gone.pop(uid)
            if changed:
                p = self.new_user(uid)
            self.members[uid] = p
            out.append(p)
        return out

    @contextlib.contextmanager
    def trouble(self, trouble: Trouble) -> Iterator[None]:
        self.after_batch = self.arm(trouble)
        try:
            yield
        finally:
            self.after_batch = None
            self.fb.clear_faults()


# -- the tests ----------------------------------------------------------------------------------------

SETTINGS: dict[str, Any] = {
    "deadline": None,
    # CI replays one fixed set of histories (the same every run, so a red build is reproducible);
    # a developer's run draws new ones each time, and what they find goes into KNOWN.
    "derandomize": bool(os.environ.get("CI")),
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
}


def bind(cls: type[Door], emu: Any, base: Path) -> type[Door]:
    """The machine bound to the session's emulator and this test's temporary directory."""
    return type(cls.__name__, (cls,), {"emu": emu, "base": base})


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Several batches per audience even for 20 members, so crashes and faults land between them."""
    monkeypatch.setattr(planner, "BATCH_ROWS", 7)


@pytest.mark.timeout(1200)  # a failure is shrunk for minutes; a pass takes well under one
@pytest.mark.usefixtures("small_batches")
def test_batch_sync_converges_after_any_history(emu: Any, tmp_path: Path) -> None:
    run_state_machine_as_test(
        bind(BatchMachine, emu, tmp_path), settings=settings(max_examples=20, stateful_step_count=10, **SETTINGS)
    )


@pytest.mark.timeout(1200)
@pytest.mark.usefixtures("small_batches")
def test_stream_flushes_converge_after_any_history(emu: Any, tmp_path: Path) -> None:
    run_state_machine_as_test(
        bind(StreamMachine, emu, tmp_path), settings=settings(max_examples=8, stateful_step_count=8, **SETTINGS)
    )


# -- the known bad histories (issue 9), replayed step by step ------------------------------------
# The failing examples the machines found against the code before the fix, shortened by hand, as
# deterministic regressions. They are written as hypothesis prints a failing example, so a new one
# can be pasted here as it is.

KNOWN: dict[str, str] = {
    "a bad export; the multi-key audience's removals refused (200); the members back": """
        state = BatchMachine()
        state.start(n=20, mode='mirror')
        state.one_bad_export_in_trouble(seed=1, share=0.2, trouble=Fault('multi', 'DELETE', 'permission error 200'))
        state.sync_clean()
        state.teardown()
    """,
    "a bad export; the multi-key audience's removals failing past the retry budget; the members back": """
        state = BatchMachine()
        state.start(n=20, mode='mirror')
        state.one_bad_export_in_trouble(
            seed=1, share=0.2, trouble=Fault('multi', 'DELETE', 'transient code 2 past the retry budget'))
        state.teardown()
    """,
    "a bad export; a crash between batches; the members back": """
        state = BatchMachine()
        state.start(n=20, mode='mirror')
        state.one_bad_export_in_trouble(seed=1, share=0.4, trouble=CrashAfter(2))
        state.teardown()
    """,
    "removals applied, their acknowledgement lost; the members back": """
        state = BatchMachine()
        state.start(n=20, mode='mirror')
        state.leave(seed=1, share=0.3)
        state.run_in_trouble(full=False, trouble=Fault('email', 'DELETE', 'lost acknowledgement past the retry budget'))
        state.come_back(changed=False, seed=1, share=1.0)
        state.teardown()
    """,
    "adds applied, their acknowledgement lost; then everyone leaves": """
        state = BatchMachine()
        state.start(n=20, mode='mirror')
        state.join(n=8)
        state.run_in_trouble(full=False, trouble=Fault('email', 'POST', 'lost acknowledgement past the retry budget'))
        state.leave(seed=1, share=1.0)
        state.teardown()
    """,
    "the state file lost; then members leave": """
        state = BatchMachine()
        state.start(n=20, mode='mirror')
        state.lose_the_state_file()
        state.leave(seed=1, share=0.3)
        state.teardown()
    """,
    "a crash during a full refresh; then a full refresh": """
        state = BatchMachine()
        state.start(n=20, mode='mirror')
        state.run_in_trouble(full=True, trouble=CrashAfter(1))
        state.full_refresh()
        state.teardown()
    """,
    "a crash right after the last batch of a full refresh; then any run": """
        state = BatchMachine()
        state.start(n=20, mode='mirror')
        state.run_in_trouble(full=True, trouble=CrashAfter(3))
        state.sync_clean()
        state.teardown()
    """,
    "a crash during a full refresh; emails change; the next run finishes the replace": """
        state = BatchMachine()
        state.start(n=20, mode='mirror')
        state.run_in_trouble(full=True, trouble=CrashAfter(1))
        state.change_keys(key='email', seed=1, share=0.3)
        state.teardown()
    """,
    "stream: users leave during a flush whose multi-key removals are refused, and come back": """
        state = StreamMachine()
        state.start(n=10)
        state.leave_during_a_failing_flush_and_come_back(
            seed=1, share=0.3, trouble=Fault('multi', 'DELETE', 'permission error 200'))
        state.teardown()
    """,
    "the guard refuses an empty export, and one without 60% of the members": """
        state = BatchMachine()
        state.start(n=20, mode='mirror')
        state.bad_export_is_refused(fixed=True, seed=1, share=1.0)
        state.bad_export_is_refused(fixed=False, seed=2, share=0.6)
        state.teardown()
    """,
    "a full refresh refused on one audience, then a bad export in a run that crashes": """
        state = BatchMachine()
        state.start(n=20, mode='mirror')
        state.full_refresh()
        state.leave(seed=16750, share=0.1)
        state.join(n=6)
        state.full_refresh()
        state.join(n=6)
        state.run_in_trouble(full=True, trouble=Fault('email', 'POST', 'permission error 200'))
        state.one_bad_export_in_trouble(seed=24372, share=0.4, trouble=CrashAfter(6))
        state.teardown()
    """,
    "a replace interrupted, then the state file lost: a clear refusal until Facebook closes the session": """
        state = BatchMachine()
        state.start(n=20, mode='mirror')
        state.lose_the_state_file()
        state.run_in_trouble(full=False, trouble=CrashAfter(1))
        state.lose_the_state_file()
        state.teardown()
    """,
}


def replay(script: str, emu: Any, base: Path) -> None:
    """Run a printed example; the machine is torn down (its last clean run checked) in any case."""
    *steps, last = ast.parse(textwrap.dedent(script)).body
    assert ast.unparse(last) == "state.teardown()", "an example ends with state.teardown()"
    names: dict[str, Any] = {
        "BatchMachine": bind(BatchMachine, emu, base),
        "StreamMachine": bind(StreamMachine, emu, base),
        "Fault": Fault,
        "CrashAfter": CrashAfter,
    }
    try:
        for step in steps:
            exec(compile(ast.Module([step], []), "<example>", "exec"), names)
    finally:
        if "state" in names:
            names["state"].teardown()


@pytest.mark.parametrize("history", list(KNOWN))
@pytest.mark.usefixtures("small_batches")
def test_known_bad_history_converges(history: str, emu: Any, tmp_path: Path) -> None:
    if "guard" in history and not HAS_FORCE:
        pytest.skip("sync has no force (and no guard) yet")
    replay(KNOWN[history], emu, tmp_path)
