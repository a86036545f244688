"""Benchmark clv.redis_publish: publish N synthetic customer forecasts and report throughput.

    .venv/bin/python benchmarks/redis_publish.py --customers 1000000
    .venv/bin/python benchmarks/redis_publish.py --customers 1000000 --url redis://127.0.0.1:6379/0

Without --url a throwaway redis-server (no persistence) is started on a free loopback port
with its data under /tmp and stopped afterwards. With --url the keys are written under the
prefix ``clvbench`` (change it with --prefix) and left in place, like a real publish.
--runs 2 publishes a second version, which also retires the first (SCAN + EXPIRE).
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import redis

from clv.redis_publish import connect, publish_predictions

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "python"))
from programs import exit_without_program  # noqa: E402


def synthetic_batches(customers: int, rows: int, model_version: str) -> Iterator[pa.RecordBatch]:
    """Prediction rows shaped like the forecast mart, generated batch by batch (flat memory)."""
    rng = np.random.default_rng(42)
    as_of = pa.scalar(dt.date(2024, 6, 30))
    scored_at = pa.scalar(dt.datetime(2024, 7, 1, 2, 3, 4), pa.timestamp("s"))
    for start in range(0, customers, rows):
        n = min(rows, customers - start)
        spend = rng.gamma(2.0, 60.0, n)
        ids = pc.binary_join_element_wise(
            "C", pc.cast(pa.array(np.arange(start, start + n)), pa.string()), ""
        )
        yield pa.RecordBatch.from_pydict(
            {
                "customer_id": ids,
                "as_of_date": pa.repeat(as_of, n),
                "horizon_days": pa.repeat(pa.scalar(90, pa.int32()), n),
                "expected_spend": spend,
                "spend_p10": spend * 0.2,
                "spend_p50": spend * 0.8,
                "spend_p90": spend * 2.5,
                "prob_purchase": rng.random(n),
                "model_version": pa.repeat(pa.scalar(model_version), n),
                "scored_at": pa.repeat(scored_at, n),
            }
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(directory: str) -> tuple[subprocess.Popen[bytes], str]:
    binary = exit_without_program("redis-server")  # or pass --url
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--daemonize", "no"]
        + ["--dir", directory, "--save", "", "--appendonly", "no", "--logfile", "redis.log"],
    )
    probe = redis.Redis(port=port, socket_timeout=0.5, retry=None)
    deadline = time.monotonic() + 10
    while True:
        try:
            probe.ping()
            return process, f"redis://127.0.0.1:{port}/0"
        except redis.ConnectionError:
            if process.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"redis-server did not start; see {directory}/redis.log")
            time.sleep(0.05)


def stop_server(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        kib = next(line.split()[1] for line in status if line.startswith("VmRSS:"))
    return int(kib) / 1024


def main() -> int:
    baseline_mib = rss_mib()  # after imports: what the publish adds is the difference
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--url", help="Redis to publish into (default: start a throwaway one)")
    parser.add_argument("--prefix", default="clvbench")
    parser.add_argument("--batch-size", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=1, help="versions to publish one after another")
    args = parser.parse_args()

    directory = None if args.url else tempfile.mkdtemp(prefix="clv-redis-bench-", dir="/tmp")
    process, url = start_server(directory) if directory else (None, args.url)
    try:
        client = connect(url, timeout_seconds=30)
        for run in range(1, args.runs + 1):
            version = f"bench-{run}"
            result = publish_predictions(
                client,
                synthetic_batches(args.customers, args.batch_size, version),
                version,
                prefix=args.prefix,
                metadata={"as_of_date": "2024-06-30", "model_version": version},
                batch_size=args.batch_size,
            )
            print(
                f"run {run}: {result.customers:,} customers in {result.seconds:.1f} s "
                f"= {result.customers / result.seconds:,.0f} keys/s "
                f"(previous version: {result.previous_version})"
            )
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        used = client.info("memory")["used_memory_human"]
        print(
            f"peak RSS of this Python process: {peak_mib:,.0f} MiB "
            f"(after imports: {baseline_mib:,.0f} MiB); Redis used_memory: {used}"
        )
        client.close()
    finally:
        if process is not None:
            stop_server(process)
            shutil.rmtree(directory, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
