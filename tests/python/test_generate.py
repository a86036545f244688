"""Tests for the synthetic transaction generator (clv.generate)."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from scipy import stats

from clv import cli
from clv.generate import (
    AMOUNT_BOUND,
    COLUMNS,
    DEFECT_REASONS,
    KINDS,
    GeneratedTransactions,
    _retail_rates,
    generate_transactions,
    write_transactions,
)

CUSTOMERS = 1500
END_DATE = dt.date(2026, 6, 30)
HISTORY_DAYS = 730
DIRTY_SHARE = 0.12
TEXT_TYPES = {name: pa.string() for name in COLUMNS}


@pytest.fixture(scope="module")
def clean() -> pd.DataFrame:
    return generate_transactions(CUSTOMERS, seed=7).transactions


@pytest.fixture(scope="module")
def dirty() -> GeneratedTransactions:
    return generate_transactions(CUSTOMERS, seed=7, dirty_share=DIRTY_SHARE)


@pytest.fixture(scope="module")
def dirty_csv(
    dirty: GeneratedTransactions, tmp_path_factory: pytest.TempPathFactory
) -> pd.DataFrame:
    """The dirty file as written, read back as raw text: what the dbt project will see."""
    path = tmp_path_factory.mktemp("dirty") / "transactions.csv"
    write_transactions(dirty.transactions, path)
    options = pa_csv.ConvertOptions(column_types=TEXT_TYPES, strings_can_be_null=False)
    return pa_csv.read_csv(path, convert_options=options).to_pandas()


def per_customer_counts(frame: pd.DataFrame) -> pd.Series:
    return frame.groupby("customer_id").size()


def digest(frame: pd.DataFrame) -> str:
    """SHA-256 of a frame's values (amounts in cents), independent of pandas' hashing."""
    sha = hashlib.sha256()
    for name in frame.columns:
        column = frame[name]
        if column.dtype == np.dtype("datetime64[s]"):
            data = column.to_numpy().astype(np.int64).tobytes()
        elif column.dtype == np.float64:
            data = np.rint(column.to_numpy() * 100).astype(np.int64).tobytes()
        elif column.dtype == np.int64:
            data = column.to_numpy().tobytes()
        else:
            data = "\n".join(column.astype(str).tolist()).encode()
        sha.update(name.encode() + b"\0" + data + b"\0")
    return sha.hexdigest()


# --- determinism and shape --------------------------------------------------------------------


def test_same_seed_gives_identical_output() -> None:
    first = generate_transactions(300, seed=11, dirty_share=0.1)
    second = generate_transactions(300, seed=11, dirty_share=0.1)
    pd.testing.assert_frame_equal(first.transactions, second.transactions)
    pd.testing.assert_frame_equal(first.defects, second.defects)


# Digests of the btyd population's output taken before the mixed population was added: the
# default output (and so the bundled sample) must not change.
@pytest.mark.parametrize(
    ("kwargs", "rows", "transactions_digest", "defects_digest"),
    [
        (
            {"customers": 500, "seed": 3},
            5961,
            "560057366fc9df498057912ec4f5eb5c668add04e9e9b752a1e3dd3525b066e7",
            "1459a7f3ac34f72cb425d875ebf8935e6194839f0ec25cf3d75c523e3ec8fa95",
        ),
        (
            {"customers": 400, "seed": 9, "dirty_share": 0.1},
            3996,
            "9d8090350cf8fe9071de0e79fb8d49e34420484661781449b1a9d3039e44dd3a",
            "b05ac835d9024916ab0270791d72487aecb77c812ffa8caf4ef3a164c600453e",
        ),
    ],
    ids=["clean", "dirty"],
)
def test_default_population_output_is_unchanged(
    kwargs: dict, rows: int, transactions_digest: str, defects_digest: str
) -> None:
    for generated in (
        generate_transactions(**kwargs),
        generate_transactions(**kwargs, population="btyd"),
    ):
        assert len(generated.transactions) == rows
        assert digest(generated.transactions) == transactions_digest
        assert digest(generated.defects) == defects_digest
        assert (generated.customers["kind"] == "btyd").all()
        assert len(generated.customers) == kwargs["customers"]


def test_different_seeds_give_different_output() -> None:
    first = generate_transactions(300, seed=1).transactions
    second = generate_transactions(300, seed=2).transactions
    assert not first.equals(second)


def test_clean_columns_and_dtypes(clean: pd.DataFrame) -> None:
    assert tuple(clean.columns) == COLUMNS
    assert pd.api.types.is_string_dtype(clean["transaction_id"])
    assert pd.api.types.is_string_dtype(clean["customer_id"])
    assert clean["transaction_date"].dtype == np.dtype("datetime64[s]")
    assert clean["amount"].dtype == np.float64
    assert clean["quantity"].dtype == np.int64
    assert clean["transaction_id"].is_unique
    assert clean["transaction_id"].str.fullmatch(r"T\d{9}").all()
    assert clean["customer_id"].str.fullmatch(r"\d{7}").all()
    assert (clean["quantity"] >= 1).all()
    assert (clean["amount"] != 0).all()
    assert np.allclose(clean["amount"], clean["amount"].round(2), rtol=0, atol=1e-9)


def test_dirty_columns_are_all_text(dirty: GeneratedTransactions) -> None:
    assert tuple(dirty.transactions.columns) == COLUMNS
    for name in COLUMNS:
        assert pd.api.types.is_string_dtype(dirty.transactions[name]), name
    assert list(dirty.defects.columns) == ["source_row_number", "reason"]
    assert dirty.defects["source_row_number"].dtype == np.int64


def test_clean_rows_are_chronological(clean: pd.DataFrame) -> None:
    assert clean["transaction_date"].is_monotonic_increasing


def test_customer_count_scales_to_roughly_ten_rows_each(clean: pd.DataFrame) -> None:
    assert 5 <= len(clean) / CUSTOMERS <= 15


# --- realism ----------------------------------------------------------------------------------


def test_every_customer_has_a_purchase(clean: pd.DataFrame) -> None:
    purchases = clean[clean["amount"] > 0]
    expected = {f"{number:07d}" for number in range(1, CUSTOMERS + 1)}
    assert set(purchases["customer_id"]) == expected
    assert set(clean["customer_id"]) == expected


def test_clean_dates_stay_in_the_history_window(clean: pd.DataFrame) -> None:
    start = pd.Timestamp(END_DATE - dt.timedelta(days=HISTORY_DAYS))
    assert clean["transaction_date"].min() >= start
    assert clean["transaction_date"].max() < pd.Timestamp(END_DATE + dt.timedelta(days=1))
    # First purchases are staggered over the whole window, not bunched at the start.
    first = clean.groupby("customer_id")["transaction_date"].min()
    assert (first > start + pd.Timedelta(days=HISTORY_DAYS * 0.75)).mean() > 0.15


def test_custom_window_is_respected() -> None:
    end, days = dt.date(2020, 3, 1), 30
    frame = generate_transactions(200, seed=3, end_date=end, history_days=days).transactions
    dates = frame["transaction_date"].dt.date
    assert dates.min() >= end - dt.timedelta(days=days)
    assert dates.max() <= end


def test_refunds_follow_an_earlier_purchase_by_the_same_customer(clean: pd.DataFrame) -> None:
    refunds = clean[clean["amount"] < 0]
    assert 0.015 <= len(refunds) / len(clean) <= 0.05
    purchases = clean[clean["amount"] > 0]
    pairs = refunds.merge(purchases, on="customer_id", suffixes=("_refund", "_purchase"))
    covered = pairs[
        (pairs["transaction_date_purchase"] < pairs["transaction_date_refund"])
        & (pairs["amount_purchase"] >= -pairs["amount_refund"])
    ]
    assert set(covered["transaction_id_refund"]) == set(refunds["transaction_id"])


def test_customers_are_heterogeneous(clean: pd.DataFrame) -> None:
    counts = per_customer_counts(clean)
    # Dropout alone makes counts geometric (CV ~0.9 for identical customers); differing
    # purchase rates push it well above that.
    assert counts.std() / counts.mean() > 1.1
    # Repeat buyers differ in pace: identical rates would keep the p90/p10 ratio of their
    # mean inter-purchase gaps near 2.
    purchases = clean[clean["amount"] > 0].sort_values(["customer_id", "transaction_date"])
    gap_days = (
        purchases.groupby("customer_id")["transaction_date"].diff().dt.total_seconds() / 86400
    )
    gaps = gap_days.groupby(purchases["customer_id"]).agg(["mean", "count"])
    mean_gap = gaps.loc[gaps["count"] >= 5, "mean"]
    assert mean_gap.quantile(0.9) > 5 * mean_gap.quantile(0.1)
    assert (counts == 1).mean() > 0.05  # some buy once and never return
    assert counts.max() > 5 * counts.mean()  # some are loyal heavy buyers
    mean_spend = clean[clean["amount"] > 0].groupby("customer_id")["amount"].mean()
    assert mean_spend.quantile(0.95) > 2.5 * mean_spend.median()  # a tail of big spenders


def test_year_end_is_busier_and_nights_are_quiet(clean: pd.DataFrame) -> None:
    dates = clean["transaction_date"]
    year_2025 = dates[dates.dt.year == 2025]
    by_month = year_2025.dt.month.value_counts()
    assert by_month[12] > 1.3 * by_month[9]
    by_hour = dates.dt.hour.value_counts()
    assert by_hour[[19, 20]].sum() > 5 * by_hour[[3, 4]].sum()
    assert dates.dt.hour.nunique() == 24


# --- files ------------------------------------------------------------------------------------


def test_csv_round_trip_keeps_leading_zeros_and_values(clean: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "clean.csv"
    write_transactions(clean, path)
    assert path.read_text().splitlines()[0] == ",".join(COLUMNS)

    options = pa_csv.ConvertOptions(
        column_types={"transaction_id": pa.string(), "customer_id": pa.string()}
    )
    back = pa_csv.read_csv(path, convert_options=options).to_pandas()
    assert back["customer_id"].str.startswith("0").all()
    assert back["customer_id"].tolist() == clean["customer_id"].tolist()
    assert back["transaction_id"].tolist() == clean["transaction_id"].tolist()
    assert (back["transaction_date"].to_numpy() == clean["transaction_date"].to_numpy()).all()
    assert back["amount"].tolist() == clean["amount"].tolist()
    assert back["quantity"].tolist() == clean["quantity"].tolist()

    ids = duckdb.sql(
        f"select customer_id from read_csv('{path}', types={{'customer_id': 'VARCHAR'}})"
    ).fetchnumpy()["customer_id"]
    assert list(ids) == clean["customer_id"].tolist()


def test_csv_amounts_have_two_decimals(clean: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "clean.csv"
    write_transactions(clean, path)
    options = pa_csv.ConvertOptions(column_types=TEXT_TYPES)
    text = pa_csv.read_csv(path, convert_options=options).to_pandas()
    assert text["amount"].str.fullmatch(r"-?\d+\.\d\d").all()
    assert text["transaction_date"].str.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d").all()


def test_parquet_is_typed_when_clean_and_text_when_dirty(
    clean: pd.DataFrame, dirty: GeneratedTransactions, tmp_path: Path
) -> None:
    typed_path = tmp_path / "nested" / "dir" / "clean.parquet"
    write_transactions(clean, typed_path)  # parent directories are created
    schema = pq.read_schema(typed_path)
    assert schema.names == list(COLUMNS)
    assert pa.types.is_string(schema.field("transaction_id").type) or pa.types.is_large_string(
        schema.field("transaction_id").type
    )
    assert pa.types.is_timestamp(schema.field("transaction_date").type)
    assert schema.field("amount").type == pa.float64()
    assert schema.field("quantity").type == pa.int64()
    assert pq.read_table(typed_path).column("customer_id").to_pylist() == (
        clean["customer_id"].tolist()
    )

    text_path = tmp_path / "dirty.pq"
    write_transactions(dirty.transactions, text_path)
    text_schema = pq.read_schema(text_path)
    for name in COLUMNS:
        field_type = text_schema.field(name).type
        assert pa.types.is_string(field_type) or pa.types.is_large_string(field_type), name


@pytest.mark.parametrize("name", ["transactions.txt", "transactions", "transactions.csv.gz"])
def test_write_rejects_unknown_extensions(clean: pd.DataFrame, tmp_path: Path, name: str) -> None:
    path = tmp_path / "out" / name
    with pytest.raises(ValueError, match=r"unsupported extension .*use \.csv, \.parquet or \.pq"):
        write_transactions(clean.head(), path)
    assert not path.exists()


# --- defects ----------------------------------------------------------------------------------


@pytest.mark.parametrize("share", [0.001, 0.05, 0.33, 0.5])
def test_defect_count_is_the_share_of_the_final_file(share: float) -> None:
    generated = generate_transactions(200, seed=5, dirty_share=share)
    rows = len(generated.transactions)
    assert len(generated.defects) == round(share * rows)
    assert generated.defects["source_row_number"].is_unique
    assert generated.defects["source_row_number"].between(1, rows).all()


def test_reasons_are_the_known_codes_and_roughly_even(dirty: GeneratedTransactions) -> None:
    counts = dirty.defects["reason"].value_counts()
    assert set(counts.index) == set(DEFECT_REASONS)
    expected = len(dirty.defects) / len(DEFECT_REASONS)
    assert (counts.between(expected * 0.9, expected * 1.1)).all()


def test_defects_are_spread_over_the_file(dirty: GeneratedTransactions) -> None:
    relative = dirty.defects["source_row_number"] / len(dirty.transactions)
    for low in np.arange(0, 1, 0.25):
        share_in_quarter = relative.between(low, low + 0.25, inclusive="right").mean()
        assert 0.2 < share_in_quarter < 0.3


def observed_defects(text: pd.DataFrame) -> pd.DataFrame:
    """Classify every row of a raw text file independently of the generator's bookkeeping."""
    parsed_date = pd.to_datetime(
        text["transaction_date"], format="%Y-%m-%d %H:%M:%S", errors="coerce"
    )
    numeric = text["amount"].str.fullmatch(r"-?\d+(\.\d+)?")
    amount = pd.to_numeric(text["amount"].where(numeric), errors="coerce")
    return pd.DataFrame(
        {
            "missing_customer_id": text["customer_id"] == "",
            "unparsable_transaction_date": parsed_date.isna(),
            "missing_amount": text["amount"] == "",
            "non_numeric_amount": (text["amount"] != "") & ~numeric,
            "non_numeric_quantity": ~text["quantity"].str.fullmatch(r"[1-9]\d*"),
            "amount_out_of_bounds": amount.abs() > AMOUNT_BOUND,
            "after_as_of_date": parsed_date >= pd.Timestamp(END_DATE + dt.timedelta(days=1)),
            "duplicate_transaction_id": text["transaction_id"].duplicated(keep="first"),
        }
    )


