"""The simulated user base (issue 12 item 7.1): which uploaded people match, deterministically.

Units of ``matching.Matcher`` and the matched count kept by ``MemberSet``, then the behaviour over
real HTTP: realistic default shares, multi-key rows matching more often, EXTERN_ID alone never,
independence from upload order, and the shares set per emulator and per audience.
"""

from __future__ import annotations

import os
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from audiencesync.emulator.matching import DEFAULT_MATCH_SHARES, Matcher, check_shares
from audiencesync.emulator.members import MemberSet
from audiencesync.emulator.payload import IDENTITY_KEYS

from .conftest import Graph, error_of, rand_hash, sha

N = 2000


def emails(n: int, tag: str = "") -> list[str]:
    return [sha(f"user{i}{tag}@example.com") for i in range(n)]


def summary(graph: Graph, aud: str) -> dict[str, Any]:
    r = graph.emu("GET", f"/audiences/{aud}")
    assert r.status_code == 200, r.text
    return r.json()


def upload(graph: Graph, aud: str, schema: Any, rows: list[Any]) -> None:
    for i in range(0, len(rows), 1000):
        r = graph.add(aud, schema, rows[i : i + 1000])
        assert r.status_code == 200, r.text


def near(share: float, count: int, n: int) -> bool:
    """Within 5 standard deviations of the expected binomial count."""
    sd = (n * share * (1 - share)) ** 0.5
    return abs(count - share * n) <= 5 * sd + 1


# ---------------------------------------------------------------- units


def test_matcher_is_deterministic_and_keyed_by_the_seed() -> None:
    idents = [(("EMAIL",), (h,)) for h in emails(N)]
    a, b = Matcher(DEFAULT_MATCH_SHARES, "s1"), Matcher(dict(DEFAULT_MATCH_SHARES), "s1")
    picked = [i for i in idents if a.matches(i)]
    assert picked == [i for i in idents if b.matches(i)]
    assert a.count(idents) == len(picked) == a.count(list(reversed(idents)))
    assert near(0.6, len(picked), N)
    other_seed = {i for i in idents if Matcher(DEFAULT_MATCH_SHARES, "s2").matches(i)}
    assert other_seed != set(picked)


def test_matcher_groups_and_shares() -> None:
    m = Matcher(DEFAULT_MATCH_SHARES, "seed")
    extern = [(("EXTERN_ID",), (str(i),)) for i in range(500)]
    assert m.count(extern) == 0  # EXTERN_ID alone never matches
    both = [(("EMAIL", "EXTERN_ID"), (h, str(i))) for i, h in enumerate(emails(500))]
    only_email = [(("EMAIL",), (h,)) for h in emails(500)]
    assert m.count(both) == m.count(only_email)  # ... it matches through the email
    # FN+LN+ZIP is a group: FN and LN alone do not match, the three together sometimes do
    names = [(("FN", "LN"), (rand_hash(), rand_hash())) for _ in range(300)]
    assert m.count(names) == 0
    full = [(("FN", "LN", "ZIP"), (rand_hash(), rand_hash(), rand_hash())) for _ in range(N)]
    assert near(0.4, m.count(full), N)
    # non-hex values (MADID, unhashed text) go through the keyed hash
    madids = [(("MADID",), (f"6d92078a-8246-4ba4-ae5b-76104861e{i:03d}",)) for i in range(N)]
    assert near(0.7, m.count(madids), N)
    # raising a share only adds matches
    higher = Matcher({**DEFAULT_MATCH_SHARES, "EMAIL": 0.9}, "seed")
    assert {i for i in only_email if m.matches(i)} <= {i for i in only_email if higher.matches(i)}
    assert Matcher({"EMAIL": 1.0}, "x").count(only_email) == 500
    assert Matcher({"EMAIL": 0.0}, "x").count(only_email) == 0


def test_answer_does_not_depend_on_the_rest_of_the_batch() -> None:
    """Whole hex columns take a C-speed path; a row must get the same answer alone or among others."""
    m = Matcher(DEFAULT_MATCH_SHARES, "seed")
    shape = ("EMAIL", "FN", "LN", "PHONE", "ZIP")
    rows = [tuple(rand_hash() for _ in shape) for _ in range(400)]
    odd = [("not hex", "x", "y", "+1 555", "10001"), (rand_hash(), "ab", rand_hash(), "", rand_hash())]
    alone = sum(m.count_values(shape, [r]) for r in rows)
    assert m.count_values(shape, rows) == alone
    assert m.count_values(shape, rows + odd) == alone + sum(m.count_values(shape, [r]) for r in odd)
    assert m.count([(shape, r) for r in rows]) == alone


