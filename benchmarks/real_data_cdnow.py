"""Benchmark on real held-out data: CDNOW, a single-cohort CD retailer.

CDNOW_master (Fader, Hardie & Lee 2005): every purchase of the 23,570 customers whose
first purchase was in Q1 1997, through June 1998. It ships inside the `lifetimes` wheel
on PyPI, so it is fetched with `pip download` (registries are reachable; nothing is
committed or installed). First, as a check of the baseline, the project's BG/NBD and
Gamma-Gamma fits on the paper's 2,357-customer sample are printed beside the published
parameters. The classic split: 39 weeks of history (to 1997-09-30), then
the next 39 weeks held out, i.e. 9 months of history and a 9-month horizon; --as-of
and --horizon-days measure another split of the same file.

Only the history rows reach dbt, in the file's own column names and date format (the
column-mapping vars do the rest); the held-out rows are read here, after the build.
Prints, for the project's forecasts, the BG/NBD + Gamma-Gamma baseline (as the project
fits it, and unpenalised as lifetimes does by default) and the naive baseline, each
with quantiles from its own predictive distribution: docs/model.md's table (MAE of the
median, mean pinball loss, RMSE and normalized Gini of the expected spend, total
error, Brier score of the purchase probability), a line per quantile level with both
hit rates, where p90 is won and lost against BTYD (customers grouped by the project's
P(purchase)), then every metric. A measurement, not a test.

    .venv/bin/python benchmarks/real_data_cdnow.py [--folder /tmp/clv-bench/cdnow]
        [--as-of 1997-12-31 --horizon-days 181]   # another split: 52 weeks, then 26
"""

from __future__ import annotations

import argparse
import datetime as dt
import subprocess
import sys
import zipfile
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from clv.backtest import baseline_forecasts
from clv.btyd import bgnbd_expected_purchases, fit_bgnbd, fit_btyd, fit_gamma_gamma
from clv.btyd_fits import model_from_row
from clv.features import (
    base_quantiles,
    btyd_forecasts,
    btyd_summaries,
    naive_forecasts,
    naive_quantiles,
)
from clv.metrics import backtest_metrics, pinball_loss
from clv.training import quantile_column
from run_dbt import run_dbt

WHEEL = "lifetimes==0.11.3"
DATASETS = "lifetimes/datasets/"
MASTER = "CDNOW_master.txt"
# The 2,357-customer sample's summaries (x, t_x, T in weeks, mean repeat value zbar):
# the data of the published fits below.
SUMMARY = "cdnow_customers_summary_with_transactions.csv"
# That sample's transactions: master id, sample id, date, CDs, dollars.
SAMPLE = "CDNOW_sample.txt"
# BG/NBD r, alpha, a, b: Fader, Hardie & Lee (2005), "Counting your customers the easy
# way"; Gamma-Gamma p, q, v: Fader & Hardie (2013), "The Gamma-Gamma model of monetary
# value". Both fitted on this sample.
PUBLISHED_BGNBD = (0.243, 4.414, 0.793, 2.426)
PUBLISHED_GAMMA_GAMMA = (6.25, 3.74, 15.44)
# The classic 39-week split: 1997-10-01 .. 1998-06-30 held out.
AS_OF = dt.date(1997, 9, 30)
HORIZON_DAYS = 273
QUANTILES = (0.1, 0.5, 0.9)  # the project default


