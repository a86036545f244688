"""The input contract: missing files and columns fail with one clear sentence;
every bad row is quarantined with the right reason and the counts reconcile."""

from __future__ import annotations

import datetime as dt
import random
import statistics
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from clv.generate import generate_transactions, write_transactions

END_DATE = dt.date(2025, 12, 31)


def test_missing_file_names_the_file(run_dbt, tmp_path: Path) -> None:
    missing = tmp_path / "no_such_export.csv"
    result = run_dbt("build", variables={"transactions_path": str(missing)})
    assert result.returncode != 0
    assert f"Transactions file not found: {missing}" in result.output
    assert "Traceback" not in result.output


def test_missing_required_column_names_the_column(run_dbt, tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text("client,day,total\n1,2025-01-01,10\n")
    result = run_dbt(
        "build",
        variables={"transactions_path": str(path), "customer_id_column": "client"},
    )
    assert result.returncode != 0
    assert "Required column 'transaction_date' (var transaction_date_column) is missing" in (
        result.output
    )
    assert "client, day, total" in result.output
    assert "Traceback" not in result.output


def test_dirty_rows_are_quarantined_with_their_reason(run_dbt, tmp_path: Path) -> None:
    generated = generate_transactions(
        customers=400, seed=7, dirty_share=0.05, end_date=END_DATE, history_days=400
    )
    path = tmp_path / "dirty.csv"
    write_transactions(generated.transactions, path)

    # Staging and its tests, the row reconciliation among them; no training needed.
    result = run_dbt(
        "build",
        "--select",
        "staging",
        variables={"transactions_path": str(path), "as_of_date": END_DATE.isoformat()},
    )
    assert result.returncode == 0, result.output

    rejected = pd.DataFrame(
        result.query(
            "select source_row_number, rejection_reason from rejected_transactions order by 1"
        ),
        columns=["source_row_number", "reason"],
    )
    expected = generated.defects.sort_values("source_row_number").reset_index(drop=True)
    assert len(expected) == round(0.05 * len(generated.transactions))
    pd.testing.assert_frame_equal(rejected, expected, check_dtype=False)

    [(raw, valid, quarantined)] = result.query(
        f"""
        select
            (select count(*) from read_csv('{path}', all_varchar = true)),
            (select count(*) from stg_transactions__transactions),
            (select count(*) from rejected_transactions)
        """
    )
    assert raw == valid + quarantined == len(generated.transactions)


def test_ids_keep_leading_zeros_and_parquet_reads_like_csv(run_dbt, tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "client": ["007", "007", "0100", "0100"],
            "ordered_at": ["2025-01-01", "2025-02-01 10:30:00", "2025-01-15", "2025-03-01"],
            "total": [10.0, -4.0, 25.5, 30.0],
        }
    )
    path = tmp_path / "export.parquet"
    frame.to_parquet(path)
    result = run_dbt(
        "run",
        "--select",
        "+int_customer_features_as_of_date",
        variables={
            "transactions_path": str(path),
            "customer_id_column": "client",
            "transaction_date_column": "ordered_at",
            "amount_column": "total",
            "min_training_history_days": 1,
            "training_cutoff_step_days": 20,
            "min_label_window_days": 10,
        },
    )
    assert result.returncode == 0, result.output
    rows = result.query(
        "select customer_id, as_of_date, net_spend, refund_count, order_count"
        " from int_customer_features_as_of_date order by 1"
    )
    assert rows == [
        ("007", dt.date(2025, 3, 1), 6.0, 1, 1),
        ("0100", dt.date(2025, 3, 1), 55.5, 0, 2),
    ]