def test_check_shares_validates_groups_and_values() -> None:
    assert check_shares({"fn + ln+zip": 0.5, "EMAIL": None}, IDENTITY_KEYS, allow_null=True) == {
        "FN+LN+ZIP": 0.5,
        "EMAIL": None,
    }
    for bad in ({"NOPE": 0.5}, {"EMAIL": 1.5}, {"EMAIL": True}, {"EMAIL": "0.5"}, ["EMAIL"]):
        try:
            check_shares(bad, IDENTITY_KEYS, allow_null=True)
        except ValueError:
            continue
        raise AssertionError(f"accepted {bad!r}")


keys_st = st.sampled_from(["EMAIL", "PHONE", "MADID", "EXTERN_ID"])
ident_st = st.dictionaries(keys_st, st.sampled_from(["a", "b", "c", "d", "e"]), min_size=1, max_size=3).map(
    lambda d: (tuple(sorted(d)), tuple(d[k] for k in sorted(d)))
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.lists(ident_st, max_size=6)), max_size=12))
def test_member_set_keeps_the_matched_count(ops: list[tuple[bool, list[Any]]]) -> None:
    matcher = Matcher({"EMAIL": 0.5, "PHONE": 0.5, "MADID": 0.5}, "prop")
    ms = MemberSet(matcher)
    for is_add, idents in ops:
        if is_add:
            ms.add([(i, None) for i in idents])
        else:
            ms.remove(idents)
        assert ms.matched == matcher.count(ms.members)
    staging = MemberSet(matcher)
    staging.add([((("EMAIL",), ("z",)), None)])
    ms.replace_with(staging)
    assert ms.matched == matcher.count(ms.members)
    ms.set_matcher(Matcher({"EMAIL": 1.0}, "prop"))
    assert ms.matched == 1


# ---------------------------------------------------------------- over HTTP


def test_default_shares_and_multi_key_rows_match_more_often(graph: Graph) -> None:
    single = graph.create(name="emails")
    upload(graph, single, "EMAIL_SHA256", emails(N))
    s = summary(graph, single)
    assert s["member_count"] == N and near(0.6, s["matched_count"], N)
    assert s["approximate_count"] == s["matched_count"]  # no processing delay
    multi = graph.create(name="email+phone")
    upload(graph, multi, ["EMAIL", "PHONE"], [[h, rand_hash()] for h in emails(N, "m")])
    m = summary(graph, multi)
    assert near(1 - 0.4 * 0.5, m["matched_count"], N)  # matches if any key matches
    assert m["matched_count"] > s["matched_count"]
    extern = graph.create(name="extern ids")
    upload(graph, extern, "EXTERN_ID", [f"crm-{i}" for i in range(500)])
    assert summary(graph, extern)["matched_count"] == 0
    with_email = graph.create(name="extern+email")
    upload(graph, with_email, ["EXTERN_ID", "EMAIL"], [[f"crm-{i}", h] for i, h in enumerate(emails(N))])
    assert summary(graph, with_email)["matched_count"] == s["matched_count"]  # through the emails


