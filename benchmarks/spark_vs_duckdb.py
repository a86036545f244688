"""The whole build (`dbt build`) on DuckDB and on Spark local mode, on the same file.

    python benchmarks/spark_vs_duckdb.py --size 1m      # or 10m; data under /tmp/clv-bench

Prints each engine's wall time and peak memory. Spark's memory is the sum over its
process tree (the dbt process, the JVM, the Python workers), sampled twice a second;
DuckDB's is its one process, sampled the same way. On one machine Spark is not meant to
be faster: the point is that the same project completes on an engine that scales out.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from features_vs_duckdb import ensure_transactions

PROJECT_DIR = Path(__file__).resolve().parents[1]
SIZES = {"1m": 1_000_000, "10m": 10_000_000}
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


def tree_rss_kib(root: int) -> int:
    """Resident memory of a process and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            statm = (entry / "statm").read_text().split()
        except OSError:  # the process ended meanwhile
            continue
        pid = int(entry.name)
        children.setdefault(int(fields[1]), []).append(pid)
        rss[pid] = int(statm[1]) * PAGE_KIB
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


def measured(command: list[str], env: dict) -> tuple[float, float]:
    """(wall seconds, peak MB of the process tree) of command; ends the run if it fails."""
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as log:
        process = subprocess.Popen(command, cwd=PROJECT_DIR, env=env, stdout=log, stderr=log)
        peak = 0
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, tree_rss_kib(process.pid))
                done.wait(0.5)

        sampler = threading.Thread(target=sample)
        sampler.start()
        returncode = process.wait()
        done.set()
        sampler.join()
        if returncode != 0:
            log.seek(0)
            sys.exit(f"{' '.join(command[:3])} failed:\n{log.read()[-4000:]}")
    return time.perf_counter() - started, peak / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=SIZES, default="1m")
    args = parser.parse_args()
    path = ensure_transactions(SIZES[args.size])
    work = Path(tempfile.mkdtemp(prefix="clv-engines-"))
    variables = json.dumps({"transactions_path": str(path)})
    dbt = str(Path(sys.executable).parent / "dbt")
    common = ["build", "--profiles-dir", str(PROJECT_DIR), "--vars", variables, "--quiet"]
    env = {
        **os.environ,
        "DBT_TARGET_PATH": str(work / "target"),
        "DBT_LOG_PATH": str(work / "logs"),
        "CLV_DUCKDB_PATH": str(work / "warehouse.duckdb"),
        "CLV_SPARK_DIR": str(work / "spark"),
        "SPARK_LOCAL_IP": "127.0.0.1",
    }
    try:
        print(f"dbt build of {path.name} on DuckDB ...", flush=True)
        duck = measured([dbt, *common], env)
        print(f"dbt build of {path.name} on Spark ({env.get('CLV_SPARK_MASTER', 'local[*]')}) ...")
        spark = measured([dbt, *common, "--target", "spark"], env)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n| engine | {args.size} transactions: wall | peak memory |")
    print("|---|---|---|")
    for name, (seconds, megabytes) in (("DuckDB", duck), ("Spark local", spark)):
        print(f"| {name} | {seconds:.0f} s | {megabytes / 1024:.2f} GB |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