def test_a_parquet_time_zone_is_read_as_utc_on_any_machine(
    run_dbt, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An instant, not a wall time: read in UTC as on the spark target, wherever the
    machine is (DuckDB's default zone is the machine's)."""
    evening = pd.Timestamp("2025-03-01 22:30", tz="America/New_York")
    path = tmp_path / "zoned.parquet"
    pd.DataFrame(
        {"customer_id": ["C1"], "transaction_date": [evening], "amount": [10.0]}
    ).to_parquet(path)
    monkeypatch.setenv("TZ", "America/New_York")
    result = run_dbt(
        "run", "--select", "+stg_transactions__rows", variables={"transactions_path": str(path)}
    )  # fmt: skip
    assert result.returncode == 0, result.output
    assert result.query("select transaction_at from stg_transactions__rows") == [
        (dt.datetime(2025, 3, 2, 3, 30),)
    ]


def test_parquet_numbers_and_dates_are_taken_as_typed_whatever_the_text_vars(
    run_dbt, tmp_path: Path
) -> None:
    """The vars for marks and date layouts describe text: a typed value has neither. Read
    as text, quantity 1.234 was 1234 with thousands_separator '.', 1.5 was quarantined,
    and every typed date was unparsable with transaction_date_format set."""
    path = tmp_path / "lines.parquet"
    pd.DataFrame(
        {
            "customer_id": ["A", "B", "C"],
            "transaction_date": pd.to_datetime(
                ["2025-01-01 10:30", "2025-01-02", "2025-01-03"], format="ISO8601"
            ),
            "quantity": [1.234, 1.5, 2.0],
            "unit_price": ["1.000,00", "10,00", "12.5"],  # text: read as the vars say
        }
    ).to_parquet(path)
    variables = {
        "transactions_path": str(path),
        "unit_price_column": "unit_price",
        "decimal_separator": ",",
        "thousands_separator": ".",
        "transaction_date_format": "%d/%m/%Y",
    }
    result = run_dbt("run", "--select", "+stg_transactions__rows", variables=variables)
    assert result.returncode == 0, result.output
    rows = result.query(
        "select customer_id, transaction_at, quantity, amount, rejection_reason"
        " from stg_transactions__rows order by 1"
    )
    assert rows == [
        ("A", dt.datetime(2025, 1, 1, 10, 30), 1.234, 1234.0, None),
        ("B", dt.datetime(2025, 1, 2), 1.5, 15.0, None),
        ("C", dt.datetime(2025, 1, 3), 2.0, None, "non_numeric_unit_price"),
    ]


def test_exact_duplicate_rows_are_rejected_unless_turned_off(run_dbt, tmp_path: Path) -> None:
    path = tmp_path / "no_ids.csv"
    path.write_text(
        "customer_id,transaction_date,amount\n"
        "A,2025-01-01,10.00\n"
        "A,2025-01-01,10.00\n"
        "A,2025-01-02,10.00\n"
    )
    variables = {"transactions_path": str(path), "min_training_history_days": 0}
    result = run_dbt("run", "--select", "staging", variables=variables)
    assert result.returncode == 0, result.output
    assert result.query(
        "select source_row_number, rejection_reason from rejected_transactions"
    ) == [(2, "duplicate_row")]

    result = run_dbt(
        "run", "--select", "staging", variables={**variables, "reject_exact_duplicate_rows": False}
    )
    assert result.returncode == 0, result.output
    assert result.query("select count(*) from stg_transactions__transactions") == [(3,)]


def test_copies_of_an_id_keep_the_earliest_and_a_broken_copy_never_wins(
    run_dbt, tmp_path: Path
) -> None:
    path = tmp_path / "ids.csv"
    path.write_text(
        "transaction_id,customer_id,transaction_date,amount\n"
        "T1,A,2025-01-05,10.00\n"  # a later copy of T1 by date, though first in the file
        "T1,A,2025-01-03,12.00\n"
        "T2,B,2025-01-04,5.00\n"
        "T2,B,2025-01-04,5.00\n"  # identical: the second line is the duplicate
        "T3,,2025-01-04,5.00\n"
        "T3,C,2025-01-04,7.00\n"
    )
    result = run_dbt("run", "--select", "staging", variables={"transactions_path": str(path)})
    assert result.returncode == 0, result.output
    assert result.query(
        "select source_row_number, rejection_reason from rejected_transactions order by 1"
    ) == [
        (1, "duplicate_transaction_id"),
        (4, "duplicate_transaction_id"),
        (5, "missing_customer_id"),
    ]
    assert result.query(
        "select transaction_id, customer_id, transaction_date, amount"
        " from stg_transactions__transactions order by 1"
    ) == [
        ("T1", "A", dt.date(2025, 1, 3), 12.0),
        ("T2", "B", dt.date(2025, 1, 4), 5.0),
        ("T3", "C", dt.date(2025, 1, 4), 7.0),
    ]


def test_a_glob_of_files_numbers_rows_within_each_file(run_dbt, tmp_path: Path) -> None:
    header = "customer_id,transaction_date,amount\n"
    (tmp_path / "part_1.csv").write_text(header + "A,2025-01-01,10.00\nB,2025-01-02,5.00\n")
    (tmp_path / "part_2.csv").write_text(
        header + "C,2025-01-03,7.00\nA,2025-01-01,10.00\nD,not a date,1.00\n"
    )
    variables = {"transactions_path": str(tmp_path / "part_*.csv")}
    result = run_dbt("run", "--select", "staging", variables=variables)
    assert result.returncode == 0, result.output
    assert result.query(
        "select source_file, source_row_number, rejection_reason from rejected_transactions"
        " order by 2"
    ) == [
        (str(tmp_path / "part_2.csv"), 2, "duplicate_row"),
        (str(tmp_path / "part_2.csv"), 3, "unparsable_transaction_date"),
    ]
    assert result.query(
        "select customer_id, amount from stg_transactions__transactions order by 1"
    ) == [("A", 10.0), ("B", 5.0), ("C", 7.0)]


def test_short_history_still_yields_training_examples(run_dbt, tmp_path: Path) -> None:
    """Nine months of data and a nine-month horizon: every label window is
    shorter than the horizon, yet there are examples to train on."""
    generated = generate_transactions(customers=300, seed=3, end_date=END_DATE, history_days=270)
    path = tmp_path / "short.csv"
    write_transactions(generated.transactions, path)
    result = run_dbt(
        "run",
        "--select",
        "+int_training_examples_labelled",
        variables={"transactions_path": str(path), "horizon_days": 270},
    )
    assert result.returncode == 0, result.output
    windows = result.query(
        "select label_window_days, count(*), sum(label_net_spend)"
        " from int_training_examples_labelled group by 1 order by 1"
    )
    assert len(windows) >= 6
    assert all(days < 270 for days, _, _ in windows)
    assert all(examples > 0 and spend > 0 for _, examples, spend in windows)


def test_money_is_summed_to_the_millionth_so_a_rebuild_gives_the_same_features(
    run_dbt, tmp_path: Path
) -> None:
    """A sum of doubles follows the order an engine adds them in, and a parallel engine
    has no fixed order: features summed so differed run to run in their last bits, and
    that moved a booster's early stop and every forecast. Summed to the millionth, each
    is the decimal sum of its amounts, whatever the order; a refund that cancels a
    purchase leaves exactly nothing."""
    generator = random.Random(11)
    start = dt.date(2025, 1, 1)
    rows: list[tuple[str, dt.date, Decimal]] = []
    for customer in range(200):
        for _ in range(30):
            day = start + dt.timedelta(days=generator.randrange(330))
            rows.append(
                (f"C{customer}", day, Decimal(generator.choice([10, 20, 70, 333, 1999])) / 100)
            )
        # In its last 30 days each customer buys and returns the same 0.10 + 0.20.
        last = start + dt.timedelta(days=340)
        rows += [(f"C{customer}", last, Decimal("0.10")), (f"C{customer}", last, Decimal("0.20"))]
        rows += [(f"C{customer}", last, Decimal("-0.30"))]
    path = tmp_path / "cents.csv"
    path.write_text(
        HEADER + "".join(f"T{n},{c},{day},{amount}\n" for n, (c, day, amount) in enumerate(rows))
    )
    variables = {"transactions_path": str(path), "as_of_date": "2025-12-31"}
    result = run_dbt("run", "--select", "+int_customer_features_as_of_date", variables=variables)
    assert result.returncode == 0, result.output

    features = {
        customer: (net_spend, last_30d, gap_std)
        for customer, net_spend, last_30d, gap_std in result.query(
            "select customer_id, net_spend, net_spend_last_30d, purchase_gap_std_days"
            " from int_customer_features_as_of_date"
        )
    }
    assert len(features) == 200
    for customer, (net_spend, last_30d, gap_std) in features.items():
        own = [(day, amount) for c, day, amount in rows if c == customer]
        assert net_spend == float(sum(amount for _, amount in own)), customer
        assert last_30d == 0.0, customer  # not +-1e-14
        days = sorted({day for day, amount in own if amount > 0})
        gaps = [(later - earlier).days for earlier, later in zip(days, days[1:], strict=False)]
        assert gap_std == pytest.approx(statistics.stdev(gaps), rel=1e-12), customer


HEADER = "transaction_id,customer_id,transaction_date,amount\n"


def test_unreadable_lines_and_placeholder_ids_are_quarantined_with_their_line(
    run_dbt, tmp_path: Path
) -> None:
    path = tmp_path / "export.csv"
    lines = [
        "T1,C1,2025-01-01,10.00",
        "T2,C2,2025-01-02,20.00,surplus",  # line 3: one field too many
        "T3,C3,2025-01-03",  # line 4: one too few
        *(
            f"T{4 + i},{blank},2025-01-04,5.00"
            for i, blank in enumerate(
                ["NULL", "null", "None", "N/A", "NaN", "#N/A", "\t\t", "\u00a0", " \u3000"]
            )
        ),  # fmt: skip
        f"T13,C13,2025-01-05,{'9' * 2100}",  # line 14: longer than max_line_bytes
        'T14," C14\u00a0",2025-01-06,1.00',  # valid: the id is trimmed of every Unicode space
        "T16,C16\u200b,2025-01-06,1.00",  # valid, trimmed: a printable start, a space at the end
        "T17,\ufeffC17,2025-01-06,1.00",  # and the other way round
        'T15,"C15,2025-01-07,3.00',  # line 18: an unterminated quote runs to the end
    ]
    path.write_text(HEADER + "\n".join(lines) + "\n", encoding="utf-8")
    variables = {"transactions_path": str(path), "max_line_bytes": 2048, "as_of_date": "2025-12-31"}
    result = run_dbt("build", "--select", "staging", variables=variables)
    assert result.returncode == 0, result.output
    rejected = result.query(
        "select source_row_number, source_line_number, rejection_reason, customer_id_raw,"
        " left(raw_line, 12) from rejected_transactions order by 2, 1"
    )
    placeholders = [
        (row, None, "missing_customer_id", raw)
        for row, raw in zip(
            range(2, 11),
            ["NULL", "null", "None", "N/A", "NaN", "#N/A", "\t\t", "\u00a0", " \u3000"],
            strict=True,
        )
    ]  # row 1 is T1; the unreadable lines 3 and 4 are not rows
    assert [row[:4] for row in rejected if row[1] is None] == placeholders
    assert [(line, reason, text) for _, line, reason, _, text in rejected if line] == [
        (3, "too_many_fields", "T2,C2,2025-0"),
        (4, "too_few_fields", "T3,C3,2025-0"),
        (14, "line_too_long", "T13,C13,2025"),
        (18, "malformed_quotes", 'T15,"C15,202'),
    ]
    assert result.query("select customer_id from stg_transactions__transactions order by 1") == [
        ("C1",),
        ("C14",),
        ("C16",),
        ("C17",),
    ]


def test_a_quote_that_swallows_lines_fails_naming_the_line_it_opens_on(
    run_dbt, tmp_path: Path
) -> None:
    rows = [f"T{i},C{i % 7},2025-01-{1 + i % 28:02d},{i}.00" for i in range(1, 41)]
    # A quoted comma and a quoted line break are one row each, and a blank line is no row:
    # the file's lines of text and its rows differ, and are counted right.
    legit = [*rows[:5], 'T41,"C,41",2025-02-01,1.00', 'T42,"C\n42",2025-02-02,2.00', "", *rows[5:]]

    def stray(index: int) -> list[str]:
        broken = list(legit)
        broken[index] = broken[index].replace(",C", ',"C', 1)
        return broken

    for name, index, line_number in [
        ("second_line", 0, 2),
        ("middle", 21, 24),  # after the header, a row over two lines and a blank line
    ]:
        path = tmp_path / f"{name}.csv"
        path.write_text(HEADER + "\n".join(stray(index)) + "\n")
        swallowed = sum(1 for line in "\n".join(legit[index + 1 :]).split("\n") if line)
        assert (
            f"{path}, line {line_number}: a quoted field opens there and is never closed where it"
            f" should be, so the reader takes the {swallowed} lines after it for part of that field"
        ) in refusal(run_dbt, path)

    path = tmp_path / "last_line.csv"
    path.write_text(HEADER + "\n".join(stray(len(legit) - 1)) + "\n")
    result = run_dbt(
        "build", "--select", "staging",
        variables={"transactions_path": str(path), "as_of_date": "2025-12-31"},
    )  # fmt: skip
    assert result.returncode == 0, result.output
    assert result.query(
        "select source_line_number, rejection_reason from rejected_transactions"
    ) == [(len(legit) + 1, "malformed_quotes")]  # DuckDB numbers lines by record
    assert result.query(
        "select line_count, rows_read, row_continuation_lines, unreadable_lines, unaccounted_lines"
        " from stg_transactions__input_files"
    ) == [(len(legit) + 2 - 1, len(legit) - 2, 1, 1, 0)]
    assert result.query(
        "select customer_id from stg_transactions__transactions"
        " where transaction_id in ('T41', 'T42') order by transaction_id"
    ) == [("C,41",), ("C\n42",)]


def refusal(run_dbt, path: Path, **variables) -> str:
    """The build's one-sentence refusal (dbt's error line), asserting it failed cleanly."""
    result = run_dbt(
        "build", "--select", "+int_training_cutoffs",
        variables={"transactions_path": str(path), **variables},
    )  # fmt: skip
    assert result.returncode != 0, result.output
    assert "Traceback" not in result.output
    return result.output


def test_encodings_are_named_never_guessed(run_dbt, tmp_path: Path) -> None:
    latin = tmp_path / "latin.csv"
    latin.write_bytes(
        (HEADER + "T1,C1,2025-01-01,1.00\nT2,Zoé,2025-01-02,2.00\n").encode("latin-1")
    )
    assert (
        f"{latin} is not utf-8 text: line 3 does not decode. Set the var input_encoding"
        in refusal(run_dbt, latin)
    )
    utf16 = tmp_path / "utf16.csv"
    utf16.write_text(HEADER + "T1,C1,2025-01-01,1.00\n", encoding="utf-16")
    assert (
        f"{utf16} holds NUL bytes, as UTF-16 text does: set the var input_encoding to utf-16"
        in (refusal(run_dbt, utf16))
    )
    read = run_dbt(
        "build", "--select", "staging",
        variables={"transactions_path": str(latin), "input_encoding": "latin-1"},
    )  # fmt: skip
    assert read.returncode == 0, read.output
    assert read.query("select customer_id from stg_transactions__transactions order by 1") == [
        ("C1",),
        ("Zoé",),
    ]


def test_dates_that_no_format_parses_name_the_var_its_value_and_a_date(
    run_dbt, tmp_path: Path
) -> None:
    path = tmp_path / "day_first.csv"
    path.write_text(HEADER + "T1,C1,31/12/2024,1.00\nT2,C2,15/01/2025,2.00\n")
    assert (
        f"No date in the column 'transaction_date' (var transaction_date_column) of {path}"
        ' parses with the var transaction_date_format "%m/%d/%Y" (e.g. "15/01/2025" does not):'
        " set it to the dates' layout"
    ) in refusal(run_dbt, path, transaction_date_format="%m/%d/%Y")
    assert (
        f"No date in the column 'transaction_date' (var transaction_date_column) of {path}"
        ' is an ISO date or datetime (e.g. "15/01/2025" is not): set the var'
        " transaction_date_format to the dates' layout"
    ) in refusal(run_dbt, path)


def test_inputs_that_hold_nothing_to_forecast_say_what_they_hold(run_dbt, tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    assert f"{empty} is empty: it has no header line naming its columns." in refusal(run_dbt, empty)

    header_only = tmp_path / "header_only.csv"
    header_only.write_text(HEADER)
    assert f"{header_only} holds a header and no transactions." in refusal(run_dbt, header_only)

    one_day = tmp_path / "one_day.csv"
    one_day.write_text(HEADER + "T1,C1,2025-03-01,1.00\nT2,C2,2025-03-01,2.00\n")
    assert (
        f"The history in {one_day} runs from 2025-03-01 to 2025-03-01 (1 day); training needs"
        " at least 60 days" in refusal(run_dbt, one_day)
    )
    assert (
        f"No transaction in {one_day} is dated on or before the as-of date 2020-01-01: all 2 are"
        " later (the earliest: 2025-03-01)" in refusal(run_dbt, one_day, as_of_date="2020-01-01")
    )


def test_a_history_without_a_returning_buyer_is_refused(run_dbt, tmp_path: Path) -> None:
    """One-off buyers only: no label to learn from, said in one sentence before training
    (LightGBM said "sum of labels is zero"); a tiny max_training_rows sample, alike."""
    path = tmp_path / "one_offs.csv"
    days = pd.date_range("2025-01-01", "2025-12-31", freq="D")
    path.write_text(
        HEADER + "".join(f"T{n},C{n},{day.date()},25.00\n" for n, day in enumerate(days))
    )

    def refused(**variables) -> str:
        result = run_dbt(
            "build", "--select", "+int_training_examples_labelled",
            variables={"transactions_path": str(path), **variables},
        )  # fmt: skip
        assert result.returncode != 0, result.output
        return result.output

    output = refused()
    assert f"No customer of {path} spent anything in a label window after a training cutoff" in (
        output
    )
    assert "Its customers buy once, or not again within a label window (the horizon, 90 days)" in (
        output
    )
    assert "The var max_training_rows (5) keeps a sample of" in refused(max_training_rows=5)


def test_an_as_of_date_past_the_history_is_refused(run_dbt, tmp_path: Path) -> None:
    """Days the file does not reach would train as days when nobody bought: an as-of date
    up to the shortest label window after the last purchase is built, a day more refused."""
    path = tmp_path / "ends_in_march.csv"
    path.write_text(HEADER + "T1,C1,2025-01-02,1.00\nT2,C2,2025-03-01,2.00\n")
    late = refusal(run_dbt, path, as_of_date="2025-04-01")
    assert (
        f"The last purchase in {path} is on 2025-03-01, 31 days before the as-of date"
        " 2025-04-01: the file does not reach those days" in late
    )
    assert "at most 30 days after the last purchase (var min_label_window_days)" in late
    within = run_dbt(
        "run", "--select", "+int_customer_features_as_of_date",
        variables={"transactions_path": str(path), "as_of_date": "2025-03-31"},
    )  # fmt: skip
    assert within.returncode == 0, within.output


def test_number_marks_are_read_as_the_vars_say_and_named_without_them(
    run_dbt, tmp_path: Path
) -> None:
    """Exports write 12,50 or 1,234.56 or 1 234,56. Each mark is read only where the vars
    decimal_separator and thousands_separator put it: any other mark makes the value not a
    number, its row quarantined rather than read a thousand times off. Without the vars,
    the run says which to set."""
    from clv.run import input_warnings

    european = tmp_path / "european.csv"
    european.write_text(
        HEADER.replace(",", ";")
        + "T1;C1;2025-01-02;12,50\nT2;C2;2025-01-03;-3,25\nT3;C1;2025-02-01;7\n"
        + "T4;C2;2025-02-02;1.234,56\nT5;C1;2025-03-01;12.5\nT6;C2;2025-03-02;1 234 567,5\n"
        + "T7;C1;2025-03-03;1\u00a0234,5\n"
    )

    def amounts(path: Path, **variables) -> list[tuple]:
        read = run_dbt(
            "run", "--select", "+stg_transactions__rows",
            variables={"transactions_path": str(path), **variables},
        )  # fmt: skip
        assert read.returncode == 0, read.output
        return read.query("select amount from stg_transactions__rows order by transaction_id")

    comma = {"csv_delimiter": ";", "decimal_separator": ","}
    assert amounts(european, **comma) == [
        (12.5,), (-3.25,), (7.0,), (None,), (None,), (None,), (None,)
    ]  # fmt: skip
    # Spaces group thousands, also the no-break ones spreadsheets write; a point still does not.
    assert amounts(european, **comma, thousands_separator=" ") == [
        (12.5,), (-3.25,), (7.0,), (None,), (None,), (1234567.5,), (1234.5,)
    ]  # fmt: skip

    # A point before the cents and commas between groups of three digits, only there.
    american = tmp_path / "american.csv"
    american.write_text(
        HEADER + 'T1,C1,2025-01-02,"1,686.60"\nT2,C2,2025-01-03,"-1,000"\nT3,C1,2025-02-01,7\n'
        + 'T4,C2,2025-02-02,"12,50"\nT5,C1,2025-03-01,"1,234,567.5"\n'
    )  # fmt: skip
    assert amounts(american, thousands_separator=",") == [
        (1686.6,), (-1000.0,), (7.0,), (None,), (1234567.5,)
    ]  # fmt: skip

    # Without the var, the rows a comma broke are quarantined, and the run says so and
    # names both vars: the comma in 1,686.60 groups thousands, the one in 12,50 does not.
    misread = run_dbt(
        "run", "--select", "+rpt_data_quality +rejected_transactions",
        variables={"transactions_path": str(american)},
    )  # fmt: skip
    assert misread.returncode == 0, misread.output
    assert input_warnings(misread.database, {}) == [
        "4 of the 5 rows (80.0%) were quarantined (non_numeric_amount 4): each is in the table"
        " rejected_transactions with its reason",
        "4 of the 5 rows were rejected as non_numeric_amount holding a ',' (e.g. '-1,000'): set"
        " the var thousands_separator to ',' if it groups thousands, or decimal_separator to ','"
        " if it marks decimals",
    ]
    # And where not one amount reads, the build is refused saying the same, and naming
    # the currency symbol beside them (test_a_currency_symbol_is_read_as_the_var_says_...).
    all_commas = tmp_path / "all_commas.csv"
    all_commas.write_text(
        HEADER.replace(",", ";") + "T1;C1;2025-01-02;12,50 \u20ac\nT2;C2;2025-01-03;7,00 \u20ac\n"
    )
    assert (
        f"None of the 2 rows of {all_commas} is a valid transaction (the most common reason:"
        " non_numeric_amount, 2 rows); see the table rejected_transactions. Its numbers hold a"
        ' "," (e.g. "12,50 \u20ac"): set the var thousands_separator to \',\' if it groups'
        " thousands, or decimal_separator to ',' if it marks decimals. Its amounts hold the"
        ' symbol "\u20ac" (e.g. "12,50 \u20ac"): set the var currency_symbol to "\u20ac" if'
        " every amount is in that currency."
    ) in refusal(run_dbt, all_commas, csv_delimiter=";")


def test_a_currency_symbol_is_read_as_the_var_says_and_named_without_it(
    run_dbt, tmp_path: Path
) -> None:
    """Spreadsheet exports write $1,234.50 or 12,50 € (a no-break space before the sign).
    The var currency_symbol reads that one symbol, before or after the number; an amount
    in another currency stays quarantined, never added to the others. Without the var,
    the run's note names it."""
    from clv.run import input_warnings

    path = tmp_path / "dollars.csv"
    path.write_text(
        # First, a no-break space grouping thousands: a mark, not a symbol.
        HEADER + "T0,C2,2025-01-01,1\u00a0234.50\n"
        + 'T1,C1,2025-01-02,$10.00\nT2,C2,2025-01-03,"$1,234.50"\nT3,C1,2025-02-01,-$5\n'
        + "T4,C2,2025-02-02,$-6.5\nT5,C1,2025-03-01,9 $\nT6,C2,2025-03-02,7\n"
        + "T7,C1,2025-03-03,\u20ac8\nT8,C2,2025-03-04,$$9\n"
    )  # fmt: skip

    def read(**variables) -> tuple[list[tuple], list[str]]:
        variables = {"transactions_path": str(path), **variables}
        result = run_dbt(
            "run", "--select", "+rpt_data_quality +rejected_transactions", variables=variables
        )  # fmt: skip
        assert result.returncode == 0, result.output
        amounts = result.query("select amount from stg_transactions__rows order by transaction_id")
        return amounts, input_warnings(result.database, variables)

    amounts, notes = read(currency_symbol="$", thousands_separator=",")
    assert amounts == [
        (None,), (10.0,), (1234.5,), (-5.0,), (-6.5,), (9.0,), (7.0,), (None,), (None,)
    ]  # fmt: skip
    assert notes[1] == (
        "1 of the 9 rows were rejected as non_numeric_amount holding a symbol such as '\u20ac'"
        " (e.g. '\u20ac8'): the var currency_symbol is '$': two currencies are never added up"
    )
    amounts, notes = read(thousands_separator=",")
    assert amounts == [(None,)] * 6 + [(7.0,), (None,), (None,)]
    assert notes[1].startswith("7 of the 9 rows were rejected as non_numeric_amount holding")
    assert notes[1].endswith(
        "(e.g. '$10.00'): set the var currency_symbol to '$' if every amount is in that currency"
    )


