"""The whole build on generated data: one forecast per customer, honest quantiles on a
later held-out window, and a scoring-only run that reuses the registered model."""

from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from conftest import DbtRun, dbt_runner

from clv.export import export_folder
from clv.generate import generate_transactions, write_transactions

END_DATE = dt.date(2025, 12, 31)
HORIZON_DAYS = 90
AS_OF_DATE = END_DATE - dt.timedelta(days=HORIZON_DAYS)
# Calibration is checked to +-0.03 per level; a few thousand customers keep the
# sampling noise of a hit rate (about 0.008 at 0.5) well inside that.
CUSTOMERS = 4000


@pytest.fixture(scope="module")
def build(tmp_path_factory) -> tuple:
    folder = tmp_path_factory.mktemp("forecast")
    path = folder / "transactions.csv"
    write_transactions(
        generate_transactions(customers=CUSTOMERS, seed=11, end_date=END_DATE).transactions, path
    )
    run = dbt_runner(folder)
    variables = {
        "transactions_path": str(path),
        "as_of_date": AS_OF_DATE.isoformat(),
        "horizon_days": HORIZON_DAYS,
        "num_threads": 2,
    }
    result = run("build", variables=variables)
    assert result.returncode == 0, result.output
    return run, variables, result, path, folder


def actual_spend(result: DbtRun, path: Path) -> pd.DataFrame:
    """Each customer's real net spend in the horizon, read straight from the file."""
    rows = result.query(
        f"""
        select customer_id, sum(amount)
        from read_csv('{path}', types = {{'customer_id': 'varchar'}})
        where cast(transaction_date as date) > date '{AS_OF_DATE}'
          and cast(transaction_date as date) <= date '{AS_OF_DATE}' + {HORIZON_DAYS}
        group by 1
        """
    )
    return pd.DataFrame(rows, columns=["customer_id", "actual"])


def test_every_customer_gets_one_forecast(build) -> None:
    _, _, result, path, _ = build
    [(customers,)] = result.query(
        f"""
        select count(distinct customer_id)
        from read_csv('{path}', types = {{'customer_id': 'varchar'}})
        where cast(transaction_date as date) <= date '{AS_OF_DATE}'
        """
    )
    [(rows, distinct, one_purchase)] = result.query(
        """
        select count(*), count(distinct p.customer_id), count(*) filter (where f.purchase_days = 1)
        from customer_predictions as p
        inner join int_customer_features_as_of_date as f on p.customer_id = f.customer_id
        """
    )
    assert rows == distinct == customers
    assert one_purchase > 0  # new one-purchase customers are scored too


def test_quantiles_are_calibrated_on_a_later_window(build) -> None:
    _, _, result, path, _ = build
    predictions = pd.DataFrame(
        result.query(
            "select customer_id, spend_p10, spend_p50, spend_p90 from customer_predictions"
        ),
        columns=["customer_id", "spend_p10", "spend_p50", "spend_p90"],
    )
    joined = predictions.merge(actual_spend(result, path), on="customer_id", how="left")
    actual = joined["actual"].fillna(0.0)
    for level, column in ((0.1, "spend_p10"), (0.5, "spend_p50"), (0.9, "spend_p90")):
        below = (actual < joined[column]).mean()
        at_or_below = (actual <= joined[column]).mean()
        assert below <= level + 0.03, f"{column}: P(actual < q) = {below:.3f}"
        assert at_or_below >= level - 0.03, f"{column}: P(actual <= q) = {at_or_below:.3f}"


def test_the_export_holds_the_boosters_of_the_forecasts(build) -> None:
    _, _, result, _, folder = build
    [(version,)] = result.query("select distinct model_version from customer_predictions")
    summary = export_folder(result.database, folder / "export")
    assert summary["model_version"] == version
    files = sorted(path.name for path in (folder / "export" / "models" / version).iterdir())
    assert files == sorted(
        f"{target}.txt"
        for target in ("expected_spend", "spend_p10", "spend_p50", "spend_p90", "prob_purchase")
    )


def test_an_export_of_an_earlier_version_has_the_columns_of_the_current_one(
    build, tmp_path: Path
) -> None:
    """--model-version V exports V's latest run from the history, shaped like the current one."""
    _, _, result, _, _ = build
    database = tmp_path / "warehouse.duckdb"
    shutil.copy(result.database, database)
    with duckdb.connect(str(database)) as connection:  # an earlier version, made by renaming
        for table in ("model_registry", "customer_predictions_history"):
            connection.execute(
                f"insert into {table} select * replace ('m_earlier' as model_version) from {table}"
            )
    export_folder(database, tmp_path / "current")
    export_folder(database, tmp_path / "earlier", model_version="m_earlier")
    current = pd.read_parquet(tmp_path / "current" / "predictions.parquet")
    earlier = pd.read_parquet(tmp_path / "earlier" / "predictions.parquet")
    assert list(earlier.columns) == list(current.columns)
    assert len(earlier) == len(current) and set(earlier["model_version"]) == {"m_earlier"}
    assert [path.name for path in (tmp_path / "earlier" / "models").iterdir()] == ["m_earlier"]


def test_scoring_only_run_reuses_the_registered_model(build) -> None:
    run, variables, first, _, _ = build
    [(boosters_before,)] = first.query("select count(*) from model_registry")
    [(version,)] = first.query("select distinct model_version from customer_predictions")

    later = run("build", "--selector", "score", variables=variables)
    assert later.returncode == 0, later.output
    assert not re.search(r"model main\.model_registry\b", later.output)  # no training
    assert later.query("select count(*) from model_registry") == [(boosters_before,)]
    assert later.query("select distinct model_version from customer_predictions") == [(version,)]
    # Same as_of_date and version: the history holds the run once, not twice.
    [(history_rows,)] = later.query("select count(*) from customer_predictions_history")
    assert later.query("select count(*) from customer_predictions") == [(history_rows,)]


def test_scoring_only_without_a_trained_model_says_what_to_do(build) -> None:
    run, variables, _, _, _ = build
    result = run("build", "--selector", "score", variables=variables, database="empty")
    assert result.returncode != 0
    assert "No trained model to score with" in result.output
