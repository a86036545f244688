"""Publish the forecasts of one completed run to the live app's store, without running dbt.

    clv publish --to URL [--from DIR_OR_WAREHOUSE] [--run VERSION]

--to: redis://... or rediss://... (a Redis server; without --to, $REDIS_URL), or
dynamodb://PREFIX (the DynamoDB tables PREFIX-forecasts and PREFIX-runs; credentials,
region and endpoint from the AWS environment as boto3 reads them, AWS_ENDPOINT_URL
included).
--from: an output folder written by `clv run` or `clv export` (its predictions.parquet
and run.json), or a DuckDB warehouse; by default the warehouse CLV_DUCKDB_PATH. From a
warehouse the current forecasts are published, or with --run VERSION that scoring run,
kept in customer_predictions_history (VERSION is <as_of_date>_<model_version>).

A run is published whole before readers are switched to it, so the app never sees a mix
of two runs; publishing a run again rewrites it in place. A scheduler retries a failed
publish with this command alone: the build is not repeated.

Exit codes (one line on stderr says why):
  0  published
  2  bad usage or bad input: an unknown store, no forecasts, an unknown run
  3  the store could not be reached or refused the run: the previous run is still
     served; rerun to publish
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.parquet as pq

from clv import export
from clv.errors import InputRefused, PublishFailed, RunError
from clv.output_folder import refuse_a_warehouse_in_use

BATCH_ROWS = 50_000
REDIS_SCHEMES = ("redis", "rediss", "unix")
DYNAMODB_SCHEME = "dynamodb"


@dataclass(frozen=True)
class Run:
    """One completed scoring run's forecasts, read batch by batch."""

    as_of_date: str
    model_version: str
    customers: int
    batches: pa.RecordBatchReader

    @property
    def version(self) -> str:
        """The version readers see, the same in Redis and DynamoDB."""
        return f"{self.as_of_date}_{self.model_version}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--to",
        default=os.environ.get("REDIS_URL"),
        metavar="URL",
        help="redis://, rediss:// or dynamodb://TABLE_PREFIX (default: $REDIS_URL)",
    )
    parser.add_argument(
        "--from",
        dest="source",
        metavar="DIR_OR_WAREHOUSE",
        help="an output folder of clv run/export, or a DuckDB warehouse (default: CLV_DUCKDB_PATH)",
    )
    parser.add_argument(
        "--run",
        metavar="VERSION",
        help="from a warehouse: this scoring run (<as_of_date>_<model_version>) instead of"
        " the current forecasts",
    )
    parser.add_argument("--redis-prefix", default="clv", help="key prefix in Redis (default: clv)")


def check_store(url: str | None) -> str:
    """The store URL, refused before any work when it names no store this tool knows."""
    if not url:
        raise InputRefused("no store to publish to: give --to URL or set REDIS_URL")
    parts = urlsplit(url)
    scheme = parts.scheme
    if scheme in REDIS_SCHEMES:
        from clv.redis_publish import RedisPublishError, client_for

        try:  # a URL redis-py cannot read is refused now, not after the build
            client_for(url).close()
        except RedisPublishError as error:
            raise InputRefused(str(error).rstrip(".")) from None
        # redis-py reads a database it cannot parse (/O for /0) as database 0.
        database = parts.path.strip("/")
        if database and not database.isdigit():
            raise InputRefused(
                f"the database in a Redis URL is a number (redis://HOST:6379/0), not {database!r}"
            )
        return url
    if scheme == DYNAMODB_SCHEME:
        dynamodb_prefix(url)
        return url
    raise InputRefused(
        f"cannot publish to {scheme or url!r}: the store must be redis://, rediss:// or"
        " dynamodb://TABLE_PREFIX"
    )


def dynamodb_prefix(url: str) -> str:
    parts = urlsplit(url)
    prefix = parts.netloc + parts.path.rstrip("/")
    if not prefix:
        raise InputRefused("dynamodb:// needs a table prefix, e.g. dynamodb://clv")
    return prefix


@contextmanager
def open_run(source: Path, run: str | None = None, read_only: bool = True) -> Iterator[Run]:
    """The forecasts of one run in an output folder or a warehouse.

    read_only=False opens the warehouse as the build that just wrote it did: DuckDB
    refuses a second connection of another kind to one file in one process.
    """
    if source.is_dir():
        if run is not None:
            raise InputRefused("--run reads a warehouse; an output folder holds one run only")
        yield _folder_run(source)
    elif source.is_file():
        with _warehouse_run(source, run, read_only) as found:
            yield found
    else:
        raise InputRefused(f"nothing to publish at {source}: no such folder or warehouse file")


