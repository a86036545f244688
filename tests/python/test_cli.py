"""`clv run` and `clv publish` end to end: output folder, Redis publishing with a real server,
clear failures, a failed publish retried without a rebuild."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pandas as pd
import pytest
import redis
from conftest import clv
from test_dynamodb_publish import start_dynalite
from test_redis_publish import RedisServer, start_redis  # noqa: F401 - fixture

from clv import dynamodb_publish
from clv.redis_publish import read_forecast

END_DATE = dt.date(2025, 12, 31)  # the last day of the transactions fixture (conftest.py)


def customer_keys(client: redis.Redis, version: str) -> int:
    return sum(1 for _ in client.scan_iter(match=f"clv:{version}:customer:*", count=1000))


def test_run_fills_the_folder_and_redis_then_switches_the_pointer(
    transactions: Path,
    tmp_path: Path,
    start_redis,  # noqa: F811 - the fixture imported above
) -> None:
    server: RedisServer = start_redis()
    database, output = tmp_path / "warehouse.duckdb", tmp_path / "out"
    first = clv(
        "run", "--input", str(transactions), "--output", str(output),
        "--publish-redis", server.url, database=database,
    )  # fmt: skip
    assert first.returncode == 0, first.stdout + first.stderr
    assert "customer_predictions" in first.stdout  # progress per model
    # One line per model, though dbt reports them from two threads at once.
    finished = [line for line in first.stdout.splitlines() if line.startswith("  success")]
    assert all(line.count("success") == 1 for line in finished), first.stdout
    assert all(line.strip() for line in first.stdout.splitlines()), first.stdout

    summary = json.loads((output / "run.json").read_text())
    assert summary["status"] == "complete"
    for name in ("predictions.parquet", "predictions.csv", "drivers.parquet", "report.html"):
        assert (output / name).stat().st_size > 0, name
    drivers = pd.read_parquet(output / "drivers.parquet")
    assert len(drivers) == 4 * summary["customers"]
    assert set(drivers["model_version"]) == {summary["model_version"]}
    assert (output / "reports" / "rpt_backtest_metrics.parquet").exists()
    boosters = output / "models" / summary["model_version"]
    assert (boosters / "prob_purchase.txt").exists()
    assert not list(tmp_path.glob(".out.*"))  # no staging folder left behind

    # The folder is an export of the warehouse: `clv export` writes the same one.
    exported = clv("export", "--output", str(tmp_path / "exported"), database=database)
    assert exported.returncode == 0, exported.stdout + exported.stderr
    written = json.loads((output / ".clv-output").read_text())["files"]
    assert json.loads((tmp_path / "exported" / ".clv-output").read_text())["files"] == written
    for name in written:
        if name != "run.json":
            same = (output / name).read_bytes() == (tmp_path / "exported" / name).read_bytes()
            assert same or name.endswith(".parquet"), name  # Parquet embeds its writer
    pd.testing.assert_frame_equal(
        pd.read_parquet(output / "predictions.parquet"),
        pd.read_parquet(tmp_path / "exported" / "predictions.parquet"),
    )

    client = redis.Redis.from_url(server.url, decode_responses=True)
    version = client.get("clv:current")
    assert version == f"{summary['as_of_date']}_{summary['model_version']}"
    assert customer_keys(client, version) == summary["customers"]
    some_customer = client.hget(
        next(client.scan_iter(match=f"clv:{version}:customer:*")), "customer_id"
    )
    forecast = read_forecast(client, some_customer)
    assert forecast["model_version"] == summary["model_version"]
    assert float(forecast["spend_p10"]) <= float(forecast["spend_p90"])

    # A scheduled scoring run a week later: no training, a new as-of date, a new
    # published version that replaces the first one in one switch (--publish-redis,
    # above, is the same as --publish with a Redis URL).
    week_later = (END_DATE - dt.timedelta(days=7)).isoformat()
    scored = clv(
        "run", "--input", str(transactions), "--output", str(output), "--score-only",
        "--as-of", week_later, "--publish", server.url, database=database,
    )  # fmt: skip
    assert scored.returncode == 0, scored.stdout + scored.stderr
    assert not re.search(r"\smodel_registry\s", scored.stdout)  # no training
    new_version = client.get("clv:current")
    assert new_version == f"{week_later}_{summary['model_version']}"
    rescored = json.loads((output / "run.json").read_text())
    assert rescored["model_version"] == summary["model_version"]
    assert customer_keys(client, new_version) == rescored["customers"]
    old_key = next(client.scan_iter(match=f"clv:{version}:customer:*"))
    assert client.ttl(old_key) > 0  # the previous version expires after the grace period

    # Back to the first run, from the warehouse's history alone: no dbt, no rebuild.
    rolled_back = clv("publish", "--to", server.url, "--run", version, database=database)
    assert rolled_back.returncode == 0, rolled_back.stdout + rolled_back.stderr
    assert f"as version {version}" in rolled_back.stdout
    assert client.get("clv:current") == version
    assert customer_keys(client, version) == summary["customers"]
    unknown = clv("publish", "--to", server.url, "--run", "2020-01-01_m1", database=database)
    assert unknown.returncode == 2
    assert "holds no run 2020-01-01_m1 (latest runs: " in unknown.stderr
    assert client.get("clv:current") == version


def test_a_failed_publish_is_retried_without_a_rebuild(
    transactions: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    start_redis,  # noqa: F811 - the fixture imported above
) -> None:
    server: RedisServer = start_redis()
    url = server.url
    server.stop()  # nothing listens there any more
    output = tmp_path / "out"
    result = clv(
        "run", "--input", str(transactions), "--output", str(output), "--publish-redis", url,
        database=tmp_path / "warehouse.duckdb",
    )  # fmt: skip
    assert result.returncode == 3  # outputs complete, publishing failed
    assert "clv run failed: publishing to Redis failed:" in result.stderr
    assert "Traceback" not in result.stderr
    summary = json.loads((output / "run.json").read_text())
    assert summary["status"] == "complete"

    # The scheduler's retry: the same run published from the output folder, no rebuild.
    server.start()
    retried = clv("publish", "--from", str(output), "--to", url, database=tmp_path / "none.duckdb")
    assert retried.returncode == 0, retried.stdout + retried.stderr
    assert retried.stdout.startswith(f"published {summary['customers']:,} forecasts to Redis")
    client = redis.Redis.from_url(url, decode_responses=True)
    assert client.get("clv:current") == f"{summary['as_of_date']}_{summary['model_version']}"

    # The same run to DynamoDB (a real dynalite; credentials and endpoint from the
    # environment, as boto3 reads them).
    dynamodb = start_dynalite()
    try:
        for name, value in (
            ("AWS_ENDPOINT_URL", dynamodb.endpoint),
            ("AWS_ACCESS_KEY_ID", "AKIDFAKEFORTESTS"),
            ("AWS_SECRET_ACCESS_KEY", "fake"),
            ("AWS_REGION", "eu-west-1"),
        ):
            monkeypatch.setenv(name, value)
        to_dynamodb = clv("publish", "--from", str(output), "--to", "dynamodb://clv-cli",
                          database=tmp_path / "none.duckdb")  # fmt: skip
        assert to_dynamodb.returncode == 0, to_dynamodb.stdout + to_dynamodb.stderr
        assert "forecasts to DynamoDB as version" in to_dynamodb.stdout
        some = pd.read_parquet(output / "predictions.parquet").iloc[0]
        served = dynamodb_publish.read_forecast(
            dynamodb_publish.connect(), some["customer_id"], prefix="clv-cli"
        )
        assert served["expected_spend"] == some["expected_spend"]
        dynamodb.stop()
        down = clv("publish", "--from", str(output), "--to", "dynamodb://clv-cli",
                   database=tmp_path / "none.duckdb")  # fmt: skip
        assert down.returncode == 3, down.stdout + down.stderr
        assert down.stderr.startswith("clv publish failed: publishing to DynamoDB failed:")
        assert len(down.stderr.strip().splitlines()) == 1
    finally:
        dynamodb.close()

    refused = clv("publish", "--from", str(output), "--to", "ftp://x", database=tmp_path / "w")
    assert refused.returncode == 2
    assert "the store must be redis://, rediss:// or dynamodb://TABLE_PREFIX" in refused.stderr


def test_bad_input_fails_with_one_line_and_no_folder(transactions: Path, tmp_path: Path) -> None:
    output = tmp_path / "out"
    missing = clv("run", "--input", str(tmp_path / "nope.csv"), "--output", str(output),
                  database=tmp_path / "w.duckdb")  # fmt: skip
    assert missing.returncode == 2  # bad input
    assert (
        missing.stderr.strip() == f"clv run failed: input file not found: {tmp_path / 'nope.csv'}"
    )

    wrong_column = clv(
        "run", "--input", str(transactions), "--output", str(output),
        "--vars", "{amount_column: price}", database=tmp_path / "w.duckdb",
    )  # fmt: skip
    assert wrong_column.returncode == 2
    assert "Required column 'price' (var amount_column) is missing" in wrong_column.stderr
    assert "Traceback" not in wrong_column.stderr
    assert not output.exists()
    assert not list(tmp_path.glob(".out.*"))


def test_running_out_of_memory_names_the_variable_that_sets_the_limit(
    transactions: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A real DuckDB out of its memory, as a large file on a small limit runs out.
    monkeypatch.setenv("CLV_DUCKDB_MEMORY_LIMIT", "8MB")
    output = tmp_path / "out"
    result = clv("run", "--input", str(transactions), "--output", str(output),
                 database=tmp_path / "w.duckdb")  # fmt: skip
    assert result.returncode == 1  # the build failed
    [reason] = [line for line in result.stderr.splitlines() if line.startswith("clv run failed")]
    assert "failed: Out of Memory Error" in reason
    assert reason.endswith(
        "DuckDB's memory limit (CLV_DUCKDB_MEMORY_LIMIT, now 8MB) is too low for this step:"
        " raise it and run again"
    )
    assert not output.exists()
