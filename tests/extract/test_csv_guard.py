"""A CSV source either reads exactly the file's rows or fails, naming the file, the line and why."""

from __future__ import annotations

import gzip
import sqlite3
from pathlib import Path

import duckdb
import pytest

from audiencesync.config import SourceSettings
from audiencesync.extract.source import QuerySource, SourceError

from .helpers import HEADER, row, rows, source, write


def test_clean_file_reads_all_rows_as_text(tmp_path: Path) -> None:
    path = write(tmp_path / "customers.csv", [HEADER, row(1), row(2)])
    src = source(path)
    assert src.columns() == ["customer_id", "email", "phone", "dob"]
    assert rows(src) == [
        ("C00001", "user1@example.com", "+1 415 555 0001", "01/02/1960"),
        ("C00002", "user2@example.com", "+1 415 555 0002", "01/02/1960"),
    ]
    assert src.set_aside == ()


def test_the_checked_dialect_is_pinned_in_the_query(tmp_path: Path) -> None:
    path = write(tmp_path / "customers.csv", [HEADER, row(1)])
    q = source(path).query
    for pin in ("delim = ','", "quote = '\"'", "escape = '\"'", "header = true", "strict_mode = true"):
        assert pin in q


# -- an unterminated quote ---------------------------------------------------------------------


def test_unterminated_quote_is_an_error_naming_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path / "customers.csv", [HEADER, row(1), '"C00002,user2@example.com,+1 415 555 0002,x', row(3)])
    with pytest.raises(SourceError) as e:
        source(path)
    msg = str(e.value)
    assert "customers.csv, line 3" in msg and "unterminated quote" in msg and "Nothing was read" in msg


def test_unterminated_quote_beyond_the_sniffers_sample(tmp_path: Path) -> None:
    lines = [HEADER, *(row(i) for i in range(25_000))]
    lines.insert(24_000, 'C99999,"user@example.com,+1 415 555 0000,x')
    path = write(tmp_path / "big.csv", lines)
    with pytest.raises(SourceError, match=r"big\.csv, line 24001: .*unterminated quote"):
        source(path)


def test_text_after_a_closing_quote_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path / "customers.csv", [HEADER, row(1), 'C00002,"user2@example.com"x,+1,x'])
    with pytest.raises(SourceError, match=r"customers\.csv, line 3: text follows the closing quote"):
        source(path)


def test_a_quote_inside_an_unquoted_value_is_kept(tmp_path: Path) -> None:
    path = write(tmp_path / "customers.csv", [HEADER, 'C00001,ann"s@example.com,+1,x'])
    assert rows(source(path)) == [("C00001", 'ann"s@example.com', "+1", "x")]


# -- ragged rows -------------------------------------------------------------------------------


def test_a_row_with_too_many_values_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path / "customers.csv", [HEADER, row(1), row(2) + ",EXTRA", row(3)])
    with pytest.raises(SourceError) as e:
        source(path)
    assert "customers.csv, line 3: 5 values where the header has 4" in str(e.value)
    assert "bad_rows: skip" in str(e.value)


def test_a_row_with_too_few_values_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path / "customers.csv", [HEADER, row(1), row(2), "C00003,user3@example.com", row(4)])
    with pytest.raises(SourceError, match=r"customers\.csv, line 4: 2 values where the header has 4"):
        source(path)


def test_every_bad_row_is_counted_and_the_first_are_listed(tmp_path: Path) -> None:
    lines = [HEADER, *(row(i) if i % 3 else row(i) + ",x" for i in range(1, 20))]
    path = write(tmp_path / "customers.csv", lines)
    with pytest.raises(SourceError) as e:
        source(path)
    msg = str(e.value)
    assert "line 4: 5 values where the header has 4; 5 more bad rows (line 7: too many values" in msg


def test_line_numbers_count_lines_of_quoted_multiline_values(tmp_path: Path) -> None:
    lines = [HEADER, 'C00001,a@example.com,"+1\n415",x', row(2) + ",EXTRA"]
    path = write(tmp_path / "customers.csv", lines)
    with pytest.raises(SourceError, match=r"line 4: 5 values"):
        source(path)