def test_each_defect_row_in_the_file_holds_exactly_its_defect(
    dirty: GeneratedTransactions, dirty_csv: pd.DataFrame
) -> None:
    observed = observed_defects(dirty_csv)
    flagged = observed[list(DEFECT_REASONS)].to_numpy()
    rows = dirty.defects["source_row_number"].to_numpy() - 1

    is_defect = np.zeros(len(dirty_csv), dtype=bool)
    is_defect[rows] = True
    assert not flagged[~is_defect].any(), "a clean row looks defective"
    assert (flagged[rows].sum(axis=1) == 1).all(), "a defect row has zero or several defects"
    expected = [DEFECT_REASONS.index(reason) for reason in dirty.defects["reason"]]
    assert (flagged[rows].argmax(axis=1) == expected).all()


def test_late_rows_are_well_formed_and_within_a_year(
    dirty: GeneratedTransactions, dirty_csv: pd.DataFrame
) -> None:
    late = dirty.defects.loc[dirty.defects["reason"] == "after_as_of_date", "source_row_number"]
    dates = pd.to_datetime(dirty_csv["transaction_date"].iloc[late - 1], format="%Y-%m-%d %H:%M:%S")
    assert (dates.dt.date > END_DATE).all()
    assert (dates.dt.date <= END_DATE + dt.timedelta(days=365)).all()


