"""Benchmark: a forecast into a peak and into a dip, with and without the seasonal level.

Generated data with strong seasons (`clv generate --seasons strong`: demand x2 over
October-December, x0.7 over June-August, new customers arriving ever faster), three
years to 2024-12-31. For each horizon of 92 days into a peak (Q4) or a dip (June-August)
of 2023 and 2024, only the history before it reaches dbt; the build forecasts at its
start, and the held-out rows judge. Printed per horizon, like with like on the same
customers: the total error and mean pinball loss of BTYD (BG/NBD + Gamma-Gamma, its own
quantiles), of this project's forecast without the seasonal level (the same version
scored with a factor of 1) and with it, and the with-season hit rates. With --seasons
none the same horizons show what the level does where there is no season; with
--population mixed, on customers BTYD cannot describe (retail, wholesale, one-off
projects). A measurement, not a test.

    .venv/bin/python benchmarks/seasons.py [--customers 20000] [--seasons strong]
        [--population btyd] [--history-start YYYY-MM-DD]
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from clv.features import base_quantiles, btyd_forecasts
from clv.generate import POPULATIONS, generate_transactions, write_transactions
from clv.metrics import backtest_metrics
from clv.scoring import ScoringModel, score_frame
from run_dbt import run_dbt

END = dt.date(2024, 12, 31)
HISTORY_DAYS = 3 * 365
HORIZON_DAYS = 92
HORIZONS = {
    "peak 2023": dt.date(2023, 9, 30),
    "dip 2023": dt.date(2023, 5, 31),
    "peak 2024": dt.date(2024, 9, 30),
    "dip 2024": dt.date(2024, 5, 31),
}
LEVELS = (0.1, 0.5, 0.9)


def judge(name: str, as_of: dt.date, rows: pd.DataFrame, folder: Path) -> dict:
    """Build on the history before as_of, forecast the 92 days after, and judge BTYD and the
    forecast with and without its seasonal level on the customers seen by as_of."""
    work = folder / name.replace(" ", "_")
    work.mkdir(parents=True, exist_ok=True)
    history = work / "history.csv"
    days = pd.to_datetime(rows["transaction_date"]).dt.date
    write_transactions(rows[days <= as_of], history)
    database = work / "warehouse.duckdb"
    database.unlink(missing_ok=True)  # a fresh warehouse: one model version, this one's
    variables = {
        "transactions_path": str(history),
        "as_of_date": as_of.isoformat(),
        "horizon_days": HORIZON_DAYS,
    }
    seconds = run_dbt(["run", "--select", "+customer_predictions"], variables, database, work)
    with duckdb.connect(str(database), read_only=True) as connection:
        model = ScoringModel.from_registry(
            connection.sql("select * from model_registry").df(),
            connection.sql("select * from btyd_fits").df(),
        )
        features = connection.sql("select * from int_customer_features_as_of_date").df()
        [(season,)] = connection.sql("select distinct season from model_registry").fetchall()
    end = as_of + dt.timedelta(days=HORIZON_DAYS)
    ahead = rows[(days > as_of) & (days <= end)]
    actual_by_customer = ahead.groupby("customer_id")["amount"].sum()
    window = np.full(len(features), float(HORIZON_DAYS))
    btyd = btyd_forecasts(model.btyd, features, window)
    forecasts = {
        "btyd": (
            btyd["btyd_expected_spend"].to_numpy(),
            base_quantiles(model.btyd, features, window, LEVELS),
        )
    }
    # The version as built, and without its level: what a build with seasonal_level off
    # forecasts.
    for label, scoring in (
        ("this project", model),
        ("without", model.without_season()),
    ):
        scored = score_frame(scoring, features, dt.datetime(2025, 1, 1))
        forecasts[label] = (
            scored["expected_spend"].to_numpy(),
            scored[scoring.quantile_columns].to_numpy(),
        )
    spend = features["customer_id"].map(actual_by_customer).fillna(0.0).to_numpy()
    result = {"seconds": seconds, "season": season, "factor": model.season.factor}
    for label, (expected, quantiles) in forecasts.items():
        metrics = backtest_metrics(spend, expected, dict(zip(LEVELS, quantiles.T, strict=True)))
        result[label] = {
            "total error": metrics["total_error_pct"] / 100,
            "pinball": metrics["mean_pinball_loss"],
            "hits": [
                (metrics[f"below_rate_{level}"], metrics[f"at_or_below_rate_{level}"])
                for level in ("p10", "p50", "p90")
            ],
        }
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--seasons", default="strong", choices=("strong", "mild", "none"))
    parser.add_argument("--population", default="btyd", choices=POPULATIONS)
    parser.add_argument("--folder", type=Path, default=Path("/tmp/clv-bench/seasons"))
    parser.add_argument(
        "--history-start",
        type=dt.date.fromisoformat,
        help="drop the rows before this date, as an export that starts there would",
    )
    args = parser.parse_args()
    generated = generate_transactions(
        args.customers,
        seed=7,
        end_date=END,
        history_days=HISTORY_DAYS,
        population=args.population,
        seasons=args.seasons,
    )
    rows = generated.transactions
    if args.history_start:
        rows = rows[pd.to_datetime(rows["transaction_date"]).dt.date >= args.history_start]
    start = pd.to_datetime(rows["transaction_date"]).min().date()
    print(
        f"{len(rows):,} rows, {args.customers:,} customers ({args.population}),"
        f" seasons {args.seasons}, {start} to {END}"
    )
    print(
        "| horizon | BTYD total | without season | with season |"
        " BTYD pinball | without | with | with: P(y<q)/P(y<=q) p10, p50, p90 | season learned |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name, as_of in HORIZONS.items():
        found = judge(name, as_of, rows, args.folder / args.population / args.seasons)
        btyd, plain, ours = found["btyd"], found["without"], found["this project"]
        hits = ", ".join(f"{below:.3f}/{at:.3f}" for below, at in ours["hits"])
        print(
            f"| {name} | {btyd['total error']:+.1%} | {plain['total error']:+.1%} |"
            f" {ours['total error']:+.1%} | {btyd['pinball']:.2f} | {plain['pinball']:.2f} |"
            f" {ours['pinball']:.2f} | {hits} | {found['season']} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
