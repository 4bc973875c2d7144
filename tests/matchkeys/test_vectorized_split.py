"""Long row-wise keys are normalized in halves on two threads; the result must not depend on it."""

from audiencesync.matchkeys import match_table, vectorized
from audiencesync.samples import generate_customers


def test_split_and_single_thread_agree(monkeypatch):
    monkeypatch.setattr(vectorized, "SPLIT_ROWS", 1_000)
    table = generate_customers(5_000, seed=11)
    split = match_table(table, default_country="US", threads=2)
    whole = match_table(table, default_country="US", threads=1)
    assert split.table.equals(whole.table)
    assert split.invalid == whole.invalid and split.empty == whole.empty
