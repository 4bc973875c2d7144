"""A row-wise key that is most of a call's work is normalized in pieces on two threads; the result
must not depend on it."""

from audiencesync.matchkeys import match_table, vectorized
from audiencesync.samples import generate_customers


def test_split_and_single_thread_agree(monkeypatch):
    monkeypatch.setattr(vectorized, "SPLIT_ROWS", 1_000)
    monkeypatch.setattr(vectorized, "_SECONDS_PER_ROW", {})
    table = generate_customers(5_000, seed=11).select(["email", "phone", "first_name"])
    columns = {"EMAIL": "email", "PHONE": "phone", "FN": "first_name", "FI": None}
    assert vectorized._pieces("EMAIL", ["EMAIL", "FN"], 5_000, 2) == 2
    split = match_table(table, columns={**columns, "PHONE": None}, default_country="US", threads=2)
    whole = match_table(table, columns={**columns, "PHONE": None}, default_country="US", threads=1)
    assert split.table.equals(whole.table)
    assert split.invalid == whole.invalid and split.empty == whole.empty
    both = match_table(table, columns=columns, default_country="US", threads=2)
    assert both.table.select(["EMAIL", "FN", "_row"]).equals(split.table.select(["EMAIL", "FN", "_row"]))


def test_a_key_among_many_is_not_cut(monkeypatch):
    monkeypatch.setattr(vectorized, "_SECONDS_PER_ROW", {})
    keys = ["EMAIL", "PHONE", "FN", "LN", "CT", "ST", "ZIP", "COUNTRY", "GEN", "DOBY"]
    assert [vectorized._pieces(key, keys, 1_000_000, 2) for key in ("EMAIL", "PHONE")] == [1, 1]
    assert vectorized._pieces("EMAIL", ["EMAIL"], 1_000_000, 2) == 2
    assert vectorized._pieces("EMAIL", ["EMAIL"], 1_000_000, 1) == 1
