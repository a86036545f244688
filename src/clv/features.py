"""From the SQL feature tables to a model matrix, with the BTYD forecast as a feature.

Every frame here is one row per customer and cutoff, with the columns of
macros/customer_features.sql. The BG/NBD + Gamma-Gamma model is fitted per cutoff on
that cutoff's own history only: a fit that saw later data would leak the future.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special, stats

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

# BTYD's purchase probability is kept this far from 0 and 1 under the logit and in ratios.
MIN_BASE_PROBABILITY = 1e-6


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


def _naive_rates(frame: pd.DataFrame, window_days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(expected purchase days in the window at the past rate, past spend per purchase day)."""
    days = np.maximum(frame["tenure_days"].to_numpy(dtype=float), 1.0)
    purchase_days = frame["purchase_days"].to_numpy(dtype=float)
    spend = np.maximum(frame["net_spend"].to_numpy(dtype=float), 0.0)
    per_day = np.divide(spend, purchase_days, out=np.zeros_like(spend), where=purchase_days > 0)
    return purchase_days / days * np.asarray(window_days, dtype=float), per_day


def naive_quantiles(
    frame: pd.DataFrame, window_days: np.ndarray, levels: tuple[float, ...]
) -> np.ndarray:
    """The naive rate's own distribution: Poisson purchase days at the past rate, each
    worth the past spend per purchase day. One column per level."""
    rate, per_day = _naive_rates(frame, window_days)
    counts = stats.poisson.ppf(np.asarray(levels, dtype=float)[None, :], rate[:, None])
    return counts * per_day[:, None]


def base_quantiles(
    model: BtydModel | None,
    frame: pd.DataFrame,
    window_days: np.ndarray,
    levels: tuple[float, ...],
) -> np.ndarray:
    """Quantiles of spend from the base's own predictive distribution: BTYD's, or the
    naive rate's where there is no fit. One column per level."""
    if model is None:
        return naive_quantiles(frame, window_days, levels)
    s = btyd_summaries(frame)
    return model.spend_quantiles(
        s.frequency, s.recency, s.age, s.monetary_value, window_days, levels
    )


def spend_given_purchase(
    model: BtydModel | None, frame: pd.DataFrame, window_days: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(mean, variance) of spend in the window given a purchase, under the base's own
    distribution (the naive one: a Poisson count given at least one, each purchase day
    worth the past spend per purchase day)."""
    if model is not None:
        s = btyd_summaries(frame)
        return model.spend_given_purchase(
            s.frequency, s.recency, s.age, s.monetary_value, window_days
        )
    rate, per_day = _naive_rates(frame, window_days)
    buys = -np.expm1(-rate)
    with np.errstate(divide="ignore", invalid="ignore"):
        # A zero-truncated Poisson; one purchase, as a limit, at a zero rate.
        first = np.where(buys > 0, rate / buys, 1.0)
        second = np.where(buys > 0, (rate + rate**2) / buys, 1.0)
    return per_day * first, per_day**2 * np.maximum(second - first**2, 0.0)


def buyer_spend_base(forecasts: pd.DataFrame) -> np.ndarray:
    """BTYD's expected spend given a purchase in the window: its spend over its P(purchase).

    Where both vanish (a customer BTYD thinks is gone) the ratio tends to the expected
    spend per purchase, used there instead.
    """
    spend = forecasts["btyd_expected_spend"].to_numpy(dtype=float)
    purchases = forecasts["btyd_expected_purchases"].to_numpy(dtype=float)
    prob = forecasts["btyd_prob_purchase"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_purchase = np.where(purchases > 0, spend / purchases, 0.0)
        return np.where(prob > MIN_BASE_PROBABILITY, spend / prob, per_purchase)


def purchase_log_odds_base(forecasts: pd.DataFrame) -> np.ndarray:
    """The purchase-probability booster's base: BTYD's P(purchase) as log-odds."""
    prob = forecasts["btyd_prob_purchase"].to_numpy(dtype=float)
    prob = np.clip(prob, MIN_BASE_PROBABILITY, 1.0 - MIN_BASE_PROBABILITY)
    return np.log(prob) - np.log1p(-prob)


def purchase_probability(forecasts: pd.DataFrame, raw_score: np.ndarray) -> np.ndarray:
    """P(purchase) from the booster's raw score, read on BTYD's log-odds (its init score)."""
    return special.expit(purchase_log_odds_base(forecasts) + raw_score)


def model_matrix(frame: pd.DataFrame, btyd: pd.DataFrame, window_days: np.ndarray) -> pd.DataFrame:
    """The boosters' input: SQL features, BTYD forecasts and the window length, as float32."""
    require_columns(frame, SQL_FEATURES, "the feature frame")
    matrix = frame.loc[:, list(SQL_FEATURES)].astype("float32")
    for column in BTYD_FEATURES:
        matrix[column] = btyd[column].to_numpy(dtype="float32")
    matrix[WINDOW_FEATURE] = np.asarray(window_days, dtype="float32")
    return matrix