def _folder_run(folder: Path) -> Run:
    summary_path, predictions = folder / "run.json", folder / "predictions.parquet"
    if not summary_path.is_file() or not predictions.is_file():
        raise InputRefused(
            f"{folder} is not a complete output folder (run.json and predictions.parquet are"
            " written last by clv run and clv export)"
        )
    summary = json.loads(summary_path.read_text())
    if summary.get("status") not in (None, "complete"):
        raise InputRefused(f"{folder} holds an incomplete run: run.json says {summary['status']}")
    parquet = pq.ParquetFile(predictions)
    return Run(
        str(summary["as_of_date"]),
        str(summary["model_version"]),
        parquet.metadata.num_rows,
        pa.RecordBatchReader.from_batches(
            parquet.schema_arrow, parquet.iter_batches(batch_size=BATCH_ROWS)
        ),
    )


@contextmanager
def _warehouse_run(database: Path, run: str | None, read_only: bool) -> Iterator[Run]:
    import duckdb

    try:
        connection = duckdb.connect(str(database), read_only=read_only)
    except duckdb.Error as error:
        refuse_a_warehouse_in_use(database)
        raise InputRefused(f"{database} is not a DuckDB warehouse: {error}") from error
    with connection:
        tables = {name for (name,) in connection.execute("show tables").fetchall()}
        if "customer_predictions" not in tables:
            raise InputRefused(f"the warehouse {database} has no forecasts yet: run clv run first")
        if run is None:
            forecasts = connection.sql("select * from customer_predictions")
        else:
            as_of_date, _, model_version = run.partition("_")
            forecasts = connection.sql(
                "select * from customer_predictions_history"
                " where as_of_date = try_cast($as_of as date) and model_version = $version"
                " qualify scored_at = max(scored_at) over ()",
                params={"as_of": as_of_date, "version": model_version},
            )
        [(customers, as_of_date, model_version, versions)] = forecasts.aggregate(
            "count(*), max(as_of_date), max(model_version), count(distinct model_version)"
        ).fetchall()
        if customers == 0:
            known = ""
            if run is not None:
                listed = connection.execute(
                    "select distinct as_of_date || '_' || model_version"
                    " from customer_predictions_history order by 1 desc limit 5"
                ).fetchall()
                known = " (latest runs: " + ", ".join(v for (v,) in listed) + ")"
            what = f"run {run}" if run is not None else "forecasts"
            raise InputRefused(f"the warehouse {database} holds no {what}{known}")
        if versions != 1:
            raise InputRefused(f"the forecasts in {database} mix {versions} model versions")
        yield Run(
            str(as_of_date),
            str(model_version),
            customers,
            forecasts.fetch_record_batch(BATCH_ROWS),
        )


def publish_run(url: str, found: Run, redis_prefix: str = "clv") -> str:
    """Publish one run to the store url names; returns the sentence that says so."""
    metadata = {"as_of_date": found.as_of_date, "model_version": found.model_version}
    if urlsplit(url).scheme == DYNAMODB_SCHEME:
        from clv import dynamodb_publish

        try:
            result = dynamodb_publish.publish_predictions(
                dynamodb_publish.connect(),
                found.batches,
                found.version,
                customers=found.customers,
                prefix=dynamodb_prefix(url),
                metadata=metadata,
            )
        except dynamodb_publish.DynamoPublishError as error:
            raise PublishFailed(f"publishing to DynamoDB failed: {error}") from error
        store = "DynamoDB"
    else:
        from clv import redis_publish

        try:
            result = redis_publish.publish_predictions(
                redis_publish.connect(url),
                found.batches,
                found.version,
                customers=found.customers,
                prefix=redis_prefix,
                metadata=metadata,
            )
        except redis_publish.RedisPublishError as error:
            raise PublishFailed(f"publishing to Redis failed: {error}") from error
        store = "Redis"
    return (
        f"published {result.customers:,} forecasts to {store} as version {result.version}"
        f" in {result.seconds:.1f} s (previous: {result.previous_version or 'none'})"
    )


def run(args: argparse.Namespace) -> int:
    try:
        url = check_store(args.to)
        source = Path(args.source).resolve() if args.source else export.warehouse_path()
        with open_run(source, args.run) as found:
            print(publish_run(url, found, args.redis_prefix))
    except (ValueError, TypeError) as error:  # the publishers' refusals of the forecasts
        print(f"clv publish failed: {error}", file=sys.stderr)
        return InputRefused.exit_code
    except RunError as error:
        print(f"clv publish failed: {error}", file=sys.stderr)
        return error.exit_code
    return 0
