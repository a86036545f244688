"""Benchmark: staging a glob of many daily CSV files against one file of the same rows.

The project's generator writes --days days of history (one file; the defaults give about
500,000 rows), which is split by transaction date into one CSV per day, each with the
header, and joined back into their concatenation: the same rows in the same order under
one header. `dbt build --select staging` (the staging models and their tests: the
models that read the input files, and those after them, which read tables whatever the
number of files) runs on each, on a fresh warehouse each time, --repeat times in turn.
It prints both wall times (medians), their ratio, the cost per file (the difference
over the number of files), and the same for the staging models' own time (from dbt's
run_results.json, without dbt's start of about 3 s), model by model. The target (issue
24): the files within 1.5x of their concatenation. A measurement, not a test.

It measures the project it sits in (benchmarks/run_dbt.py runs dbt there): to measure
a copy of the project, run the copy's benchmarks/many_files.py.

    .venv/bin/python benchmarks/many_files.py [--days 300] [--customers 80000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

import duckdb

from clv.generate import generate_transactions, write_transactions
from run_dbt import PROJECT_DIR, run_dbt

FOLDER = Path("/tmp/clv-bench/many_files")
SELECTION = ["build", "--select", "staging"]
END_DATE = dt.date(2026, 6, 30)
# Every row is on or before END_DATE; an as-of date fixes the run date's check.
AS_OF_DATE = END_DATE + dt.timedelta(days=1)


def split_by_day(generated: Path, days_folder: Path, concatenation: Path) -> tuple[int, int]:
    """One CSV per transaction date (each with the header) and their concatenation, from
    the generator's file; returns (files, rows). Files written before are reused."""
    # The concatenation is written last, so it marks a split that finished.
    if concatenation.exists():
        rows = sum(1 for _ in concatenation.open()) - 1
        return len(list(days_folder.glob("*.csv"))), rows
    with generated.open() as source:
        header = source.readline()
        date_column = header.rstrip("\n").split(",").index("transaction_date")
        by_day: dict[str, list[str]] = defaultdict(list)
        # The generator writes no quoted fields, so a comma always separates two fields.
        for line in source:
            by_day[line.split(",")[date_column][:10]].append(line)
    days_folder.mkdir(parents=True, exist_ok=True)
    partial = concatenation.with_name(f".{concatenation.name}.partial")
    # In the files' name order, the order a glob reads them: both inputs hold the same
    # rows in the same order.
    with partial.open("w") as joined:
        joined.write(header)
        for day in sorted(by_day):
            (days_folder / f"{day}.csv").write_text(header + "".join(by_day[day]))
            joined.writelines(by_day[day])
    partial.replace(concatenation)
    return len(by_day), sum(len(lines) for lines in by_day.values())


def model_seconds(folder: Path) -> dict[str, float]:
    """Each model's execution time in the last run, from its run_results.json."""
    results = json.loads((folder / "target" / "run_results.json").read_text())
    return {
        result["unique_id"].split(".")[-1]: result["execution_time"]
        for result in results["results"]
        if result["unique_id"].startswith("model.")
    }


def stage(path: Path, name: str) -> tuple[float, dict[str, float], int]:
    """The staging build on a fresh warehouse: (wall seconds, seconds per model, rows
    staged)."""
    folder = FOLDER / name
    database = folder / "warehouse.duckdb"
    for suffix in ("", ".wal"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    folder.mkdir(parents=True, exist_ok=True)
    variables = {"transactions_path": str(path), "as_of_date": AS_OF_DATE.isoformat()}
    seconds = run_dbt(SELECTION, variables, database, folder)
    with duckdb.connect(str(database), read_only=True) as warehouse:
        [(rows,)] = warehouse.execute("select count(*) from stg_transactions__rows").fetchall()
    return seconds, model_seconds(folder), rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=300, help="number of daily files")
    parser.add_argument("--customers", type=int, default=80_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    data = FOLDER / f"data_{args.days}d_{args.customers}c_s{args.seed}"
    generated = data / "generated.csv"
    if not generated.exists():
        transactions = generate_transactions(
            customers=args.customers,
            seed=args.seed,
            end_date=END_DATE,
            history_days=args.days - 1,
        ).transactions
        write_transactions(transactions, generated)
    days_folder = data / "days"
    concatenation = data / "concatenation.csv"
    files, rows = split_by_day(generated, days_folder, concatenation)
    print(f"project: {PROJECT_DIR}")
    print(f"{files} daily files and their concatenation, {rows:,} rows, under {data}")
    print(f"`dbt {' '.join(SELECTION)}`, {args.repeat} run(s) of each, in turn:", flush=True)

    walls: dict[str, list[float]] = {"one file": [], "daily files": []}
    model_totals: dict[str, list[float]] = {"one file": [], "daily files": []}
    models: dict[str, dict[str, list[float]]] = {"one file": {}, "daily files": {}}
    inputs = {"one file": concatenation, "daily files": days_folder / "*.csv"}
    for attempt in range(1, args.repeat + 1):
        for name, path in inputs.items():
            seconds, per_model, staged = stage(path, name.replace(" ", "_"))
            # Both must stage every row, or the comparison is not of the same work.
            if staged != rows:
                sys.exit(f"{name}: {staged:,} rows staged of {rows:,}")
            walls[name].append(seconds)
            model_totals[name].append(sum(per_model.values()))
            for model, model_time in per_model.items():
                models[name].setdefault(model, []).append(model_time)
            print(f"  run {attempt}, {name}: {seconds:.1f} s", flush=True)

    print(f"\nmedians of {args.repeat} run(s), one file of {rows:,} rows against {files} files:")
    for label, times in (("wall", walls), ("staging models", model_totals)):
        one = statistics.median(times["one file"])
        many = statistics.median(times["daily files"])
        print(
            f"  {label}: {one:.1f} s against {many:.1f} s, ratio {many / one:.2f}x"
            f" (target: at most 1.5x), {(many - one) / files * 1000:.1f} ms per file"
        )
    print("\n| model | one file | daily files |")
    print("|---|---|---|")
    for model in models["one file"]:
        print(
            f"| {model} | {statistics.median(models['one file'][model]):.2f} s"
            f" | {statistics.median(models['daily files'][model]):.2f} s |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
