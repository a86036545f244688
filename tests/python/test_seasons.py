"""The seasonal level: a forecast into a peak or a dip learns from the same window in
earlier years; nothing is learned from too short a history, or where there is no season."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace

import duckdb
import numpy as np
import pandas as pd
import pytest
from conftest import dbt_runner

from clv.generate import generate_transactions, write_transactions
from clv.metrics import backtest_metrics
from clv.scoring import ScoringModel, score_frame
from clv.season import Season, seasonal_level
from clv.training import quantile_column

END = dt.date(2024, 12, 31)
HORIZON_DAYS = 92


def seasonal_file(
    folder, seasons: str = "strong", history_days: int = 3 * 365, population: str = "btyd"
):
    path = folder / f"{population}_{seasons}_{history_days}.csv"
    generated = generate_transactions(
        4000,
        seed=17,
        end_date=END,
        history_days=history_days,
        seasons=seasons,
        population=population,
    )
    write_transactions(generated.transactions, path)
    return path


def forecast(folder, path, as_of: dt.date, *command: str, **variables):
    """dbt COMMAND on the file at path, forecasting HORIZON_DAYS from as_of; it must pass."""
    result = dbt_runner(folder)(
        *command,
        variables={
            "transactions_path": str(path),
            "as_of_date": as_of.isoformat(),
            "horizon_days": HORIZON_DAYS,
            "num_threads": 2,
            **variables,
        },
    )
    assert result.returncode == 0, result.output
    return result


@pytest.fixture(scope="module")
def peak_build(tmp_path_factory):
    """Three years of strong seasons; the forecast at the year's end, its backtest 92 days
    before it, into the October-December peak."""
    folder = tmp_path_factory.mktemp("seasons")
    return forecast(folder, seasonal_file(folder), END, "build")


def by_model(result) -> dict[str, dict]:
    names = [column[0] for column in result.query("describe rpt_backtest_metrics")]
    return {
        row[0]: dict(zip(names, row, strict=True))
        for row in result.query("select * from rpt_backtest_metrics")
    }


def test_a_forecast_into_the_peak_learns_it_from_earlier_years(peak_build) -> None:
    metrics = by_model(peak_build)
    assert set(metrics) == {"lightgbm", "lightgbm_without_season", "btyd", "naive"}
    ours, plain, btyd = (metrics[name] for name in ("lightgbm", "lightgbm_without_season", "btyd"))
    # BTYD sees no calendar: its total for the peak runs low by about the season's size.
    assert btyd["total_error_pct"] < -30 and plain["total_error_pct"] < -30
    assert abs(ours["total_error_pct"]) < 12
    assert ours["mean_pinball_loss"] < 0.9 * plain["mean_pinball_loss"]
    for level in ("p10", "p50", "p90"):
        tau = float(level[1:]) / 100
        assert ours[f"below_rate_{level}"] <= tau + 0.05, level
        assert ours[f"at_or_below_rate_{level}"] >= tau - 0.05, level
    # Only the level differs: the same boosters rank the customers alike.
    assert ours["normalized_gini"] == pytest.approx(plain["normalized_gini"], abs=1e-9)


def test_the_season_is_registered_and_reported_with_the_years_it_rests_on(peak_build) -> None:
    [(factor, ratios, season)] = peak_build.query(
        "select distinct seasonal_factor, seasonal_ratios, season from model_registry"
    )
    ratios = json.loads(ratios)
    # The production forecast looks into January-March, after a peak its history holds.
    assert list(ratios) == ["2022-12-31", "2023-12-31"]
    assert season.startswith(f"x{factor:.2f} on BTYD's level") or season.startswith(
        "no season applied"
    )
    [(summary_factor, summary_ratios)] = peak_build.query(
        "select seasonal_factor, seasonal_ratios from rpt_prediction_summary"
    )
    assert summary_factor == factor and json.loads(summary_ratios) == ratios
    purposes = dict(
        peak_build.query("select purpose, count(*) from int_training_cutoffs group by purpose")
    )
    assert purposes["production_season"] == 2 and purposes["backtest_season"] == 2


def test_customers_whose_seasons_differ_get_a_level_per_third_of_their_spend(
    tmp_path,
) -> None:
    """Generated retail buyers crowd into the peak, wholesale buyers restock on their own
    cycle: one level for all forecast the peak worse than no level at all."""
    path = seasonal_file(tmp_path, population="mixed")
    as_of = dt.date(2024, 9, 30)
    result = forecast(tmp_path, path, as_of, "run", "--select", "+customer_predictions")
    database = duckdb.connect(str(result.database), read_only=True)
    model = ScoringModel.from_registry(
        database.sql("select * from model_registry").df(),
        database.sql("select * from btyd_fits").df(),
    )
    features = database.sql("select * from int_customer_features_as_of_date").df()
    [(bands, season)] = result.query("select distinct seasonal_bands, season from model_registry")
    thirds = json.loads(bands)
    edges, levels = thirds["order_value_edges"], thirds["factors"]
    assert list(model.season.band_factors) == levels and len(edges) == 2 and edges[0] < edges[1]
    # The smallest orders, the retail buyers', carry the season.
    assert levels[0] > 1.2 * max(levels[1:]), levels
    assert "thirds of past spend by mean order value" in season, season

    rows = pd.read_csv(path, dtype={"customer_id": str})
    days = pd.to_datetime(rows["transaction_date"]).dt.date
    ahead = rows[(days > as_of) & (days <= as_of + dt.timedelta(days=HORIZON_DAYS))]
    actual = features["customer_id"].map(ahead.groupby("customer_id")["amount"].sum())
    judged = {}
    for name, scoring in (
        ("thirds", model),
        ("one level", replace(model, season=Season(factor=model.season.factor))),
        ("none", model.without_season()),
    ):
        scored = score_frame(scoring, features, dt.datetime(2025, 1, 1))
        quantiles = {tau: scored[quantile_column(tau)] for tau in (0.1, 0.5, 0.9)}
        judged[name] = backtest_metrics(actual.fillna(0.0), scored["expected_spend"], quantiles)
    loss = {name: metrics["mean_pinball_loss"] for name, metrics in judged.items()}
    assert loss["thirds"] < 0.9 * loss["one level"] and loss["thirds"] < loss["none"], loss
    # The thirds share the total; its size is the level's.
    assert judged["thirds"]["total_forecast"] == pytest.approx(
        judged["one level"]["total_forecast"], rel=1e-9
    )


def season_windows(
    trade_buyers: int, trade_lift: dict[int, float], lifted: tuple[int, ...] = (2022, 2023)
) -> pd.DataFrame:
    """Labelled examples of two earlier windows (2022, 2023) and their years: 900 retail
    customers who spend as forecast, trade buyers (orders a hundred times larger) who
    spend trade_lift[i] times their forecast in the windows of the years lifted, as
    forecast over the year. The base is the naive rate (no BTYD fit), so the forecast
    is known."""
    customers = pd.DataFrame(
        {
            "order_value_mean": np.r_[
                np.linspace(5, 15, 900), np.linspace(800, 1200, trade_buyers)
            ],
            "net_spend": np.r_[np.full(900, 100.0), np.full(trade_buyers, 90_000 / trade_buyers)],
            "tenure_days": 365,
            "purchase_days": 10,
        }
    )
    frames = []
    for year in (2022, 2023):
        for purpose, days in (("production_season", 92), ("production_season_year", 365)):
            frame = customers.assign(
                purpose=purpose, cutoff_date=pd.Timestamp(year, 9, 30), label_window_days=days
            )
            lift = np.ones(len(frame))
            if purpose == "production_season" and year in lifted:
                for index, factor in trade_lift.items():
                    lift[900 + index] = factor
            frame["label_net_spend"] = frame["net_spend"] / 365 * days * lift
            frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def test_a_third_of_a_few_trade_buyers_is_not_read_from_one_large_order() -> None:
    fits = {dt.date(2022, 9, 30): None, dt.date(2023, 9, 30): None}
    # Nine trade buyers hold half the spend; one of them orders fifteen times its usual
    # in the window of 2022: over the years the thirds depart x0.75, x0.75 and x1.30, on
    # one order (read as a season without the standard errors).
    noisy = seasonal_level(
        season_windows(9, {8: 15.0}, lifted=(2022,)), fits, HORIZON_DAYS, usual_ratios=[]
    )
    assert noisy.band_factors == () and noisy.bands_json == "{}", noisy.description
    # Three hundred trade buyers all spending half as much again in both windows: read.
    steady = seasonal_level(
        season_windows(300, dict.fromkeys(range(300), 1.5)), fits, HORIZON_DAYS, usual_ratios=[]
    )
    assert len(steady.band_factors) == 3, steady.description
    assert steady.band_factors[2] > 1.3 * steady.band_factors[0], steady.band_factors


def test_a_forecast_into_the_dip_learns_it_too(tmp_path) -> None:
    path = seasonal_file(tmp_path)
    result = forecast(tmp_path, path, dt.date(2024, 5, 31), "run", "--select", "+model_registry")
    [(factor, ratios)] = result.query(
        "select distinct seasonal_factor, seasonal_ratios from model_registry"
    )
    assert factor < 0.8 and sorted(json.loads(ratios)) == ["2022-05-31", "2023-05-31"]


@pytest.mark.parametrize(
    ("seasons", "history_days", "as_of", "variables", "sentence"),
    [
        # The same window a year earlier lies in the history, but with 60 days before it:
        # too few to fit BTYD on for a 92-day forecast.
        (
            "strong",
            365 + 60,
            END,
            {},
            "no season learned: the history does not cover a year plus the 92 days of the horizon",
        ),
        (
            "strong",
            3 * 365,
            dt.date(2024, 9, 30),
            {"seasonal_level": False},
            "no season: turned off",
        ),
        (
            "none",
            3 * 365,
            dt.date(2024, 9, 30),
            {},
            "no season applied: actual spend over BTYD's forecast in the same",
        ),
    ],
)
def test_no_season_is_applied_without_one_to_learn_and_the_sentence_says_why(
    tmp_path, seasons: str, history_days: int, as_of: dt.date, variables: dict, sentence: str
) -> None:
    path = seasonal_file(tmp_path, seasons, history_days)
    result = forecast(
        tmp_path, path, as_of, "run", "--select", "+rpt_prediction_summary", **variables
    )
    [(factor, season)] = result.query(
        "select distinct seasonal_factor, season from rpt_prediction_summary"
    )
    assert factor == 1.0 and season.startswith(sentence), season
    if variables.get("seasonal_level") is False:
        [(seasonal_cutoffs,)] = result.query(
            "select count(*) from int_training_cutoffs where purpose like '%season%'"
        )
        assert seasonal_cutoffs == 0
