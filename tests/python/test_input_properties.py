"""The input contract as properties: generated CSV files that mix valid rows with every
class of broken row. Whatever the mix, every row is valid or quarantined with its reason,
raw = valid + rejected, no valid customer is lost and none is made up, and a run either
succeeds or fails with one sentence.

Profiles (tests/python/conftest.py): `ci` (the default: few examples, derandomized, so CI
is repeatable) and `thorough` (HYPOTHESIS_PROFILE=thorough, for local runs).
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
from conftest import DbtRun, clv, dbt_runner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clv.generate import generate_transactions, write_transactions

AS_OF = dt.date(2024, 12, 31)
HEADER = "transaction_id,customer_id,transaction_date,amount"
PLACEHOLDER_IDS = ["NULL", "null", "None", "N/A", "NaN", "#N/A", "", "\t", "\u00a0", " \u3000 "]
CUSTOMER_IDS = ["C1", "C2", "007", "Zoë", "C,4", "C\n5", "C\u00a06"]


@dataclass(frozen=True)
class Record:
    """One record of the file: its CSV text and what the pipeline must make of it."""

    text: str
    reason: str | None  # None: a valid transaction
    customer_id: str | None = None
    readable: bool = True


def field(value: str) -> str:
    """A CSV field, quoted when it holds a separator, a quote or a line break."""
    if any(character in value for character in ',"\n\r'):
        return '"' + value.replace('"', '""') + '"'
    return value


@st.composite
def records(draw, number: int) -> Record:
    kind = draw(
        st.sampled_from(
            ["valid", "valid", "valid", "placeholder_id", "bad_amount", "missing_amount",
             "bad_date", "too_many_fields", "too_few_fields"]
        )
    )  # fmt: skip
    customer = draw(st.sampled_from(CUSTOMER_IDS))
    day = AS_OF - dt.timedelta(days=draw(st.integers(0, 400)))
    amount = f"{draw(st.integers(1, 50_000)) / 100:.2f}"
    fields = [f"T{number}", field(customer), day.isoformat(), amount]
    if kind == "valid":
        return Record(",".join(fields), None, customer)
    if kind == "placeholder_id":
        fields[1] = field(draw(st.sampled_from(PLACEHOLDER_IDS)))
        return Record(",".join(fields), "missing_customer_id")
    if kind == "bad_amount":
        fields[3] = draw(st.sampled_from(["abc", "0 EUR", "1.2.3", "'; drop table x; --"]))
        return Record(",".join(fields), "non_numeric_amount")
    if kind == "missing_amount":
        fields[3] = ""
        return Record(",".join(fields), "missing_amount")
    if kind == "bad_date":
        fields[2] = draw(st.sampled_from(["2024-13-45", "yesterday", "31/12/2024"]))
        return Record(",".join(fields), "unparsable_transaction_date")
    if kind == "too_many_fields":
        return Record(",".join([*fields, "extra"]), "too_many_fields", readable=False)
    return Record(",".join(fields[:3]), "too_few_fields", readable=False)


@st.composite
def files(draw) -> list[Record]:
    count = draw(st.integers(1, 25))
    rows = [draw(records(number)) for number in range(1, count + 1)]
    if draw(st.booleans()):
        # An unterminated quote runs to the next quote; placed last, it swallows nothing else.
        rows.append(
            Record(
                f'T{count + 1},"C9,{AS_OF.isoformat()},10.00', "malformed_quotes", readable=False
            )
        )
    return rows


def write_file(path: Path, rows: list[Record], line_end: str) -> None:
    path.write_text(line_end.join([HEADER, *(row.text for row in rows)]) + line_end)


def expected_quarantine(rows: list[Record]) -> Counter:
    """(row number among readable rows, line number of an unreadable row, reason) of each reject.

    DuckDB numbers lines by record: a quoted field that spans lines counts as one line."""
    expected: Counter = Counter()
    readable = 0
    for line, row in enumerate(rows, start=2):  # line 1 is the header
        readable += row.readable
        if row.reason and row.readable:
            expected[(readable, None, row.reason)] += 1
        elif row.reason:
            expected[(None, line, row.reason)] += 1
    return expected


@pytest.fixture(scope="module")
def staging_runner(tmp_path_factory):
    return dbt_runner(tmp_path_factory.mktemp("properties"))


@pytest.fixture(scope="module")
def example_path(tmp_path_factory) -> Path:
    """One path that every example's file is written to: with the same vars each time,
    dbt parses the project once and then only checks it (partial parsing), 3 s less an
    example than the full parse that new vars start."""
    return tmp_path_factory.mktemp("file") / "transactions.csv"


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=files(), line_end=st.sampled_from(["\n", "\r\n"]))
def test_every_row_is_valid_or_quarantined_with_its_reason(
    staging_runner, example_path: Path, rows: list[Record], line_end: str
) -> None:
    path = example_path
    write_file(path, rows, line_end)
    result: DbtRun = staging_runner(
        "build", "--select", "staging",
        variables={"transactions_path": str(path), "as_of_date": AS_OF.isoformat()},
    )  # fmt: skip
    assert result.returncode == 0, result.output  # the reconciliation test runs in it

    rejected = Counter(
        result.query(
            "select source_row_number, source_line_number, rejection_reason"
            " from rejected_transactions"
        )
    )
    assert rejected == expected_quarantine(rows)
    [(valid, quarantined)] = result.query(
        "select (select count(*) from stg_transactions__transactions),"
        " (select count(*) from rejected_transactions)"
    )
    assert valid + quarantined == len(rows)
    customers = {customer for (customer,) in result.query(
        "select distinct customer_id from stg_transactions__transactions"
    )}  # fmt: skip
    assert customers == {row.customer_id for row in rows if row.reason is None}


@pytest.fixture(scope="module")
def trained_warehouse(tmp_path_factory) -> Path:
    """A warehouse with a registered model, so each example below only scores."""
    folder = tmp_path_factory.mktemp("trained")
    history = folder / "history.csv"
    generated = generate_transactions(customers=300, seed=5, end_date=AS_OF)
    write_transactions(generated.transactions, history)
    database = folder / "warehouse.duckdb"
    trained = clv("run", "--input", str(history), "--output", str(folder / "out"),
                  database=database)  # fmt: skip
    assert trained.returncode == 0, trained.stdout + trained.stderr
    return database


# Each example is a whole scoring run (about 15 s): half as many as the profile's count.
@settings(
    max_examples=max(1, settings.default.max_examples // 2),
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(rows=files())
def test_a_run_scores_exactly_the_valid_customers_or_refuses_in_one_sentence(
    trained_warehouse: Path, tmp_path_factory, rows: list[Record]
) -> None:
    folder = tmp_path_factory.mktemp("scored")
    path = folder / "transactions.csv"
    write_file(path, rows, "\n")
    database = folder / "warehouse.duckdb"
    shutil.copy(trained_warehouse, database)
    result = clv("run", "--input", str(path), "--output", str(folder / "out"), "--score-only",
                 database=database)  # fmt: skip

    valid_customers = {row.customer_id for row in rows if row.reason is None}
    if result.returncode == 0:
        predictions = json.loads((folder / "out" / "run.json").read_text())
        assert predictions["customers"] == len(valid_customers)
        with duckdb.connect(str(database), read_only=True) as connection:
            scored = {customer for (customer,) in connection.execute(
                "select customer_id from customer_predictions"
            ).fetchall()}  # fmt: skip
        assert scored == valid_customers
    else:
        assert result.returncode in (1, 2)  # 2: the input was refused
        assert "Traceback" not in result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("clv run failed: "), result.stderr
        if not valid_customers:  # the only reason a file of these rows may be refused
            assert result.returncode == 2
            assert "is a valid transaction" in lines[0] or "no transactions" in lines[0]
