"""Benchmark: the project's staging + features build against one hand-written query.

Generates N transactions under /tmp (reused when present), then times, in one run:
  1. `dbt run` of the staging models and int_customer_features_as_of_date
     (model time from run_results.json, and wall time including dbt's start-up);
  2. one hand-written DuckDB query computing the same features from the same file;
and prints both and their ratio, medians over --repeat interleaved runs. A measurement,
not a test.

    .venv/bin/python benchmarks/features_vs_duckdb.py [--rows 10000000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import duckdb

from clv.generate import generate_transactions, write_transactions
from run_dbt import run_dbt

AVERAGE_ROWS_PER_CUSTOMER = 10

# The same features as macros/customer_features.sql, written the way an analyst
# would by hand: typed read, no validation, one statement.
HAND_WRITTEN_QUERY = """
create or replace table hand_written_features as
with transactions as (
    select customer_id, cast(transaction_date as date) as transaction_date, amount, quantity
    from read_csv('{path}', header = true,
                  types = {{'customer_id': 'varchar', 'transaction_date': 'timestamp',
                           'amount': 'double', 'quantity': 'double'}})
),
days as (
    select
        customer_id, transaction_date,
        sum(amount) as net_spend,
        count(*) filter (where amount > 0) as order_count,
        sum(amount) filter (where amount > 0) as order_value_sum,
        sum(amount * amount) filter (where amount > 0) as order_value_sum_of_squares,
        max(amount) filter (where amount > 0) as order_value_max,
        count(*) filter (where amount < 0) as refund_count,
        -sum(amount) filter (where amount < 0) as refund_amount,
        sum(quantity) filter (where amount > 0) as quantity
    from transactions
    group by all
),
gaps as (
    select *,
        case when order_count > 0 then transaction_date - lag(transaction_date) over (
            partition by customer_id, order_count > 0 order by transaction_date) end as gap
    from days
),
as_of as (select max(transaction_date) as as_of_date from days)
select
    customer_id,
    min(transaction_date) as first_transaction_date,
    min(transaction_date) filter (where order_count > 0) as first_purchase_date,
    max(transaction_date) filter (where order_count > 0) as last_purchase_date,
    any_value(as_of_date) - min(transaction_date) as tenure_days,
    any_value(as_of_date) - max(transaction_date) filter (where order_count > 0) as recency_days,
    count(*) filter (where order_count > 0) as purchase_days,
    sum(order_count) as order_count,
    sum(net_spend) as net_spend,
    sum(order_value_sum) / nullif(sum(order_count), 0) as order_value_mean,
    sqrt(greatest((sum(order_value_sum_of_squares) - sum(order_value_sum) ^ 2 / sum(order_count))
        / nullif(sum(order_count) - 1, 0), 0)) as order_value_std,
    max(order_value_max) as order_value_max,
    avg(order_value_sum) filter (where gap is not null) as repeat_purchase_day_value_mean,
    avg(gap) as purchase_gap_mean_days,
    stddev_samp(gap) as purchase_gap_std_days,
    {windows}
    sum(refund_count) as refund_count,
    sum(refund_amount) as refund_amount,
    sum(quantity) as quantity
from gaps cross join as_of
group by customer_id
"""
WINDOW_TEMPLATE = (
    "sum(net_spend) filter (where transaction_date > as_of_date - {d}) as net_spend_last_{d}d, "
    "count(*) filter (where order_count > 0 and transaction_date > as_of_date - {d})"
    " as purchase_days_last_{d}d,"
)


def ensure_transactions(rows: int) -> Path:
    path = Path(f"/tmp/clv-bench/transactions_{rows}.csv")
    if not path.exists():
        customers = max(rows // AVERAGE_ROWS_PER_CUSTOMER, 1)
        print(f"generating ~{rows:,} rows ({customers:,} customers) into {path} ...", flush=True)
        generated = generate_transactions(customers=customers, seed=1)
        write_transactions(generated.transactions, path)
    return path


def time_dbt_build(path: Path, database: Path) -> tuple[float, float]:
    database.unlink(missing_ok=True)
    folder = database.parent
    wall = run_dbt(
        ["run", "--quiet", "--select", "staging", "int_customer_features_as_of_date"],
        {"transactions_path": str(path)},
        database,
        folder,
    )
    results = json.loads((folder / "target" / "run_results.json").read_text())
    model_seconds = sum(result["execution_time"] for result in results["results"])
    return model_seconds, wall


def time_hand_written(path: Path, database: Path) -> float:
    database.unlink(missing_ok=True)
    windows = "\n    ".join(WINDOW_TEMPLATE.format(d=d) for d in (30, 90, 180, 365))
    with duckdb.connect(str(database)) as connection:
        started = time.perf_counter()
        connection.execute(HAND_WRITTEN_QUERY.format(path=path, windows=windows))
        return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    path = ensure_transactions(args.rows)
    [(rows,)] = duckdb.sql(
        f"select count(*) from read_csv('{path}', all_varchar = true)"
    ).fetchall()

    # Timings on this shared 2-core machine swing by +-20% from run to run, so both
    # sides run several times, interleaved, and the medians are compared.
    models, walls, hands = [], [], []
    for attempt in range(1, args.repeat + 1):
        model_seconds, wall_seconds = time_dbt_build(path, Path("/tmp/clv-bench/project.duckdb"))
        hand_seconds = time_hand_written(path, Path("/tmp/clv-bench/hand.duckdb"))
        models.append(model_seconds)
        walls.append(wall_seconds)
        hands.append(hand_seconds)
        print(
            f"run {attempt}: models {model_seconds:.1f} s, hand-written {hand_seconds:.1f} s, "
            f"ratio {model_seconds / hand_seconds:.2f}x",
            flush=True,
        )

    model_seconds, hand_seconds = statistics.median(models), statistics.median(hands)
    print(f"input:                        {path} ({rows:,} rows)")
    print(
        f"project staging + features:   {model_seconds:6.1f} s in models, median of "
        f"{args.repeat} ({statistics.median(walls):.1f} s wall, incl. dbt start-up)"
    )
    print(f"hand-written DuckDB GROUP BY: {hand_seconds:6.1f} s, median of {args.repeat}")
    print(f"ratio (models / hand-written): {model_seconds / hand_seconds:.2f}x  (target <= 1.5x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