def test_the_delimiter_comes_from_the_header_not_a_sample(tmp_path: Path) -> None:
    """A ragged row once made the sniffer choose "no delimiter": one column per line, no error."""
    lines = [HEADER.replace(",", ";"), *(row(i).replace(",", ";") for i in range(5)), "C9;a@example.com;+1;x;y"]
    path = write(tmp_path / "customers.csv", lines)
    with pytest.raises(SourceError, match=r"line 7: 5 values where the header has 4"):
        source(path)


# -- what keeps working ------------------------------------------------------------------------


def test_header_only_file_gives_no_rows_and_no_error(tmp_path: Path) -> None:
    src = source(write(tmp_path / "customers.csv", [HEADER]))
    assert src.columns() == ["customer_id", "email", "phone", "dob"]
    assert rows(src) == []


@pytest.mark.parametrize("n", [3, 30_000])
def test_mixed_line_endings(tmp_path: Path, n: int) -> None:
    body = "\n".join(row(i) + ("\r" if i % 2 else "") for i in range(n))
    path = tmp_path / "customers.csv"
    path.write_bytes(f"{HEADER}\r\n{body}\n".encode())
    got = rows(source(path))
    assert len(got) == n
    assert got[1] == ("C00001", "user1@example.com", "+1 415 555 0001", "01/02/1960")


def test_old_mac_line_endings_and_an_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "customers.csv"
    path.write_bytes(f"{HEADER}\r{row(1)}\r{row(2)}\r".encode())
    assert len(rows(source(path))) == 2
    (tmp_path / "empty.csv").write_bytes(b"")
    assert rows(source(tmp_path / "empty.csv")) == []


def test_mixed_line_endings_with_a_bad_row_is_still_an_error(tmp_path: Path) -> None:
    path = tmp_path / "customers.csv"
    path.write_bytes(f"{HEADER}\r\n{row(1)}\n{row(2)},EXTRA\r\n{row(3)}\n".encode())
    with pytest.raises(SourceError, match=r"customers\.csv, line 3: 5 values where the header has 4"):
        source(path)


def test_quoted_values_with_commas_newlines_and_doubled_quotes(tmp_path: Path) -> None:
    lines = [HEADER, 'C00001,"a@example.com","+1 415, ext ""9""","line one\nline two"', row(2)]
    got = rows(source(write(tmp_path / "customers.csv", lines, newline="\r\n")))
    assert got[0] == ("C00001", "a@example.com", '+1 415, ext "9"', "line one\nline two")
    assert len(got) == 2


def test_utf8_with_accents_and_a_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "customers.csv"
    path.write_bytes("\ufeffcustomer_id,first_name\nC1,Zoë\nC2,José Ñúñez\n".encode())
    assert rows(source(path)) == [("C1", "Zoë"), ("C2", "José Ñúñez")]


def test_all_varchar_keeps_leading_zeros(tmp_path: Path) -> None:
    path = write(tmp_path / "customers.csv", ["customer_id,zip", "1,01234", "2,90001"])
    assert rows(source(path)) == [("1", "01234"), ("2", "90001")]


def test_typed_read_still_infers_types(tmp_path: Path) -> None:
    path = write(tmp_path / "customers.csv", ["customer_id,ltv", "1,10.5", "2,3"])
    assert rows(source(path, options="")) == [(1, 10.5), (2, 3.0)]


def test_a_value_that_does_not_convert_is_an_error_naming_the_column(tmp_path: Path) -> None:
    path = write(tmp_path / "customers.csv", ["customer_id,ltv", "1,10", "2,lots"])
    with pytest.raises(SourceError, match=r"line 3: the value in column 'ltv' does not convert"):
        source(path, options=", types = {'ltv': 'INTEGER'}")


def test_tab_and_pipe_delimited_files(tmp_path: Path) -> None:
    for name, delim in (("c.tsv", "\t"), ("c.csv", "|")):
        path = write(tmp_path / name, [HEADER.replace(",", delim), row(1).replace(",", delim)])
        assert rows(source(path))[0][0] == "C00001"


