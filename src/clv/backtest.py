"""Out-of-time backtest: train as production does on the history before
as_of_date - horizon, forecast at that date, and judge against what happened."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa

from clv.btyd_fits import models_by_cutoff
from clv.features import base_quantiles, btyd_forecasts, naive_forecasts, naive_quantiles
from clv.metrics import backtest_metrics
from clv.registry import registry_rows
from clv.scoring import ScoringModel, score_frame
from clv.training import NoReturningBuyers, TrainingConfig, quantile_column, train_for_anchor

MODELS = ("lightgbm", "btyd", "naive")
# The model's forecast without its seasonal level, kept when a season was learned.
WITHOUT_SEASON = "lightgbm_without_season"
STATUS_OK = "ok"
STATUS_SHORT_HISTORY = "insufficient_history"


def prediction_columns(quantiles: tuple[float, ...]) -> list[str]:
    return [
        "model",
        "model_version",
        "customer_id",
        "backtest_as_of_date",
        "horizon_days",
        "expected_spend",
        *[quantile_column(level) for level in quantiles],
        "prob_purchase",
        "actual_spend",
        "has_purchase",
    ]


def baseline_forecasts(
    base: pd.DataFrame, quantiles: np.ndarray, levels: tuple[float, ...]
) -> dict[str, np.ndarray]:
    """A baseline's forecast columns: its point forecasts (a BTYD_FEATURES frame, see
    btyd_forecasts) and the quantiles of its own predictive distribution, one column
    per level, so that its pinball loss and hit rates compare like with like."""
    return {
        "expected_spend": base["btyd_expected_spend"].to_numpy(),
        **{quantile_column(level): quantiles[:, i] for i, level in enumerate(levels)},
        "prob_purchase": base["btyd_prob_purchase"].to_numpy(),
    }


def backtest_predictions(
    examples: pd.DataFrame,
    config: TrainingConfig,
    scored_at: dt.datetime,
    btyd_fits: pd.DataFrame,
    model_version: str,
) -> pd.DataFrame:
    """One row per model and holdout customer: the forecasts at the backtest date and the actual.

    examples holds the `backtest*` rows of int_training_examples_labelled: the training
    examples, the `backtest_holdout` rows and, when there are, the calibration and season
    ones (see train_for_anchor); btyd_fits this build's rows of btyd_fits for them;
    model_version the registered version whose training this backtest repeats at the
    earlier date (every row names it). Empty when the history is too short for either.
    """
    train = examples[examples["purpose"] == "backtest"]
    holdout = examples[examples["purpose"] == "backtest_holdout"].reset_index(drop=True)
    columns = prediction_columns(config.quantiles)
    if train.empty or holdout.empty:
        return typed_predictions(pd.DataFrame(columns=columns))

    backtest_date = pd.Timestamp(holdout["cutoff_date"].iloc[0]).date()
    horizon = int(holdout["horizon_days"].iloc[0])
    try:
        result = train_for_anchor(
            "backtest", examples, config, models_by_cutoff(btyd_fits), what="backtest training"
        )
    except NoReturningBuyers:  # rpt_backtest_metrics says so
        return typed_predictions(pd.DataFrame(columns=columns))
    holdout_fit = btyd_fits[
        (btyd_fits["purpose"] == "backtest_holdout")
        & (pd.to_datetime(btyd_fits["cutoff_date"]).dt.date == backtest_date)
    ]["btyd_fit_id"]
    if holdout_fit.empty:
        raise ValueError(f"no BTYD fit for the backtest date {backtest_date} (see btyd_fits)")
    model = ScoringModel.from_registry(
        registry_rows(result, "backtest", scored_at, backtest_date, horizon, holdout_fit.iloc[0]),
        btyd_fits,
    )
    features = holdout.assign(as_of_date=holdout["cutoff_date"])
    window = np.full(len(features), float(horizon))
    levels = config.quantiles

    def forecasts_of(scoring: ScoringModel) -> dict[str, np.ndarray]:
        scored = score_frame(scoring, features, scored_at)
        columns = ["expected_spend", *scoring.quantile_columns, "prob_purchase"]
        return {column: scored[column].to_numpy() for column in columns}

    models = {"lightgbm": forecasts_of(model)}
    if result.season.applied:
        models[WITHOUT_SEASON] = forecasts_of(model.without_season())
    baselines = {
        "btyd": baseline_forecasts(
            btyd_forecasts(model.btyd, features, window),
            base_quantiles(model.btyd, features, window, levels),
            levels,
        ),
        "naive": baseline_forecasts(
            naive_forecasts(features, window), naive_quantiles(features, window, levels), levels
        ),
    }

    common = {
        "model_version": model_version,
        "customer_id": features["customer_id"].astype(str).to_numpy(),
        "backtest_as_of_date": backtest_date,
        "horizon_days": horizon,
        "actual_spend": features["label_net_spend"].to_numpy(dtype=float),
        "has_purchase": features["label_has_purchase"].to_numpy(dtype=bool),
    }

    def model_rows(name: str, forecasts: dict) -> pd.DataFrame:
        return pd.DataFrame({"model": name, **common, **forecasts})

    parts = [model_rows(name, forecasts) for name, forecasts in models.items()]
    for name, forecasts in baselines.items():
        parts.append(model_rows(name, forecasts))
    return typed_predictions(pd.concat(parts, ignore_index=True).reindex(columns=columns))


def typed_predictions(frame: pd.DataFrame) -> pd.DataFrame:
    """The same column types with or without a backtest: an empty column has no type of its own."""
    text = pd.ArrowDtype(pa.string())
    return frame.astype(
        {
            **dict.fromkeys(frame.columns, "float64"),
            "model": text,
            "model_version": text,
            "customer_id": text,
            "backtest_as_of_date": pd.ArrowDtype(pa.date32()),
            "horizon_days": "int32",
            "has_purchase": "bool",
        }
    )


def metrics_table(
    predictions: pd.DataFrame, quantiles: tuple[float, ...], short_history_reason: str
) -> pd.DataFrame:
    """One row per model: status, the backtest's date and horizon, and every metric.

    The columns are the same with or without a backtest, so reports can rely on them.
    """
    level_columns = {level: quantile_column(level) for level in quantiles}
    metric_names = list(
        backtest_metrics(
            actual=np.array([0.0, 1.0]),
            expected=np.array([0.0, 1.0]),
            quantiles={level: np.array([0.0, 1.0]) for level in quantiles},
            prob_purchase=np.array([0.0, 1.0]),
        )
    )
    columns = ["model", "status", "status_reason", "backtest_as_of_date", "horizon_days"]
    rows = []
    # A table comes back in no fixed order, and rank metrics (Gini, Spearman) break ties
    # by position: one order makes them the same on every run and engine.
    predictions = predictions.sort_values(["model", "customer_id"], kind="stable")
    seasonal = [WITHOUT_SEASON] if (predictions["model"] == WITHOUT_SEASON).any() else []
    for name in [*MODELS, *seasonal]:
        part = predictions[predictions["model"] == name]
        if part.empty:
            rows.append(
                {
                    "model": name,
                    "status": STATUS_SHORT_HISTORY,
                    "status_reason": short_history_reason,
                }
            )
            continue
        metrics = backtest_metrics(
            actual=part["actual_spend"].to_numpy(dtype=float),
            expected=part["expected_spend"].to_numpy(dtype=float),
            quantiles={
                level: part[column].to_numpy(dtype=float) for level, column in level_columns.items()
            },
            prob_purchase=part["prob_purchase"].to_numpy(dtype=float),
            purchased=part["has_purchase"].to_numpy(dtype=bool),
        )
        rows.append(
            {
                "model": name,
                "status": STATUS_OK,
                "status_reason": None,
                "backtest_as_of_date": part["backtest_as_of_date"].iloc[0],
                "horizon_days": int(part["horizon_days"].iloc[0]),
                **metrics,
            }
        )
    table = pd.DataFrame(rows).reindex(columns=[*columns, *metric_names])
    # The same column types whether or not there was a backtest (a column of nulls
    # would otherwise reach the warehouse untyped): rpt_backtest_metrics is public.
    whole = ["horizon_days", "customers", "buyers"]
    whole += [name for name in metric_names if name.startswith("is_calibrated_")]
    fractional = [name for name in metric_names if name not in whole]
    table["backtest_as_of_date"] = pd.to_datetime(table["backtest_as_of_date"])
    return table.astype(
        {
            "status_reason": "string",
            "backtest_as_of_date": pd.ArrowDtype(pa.date32()),
            **dict.fromkeys(whole, "Int64"),
            **dict.fromkeys(fractional, "Float64"),
        }
    )
