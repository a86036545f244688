"""Benchmark: the whole job against its naive floor, at 10M, 50M or 100M transactions.

For one size, generated under /tmp/clv-bench when absent (1 customer per 10 rows), it runs
in one invocation, --repeat times in turn:
  floor        one hand-written DuckDB scan computing every customer's features (the same
               query as benchmarks/features_vs_duckdb.py), written to Parquet; then as many
               LightGBM boosters as the project trains (five: purchase probability, spend
               given a purchase at 0.1, 0.5 and 0.9 on the buyers, expected spend), 200
               rounds each, on every customer, and every customer scored by all five. Its
               labels are the last 90 days' purchase and spend: it costs what the model
               costs and forecasts nothing.
  full build   `dbt build --selector full` on a fresh warehouse;
  scoring run  `dbt build --selector score` on that warehouse: features and scoring, no
               training; its floor is the floor's features and prediction.
and prints each one's wall time and peak memory (of its largest process) and the ratios.
A measurement, not a test.

    .venv/bin/python benchmarks/end_to_end.py [--size 10m|50m|100m] [--repeat 1]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import duckdb
from features_vs_duckdb import HAND_WRITTEN_QUERY, WINDOW_TEMPLATE, ensure_transactions

from run_dbt import PROJECT_DIR

SIZES = {"10m": 10_000_000, "50m": 50_000_000, "100m": 100_000_000}
BOOSTING_ROUNDS = 200
FOLDER = Path("/tmp/clv-bench")

# Runs a command and prints the peak resident memory of its largest process, in KiB.
PEAK_WRAPPER = (
    "import resource, subprocess, sys;"
    "code = subprocess.run(sys.argv[1:]).returncode;"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr);"
    "sys.exit(code)"
)


def measured(command: list[str], env: dict | None = None) -> tuple[float, float, str]:
    """(wall seconds, peak MB, stdout) of command; ends the benchmark if it fails."""
    started = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, "-c", PEAK_WRAPPER, *command],
        cwd=PROJECT_DIR,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if completed.returncode != 0:
        sys.exit(f"{' '.join(command[:3])} failed:\n{completed.stdout[-3000:]}{completed.stderr}")
    peak_kib = int(completed.stderr.strip().splitlines()[-1])
    return seconds, peak_kib / 1024, completed.stdout


def floor(path: Path, work: Path) -> dict[str, float]:
    """The naive job (see the module's docstring); returns seconds per phase."""
    import lightgbm as lgb
    import numpy as np
    import pandas as pd

    work.mkdir(parents=True, exist_ok=True)
    features_file = work / "floor_features.parquet"
    windows = "\n    ".join(WINDOW_TEMPLATE.format(d=d) for d in (30, 90, 180, 365))
    started = time.perf_counter()
    with duckdb.connect() as connection:
        connection.execute(HAND_WRITTEN_QUERY.format(path=path, windows=windows))
        connection.execute(f"copy hand_written_features to '{features_file}' (format parquet)")
    features_seconds = time.perf_counter() - started

    started = time.perf_counter()
    frame = pd.read_parquet(features_file)
    label = (frame["net_spend_last_90d"].fillna(0) > 0).astype(float).to_numpy()
    matrix = frame.drop(
        columns=[
            "customer_id",
            "first_transaction_date",
            "first_purchase_date",
            "last_purchase_date",
            "net_spend_last_90d",
        ]
    ).astype("float32")
    spend = frame["net_spend_last_90d"].fillna(0).clip(lower=0).to_numpy()
    buyers = spend > 0
    threads = os.cpu_count() or 1
    common = {"num_threads": threads, "seed": 42, "verbosity": -1}
    # The project's boosters (clv.training): who buys, spend given a purchase at three
    # levels on log spend among buyers, expected spend.
    trained = [
        lgb.train({**common, "objective": "binary"}, lgb.Dataset(matrix, label), BOOSTING_ROUNDS)
    ]
    for level in (0.1, 0.5, 0.9):
        data = lgb.Dataset(matrix[buyers], np.log(spend[buyers]))
        trained.append(
            lgb.train({**common, "objective": "quantile", "alpha": level}, data, BOOSTING_ROUNDS)
        )
    trained.append(
        lgb.train({**common, "objective": "poisson"}, lgb.Dataset(matrix, spend), BOOSTING_ROUNDS)
    )
    training_seconds = time.perf_counter() - started

    started = time.perf_counter()
    for booster in trained:
        booster.predict(matrix)
    predict_seconds = time.perf_counter() - started
    return {
        "features": features_seconds,
        "training": training_seconds,
        "predict": predict_seconds,
        "customers": len(frame),
    }


def dbt_command(selector: str, path: Path) -> list[str]:
    return [
        str(Path(sys.executable).parent / "dbt"),
        "build",
        "--quiet",
        "--selector",
        selector,
        "--profiles-dir",
        str(PROJECT_DIR),
        "--vars",
        json.dumps({"transactions_path": str(path)}),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=SIZES, default="10m")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--floor-only", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.floor_only:  # the floor, in its own process so its peak memory is its own
        print(json.dumps(floor(args.floor_only, FOLDER / "floor")))
        return 0

    path = ensure_transactions(SIZES[args.size])
    database = FOLDER / f"end_to_end_{args.size}.duckdb"
    env = {
        "CLV_DUCKDB_PATH": str(database),
        "DBT_TARGET_PATH": str(FOLDER / "target"),
        "DBT_LOG_PATH": str(FOLDER / "logs"),
    }
    runs: dict[str, list[float]] = {}

    def keep(name: str, value: float) -> None:
        # Printed as it comes, so that a run that fails later still shows what it measured.
        print(f"  {name}: {value:,.1f}", flush=True)
        runs.setdefault(name, []).append(value)

    for attempt in range(1, args.repeat + 1):
        seconds, peak, output = measured([sys.executable, __file__, "--floor-only", str(path)])
        phases = json.loads(output.strip().splitlines()[-1])
        keep("floor s", seconds)
        keep("floor MB", peak)
        keep("scoring floor s", phases["features"] + phases["predict"])
        keep("floor predict s", phases["predict"])
        for name in ("", ".wal"):
            Path(f"{database}{name}").unlink(missing_ok=True)
        seconds, peak, _ = measured(dbt_command("full", path), env)
        keep("full build s", seconds)
        keep("full build MB", peak)
        seconds, peak, _ = measured(dbt_command("score", path), env)
        keep("scoring run s", seconds)
        keep("scoring run MB", peak)
        results = json.loads((FOLDER / "target" / "run_results.json").read_text())
        [scoring] = [
            r for r in results["results"] if r["unique_id"].endswith("customer_predictions")
        ]
        keep("scoring model s", scoring["execution_time"])
        print(
            f"run {attempt}: floor {runs['floor s'][-1]:.0f} s, full build "
            f"{runs['full build s'][-1]:.0f} s, scoring run {runs['scoring run s'][-1]:.0f} s",
            flush=True,
        )

    median = {name: statistics.median(values) for name, values in runs.items()}
    customers = phases["customers"]
    print(
        f"\n{path.name}: {SIZES[args.size]:,} rows asked, {customers:,} customers;"
        f" medians of {args.repeat} run(s)\n"
    )
    print("| run | wall | peak memory | ratio to its floor |")
    print("|---|---|---|---|")
    print(f"| naive floor | {median['floor s']:.0f} s | {median['floor MB']:,.0f} MB | |")
    print(
        f"| full build | {median['full build s']:.0f} s | {median['full build MB']:,.0f} MB"
        f" | {median['full build s'] / median['floor s']:.2f}x |"
    )
    print(
        f"| scoring run | {median['scoring run s']:.0f} s | {median['scoring run MB']:,.0f} MB"
        f" | {median['scoring run s'] / median['scoring floor s']:.2f}x"
        f" (floor: features + predict, {median['scoring floor s']:.0f} s) |"
    )
    print(
        f"| scoring throughput | {customers / median['scoring model s']:,.0f} customers/s |"
        f" | {median['scoring model s'] / median['floor predict s']:.2f}x"
        f" (LightGBM's own predict: {customers / median['floor predict s']:,.0f} customers/s) |"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