def fetch_datasets(folder: Path) -> None:
    """CDNOW_master.txt and the sample's summaries from the lifetimes wheel, fetched once."""
    if all((folder / name).exists() for name in (MASTER, SUMMARY, SAMPLE)):
        return
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            WHEEL,
            "--no-deps",
            "--only-binary",
            ":all:",
            "-d",
            str(folder),
        ],
        check=True,
        capture_output=True,
    )
    wheel = next(folder.glob("[Ll]ifetimes-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        for name in (MASTER, SUMMARY, SAMPLE):
            (folder / name).write_bytes(archive.read(DATASETS + name))


def check_published_fit(folder: Path) -> None:
    """Our BG/NBD and Gamma-Gamma fits against the published ones on the same data."""
    summary = pd.read_csv(folder / SUMMARY)
    bgnbd = fit_bgnbd(summary["x"], summary["t_x"], summary["T"])
    ours = (bgnbd.r, bgnbd.alpha, bgnbd.a, bgnbd.b)
    print("BG/NBD on the 2,357-customer sample, r alpha a b:")
    print(f"  clv.btyd {', '.join(f'{v:.3f}' for v in ours)}; published {PUBLISHED_BGNBD}")
    # That fit's forecast of the 39 holdout weeks against what happened: how far
    # BG/NBD itself misses this data's total (x counts distinct purchase days).
    rows = pd.read_csv(
        folder / SAMPLE,
        sep=r"\s+",
        header=None,
        names=["master_id", "id", "date", "cds", "value"],
        dtype={"date": str},
    )
    day = pd.to_datetime(rows["date"], format="%Y%m%d").dt.date
    actual = rows[day > AS_OF].assign(day=day).drop_duplicates(["id", "day"]).shape[0]
    forecast = bgnbd_expected_purchases(bgnbd, summary["x"], summary["t_x"], summary["T"], 39.0)
    print(
        f"  its 39-week holdout forecast: {forecast.sum():,.0f} repeat purchase days, "
        f"actual {actual:,} ({100 * (forecast.sum() / actual - 1):+.1f}%)"
    )
    gamma_gamma = fit_gamma_gamma(summary["x"], summary["zbar"])
    ours = (gamma_gamma.p, gamma_gamma.q, gamma_gamma.v)
    print("Gamma-Gamma, p q v:")
    print(f"  clv.btyd {', '.join(f'{v:.2f}' for v in ours)}; published {PUBLISHED_GAMMA_GAMMA}")


def read_master(path: Path) -> pd.DataFrame:
    """Whitespace-aligned columns; ids keep their leading zeros, dates stay YYYYMMDD text."""
    return pd.read_csv(
        path,
        sep=r"\s+",
        skiprows=1,
        names=["customer_id", "date", "number_of_cds", "dollar_value"],
        dtype=str,
    )


def build(history_csv: Path, folder: Path, as_of: dt.date, horizon_days: int) -> float:
    """`dbt build` of the full selector on the history file; returns the wall time."""
    variables = {
        "transactions_path": str(history_csv),
        "transaction_date_column": "date",
        "transaction_date_format": "%Y%m%d",
        "amount_column": "dollar_value",
        "quantity_column": "number_of_cds",
        # CDNOW has no order id and customers did place identical orders on one day.
        "reject_exact_duplicate_rows": False,
        "as_of_date": as_of.isoformat(),
        "horizon_days": horizon_days,
    }
    return run_dbt(["build", "--selector", "full"], variables, folder / "warehouse.duckdb", folder)


def print_summary(table: pd.DataFrame) -> None:
    """docs/model.md's table, then each quantile's two hit rates per model."""
    print(
        "\n| model | MAE of p50 | mean pinball | RMSE of expected | Gini of expected"
        " | total error | Brier of P(purchase) |"
    )
    print("|---|---|---|---|---|---|---|")
    for name in ("lightgbm", "btyd", "naive"):
        m = table[name]
        print(
            f"| {name} | {m['mae_p50']:.2f} | {m['mean_pinball_loss']:.2f}"
            f" | {m['rmse_expected_spend']:.2f} | {m['normalized_gini']:.3f}"
            f" | {m['total_error_pct']:+.1f}% | {m['brier_prob_purchase']:.4f} |"
        )
    print()
    for level in QUANTILES:
        suffix = quantile_column(level)[len("spend_") :]
        rates = ", ".join(
            f"{name} {table[name][f'below_rate_{suffix}']:.3f} / "
            f"{table[name][f'at_or_below_rate_{suffix}']:.3f}"
            for name in ("lightgbm", "btyd", "naive")
        )
        print(f"{suffix}: P(y < q) / P(y <= q), calibrated when {level} lies between: {rates}")
    print()


PURCHASE_PROBABILITY_GROUPS = (0.0, 0.1, 0.2, 0.3, 0.5, 0.8, 1.0)


def print_p90_by_purchase_probability(ours: pd.DataFrame, btyd: pd.DataFrame) -> None:
    """docs/model.md's table of where p90 is won and lost: the customers grouped by the
    project's P(purchase), each group's P(purchase) (both models' and the share that
    bought), P(y <= p90), and its share of the mean p90 pinball loss, beside BTYD's."""
    both = ours.merge(btyd, on="customer_id", suffixes=("", "_btyd"), validate="one_to_one")
    bounds = PURCHASE_PROBABILITY_GROUPS
    groups = pd.cut(both["prob_purchase"], bounds, labels=False, include_lowest=True).astype(int)
    print(
        "| P(purchase) | customers | P(purchase): this project / BTYD / bought"
        " | P(y <= p90): this project / BTYD | p90 pinball: this project / BTYD |"
    )
    print("|---|---|---|---|---|")
    for group, rows in both.groupby(groups, observed=True):
        actual = rows["actual_spend"].to_numpy()
        share = len(rows) / len(both)
        ours_loss, btyd_loss = (
            pinball_loss(actual, rows[column].to_numpy(), 0.9) * share
            for column in ("spend_p90", "spend_p90_btyd")
        )
        print(
            f"| {bounds[group]:.1f}-{bounds[group + 1]:.1f} | {len(rows):,}"
            f" | {rows['prob_purchase'].mean():.3f} / {rows['prob_purchase_btyd'].mean():.3f}"
            f" / {(actual > 0).mean():.3f}"
            f" | {(actual <= rows['spend_p90']).mean():.3f}"
            f" / {(actual <= rows['spend_p90_btyd']).mean():.3f}"
            f" | {ours_loss:.3f} / {btyd_loss:.3f} |"
        )
    print()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=Path("/tmp/clv-bench/cdnow"))
    parser.add_argument(
        "--no-build", action="store_true", help="evaluate the warehouse already in --folder"
    )
    parser.add_argument(
        "--as-of",
        type=dt.date.fromisoformat,
        default=AS_OF,
        help="last day of history (default: the classic split's 1997-09-30)",
    )
    parser.add_argument(
        "--horizon-days",
        type=int,
        default=HORIZON_DAYS,
        help="days held out after it (default 273; the data end on 1998-06-30)",
    )
    args = parser.parse_args()
    folder: Path = args.folder
    as_of: dt.date = args.as_of

    fetch_datasets(folder)
    check_published_fit(folder)
    rows = read_master(folder / MASTER)
    day = pd.to_datetime(rows["date"], format="%Y%m%d").dt.date
    history = rows[day <= as_of]
    end = as_of + dt.timedelta(days=args.horizon_days)
    held_out = rows[(day > as_of) & (day <= end)]
    history_csv = folder / "cdnow_history.csv"
    history.to_csv(history_csv, index=False)
    print(f"CDNOW_master: {len(rows):,} rows, {rows['customer_id'].nunique():,} customers")
    print(f"history to {as_of}: {len(history):,} rows; held out to {end}: {len(held_out):,} rows")

    if not args.no_build:
        seconds = build(history_csv, folder, as_of, args.horizon_days)
        print(f"dbt build --selector full: {seconds:.1f} s")

    with duckdb.connect(str(folder / "warehouse.duckdb"), read_only=True) as connection:
        predictions = connection.sql("select * from customer_predictions").df()
        features = connection.sql("select * from int_customer_features_as_of_date").df()
        [(method, parameters)] = connection.sql(
            "select method, parameters from btyd_fits where purpose = 'scoring'"
            " order by fitted_at desc limit 1"
        ).fetchall()

    actual = (
        held_out.assign(amount=held_out["dollar_value"].astype(float))
        .groupby("customer_id")["amount"]
        .sum()
    )
    predictions["actual_spend"] = predictions["customer_id"].map(actual).fillna(0.0)
    predictions["model"] = "lightgbm"

    window = np.full(len(features), float(args.horizon_days))
    frames = [predictions]
    summaries = btyd_summaries(features)
    unpenalised = fit_btyd(
        summaries.frequency, summaries.recency, summaries.age, summaries.monetary_value
    )
    fitted = model_from_row(method, parameters)
    baselines = {
        # The project's baseline and base, with its small L2 penalty on r, a, b.
        "btyd": (
            btyd_forecasts(fitted, features, window),
            base_quantiles(fitted, features, window, QUANTILES),
        ),
        # lifetimes' defaults: no penalty.
        "btyd_no_penalty": (
            btyd_forecasts(unpenalised, features, window),
            base_quantiles(unpenalised, features, window, QUANTILES),
        ),
        "naive": (
            naive_forecasts(features, window),
            naive_quantiles(features, window, QUANTILES),
        ),
    }
    for name, (base, quantiles) in baselines.items():
        frame = pd.DataFrame(
            {
                "model": name,
                "customer_id": features["customer_id"].to_numpy(),
                **baseline_forecasts(base, quantiles, QUANTILES),
            }
        )
        frame["actual_spend"] = frame["customer_id"].map(actual).fillna(0.0)
        frames.append(frame)

    table = pd.DataFrame(
        {
            frame["model"].iloc[0]: backtest_metrics(
                actual=frame["actual_spend"],
                expected=frame["expected_spend"],
                quantiles={level: frame[quantile_column(level)] for level in QUANTILES},
                prob_purchase=frame["prob_purchase"],
            )
            for frame in frames
        }
    )
    print_summary(table)
    by_model = {frame["model"].iloc[0]: frame for frame in frames}
    print_p90_by_purchase_probability(by_model["lightgbm"], by_model["btyd"])
    shown = [
        "customers",
        "buyers",
        "mae_p50",
        "mean_pinball_loss",
        "mae_expected_spend",
        "rmse_expected_spend",
        "normalized_gini",
        "spearman",
        "top_decile_capture",
        "auc_prob_purchase",
        "brier_prob_purchase",
        "total_forecast",
        "total_actual",
        "total_error_pct",
    ]
    for level in QUANTILES:
        suffix = quantile_column(level)[len("spend_") :]
        shown += [f"pinball_loss_{suffix}", f"below_rate_{suffix}", f"at_or_below_rate_{suffix}"]
    shown.append("interval_coverage")
    with pd.option_context("display.width", 120, "display.float_format", "{:,.4f}".format):
        print(table.loc[shown].to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
