"""Benchmark clv.dynamodb_publish next to clv.redis_publish on the same synthetic rows.

    .venv/bin/python benchmarks/dynamodb_publish.py --customers 100000
    .venv/bin/python benchmarks/dynamodb_publish.py --endpoint http://127.0.0.1:8000

Without --endpoint a throwaway dynalite (tests/dynalite, in memory) is started on a free
loopback port with fake credentials; without --redis-url a throwaway redis-server likewise
(see benchmarks/redis_publish.py). Both stores get the same rows, generated batch by batch
by benchmarks/redis_publish.py's generator, under the prefix ``clvbench``. --runs 2
publishes a second version, which also retires the first (DynamoDB: one conditional
UpdateItem per customer; Redis: SCAN + EXPIRE).

dynalite is a Node.js stand-in, not DynamoDB: its figure measures this client and dynalite
on this machine, where real DynamoDB adds network latency but scales its side out.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from redis_publish import start_server, stop_server, synthetic_batches

from clv import dynamodb_publish, redis_publish

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "python"))
from dynalite import Dynalite, DynaliteMissing  # noqa: E402

BATCH_ROWS = 10_000


def publish_dynamodb(endpoint: str, customers: int, runs: int) -> list[float]:
    client = dynamodb_publish.connect(endpoint, timeout_seconds=30)
    seconds = []
    for run in range(1, runs + 1):
        version = f"bench-{run}"
        result = dynamodb_publish.publish_predictions(
            client,
            synthetic_batches(customers, BATCH_ROWS, version),
            version,
            customers=customers,
            prefix="clvbench",
            metadata={"as_of_date": "2024-06-30", "model_version": version},
        )
        seconds.append(result.seconds)
    return seconds


def publish_redis(url: str, customers: int, runs: int) -> list[float]:
    client = redis_publish.connect(url, timeout_seconds=30)
    seconds = []
    for run in range(1, runs + 1):
        version = f"bench-{run}"
        result = redis_publish.publish_predictions(
            client,
            synthetic_batches(customers, BATCH_ROWS, version),
            version,
            customers=customers,
            prefix="clvbench",
            metadata={"as_of_date": "2024-06-30", "model_version": version},
            batch_size=BATCH_ROWS,
        )
        seconds.append(result.seconds)
    client.close()
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--endpoint", help="DynamoDB endpoint (default: start a local dynalite)")
    parser.add_argument("--redis-url", help="Redis to publish into (default: start a local one)")
    parser.add_argument("--runs", type=int, default=1, help="versions to publish one after another")
    args = parser.parse_args()

    dynalite = None
    if args.endpoint is None:
        try:
            dynalite = Dynalite(create_table_ms=500).start()
        except DynaliteMissing as missing:
            sys.exit(f"dynalite cannot run: {missing}; or pass --endpoint")
        # A local server accepts any key; never send real credentials to it.
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
            os.environ.pop(name, None)
        os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench")
        os.environ.setdefault("AWS_REGION", "us-east-1")
    directory = None if args.redis_url else tempfile.mkdtemp(prefix="clv-redis-bench-", dir="/tmp")
    redis_server, redis_url = start_server(directory) if directory else (None, args.redis_url)
    try:
        endpoint = args.endpoint or dynalite.endpoint
        dynamo_seconds = publish_dynamodb(endpoint, args.customers, args.runs)
        redis_seconds = publish_redis(redis_url, args.customers, args.runs)
    finally:
        if dynalite is not None:
            dynalite.close()
        if redis_server is not None:
            stop_server(redis_server)
            shutil.rmtree(directory, ignore_errors=True)

    dynamo_where = "local dynalite 4.0.0" if args.endpoint is None else args.endpoint
    redis_where = "local redis-server" if args.redis_url is None else "given Redis"
    print(f"\n{args.customers:,} customers, {os.cpu_count()} CPUs\n")
    print(f"| run | DynamoDB ({dynamo_where}) | Redis ({redis_where}) |")
    print("| --- | ---: | ---: |")
    for run, (dynamo, redis) in enumerate(zip(dynamo_seconds, redis_seconds, strict=True), 1):
        print(
            f"| {run} | {args.customers / dynamo:,.0f} items/s ({dynamo:.1f} s) "
            f"| {args.customers / redis:,.0f} items/s ({redis:.1f} s) |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
