"""Polars' allocator (jemalloc) keeps freed pages for 15 seconds instead of half a second.

A `match_table` call allocates and frees a few hundred MB of short-lived columns per 200,000 rows.
Polars configures jemalloc to give freed pages back to the system after 0.5-1 s (its `__init__`,
so that idle processes shrink), and each call then faults them in again: 20-40k page faults, about
a tenth of the call's CPU time spent in the kernel. Keeping them longer removes most of those
faults, at the price of memory held after a call, which counts against the 10M plan's 1.5 GB
budget. Measured (`bench/sync.py plan`, peak RSS; `bench/matchkeys.py --rows 100000`, international):
60 s kept 1,636-1,641 MB, over the budget; 15 s keeps 1,474 MB (0.5 s: 1,462 MB) and calls as fast as
60 s did (0.220 s against 0.223-0.230 s best; 5 s: 0.278-0.289 s). Polars appends
`_RJEM_MALLOC_CONF` to its own settings (later ones win), and jemalloc reads them once, when polars
is first loaded: this only takes effect when `audiencesync.matchkeys` is imported before polars (as
the CLI and the benchmarks do). A value already set in the environment is left alone.
"""

from __future__ import annotations

import os

os.environ.setdefault("_RJEM_MALLOC_CONF", "dirty_decay_ms:15000,muzzy_decay_ms:15000")