def test_same_value_same_answer_whatever_the_order(graph: Graph) -> None:
    values = emails(N)
    a = graph.create(name="forward")
    upload(graph, a, "EMAIL_SHA256", values)
    b = graph.create(name="backward")
    upload(graph, b, "EMAIL_SHA256", list(reversed(values)))
    c = graph.create("act_2", name="other account, in two halves, with removals")
    upload(graph, c, "EMAIL_SHA256", values[N // 2 :] + [rand_hash() for _ in range(100)])
    upload(graph, c, "EMAIL_SHA256", values[: N // 2])
    assert graph.remove(c, "EMAIL_SHA256", values[:10]).status_code == 200
    graph.add(c, "EMAIL_SHA256", values[:10])
    counts = {summary(graph, x)["matched_count"] for x in (a, b)}
    assert len(counts) == 1
    # c holds the same N values plus 100 random ones
    assert summary(graph, c)["matched_count"] >= counts.pop()
    # a fresh emulator state gives the same answer again
    matched_a = summary(graph, a)["matched_count"]
    graph.emu("POST", "/reset").raise_for_status()
    again = graph.create()
    upload(graph, again, "EMAIL_SHA256", values)
    assert summary(graph, again)["matched_count"] == matched_a


def test_shares_and_seed_set_per_emulator(graph: Graph) -> None:
    aud = graph.create()
    upload(graph, aud, "EMAIL_SHA256", emails(N))
    before = summary(graph, aud)["matched_count"]
    r = graph.emu("POST", "/config", {"match_shares": {"EMAIL": 0.9}})
    assert r.status_code == 200, r.text
    shares = r.json()["match_shares"]
    assert shares["EMAIL"] == 0.9 and shares["PHONE"] == DEFAULT_MATCH_SHARES["PHONE"]  # merged
    after = summary(graph, aud)["matched_count"]
    assert after > before and near(0.9, after, N)
    graph.emu("POST", "/config", {"match_seed": "another user base"}).raise_for_status()
    assert near(0.9, summary(graph, aud)["matched_count"], N)
    graph.emu("POST", "/config", {"match_shares": {"EMAIL": None}}).raise_for_status()  # drop the group
    assert summary(graph, aud)["matched_count"] == 0
    assert "EMAIL" not in graph.emu("GET", "/config").json()["match_shares"]
    for bad in ({"match_shares": {"EMAIL": 2}}, {"match_shares": {"SHOE_SIZE": 0.5}}, {"low_match_threshold": 3}):
        assert graph.emu("POST", "/config", bad).status_code == 400


def test_shares_set_per_audience(graph: Graph) -> None:
    a, b = graph.create(name="a"), graph.create(name="b")
    for aud in (a, b):
        upload(graph, aud, "EMAIL_SHA256", emails(N))
    r = graph.emu("POST", f"/audiences/{a}", {"match_shares": {"EMAIL": 1.0}})
    assert r.status_code == 200, r.text
    assert r.json()["match_share_overrides"] == {"EMAIL": 1.0} and r.json()["matched_count"] == N
    assert near(0.6, summary(graph, b)["matched_count"], N)  # other audiences keep the emulator's shares
    graph.add(a, "EMAIL_SHA256", [rand_hash() for _ in range(10)])
    assert summary(graph, a)["matched_count"] == N + 10  # kept up to date with the override
    graph.emu("POST", f"/audiences/{a}", {"match_shares": None}).raise_for_status()
    assert summary(graph, a)["match_share_overrides"] == {}
    # a holds b's values plus 10 more: the same answer for the shared values
    assert 0 <= summary(graph, a)["matched_count"] - summary(graph, b)["matched_count"] <= 10
    err = graph.emu("POST", f"/audiences/{a}", {"match_shares": {"EMAIL": -1}})
    assert err.status_code == 400


def test_unhashed_values_and_replace_keep_counts(graph: Graph) -> None:
    graph.server.config.strict_hashes = False
    aud = graph.create()
    upload(graph, aud, "EMAIL", [f"person{i}@example.com" for i in range(N)])  # stored as given
    assert near(0.6, summary(graph, aud)["matched_count"], N)
    graph.server.config.strict_hashes = True
    replacement = emails(500, "r")
    expected = Matcher(DEFAULT_MATCH_SHARES, graph.server.config.match_seed).count(
        [(("EMAIL",), (h,)) for h in replacement]
    )
    sess = {"session_id": 77, "batch_seq": 1}
    assert graph.replace(aud, "EMAIL_SHA256", replacement[:250], sess).status_code == 200
    sess = {"session_id": 77, "batch_seq": 2, "last_batch_flag": True}
    assert graph.replace(aud, "EMAIL_SHA256", replacement[250:], sess).status_code == 200
    s = summary(graph, aud)
    assert s["member_count"] == 500 and s["matched_count"] == expected


def test_large_upload_stays_fast_enough(graph: Graph) -> None:
    """The match check is on the upload hot path: 10,000 five-key rows still go through in one call."""
    aud = graph.create()
    rows = [[os.urandom(32).hex() for _ in range(5)] for _ in range(10_000)]
    r = graph.add(aud, ["EMAIL", "PHONE", "FN", "LN", "ZIP"], rows)
    assert r.status_code == 200 and r.json()["num_received"] == 10_000
    assert near(1 - 0.4 * 0.5 * 0.6, summary(graph, aud)["matched_count"], 10_000)


def test_removed_rows_leave_the_matched_count(graph: Graph) -> None:
    graph.emu("POST", "/config", {"match_shares": {"EMAIL": 1.0}}).raise_for_status()
    aud = graph.create()
    values = emails(300)
    upload(graph, aud, "EMAIL_SHA256", values)
    assert summary(graph, aud)["matched_count"] == 300
    graph.remove(aud, "EMAIL_SHA256", values[:100])
    assert summary(graph, aud)["matched_count"] == 200
    err = error_of(graph.add(aud, ["EMAIL", "FN"], [[values[0], sha("x")]]))  # the data-source lock still holds
    assert err["code"] == 2650
