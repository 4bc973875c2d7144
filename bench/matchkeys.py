"""Match-key throughput: our vectorized `match_table` against Meta's SDK on the same messy rows.

Rows come from `generate_customers` (seeded) with the ten keys EMAIL, PHONE, FN, LN, CT, ST, ZIP,
COUNTRY, GEN, DOBY. The SDK gets the same values as strings (it calls `.strip()` on each, so a
missing value is given as ""), through `CustomAudience.format_params(schema, rows, is_raw=True)`.
Each side runs `--repeat` times after one warm-up; the best run counts. The target is ≥ 10x.

    .venv/bin/python bench/matchkeys.py [--rows 200000] [--seed 1] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

from facebook_business.adobjects.customaudience import CustomAudience

from audiencesync.matchkeys import match_table
from audiencesync.samples import generate_customers

SCHEMA = ["EMAIL", "PHONE", "FN", "LN", "CT", "ST", "ZIP", "COUNTRY", "GEN", "DOBY"]
SOURCE = ["email", "phone", "first_name", "last_name", "city", "state", "zip", "country", "gender", "birthday"]
TARGET_RATIO = 10.0


def _best(run: Callable[[], object], repeat: int) -> float:
    run()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    table = generate_customers(args.rows, seed=args.seed).select(SOURCE)
    columns = dict(zip(SCHEMA, SOURCE, strict=True)) | {"DOBM": None, "DOBD": None, "FI": None}
    sdk_rows = [["" if value is None else str(value) for value in row.values()] for row in table.to_pylist()]

    ours = _best(lambda: match_table(table, columns=columns, default_country="US"), args.repeat)
    sdk = _best(lambda: CustomAudience.format_params(SCHEMA, sdk_rows, is_raw=True), max(1, args.repeat - 1))

    result = match_table(table, columns=columns, default_country="US")
    ours_rate, sdk_rate = args.rows / ours, args.rows / sdk
    ratio = ours_rate / sdk_rate
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"rows: {args.rows:,} (seed {args.seed}), keys: {', '.join(SCHEMA)}; cpus: {os.cpu_count()}, load {load:.1f}")
    print(f"audiencesync match_table : {ours:7.3f} s  {ours_rate:12,.0f} rows/s")
    print(f"facebook-business SDK    : {sdk:7.3f} s  {sdk_rate:12,.0f} rows/s")
    print(f"ratio: {ratio:.1f}x (target >= {TARGET_RATIO:.0f}x) -> {'OK' if ratio >= TARGET_RATIO else 'BELOW TARGET'}")
    sent = {key: result.table.num_rows - result.table.column(key).null_count for key in SCHEMA}
    print("sent per key:", ", ".join(f"{key} {count:,}" for key, count in sent.items()))


if __name__ == "__main__":
    main()
