"""From the SQL feature tables to a model matrix, with the BTYD forecast as a feature.

Every frame here is one row per customer and cutoff, with the columns of
macros/customer_features.sql. The BG/NBD + Gamma-Gamma model is fitted per cutoff on
that cutoff's own history only: a fit that saw later data would leak the future.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from clv.btyd import BtydModel

# Features computed in SQL that the boosters read. Dates are left out: recency and
# tenure carry them relative to the cutoff, which is what transfers across cutoffs.
SQL_FEATURES = (
    "tenure_days",
    "recency_days",
    "purchase_days",
    "order_count",
    "net_spend",
    "order_value_mean",
    "order_value_std",
    "order_value_max",
    "repeat_purchase_day_value_mean",
    "purchase_gap_mean_days",
    "purchase_gap_std_days",
    "net_spend_last_30d",
    "purchase_days_last_30d",
    "net_spend_last_90d",
    "purchase_days_last_90d",
    "net_spend_last_180d",
    "purchase_days_last_180d",
    "net_spend_last_365d",
    "purchase_days_last_365d",
    "refund_count",
    "refund_amount",
    "quantity",
)
BTYD_FEATURES = (
    "btyd_expected_spend",
    "btyd_expected_purchases",
    "btyd_prob_alive",
    "btyd_prob_purchase",
)
# The length of the window being forecast: the label window in training, the horizon
# when scoring. Recent training cutoffs have shorter windows; the booster sees that.
WINDOW_FEATURE = "window_days"
MODEL_FEATURES = (*SQL_FEATURES, *BTYD_FEATURES, WINDOW_FEATURE)

# A floor for the BTYD forecast under the log link: a customer BTYD thinks is gone still
# gets a finite base the booster can correct.
MIN_BASE_SPEND = 0.01


@dataclass(frozen=True)
class BtydSummaries:
    """Per-customer BG/NBD inputs in days: x, t_x, T and the mean repeat purchase value."""

    frequency: np.ndarray
    recency: np.ndarray
    age: np.ndarray
    monetary_value: np.ndarray


def require_columns(frame: pd.DataFrame, columns: tuple[str, ...] | list[str], what: str) -> None:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise ValueError(f"{what} lacks the column(s) {', '.join(missing)}")


def btyd_summaries(frame: pd.DataFrame) -> BtydSummaries:
    """x = purchase days - 1, t_x = first to last purchase day, T = first purchase to cutoff.

    A customer with refunds only (no purchase on record) counts as x = 0 first seen at
    the first transaction: the model then gives the population's new-customer forecast.
    """
    require_columns(
        frame,
        ("purchase_days", "tenure_days", "recency_days", "repeat_purchase_day_value_mean"),
        "the feature frame",
    )
    purchase_days = frame["purchase_days"].to_numpy(dtype=float)
    tenure = frame["tenure_days"].to_numpy(dtype=float)
    recency = frame["recency_days"].to_numpy(dtype=float, na_value=np.nan)
    frequency = np.maximum(purchase_days - 1, 0)
    # Age is measured from the first transaction; the first purchase comes later only
    # after a refund-only start, rare enough to ignore, and then t_x must still be 0
    # for a one-purchase customer.
    age = tenure
    last_purchase_age = np.where(frequency > 0, age - np.nan_to_num(recency), 0.0)
    return BtydSummaries(
        frequency=frequency,
        recency=np.clip(last_purchase_age, 0, age),
        age=age,
        monetary_value=frame["repeat_purchase_day_value_mean"].to_numpy(
            dtype=float, na_value=np.nan
        ),
    )


def naive_forecasts(frame: pd.DataFrame, window_days: np.ndarray) -> pd.DataFrame:
    """Past rate per day of tenure times the window: the base when BTYD cannot be fitted.

    Also the naive baseline of the backtest.
    """
    days = np.maximum(frame["tenure_days"].to_numpy(dtype=float), 1.0)
    purchases = frame["purchase_days"].to_numpy(dtype=float) / days * window_days
    spend = np.maximum(frame["net_spend"].to_numpy(dtype=float), 0.0) / days * window_days
    return pd.DataFrame(
        {
            "btyd_expected_spend": spend,
            "btyd_expected_purchases": purchases,
            "btyd_prob_alive": np.ones(len(frame)),
            "btyd_prob_purchase": 1.0 - np.exp(-purchases),
        },
        index=frame.index,
    )


def btyd_forecasts(
    model: BtydModel | None, frame: pd.DataFrame, window_days: np.ndarray
) -> pd.DataFrame:
    """The BTYD forecast over each row's window, as the four BTYD_FEATURES columns."""
    if model is None:
        return naive_forecasts(frame, window_days)
    s = btyd_summaries(frame)
    return pd.DataFrame(
        {
            "btyd_expected_spend": model.expected_spend(
                s.frequency, s.recency, s.age, s.monetary_value, window_days
            ),
            "btyd_expected_purchases": model.expected_purchases(
                s.frequency, s.recency, s.age, window_days
            ),
            "btyd_prob_alive": model.prob_alive(s.frequency, s.recency, s.age),
            "btyd_prob_purchase": model.prob_purchase(s.frequency, s.recency, s.age, window_days),
        },
        index=frame.index,
    )


def base_spend(forecasts: pd.DataFrame) -> np.ndarray:
    """The expected-spend booster's base: the BTYD forecast, floored for the log link."""
    return np.maximum(forecasts["btyd_expected_spend"].to_numpy(dtype=float), MIN_BASE_SPEND)


def quantile_spend(prediction: np.ndarray, base: np.ndarray) -> np.ndarray:
    """A quantile booster's prediction (a quantile of actual over BTYD) as spend: never negative."""
    return np.maximum(prediction, 0.0) * base


def model_matrix(frame: pd.DataFrame, btyd: pd.DataFrame, window_days: np.ndarray) -> pd.DataFrame:
    """The boosters' input: SQL features, BTYD forecasts and the window length, as float32."""
    require_columns(frame, SQL_FEATURES, "the feature frame")
    matrix = frame.loc[:, list(SQL_FEATURES)].astype("float32")
    for column in BTYD_FEATURES:
        matrix[column] = btyd[column].to_numpy(dtype="float32")
    matrix[WINDOW_FEATURE] = np.asarray(window_days, dtype="float32")
    return matrix