def test_the_users_own_options_win(tmp_path: Path) -> None:
    path = write(tmp_path / "customers.csv", ["junk line", "a;b", "1;2"])
    src = source(path, options=", delim = ';', skip = 1, all_varchar = true")
    assert rows(src) == [("1", "2")]
    assert src.query.count("delim") == 1 and src.query.count("skip") == 1


def test_gzip_file(tmp_path: Path) -> None:
    path = tmp_path / "customers.csv.gz"
    path.write_bytes(gzip.compress(f"{HEADER}\n{row(1)}\n{row(2)},EXTRA\n".encode()))
    with pytest.raises(SourceError, match=r"customers\.csv\.gz, line 3: 5 values"):
        source(path)


# -- query shapes ------------------------------------------------------------------------------


def test_bare_file_name_is_checked_and_keeps_its_table_name(tmp_path: Path) -> None:
    path = write(tmp_path / "customers.csv", [HEADER, row(1)])
    src = source(path, query=f"select customers.email from '{path}' where customers.customer_id = 'C00001'")
    assert rows(src) == [("user1@example.com",)]
    write(path, [HEADER, row(1) + ",EXTRA"])
    with pytest.raises(SourceError, match="line 2: 5 values"):
        source(path, query=f"select c.email from '{path}' c")


def test_every_read_in_joins_ctes_and_subqueries_is_checked(tmp_path: Path) -> None:
    good = write(tmp_path / "good.csv", [HEADER, row(1), row(2)])
    bad = write(tmp_path / "bad.csv", ["customer_id", "C00001", "C00002,x"])
    query = (
        f"with g as (select * from read_csv('{good}', all_varchar = true)) "
        f"select * from g where customer_id in (select customer_id from read_csv('{bad}' /* ) */))"
    )
    with pytest.raises(SourceError, match=r"bad\.csv, line 3: 2 values where the header has 1"):
        source(good, query=query)
    write(bad, ["customer_id", "C00001"])
    assert [r[0] for r in rows(source(good, query=query))] == ["C00001"]


def test_a_glob_checks_each_file(tmp_path: Path) -> None:
    write(tmp_path / "a.csv", [HEADER, row(1)])
    write(tmp_path / "b.csv", [HEADER, row(2), row(3) + ",EXTRA"])
    with pytest.raises(SourceError, match=r"b\.csv, line 3: 5 values"):
        source(tmp_path / "*.csv")


def test_reading_errors_options_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "customers.csv", [HEADER, row(1)])
    with pytest.raises(SourceError, match="ignore_errors would drop bad rows without counting them"):
        source(path, options=", ignore_errors = true")


def test_a_file_name_that_is_not_text_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="give read_csv its file name"):
        source(tmp_path, query="select * from read_csv(getenv('HOME') || '/x.csv')")


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"missing\.csv: no such file"):
        source(tmp_path / "missing.csv")


# -- other sources are untouched ---------------------------------------------------------------


def test_parquet_and_json_sources(tmp_path: Path) -> None:
    con = duckdb.connect()
    con.execute(f"COPY (SELECT 'C1' AS customer_id) TO '{tmp_path / 'c.parquet'}' (FORMAT parquet)")
    (tmp_path / "c.json").write_text('[{"customer_id": "C2"}]')
    for query in (f"select * from read_parquet('{tmp_path / 'c.parquet'}')", f"select * from '{tmp_path / 'c.json'}'"):
        src = source(tmp_path, query=query)
        assert src.query == query and len(rows(src)) == 1


def test_duckdb_database_source(tmp_path: Path) -> None:
    db = tmp_path / "crm.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE TABLE customers AS SELECT 'C1' AS customer_id")
    src = QuerySource(duckdb.connect(), "crm", SourceSettings(type="duckdb", path=str(db)), "select * from customers")
    assert rows(src) == [("C1",)]


def test_sqlite_source(tmp_path: Path) -> None:
    db = tmp_path / "crm.sqlite"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE customers (customer_id TEXT, n INTEGER)")
        con.execute("INSERT INTO customers VALUES ('C1', 7)")
    settings = SourceSettings(type="sqlite", path=str(db))
    src = QuerySource(duckdb.connect(), "crm", settings, "select * from customers")
    assert rows(src) == [("C1", "7")]
