"""Polars' allocator (jemalloc) keeps freed pages for a minute instead of half a second.

A `match_table` call allocates and frees a few hundred MB of short-lived columns per 200,000 rows.
Polars configures jemalloc to give freed pages back to the system after 0.5-1 s (its `__init__`,
so that idle processes shrink), and each call then faults them in again: 20-40k page faults, about
a tenth of the call's CPU time spent in the kernel. Keeping them for 60 s removes nearly all of
those faults; memory still goes back to the system a minute after the last call. Polars appends
`_RJEM_MALLOC_CONF` to its own settings (later ones win), and jemalloc reads them once, when polars
is first loaded: this only takes effect when `audiencesync.matchkeys` is imported before polars (as
the CLI and the benchmarks do). A value already set in the environment is left alone.
"""

from __future__ import annotations

import os

os.environ.setdefault("_RJEM_MALLOC_CONF", "dirty_decay_ms:60000,muzzy_decay_ms:60000")