def test_files_that_do_not_fit_the_settings_are_named(run_dbt, tmp_path: Path) -> None:
    semicolons = tmp_path / "semicolons.csv"
    semicolons.write_text(HEADER.replace(",", ";") + "T1;C1;2025-01-01;1.00\n")
    assert 'Its header looks ";"-separated: set the var csv_delimiter to ";".' in refusal(
        run_dbt, semicolons
    )

    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "january.csv").write_text(HEADER + "T1,C1,2025-01-01,1.00\n")
    assert f"The var transactions_path names the folder {folder}, not a file" in refusal(
        run_dbt, folder
    )

    (folder / "february.csv").write_text(
        "transaction_id,customer_id,transaction_date,amount,quantity\nT2,C1,2025-02-01,1.00,2\n"
    )
    assert (
        f"The column 'quantity' (var quantity_column) is in {folder / 'february.csv'} but not in"
        f" {folder / 'january.csv'}" in refusal(run_dbt, folder / "*.csv")
    )

    workbook = tmp_path / "export.xlsx"
    workbook.write_bytes(b"PK\x03\x04 a zipped workbook")
    assert (
        f"The var transactions_path names {workbook}, which is an Excel workbook (.xlsx): the input"
        " is CSV (.csv, also gzipped) or Parquet (.parquet, .pq); save it as one of those."
    ) in refusal(run_dbt, workbook)

    # Names are matched exactly; one that differs only in case or spaces is named, not taken.
    spaced = tmp_path / "spaced.csv"
    spaced.write_text("transaction_id, customer_id, transaction_date, amount\nT1,C1,2025-01-01,1\n")
    assert (
        'Its column " customer_id" differs only in case or spaces: set the var'
        ' customer_id_column to " customer_id".'
    ) in refusal(run_dbt, spaced)
    capitals = tmp_path / "capitals.csv"
    capitals.write_text("Transaction_ID,customer_id,transaction_date,amount\nT1,C1,2025-01-01,1\n")
    assert (
        f"The optional column 'transaction_id' (var transaction_id_column) is not in {capitals},"
        ' but its column "Transaction_ID" differs only in case or spaces: set the var'
        ' transaction_id_column to "Transaction_ID" to use it, or to null to ignore it.'
    ) in refusal(run_dbt, capitals)