def test_duplicates_copy_an_earlier_clean_row(
    dirty: GeneratedTransactions, dirty_csv: pd.DataFrame
) -> None:
    defect_rows = set(dirty.defects["source_row_number"] - 1)
    first_row_of_id = {
        tid: row for row, tid in reversed(list(enumerate(dirty_csv["transaction_id"])))
    }
    duplicates = dirty.defects.loc[
        dirty.defects["reason"] == "duplicate_transaction_id", "source_row_number"
    ]
    assert len(duplicates) > 0
    for row in duplicates - 1:
        original = first_row_of_id[dirty_csv.at[row, "transaction_id"]]
        assert original < row
        assert original not in defect_rows
        assert dirty_csv.iloc[original].tolist() == dirty_csv.iloc[row].tolist()


def test_dropping_defects_recovers_the_clean_data(
    clean: pd.DataFrame, dirty: GeneratedTransactions
) -> None:
    kept = dirty.transactions.drop(index=dirty.defects["source_row_number"] - 1)
    assert kept["transaction_id"].tolist() == clean["transaction_id"].tolist()
    assert kept["customer_id"].tolist() == clean["customer_id"].tolist()
    assert kept["transaction_date"].tolist() == (
        clean["transaction_date"].dt.strftime("%Y-%m-%d %H:%M:%S").tolist()
    )
    assert kept["amount"].tolist() == [f"{amount:.2f}" for amount in clean["amount"]]
    assert kept["quantity"].tolist() == clean["quantity"].astype(str).tolist()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"customers": 0}, "customers"),
        ({"customers": 10, "dirty_share": 0.6}, "dirty_share"),
        ({"customers": 10, "dirty_share": -0.1}, "dirty_share"),
        ({"customers": 10, "history_days": 0}, "history_days"),
        ({"customers": 10, "population": "wholesale"}, "population"),
    ],
)
def test_invalid_arguments_are_rejected(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        generate_transactions(**kwargs)


# --- command line -----------------------------------------------------------------------------


def test_cli_writes_a_csv_and_reports_it(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "sub" / "tx.csv"
    assert cli.main(["generate", "--customers", "50", "--seed", "3", "--out", str(path)]) == 0
    expected = generate_transactions(50, seed=3).transactions
    lines = path.read_text().splitlines()
    assert len(lines) == len(expected) + 1
    output = capsys.readouterr().out.strip().splitlines()
    assert len(output) == 1
    assert f"{len(expected):,} rows" in output[0]
    assert "50 customers" in output[0]
    assert str(path) in output[0]
    assert output[0].endswith(" s")


def test_cli_passes_every_option_through(tmp_path: Path) -> None:
    path = tmp_path / "tx.parquet"
    argv = ["generate", "--customers", "80", "--out", str(path), "--seed", "4"]
    argv += ["--dirty-share", "0.2", "--end-date", "2025-01-31", "--history-days", "60"]
    assert cli.main(argv) == 0
    expected = generate_transactions(
        80, seed=4, dirty_share=0.2, end_date=dt.date(2025, 1, 31), history_days=60
    ).transactions
    written = pq.read_table(path).to_pandas()
    assert written["transaction_id"].tolist() == expected["transaction_id"].tolist()
    assert written["transaction_date"].tolist() == expected["transaction_date"].tolist()


def test_cli_passes_the_population_through(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "tx.parquet"
    argv = ["generate", "--customers", "60", "--out", str(path), "--seed", "2"]
    assert cli.main([*argv, "--population", "mixed"]) == 0
    expected = generate_transactions(60, seed=2, population="mixed").transactions
    written = pq.read_table(path).to_pandas()
    assert written["amount"].tolist() == expected["amount"].tolist()
    assert written["transaction_date"].tolist() == expected["transaction_date"].tolist()
    assert "(mixed population)" in capsys.readouterr().out


@pytest.mark.parametrize(
    "extra",
    [
        ["--dirty-share", "0.7"],
        ["--customers", "0"],
        ["--end-date", "30/06/2026"],
        ["--population", "retail"],
    ],
)
def test_cli_rejects_bad_options(tmp_path: Path, extra: list[str]) -> None:
    argv = ["generate", "--customers", "10", "--out", str(tmp_path / "x.csv"), *extra]
    with pytest.raises(SystemExit):
        cli.main(argv)


@pytest.mark.parametrize(
    ("name", "phrase"),
    [
        ("mine.csv", "mine.csv exists: clv generate writes a new file, never over one"),
        ("mine.txt", "mine.txt must end in .csv, .parquet or .pq, not .txt"),
    ],
)
def test_cli_never_writes_over_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture, name: str, phrase: str
) -> None:
    """An existing --out may be the user's own export: it is refused, and kept."""
    path = tmp_path / name
    path.write_text("my own export\n")
    with pytest.raises(SystemExit) as refused:
        cli.main(["generate", "--customers", "10", "--out", str(path)])
    assert refused.value.code == 2
    assert phrase in capsys.readouterr().err
    assert path.read_text() == "my own export\n"


# --- mixed population -------------------------------------------------------------------------

MIXED_CUSTOMERS = 6000


@pytest.fixture(scope="module")
def mixed() -> GeneratedTransactions:
    return generate_transactions(MIXED_CUSTOMERS, seed=7, population="mixed")


@pytest.fixture(scope="module")
def mixed_purchases(mixed: GeneratedTransactions) -> pd.DataFrame:
    """Purchases with their customer's kind, days since the customer's first purchase and
    days since their previous purchase, in time order per customer."""
    frame = mixed.transactions
    purchases = frame[frame["amount"] > 0].sort_values(
        ["customer_id", "transaction_date"], kind="stable"
    )
    kinds = mixed.customers.set_index("customer_id")["kind"].astype(str)
    dates = purchases.groupby("customer_id")["transaction_date"]
    return purchases.assign(
        kind=purchases["customer_id"].map(kinds),
        tenure_days=(purchases["transaction_date"] - dates.transform("min")).dt.days,
        gap_days=dates.diff().dt.total_seconds() / 86400,
    )


@pytest.fixture(scope="module")
def mixed_customers(mixed_purchases: pd.DataFrame) -> pd.DataFrame:
    """One row per customer: kind, purchases, order values and purchase gaps."""
    by_customer = mixed_purchases.groupby("customer_id")
    customers = by_customer.agg(
        kind=("kind", "first"),
        purchases=("amount", "size"),
        first_value=("amount", "first"),
        mean_value=("amount", "mean"),
        value_std=("amount", "std"),
        gap_mean=("gap_days", "mean"),
        gap_std=("gap_days", "std"),
        first_date=("transaction_date", "min"),
        last_date=("transaction_date", "max"),
    )
    later = mixed_purchases[by_customer.cumcount() > 0]
    customers["later_value"] = later.groupby("customer_id")["amount"].mean()
    customers["gap_cv"] = customers["gap_std"] / customers["gap_mean"]
    customers["value_cv"] = customers["value_std"] / customers["mean_value"]
    return customers


def spearman(left: pd.Series, right: pd.Series) -> float:
    return left.rank().corr(right.rank())


def test_mixed_population_is_deterministic_per_seed() -> None:
    first = generate_transactions(400, seed=11, dirty_share=0.1, population="mixed")
    second = generate_transactions(400, seed=11, dirty_share=0.1, population="mixed")
    pd.testing.assert_frame_equal(first.transactions, second.transactions)
    pd.testing.assert_frame_equal(first.defects, second.defects)
    pd.testing.assert_frame_equal(first.customers, second.customers)
    other = generate_transactions(400, seed=12, population="mixed").transactions
    assert not other.equals(generate_transactions(400, seed=11, population="mixed").transactions)
    btyd = generate_transactions(400, seed=11).transactions
    assert not btyd.equals(generate_transactions(400, seed=11, population="mixed").transactions)


def test_mixed_population_keeps_the_file_format(mixed: GeneratedTransactions) -> None:
    frame = mixed.transactions
    assert tuple(frame.columns) == COLUMNS
    assert frame["transaction_date"].dtype == np.dtype("datetime64[s]")
    assert frame["amount"].dtype == np.float64
    assert frame["quantity"].dtype == np.int64
    assert frame["transaction_id"].is_unique
    assert frame["transaction_date"].is_monotonic_increasing
    start = pd.Timestamp(END_DATE - dt.timedelta(days=HISTORY_DAYS))
    assert frame["transaction_date"].min() >= start
    assert frame["transaction_date"].max() < pd.Timestamp(END_DATE + dt.timedelta(days=1))
    assert 5 <= len(frame) / MIXED_CUSTOMERS <= 15
    assert 0.015 <= (frame["amount"] < 0).mean() <= 0.05
    assert (frame["quantity"] >= 1).all()
    purchases = frame[frame["amount"] > 0]
    assert set(purchases["customer_id"]) == set(mixed.customers["customer_id"])
    assert mixed.customers["customer_id"].tolist() == [
        f"{number:07d}" for number in range(1, MIXED_CUSTOMERS + 1)
    ]
    assert list(mixed.customers["kind"].cat.categories) == list(KINDS)
    shares = mixed.customers["kind"].value_counts(normalize=True)
    assert shares["btyd"] == 0
    assert 0.82 <= shares["retail"] <= 0.88
    assert 0.08 <= shares["wholesale"] <= 0.12
    assert 0.03 <= shares["one_off"] <= 0.07


def test_mixed_population_takes_defects_like_the_default() -> None:
    clean = generate_transactions(300, seed=5, population="mixed")
    dirty = generate_transactions(300, seed=5, dirty_share=0.2, population="mixed")
    assert len(dirty.defects) == round(0.2 * len(dirty.transactions))
    assert set(dirty.defects["reason"]) == set(DEFECT_REASONS)
    kept = dirty.transactions.drop(index=dirty.defects["source_row_number"] - 1)
    assert kept["transaction_id"].tolist() == clean.transactions["transaction_id"].tolist()
    assert kept["amount"].tolist() == [f"{amount:.2f}" for amount in clean.transactions["amount"]]
    pd.testing.assert_frame_equal(dirty.customers, clean.customers)


def test_mixed_population_handles_tiny_populations_and_windows() -> None:
    # Some of these draw no retail or no wholesale customer at all.
    for customers, seed in [(1, seed) for seed in range(20)] + [(3, 1), (7, 2)]:
        generated = generate_transactions(customers, seed=seed, population="mixed")
        assert generated.transactions["customer_id"].nunique() == customers
    end, days = dt.date(2020, 3, 1), 1
    for seed in range(5):
        frame = generate_transactions(
            50, seed=seed, end_date=end, history_days=days, population="mixed"
        ).transactions
        dates = frame["transaction_date"].dt.date
        assert dates.min() >= end - dt.timedelta(days=days)
        assert dates.max() <= end


def test_wholesale_orders_are_bigger_and_steadier_than_retail(
    mixed_purchases: pd.DataFrame, mixed_customers: pd.DataFrame
) -> None:
    median = mixed_purchases.groupby("kind")["amount"].median()
    assert median["wholesale"] >= 5 * median["retail"]
    assert median["one_off"] >= 3 * median["retail"]
    # Spread of one customer's orders around their own mean.
    repeat = mixed_customers[mixed_customers["purchases"] >= 5]
    value_cv = repeat.groupby("kind")["value_cv"].median()
    assert value_cv["wholesale"] < 0.5 * value_cv["retail"]
    quantity = mixed_purchases.groupby("kind")["quantity"].median()
    assert quantity["wholesale"] >= 10 * quantity["retail"]


def test_wholesale_buys_on_a_cycle_and_retail_at_random(mixed_customers: pd.DataFrame) -> None:
    repeat = mixed_customers[mixed_customers["purchases"] >= 5]
    gap_cv = repeat.groupby("kind")["gap_cv"].median()
    assert gap_cv["wholesale"] < 0.25  # a Poisson process's gaps have CV 1
    assert gap_cv["retail"] > 0.75
    cycle = repeat.loc[repeat["kind"] == "wholesale", "gap_mean"]
    assert cycle.between(15, 45).all()


def test_retail_purchase_rates_are_a_two_segment_mix_not_a_gamma() -> None:
    _, rate = _retail_rates(np.random.default_rng(3), 20_000)
    # Two clusters of log rates (occasional ~1/90 per day, frequent ~1/14) with a dip between.
    counts, _ = np.histogram(np.log(rate), bins=np.log([1 / 400, 1 / 150, 1 / 50, 1 / 25, 1 / 5]))
    _, occasional, dip, frequent = counts
    assert dip < 0.5 * min(occasional, frequent)
    # The gamma closest to them (the family BG/NBD assumes) is rejected outright.
    shape, _, scale = stats.gamma.fit(rate, floc=0)
    assert stats.kstest(rate, "gamma", args=(shape, 0, scale)).pvalue < 1e-6


def test_dropout_depends_on_kind(mixed_customers: pd.DataFrame) -> None:
    end = pd.Timestamp(END_DATE + dt.timedelta(days=1))
    old = mixed_customers[mixed_customers["first_date"] < end - pd.Timedelta(days=365)]
    recently_active = (old["last_date"] >= end - pd.Timedelta(days=90)).groupby(old["kind"]).mean()
    assert recently_active["wholesale"] > 0.7
    assert recently_active["retail"] < 0.4
    assert (mixed_customers.loc[mixed_customers["kind"] == "one_off", "purchases"] == 1).all()


def test_order_value_follows_the_first_order_tenure_and_frequency(
    mixed_purchases: pd.DataFrame, mixed_customers: pd.DataFrame
) -> None:
    retail = mixed_customers[(mixed_customers["kind"] == "retail")]
    repeat = retail[retail["purchases"] >= 2]
    # Later orders scale with the first (which Gamma-Gamma's repeat-order mean leaves out).
    assert spearman(repeat["first_value"], repeat["later_value"]) > 0.6
    # Frequent retail buyers bring smaller baskets (Gamma-Gamma assumes independence).
    assert spearman(retail["purchases"], retail["mean_value"]) < -0.1
    # Baskets grow with tenure: an order relative to its customer's median, against the
    # customer's age at that order.
    for kind in ("retail", "wholesale"):
        loyal = mixed_purchases[
            (mixed_purchases["kind"] == kind)
            & mixed_purchases["customer_id"].map(mixed_customers["purchases"]).ge(4)
        ]
        relative = loyal["amount"] / loyal.groupby("customer_id")["amount"].transform("median")
        assert spearman(loyal["tenure_days"], relative) > 0.15, kind


# --- seasons ----------------------------------------------------------------------------------


@pytest.mark.parametrize("population", ["btyd", "mixed"])
def test_strong_seasons_double_the_year_end_and_cut_the_summer(population: str) -> None:
    # Purchases per day and per customer already acquired, by calendar quarter, over the
    # last two years of three: the profile x2 October-December and x0.7 June-August.
    generated = generate_transactions(
        6000,
        seed=5,
        end_date=dt.date(2024, 12, 31),
        history_days=3 * 365,
        population=population,
        seasons="strong",
    )
    rows = generated.transactions
    purchases = rows[rows["amount"] > 0]
    first = purchases.groupby("customer_id")["transaction_date"].min().dt.normalize()
    days = pd.date_range("2023-01-01", "2024-12-31", freq="D")
    acquired = np.searchsorted(np.sort(first.to_numpy()), days.to_numpy(), side="right")
    per_day = purchases["transaction_date"].dt.normalize().value_counts()
    per_day = per_day.reindex(days, fill_value=0)
    rate = pd.Series(per_day.to_numpy() / acquired, index=days)
    months = rate.groupby(rate.index.month).mean()
    spring = months[[3, 4, 5]].mean()
    assert months[[10, 11, 12]].mean() / spring > 1.5
    assert months[[6, 7, 8]].mean() / spring < 0.85
    # New customers arrive ever faster: three times the rate at the end as at the start.
    arrivals = first.dt.year.value_counts().sort_index()
    assert arrivals[2024] > 1.5 * arrivals[2022]


def test_the_default_seasons_are_the_mild_ones_and_none_is_flat() -> None:
    mild = generate_transactions(300, seed=9).transactions
    named = generate_transactions(300, seed=9, seasons="mild").transactions
    pd.testing.assert_frame_equal(mild, named)
    flat = generate_transactions(4000, seed=9, seasons="none").transactions
    by_month = flat["transaction_date"][flat["transaction_date"].dt.year == 2025].dt.month
    counts = by_month.value_counts()
    assert counts[12] < 1.15 * counts[9]  # the mild profile's December is 1.3x and more


def test_cli_passes_the_seasons_through(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "tx.parquet"
    argv = ["generate", "--customers", "60", "--out", str(path), "--seed", "2"]
    assert cli.main([*argv, "--seasons", "strong"]) == 0
    expected = generate_transactions(60, seed=2, seasons="strong").transactions
    written = pq.read_table(path).to_pandas()
    assert written["transaction_date"].tolist() == expected["transaction_date"].tolist()
    assert "(strong seasons)" in capsys.readouterr().out
    with pytest.raises(ValueError, match="seasons must be one of mild, none, strong"):
        generate_transactions(10, seasons="winter")
