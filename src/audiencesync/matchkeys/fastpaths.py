"""Vectorized forms of the common, easy shapes of each key (filled in below)."""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

FastPath = Callable[[pl.DataFrame, object], pl.DataFrame]
email_fast = name_fast = birth_year_fast = city_fast = zip_fast = madid_fast = extern_id_fast = None
