"""Benchmark: what training on a sample of customers (var max_training_rows) costs and saves.

Generates transactions under /tmp (reused when present), builds the training examples
and the BTYD fits at their cutoffs once without sampling, then trains the backtest
boosters on every customer and on hash samples of whole customers (the macro's rule),
and scores the same full holdout with each. Prints training time and the backtest
metrics per sample share. A measurement, not a test.

    .venv/bin/python benchmarks/training_sample.py [--customers 100000] [--shares 0.5 0.2 0.1]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from pathlib import Path

import duckdb
import pandas as pd

from clv.backtest import backtest_predictions, metrics_table
from clv.btyd_fits import latest_build
from clv.generate import generate_transactions, write_transactions
from clv.training import TrainingConfig
from run_dbt import run_dbt

SHOWN = [
    "mae_p50",
    "normalized_gini",
    "total_error_pct",
    "pinball_loss_p90",
    "below_rate_p90",
    "at_or_below_rate_p90",
]


def build_examples(customers: int, folder: Path) -> Path:
    """Generate the file and build the training examples and BTYD fits without sampling."""
    path = folder / f"transactions_{customers}_customers.csv"
    if not path.exists():
        generated = generate_transactions(customers=customers, seed=7)
        write_transactions(generated.transactions, path)
    database = folder / f"examples_{customers}.duckdb"
    if not database.exists():
        run_dbt(
            ["run", "--quiet", "--select", "+btyd_fits"],
            {"transactions_path": str(path), "max_training_rows": 0},
            database,
            folder,
        )
    return database


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--shares", type=float, nargs="+", default=[0.5, 0.2, 0.1])
    parser.add_argument("--folder", type=Path, default=Path("/tmp/clv-bench/training-sample"))
    args = parser.parse_args()
    args.folder.mkdir(parents=True, exist_ok=True)
    database = build_examples(args.customers, args.folder)

    config = TrainingConfig(num_threads=os.cpu_count() or 1)
    rows = []
    with duckdb.connect(str(database), read_only=True) as connection:
        fits = latest_build(connection.sql("select * from btyd_fits").df())
        holdout = connection.sql(
            "select * from int_training_examples_labelled where purpose = 'backtest_holdout'"
        ).df()
        for share in [1.0, *args.shares]:
            # The rule of macros/training_sample.sql: whole customers, by a hash of the id.
            training = connection.sql(
                "select * from int_training_examples_labelled where purpose = 'backtest'"
                f" and hash(customer_id) % 1000000 < {int(share * 1_000_000)}"
            ).df()
            started = time.perf_counter()
            predictions = backtest_predictions(
                pd.concat([training, holdout], ignore_index=True),
                config,
                dt.datetime.now(),
                fits,
                model_version=f"share {share}",
            )
            seconds = time.perf_counter() - started
            table = metrics_table(predictions, config.quantiles, "").set_index("model")
            rows.append(
                {
                    "share": share,
                    "training_rows": len(training),
                    "seconds": round(seconds, 1),
                    **{name: table.loc["lightgbm", name] for name in SHOWN},
                }
            )
            print(f"share {share}: {len(training):,} examples, {seconds:.1f} s", flush=True)
        btyd = table.loc["btyd", SHOWN]

    print(f"holdout: {len(holdout):,} customers, the same for every share")
    with pd.option_context("display.width", 140, "display.float_format", "{:,.3f}".format):
        print(pd.DataFrame(rows).to_string(index=False))
        print("btyd baseline:", btyd.to_dict())
    return 0


if __name__ == "__main__":
    sys.exit(main())