def test_quotes_and_semicolons_in_paths_columns_and_formats_stay_data(
    run_dbt, tmp_path: Path
) -> None:
    """Every var that reaches SQL as text, given a quote and a semicolon at once."""
    folder = tmp_path / "it's; here"
    folder.mkdir()
    path = folder / "export.csv"
    path.write_text(
        '"id"";x",\'customer;\',"day""s",amount\n'
        "T1,C1,01'01;2025,1.00\n"
        "T2,'; drop table x; --,01'02;2025,2.00\n"
    )
    result = run_dbt(
        "build", "--select", "staging",
        variables={
            "transactions_path": str(path),
            "transaction_id_column": 'id";x',
            "customer_id_column": "'customer;'",
            "transaction_date_column": 'day"s',
            "transaction_date_format": "%d'%m;%Y",
            "missing_customer_id_values": ["'; drop table x; --"],
            "as_of_date": "2025-12-31",
        },
    )  # fmt: skip
    assert result.returncode == 0, result.output
    assert result.query(
        "select transaction_id, customer_id, transaction_date from stg_transactions__transactions"
    ) == [("T1", "C1", dt.date(2025, 1, 1))]
    assert result.query("select rejection_reason from rejected_transactions") == [
        ("missing_customer_id",)
    ]


def test_a_numeric_var_that_is_not_a_number_is_refused_by_plain_dbt(
    run_dbt, tmp_path: Path
) -> None:
    path = tmp_path / "export.csv"
    path.write_text(HEADER + "T1,C1,2025-01-01,1.00\n")
    output = refusal(run_dbt, path, amount_min="0; drop table x")
    assert 'The var amount_min must be a number, got "0; drop table x".' in output


