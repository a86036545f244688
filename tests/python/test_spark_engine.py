"""The same project on Spark (target spark) gives the tables DuckDB gives.

Builds the bundled sample on both engines and compares every table a user sees:
keys, strings, dates and counts exactly, floats to 1e-9 relative. The boosters are
trained with a fixed seed on examples sorted the same way, so they match too: the
quantile boosters' leaves to their last digits (a quantile's leaf is renewed from a
percentile of residuals, which round-off of 1e-16 in the base can move by 1e-14).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from conftest import CLV, DBT, PROJECT_DIR
from programs import require_program
from test_redis_publish import RedisServer

FLOAT_TOLERANCE = 1e-9

# Columns that name or time a build (a version, a fit id, a clock): they differ
# between any two builds, on one engine or two.
BUILD_COLUMNS = {
    "model_version",
    "trained_at",
    "scored_at",
    "fitted_at",
    "generated_at",
    "btyd_fit_id",
    "fit_seconds",
    "html",
}

# Every table a user reads: the forecasts, the quarantine, the model's metadata and
# the reports.
COMPARED_TABLES = [
    "customer_predictions",
    "customer_prediction_drivers",
    "customer_predictions_history",
    "rejected_transactions",
    "stg_transactions__transactions",
    "btyd_fits",
    "model_registry",
    "backtest_predictions",
    "rpt_backtest_buyers_by_frequency",
    "rpt_backtest_deciles",
    "rpt_backtest_gain",
    "rpt_backtest_metrics",
    "rpt_backtest_reliability",
    "rpt_cohorts",
    "rpt_data_quality",
    "rpt_feature_importance",
    "rpt_forecast_accuracy_over_time",
    "rpt_forecast_distribution",
    "rpt_forecast_total",
    "rpt_html_report",
    "rpt_model_registry_summary",
    "rpt_new_customers",
    "rpt_order_value_distribution",
    "rpt_prediction_summary",
    "rpt_purchase_probability_matrix",
    "rpt_top_customers",
    "rpt_transactions_monthly",
    "rpt_value_tiers",
]


@pytest.fixture(scope="module", autouse=True)
def spark_installed() -> None:
    """`make test` installs Java and pyspark: a missing one fails every test here, saying so."""
    require_program("java")
    try:
        import pyspark  # noqa: F401
    except ImportError:
        pytest.fail("pyspark is not installed: `make install` installs it", pytrace=False)


def spark_env(folder: Path) -> dict[str, str]:
    return {
        **os.environ,
        "CLV_SPARK_DIR": str(folder / "spark"),
        "SPARK_LOCAL_IP": "127.0.0.1",
        # Two task slots, whatever the machine's cores: pytest's other workers build beside it.
        # (Spark's 200 shuffle partitions cost nothing here: adaptive execution joins
        # them into one on a sample this size; 2 set explicitly built no faster.)
        "CLV_SPARK_MASTER": "local[2]",
        "DBT_TARGET_PATH": str(folder / "target"),
        "DBT_LOG_PATH": str(folder / "logs"),
        "DBT_USE_COLORS": "false",
    }


def clv_run(folder: Path, *args: str) -> subprocess.CompletedProcess:
    """`clv run` on the bundled sample, with its warehouse (DuckDB file or Spark) in folder."""
    command = [str(CLV), "run", "--input", str(PROJECT_DIR / "sample_data" / "transactions.csv")]
    return subprocess.run(
        [*command, *args],
        cwd=PROJECT_DIR,
        env={**spark_env(folder), "CLV_DUCKDB_PATH": str(folder / "warehouse.duckdb")},
        capture_output=True,
        text=True,
        timeout=900,
    )


def spark_session(folder: Path):
    """A SparkSession on the warehouse and metastore a Spark build in folder wrote."""
    from pyspark.sql import SparkSession

    spark_dir = folder / "spark"
    return (
        SparkSession.builder.master("local[2]")
        .config("spark.sql.warehouse.dir", str(spark_dir / "warehouse"))
        .config(
            "spark.hadoop.javax.jdo.option.ConnectionURL",
            f"jdbc:derby:;databaseName={spark_dir / 'metastore_db'};create=true",
        )
        .config("spark.driver.extraJavaOptions", f"-Dderby.stream.error.file={spark_dir}/derby.log")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.ui.enabled", "false")
        .enableHiveSupport()
        .getOrCreate()
    )


def save_spark_tables(folder: str, out: str, *tables: str) -> None:
    """Each table of the Spark build in folder as out/TABLE.parquet (run in its own process)."""
    spark = spark_session(Path(folder))
    try:
        for table in tables:
            spark.table(f"clv.{table}").toPandas().to_parquet(Path(out) / f"{table}.parquet")
    finally:
        spark.stop()


def spark_tables(folder: Path, *tables: str) -> dict[str, pd.DataFrame]:
    """The tables a Spark build wrote, read by Spark in a process of its own.

    One process holds one SparkContext and Derby lets one process open a metastore, so
    each build's tables are read in a fresh process, never in the test process.
    """
    out = folder / "read_back"
    out.mkdir(exist_ok=True)
    arguments = (str(folder), str(out), *tables)
    call = f"from test_spark_engine import save_spark_tables; save_spark_tables{arguments!r}"
    completed = subprocess.run(
        [sys.executable, "-c", call],
        cwd=Path(__file__).parent,
        env=spark_env(folder),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-5000:]
    return {table: pd.read_parquet(out / f"{table}.parquet") for table in tables}


@pytest.fixture(scope="module")
def builds(tmp_path_factory) -> Iterator[tuple[Path, Path, dict, RedisServer]]:
    """The sample run on DuckDB and on Spark, then scored a second time on Spark."""
    redis_binary = require_program("redis-server")  # before minutes of building, not after
    folder = tmp_path_factory.mktemp("two_engines")
    duck = clv_run(folder, "--output", str(folder / "duckdb_output"))
    assert duck.returncode == 0, duck.stdout[-3000:] + duck.stderr[-3000:]
    redis_server = RedisServer(redis_binary, folder / "redis", ())
    redis_server.start()
    built = clv_run(
        folder,
        *("--engine", "spark", "--output", str(folder / "spark_output")),
        *("--publish-redis", redis_server.url),
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-5000:]
    # The same run again: it replaces its partition of the history instead of adding to it.
    rerun = subprocess.run(
        [str(DBT), "run", "-s", "customer_predictions_history", "--target", "spark"]
        + ["--profiles-dir", str(PROJECT_DIR)],
        cwd=PROJECT_DIR,
        env=spark_env(folder),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert rerun.returncode == 0, rerun.stdout[-5000:]
    tables = spark_tables(folder, *COMPARED_TABLES, "int_customer_features_as_of_date")
    yield folder, folder / "warehouse.duckdb", tables, redis_server
    redis_server.stop()


def normalised(frame: pd.DataFrame) -> pd.DataFrame:
    """Comparable: build columns dropped, one type per kind of value, rows in one order."""
    frame = frame.drop(columns=[c for c in frame.columns if c in BUILD_COLUMNS])
    frame = frame[sorted(frame.columns)]
    for name in frame.columns:
        column = frame[name]
        if pd.api.types.is_datetime64_any_dtype(column):
            frame[name] = column.dt.tz_localize(None) if column.dt.tz else column
            frame[name] = frame[name].astype("datetime64[us]")
        elif column.dtype == object and column.map(lambda v: hasattr(v, "isoformat")).any():
            frame[name] = pd.to_datetime(column).astype("datetime64[us]")
        elif not pd.api.types.is_numeric_dtype(column):
            # A text column with no value: None from DuckDB, NaN in Spark's Arrow strings.
            frame[name] = column.astype(object).where(column.notna(), None)
    if "source_file" in frame:
        # DuckDB names the file as the var gave it, Spark as the URI it read.
        frame["source_file"] = frame["source_file"].map(lambda v: Path(str(v)).name)
    floats = [name for name in frame.columns if pd.api.types.is_float_dtype(frame[name])]
    order = [name for name in frame.columns if name not in floats] + floats
    return frame.sort_values(order, kind="stable").reset_index(drop=True)


def largest_float_difference(duck: pd.Series, spark: pd.Series) -> float:
    a = duck.to_numpy(dtype=float)
    b = spark.to_numpy(dtype=float)
    assert np.array_equal(np.isnan(a), np.isnan(b)), "nulls differ"
    finite = ~np.isnan(a)
    scale = np.maximum(np.abs(a[finite]), np.abs(b[finite]))
    difference = np.abs(a[finite] - b[finite])
    relative = np.where(scale > 0, difference / np.where(scale > 0, scale, 1), 0.0)
    return float(relative.max(initial=0.0))


FLOAT_IN_TEXT = re.compile(r"-?\d+\.\d+(?:[eE][-+]?\d+)?")


def json_number_difference(left: object, right: object) -> float | None:
    """The largest relative difference of the floats in two texts of one shape (fitted
    parameters and per-cutoff levels as JSON, a booster's model text: a quantile
    booster's leaves may differ in their last digits between engines); None when they
    differ in anything else."""

    def numbers(text: object) -> tuple[list, list[float]] | None:
        try:
            value = json.loads(str(text))
        except ValueError:
            if not str(text).startswith("tree\n"):
                return None
            # tree_sizes counts each tree's characters, which those last digits change.
            text = re.sub(r"(?m)^tree_sizes=.*$", "tree_sizes=", str(text))
            floats = [float(found) for found in FLOAT_IN_TEXT.findall(text)]
            return [FLOAT_IN_TEXT.sub("number", text)], floats
        found: list[float] = []

        def walk(node: object) -> object:
            if isinstance(node, dict):
                return {key: walk(item) for key, item in node.items()}
            if isinstance(node, list):
                return [walk(item) for item in node]
            if isinstance(node, float):
                found.append(node)
                return "number"
            return node

        return [walk(value)], found

    parsed_left, parsed_right = numbers(left), numbers(right)
    if parsed_left is None or parsed_right is None or parsed_left[0] != parsed_right[0]:
        return None
    return largest_float_difference(pd.Series(parsed_left[1]), pd.Series(parsed_right[1]))


def test_every_user_table_matches_duckdb(builds) -> None:
    _, database, on_spark_tables, _ = builds
    largest = 0.0
    compared = []
    with duckdb.connect(str(database), read_only=True) as connection:
        for table in COMPARED_TABLES:
            duck = normalised(connection.execute(f"select * from {table}").df())
            on_spark = normalised(on_spark_tables[table])
            assert list(duck.columns) == list(on_spark.columns), table
            assert len(duck) == len(on_spark), f"{table}: {len(duck)} vs {len(on_spark)} rows"
            for name in duck.columns:
                if pd.api.types.is_float_dtype(duck[name]) or pd.api.types.is_float_dtype(
                    on_spark[name]
                ):
                    difference = largest_float_difference(duck[name], on_spark[name])
                    assert difference <= FLOAT_TOLERANCE, f"{table}.{name}: {difference:.3g}"
                    largest = max(largest, difference)
                else:
                    left = duck[name].astype(object).where(duck[name].notna(), None)
                    right = on_spark[name].astype(object).where(on_spark[name].notna(), None)
                    mismatched = []
                    for x, y in zip(left, right, strict=True):
                        if x == y:
                            continue
                        difference = json_number_difference(x, y)
                        if difference is None or difference > FLOAT_TOLERANCE:
                            mismatched.append((x, y))
                        else:
                            largest = max(largest, difference)
                    assert not mismatched, f"{table}.{name}: {mismatched[:3]}"
            compared.append(table)
    print(f"compared {len(compared)} tables; largest float difference {largest:.3g}")
    assert len(compared) == len(COMPARED_TABLES)
    assert math.isfinite(largest)


def test_distributed_scoring_equals_in_process_scoring(builds) -> None:
    from clv.scoring import ScoringModel, score_frame

    _, _, tables, _ = builds
    registry = tables["model_registry"]
    version = registry["model_version"].max()
    model = ScoringModel.from_registry(registry, tables["btyd_fits"], version)
    features = tables["int_customer_features_as_of_date"]
    in_process = score_frame(model, features, pd.Timestamp("2026-01-01").to_pydatetime())
    distributed = tables["customer_predictions"]
    columns = ["expected_spend", *model.quantile_columns, "prob_purchase"]
    merged = in_process.merge(distributed, on="customer_id", suffixes=("", "_spark"))
    assert len(merged) == len(in_process) == len(distributed)
    for name in columns[1:]:
        # Bit for bit: the same function on the same rows, only elsewhere.
        assert (merged[name] == merged[f"{name}_spark"]).all(), name
    # Expected spend also carries the level, a sum over partitions in another order.
    np.testing.assert_allclose(merged["expected_spend"], merged["expected_spend_spark"], rtol=1e-12)


def test_the_exported_folders_hold_the_same_forecasts(builds) -> None:
    folder, _, _, _ = builds
    columns = ["customer_id", "as_of_date", "expected_spend", "spend_p50", "prob_purchase"]
    duck = pd.read_parquet(folder / "duckdb_output" / "predictions.parquet", columns=columns)
    spark = pd.read_parquet(folder / "spark_output" / "predictions.parquet", columns=columns)
    duck, spark = (
        frame.sort_values("customer_id").reset_index(drop=True) for frame in (duck, spark)
    )
    pd.testing.assert_frame_equal(duck, spark, check_exact=False, rtol=FLOAT_TOLERANCE)
    for output in ("duckdb_output", "spark_output"):
        assert (folder / output / "report.html").stat().st_size > 10_000
        assert json.loads((folder / output / "run.json").read_text())["status"] == "complete"
        assert sorted(p.name for p in (folder / output / "reports").iterdir()) == sorted(
            p.name for p in (folder / "duckdb_output" / "reports").iterdir()
        )


def test_a_rerun_replaces_its_run_in_the_history(builds) -> None:
    _, _, tables, _ = builds
    history = tables["customer_predictions_history"]
    runs = history.groupby(["as_of_date", "model_version"]).size()
    assert len(runs) == 1 and runs.iloc[0] == history["customer_id"].nunique(), runs


def dbt_build_staging(folder: Path, transactions: Path, *target: str) -> None:
    variables = {"transactions_path": str(transactions), "as_of_date": "2026-06-30"}
    completed = subprocess.run(
        [str(DBT), "build", "--select", "staging", "--vars", json.dumps(variables)]
        + ["--profiles-dir", str(PROJECT_DIR), *target],
        cwd=PROJECT_DIR,
        env={**spark_env(folder), "CLV_DUCKDB_PATH": str(folder / "warehouse.duckdb")},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert completed.returncode == 0, completed.stdout[-5000:]


def test_a_dirty_file_is_quarantined_alike(tmp_path) -> None:
    """Every defect the generator makes, plus lines with too many and too few fields."""
    from clv.generate import generate_transactions, write_transactions

    transactions = tmp_path / "dirty.csv"
    generated = generate_transactions(customers=150, seed=3, dirty_share=0.1)
    write_transactions(generated.transactions, transactions)
    lines = transactions.read_text().splitlines()
    width = lines[0].count(",")
    lines[5:5] = [",".join(["x"] * (width + 3)), "only,two"]
    # Times with an offset, late in the day: the day is the one the file writes.
    offsets = ["2026-03-31T23:17:01-05:00", "2026-03-31 23:17:01 -0400", "2026-03-31T23:17:01Z",
               "2026-03-31T23:17:01.5+0200", "2026-03-31"]  # fmt: skip
    lines[6:6] = [f"TZ{number},TZ,{when},10.00,1" for number, when in enumerate(offsets)]
    transactions.write_text("\n".join(lines) + "\n")

    dbt_build_staging(tmp_path, transactions)
    dbt_build_staging(tmp_path, transactions, "--target", "spark")

    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as connection:
        duck = connection.execute("select * from rejected_transactions").df()
        duck_files = connection.execute("select * from stg_transactions__input_files").df()
        duck_days = connection.execute(
            "select transaction_id, transaction_date from stg_transactions__transactions"
            " where customer_id = 'TZ' order by 1"
        ).fetchall()
    read = spark_tables(
        tmp_path, "rejected_transactions", "stg_transactions__input_files",
        "stg_transactions__transactions",
    )  # fmt: skip
    assert duck_days == [(f"TZ{number}", dt.date(2026, 3, 31)) for number in range(5)]
    spark_days = read["stg_transactions__transactions"].query("customer_id == 'TZ'")
    spark_days = spark_days.assign(day=pd.to_datetime(spark_days["transaction_date"]).dt.date)
    assert sorted(spark_days[["transaction_id", "day"]].itertuples(index=False, name=None)) == (
        duck_days
    )
    on_spark = read["rejected_transactions"]
    # Every line of the file counted as text alike, and accounted for by both readers.
    pd.testing.assert_frame_equal(
        normalised(duck_files), normalised(read["stg_transactions__input_files"]), check_dtype=False
    )
    assert duck_files["unaccounted_lines"].tolist() == [0]
    # Spark's reader says only that it could not split a line, not why.
    unreadable = duck["source_line_number"].notna()
    duck.loc[unreadable, "rejection_reason"] = "unreadable_line"
    assert set(duck["rejection_reason"]) >= {"non_numeric_amount", "unreadable_line"}
    duck, on_spark = normalised(duck), normalised(on_spark)
    assert (duck["rejection_reason"] == "unreadable_line").sum() == 2
    pd.testing.assert_frame_equal(duck, on_spark, check_dtype=False)


def test_forecasts_built_on_spark_are_published_to_redis(builds) -> None:
    import redis

    _, _, tables, redis_server = builds
    expected = tables["customer_predictions"].sort_values("customer_id").iloc[0]
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    version = client.get("clv:current")
    forecast = client.hgetall(f"clv:{version}:customer:{expected['customer_id']}")
    client.close()
    assert version.endswith(expected["model_version"])
    assert float(forecast["expected_spend"]) == pytest.approx(expected["expected_spend"], rel=1e-12)
