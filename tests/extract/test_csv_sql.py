"""Finding CSV reads in the query's syntax tree and writing options into the user's own text."""

from __future__ import annotations

import duckdb
import pytest

from audiencesync.extract.csv_sql import Expression, QueryShapeError, find_csv_reads, splice


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    return duckdb.connect()


def rewrite(con: duckdb.DuckDBPyConnection, query: str) -> str:
    reads = find_csv_reads(con, query)
    return splice(query, reads, [r.table({"header": True}) for r in reads])


def test_options_go_before_the_closing_parenthesis(con: duckdb.DuckDBPyConnection) -> None:
    q = "select * from read_csv('a.csv', all_varchar = true) t where x = ')'"
    assert rewrite(con, q) == "select * from read_csv('a.csv', all_varchar = true, header = true) t where x = ')'"


def test_parentheses_in_strings_and_comments_do_not_count(con: duckdb.DuckDBPyConnection) -> None:
    q = "select * from READ_CSV(\n 'a(1).csv' -- a ) here\n , delim = ')' /* ) */ ) as t(a, b)"
    out = rewrite(con, q)
    assert out == "select * from READ_CSV(\n 'a(1).csv' -- a ) here\n , delim = ')' /* ) */ , header = true) as t(a, b)"
    duckdb.tokenize(out)  # still parses
    assert find_csv_reads(con, q)[0].options == {"delim": ")"}


def test_a_trailing_comma_gets_no_second_comma(con: duckdb.DuckDBPyConnection) -> None:
    assert rewrite(con, "from read_csv('a.csv',)") == "from read_csv('a.csv',header = true)"


def test_arguments_are_read_from_the_tree(con: duckdb.DuckDBPyConnection) -> None:
    q = "from read_csv_auto(['a.csv', 'b.csv'], sep := ';', skip = 2, header = false, types = {'a': 'INT'})"
    (read,) = find_csv_reads(con, q)
    assert read.files == ("a.csv", "b.csv")
    assert read.options["sep"] == ";" and read.options["skip"] == 2 and read.options["header"] is False
    assert isinstance(read.options["types"], Expression)


def test_bare_file_names_become_read_csv_with_their_table_name(con: duckdb.DuckDBPyConnection) -> None:
    assert rewrite(con, "select customers.email from 'data/customers.csv'") == (
        "select customers.email from read_csv('data/customers.csv', header = true) AS \"customers\""
    )
    assert rewrite(con, "select c.email from 'it''s.tsv.gz' c") == (
        "select c.email from read_csv('it''s.tsv.gz', header = true) c"
    )


def test_a_table_named_like_a_file_is_a_table(con: duckdb.DuckDBPyConnection) -> None:
    con.execute('CREATE TABLE "x.csv" (a INT)')
    assert find_csv_reads(con, 'select * from "x.csv"') == []


def test_reads_anywhere_in_the_query_are_found_in_text_order(con: duckdb.DuckDBPyConnection) -> None:
    q = (
        "with a as (select * from read_csv('a.csv')) "
        "select * from a join 'b.csv' b using (id) "
        "where id in (select id from read_csv('c.csv')) "
        "union all select * from read_parquet('d.parquet')"
    )
    assert [r.files for r in find_csv_reads(con, q)] == [("a.csv",), ("b.csv",), ("c.csv",)]


def test_a_query_that_does_not_parse_is_left_for_duckdb_to_report(con: duckdb.DuckDBPyConnection) -> None:
    assert find_csv_reads(con, "select * from read_csv('a.csv'") == []


def test_a_statement_that_cannot_be_analysed_is_refused_if_it_reads_csv(con: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(QueryShapeError, match="not a plain SELECT"):
        find_csv_reads(con, "pivot read_csv('a.csv') on x using sum(y)")
    assert find_csv_reads(con, "pivot t on x using sum(y)") == []