def order_lines(orders: pd.DataFrame) -> pd.DataFrame:
    """Each order as the lines of an online shop's export, whose quantity x unit price sums to
    the order's amount to the cent; every fifth order also holds an item and its return."""
    lines = []
    for number, order in enumerate(orders.itertuples()):
        cents = round(order.amount * 100)
        pair = cents // 4  # two of these, then the rest
        items = [("A", 2, pair), ("B", 1, cents - 2 * pair)]
        if number % 5 == 0:
            items += [("C", 1, 750), ("C", -1, 750)]  # a refund line nets within its order
        lines += [
            (f"5{number:05d}", code, quantity, order.transaction_date, f"{price / 100:.2f}",
             order.customer_id)
            for code, quantity, price in items
        ]  # fmt: skip
    return pd.DataFrame(
        lines,
        columns=["InvoiceNo", "StockCode", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID"],
    )


ORDER_LINE_VARS = {
    "customer_id_column": "CustomerID",
    "transaction_date_column": "InvoiceDate",
    "quantity_column": "Quantity",
    "unit_price_column": "UnitPrice",
    "order_id_column": "InvoiceNo",
    "transaction_id_column": None,
    "as_of_date": END_DATE.isoformat(),
}


def test_order_lines_are_one_purchase_whose_amount_is_the_sum_of_its_lines(
    run_dbt, tmp_path: Path
) -> None:
    orders = generate_transactions(
        customers=60, seed=5, end_date=END_DATE, history_days=300
    ).transactions
    lines = order_lines(orders)
    # An order id seen with two customers, and one seen on two days: all their lines
    # are quarantined, since an order is one purchase by one customer on one day.
    conflicts = pd.DataFrame(
        [
            ("X1", "A", 1, "2025-06-01 10:00:00", "5.00", "C-one"),
            ("X1", "B", 1, "2025-06-01 10:00:00", "6.00", "C-two"),
            ("X2", "A", 1, "2025-06-01 10:00:00", "7.00", "C-one"),
            ("X2", "B", 1, "2025-06-02 10:00:00", "8.00", "C-one"),
        ],
        columns=lines.columns,
    )
    path = tmp_path / "order_lines.csv"
    pd.concat([lines, conflicts]).to_csv(path, index=False)

    result = run_dbt(
        "build", "--select", "staging", "rpt_data_quality",
        variables={"transactions_path": str(path), **ORDER_LINE_VARS},
    )  # fmt: skip
    assert result.returncode == 0, result.output
    purchases = pd.DataFrame(
        result.query(
            "select transaction_id, customer_id, amount, line_count"
            " from stg_transactions__transactions order by 1"
        ),
        columns=["order_id", "customer_id", "amount", "line_count"],
    )
    expected = pd.DataFrame(
        {
            "order_id": [f"5{number:05d}" for number in range(len(orders))],
            "customer_id": orders["customer_id"].to_numpy(),
            "amount": orders["amount"].to_numpy(),
            "line_count": [4 if number % 5 == 0 else 2 for number in range(len(orders))],
        }
    )
    pd.testing.assert_frame_equal(purchases, expected, check_dtype=False, atol=1e-9)
    assert result.query(
        "select order_id_raw, customer_id_raw, rejection_reason from rejected_transactions"
        " order by 1, 2"
    ) == [
        ("X1", "C-one", "order_id_with_several_customers"),
        ("X1", "C-two", "order_id_with_several_customers"),
        ("X2", "C-one", "order_id_with_several_dates"),
        ("X2", "C-one", "order_id_with_several_dates"),
    ]

    # Mapped as if each line were a transaction with an id, most rows are "copies":
    # the run's summary names the var that was meant.
    from clv.run import input_warnings

    as_ids = {**ORDER_LINE_VARS, "order_id_column": None, "transaction_id_column": "InvoiceNo"}
    misread = run_dbt(
        "build", "--select", "staging", "rpt_data_quality",
        variables={"transactions_path": str(path), **as_ids}, database="misread",
    )  # fmt: skip
    assert misread.returncode == 0, misread.output
    quarantined, warning = input_warnings(misread.database, as_ids)
    assert "were quarantined (duplicate_transaction_id " in quarantined
    assert "rejected as duplicate_transaction_id: if the column 'InvoiceNo'" in warning
    assert "set the var order_id_column to 'InvoiceNo' instead" in warning
    # Mapped right, the run still says what it quarantined, and nothing more.
    assert input_warnings(result.database, ORDER_LINE_VARS) == [
        f"4 of the {len(lines) + 4:,} rows ({4 / (len(lines) + 4):.1%}) were quarantined"
        " (order_id_with_several_customers 2, order_id_with_several_dates 2): each is in the"
        " table rejected_transactions with its reason"
    ]
