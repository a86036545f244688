"""Out-of-time backtest metrics: per-customer forecasts of net spend against the actuals.

Every function is pure and works on 1-d arrays (anything ``np.asarray`` accepts: lists,
numpy arrays, pandas Series; indexes are ignored, rows are matched by position).

Definitions (n customers, actual y_i, forecast f_i):
- MAE = mean |y - f|, RMSE = sqrt(mean (y - f)^2).
- Pinball (quantile) loss at level tau for forecast q (Koenker & Bassett 1978):
  mean of max(tau * (y - q), (tau - 1) * (y - q)).
- Calibration of a quantile forecast q at level tau when the actuals have atoms (net spend
  is exactly 0 for most customers): q is a valid tau-quantile of the empirical
  distribution iff P(y < q) <= tau <= P(y <= q). So both rates are reported, and the
  forecast counts as calibrated when tau lies between them (p10 = 0 with 60% zeros and no
  refunds: 0 <= 0.1 <= 0.6, calibrated, though P(y <= q) alone would say 0.6).
- Interval coverage: share of y inside [q_lowest, q_highest], both ends inclusive, the
  lowest and highest quantile levels given.
- Spearman: ``scipy.stats.spearmanr`` of the expected forecast against the actuals.
- Normalized Gini, as used by Wang, Liu & Miao (2019), "A Deep Probabilistic Model for
  Customer Lifetime Value Prediction" (the Kaggle-style normalized Gini): order customers
  by forecast, highest first; Gini(y | f) = (1/n) sum_k L_k - (n + 1) / (2n), where L_k is
  the cumulative share of the total actual held by the first k customers; normalized Gini
  = Gini(y | f) / Gini(y | y). 1 = perfect ranking, 0 = no better than random, negative
  = worse than random.
- Top-decile capture: share of the total positive actual spend held by the ceil(n / 10)
  customers with the highest expected forecast.
- Mean pinball loss: the pinball losses averaged over the quantile levels.
- Brier score of the purchase probability: mean (P(purchase) - purchased)^2.
- ROC AUC: the Mann-Whitney U statistic of the positives' ranks, divided by
  n_pos * n_neg; tied scores get averaged ranks, so a constant score gives 0.5.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from clv.training import quantile_column

MetricValue = float | int | None


def _as_vector(values: ArrayLike, name: str) -> np.ndarray:
    """A 1-d float array with only finite values, or a ValueError naming the input."""
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be numeric: {error}") from error
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} is empty: no customers to evaluate")
    if np.isnan(array).any():
        raise ValueError(f"{name} contains NaN ({int(np.isnan(array).sum())} values)")
    # An infinite forecast would turn every mean into inf/NaN without saying why.
    if np.isinf(array).any():
        raise ValueError(f"{name} contains infinite values")
    return array


def _same_length(array: np.ndarray, name: str, n: int) -> None:
    if array.size != n:
        raise ValueError(f"{name} has {array.size} values but actual has {n}")


def _vector_like(values: ArrayLike, name: str, n: int) -> np.ndarray:
    array = _as_vector(values, name)
    _same_length(array, name, n)
    return array


def _without_float_noise(score: np.ndarray) -> np.ndarray:
    """Scores rounded to 40 significant bits (about 12 digits) for ranking.

    Two forecasts that differ only in their last bits (the same sums added in another
    order, on another engine) are a tie, so rank metrics do not depend on rounding noise.
    """
    mantissa, exponent = np.frexp(score)
    return np.ldexp(np.round(mantissa * 2.0**40) / 2.0**40, exponent)


def _descending_order(score: np.ndarray) -> np.ndarray:
    """Positions from highest score to lowest; ties keep input order (stable sort).

    Stable sorting makes every rank-based metric reproducible for a given input order,
    which matters for baselines that give many customers the same forecast.
    """
    return np.argsort(-_without_float_noise(score), kind="stable")


def pinball_loss(actual: np.ndarray, quantile: np.ndarray, level: float) -> float:
    """Mean pinball loss: mean of max(level * (y - q), (level - 1) * (y - q))."""
    diff = actual - quantile
    return float(np.mean(np.maximum(level * diff, (level - 1.0) * diff)))


def gini(actual: np.ndarray, score: np.ndarray) -> float:
    """Unnormalized Gini of ``actual`` ordered by ``score`` (highest first, ties stable).

    (1/n) * sum_k L_k - (n + 1) / (2n) with L_k the cumulative share of sum(actual) held
    by the first k customers (the Kaggle definition). NaN if sum(actual) is 0.
    """
    total = actual.sum()
    if total == 0:
        return float("nan")
    n = actual.size
    cumulative_share = np.cumsum(actual[_descending_order(score)]) / total
    return float(cumulative_share.sum() / n - (n + 1) / (2 * n))


def normalized_gini(actual: ArrayLike, forecast: ArrayLike) -> float | None:
    """Gini(actual | forecast) / Gini(actual | actual): 1 = perfect ranking, 0 = random.

    Negative actuals (refunds) are used as they are, not clipped: a forecast that ranks a
    refunding customer high is penalised. With negatives the Lorenz curve can leave
    [0, 1], but the ratio stays well defined. Writing the Gini as
    sum_i y_i * ((n + 1) / 2 - pos_i) / (n * sum(y)) shows that sum(y) cancels in the
    ratio, so the ratio is computed in that form: identical to the Kaggle formula
    whenever sum(y) != 0, and still defined when refunds make the total exactly 0. The
    denominator is > 0 unless all actuals are equal (rearrangement inequality); then the
    result is None. Ties in the forecast are broken by input order (stable sort).
    """
    y = _as_vector(actual, "actual")
    f = _vector_like(forecast, "forecast", y.size)
    n = y.size
    # centered[k] is the weight of the customer at position k (0-based, highest first).
    centered = (n + 1) / 2 - np.arange(1, n + 1)
    by_forecast = float(np.dot(y[_descending_order(f)], centered))
    # Ordering by actual: ties among equal actuals do not change the sum.
    by_actual = float(np.dot(y[_descending_order(y)], centered))
    if by_actual <= 0:
        return None
    return by_forecast / by_actual


def roc_auc(score: ArrayLike, positive: ArrayLike) -> float | None:
    """ROC AUC via Mann-Whitney U: (R_pos - n_pos (n_pos + 1) / 2) / (n_pos * n_neg).

    R_pos is the sum of the positives' ranks with ties averaged (``scipy.stats.rankdata``),
    so a tie between a positive and a negative counts one half. None if only one class.
    """
    s = _as_vector(score, "prob_purchase")
    labels = _as_labels(positive, "purchased", s.size)
    n_pos = int(labels.sum())
    n_neg = s.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = stats.rankdata(_without_float_noise(s))
    u = ranks[labels].sum() - n_pos * (n_pos + 1) / 2
    return float(u / (n_pos * n_neg))


def _as_labels(values: ArrayLike, name: str, n: int) -> np.ndarray:
    """A bool array; accepts bools or 0/1 numbers, rejects anything else."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    _same_length(array, name, n)
    if array.dtype == bool:
        return array
    numeric = _as_vector(array, name)
    if not np.isin(numeric, (0.0, 1.0)).all():
        raise ValueError(f"{name} must be boolean (or 0/1)")
    return numeric == 1.0


def top_decile_capture(actual: ArrayLike, forecast: ArrayLike) -> float | None:
    """Share of the total positive actual held by the top ceil(n/10) customers by forecast.

    Only positive spend counts, in numerator and denominator, so the share is in [0, 1]
    and refunds in the top group do not hide the buyers found there. None if nobody
    spent anything positive.
    """
    y = _as_vector(actual, "actual")
    f = _vector_like(forecast, "forecast", y.size)
    positive = np.clip(y, 0.0, None)
    total = positive.sum()
    if total == 0:
        return None
    # Integer ceiling: math.ceil(0.1 * 30) is 4 because 0.1 * 30 = 3.0000000000000004.
    k = -(-y.size // 10)
    return float(positive[_descending_order(f)[:k]].sum() / total)


def _spearman(forecast: np.ndarray, actual: np.ndarray) -> float | None:
    # spearmanr warns and returns NaN on a constant input; say None instead.
    if forecast.size < 2 or np.ptp(forecast) == 0 or np.ptp(actual) == 0:
        return None
    ranked = _without_float_noise(forecast), _without_float_noise(actual)
    return float(stats.spearmanr(*ranked).statistic)


def _rate(mask: np.ndarray) -> float | None:
    return float(mask.mean()) if mask.size else None


def backtest_metrics(
    actual: ArrayLike,
    expected: ArrayLike,
    quantiles: Mapping[float, ArrayLike] | None = None,
    prob_purchase: ArrayLike | None = None,
    purchased: ArrayLike | None = None,
) -> dict[str, MetricValue]:
    """Backtest metrics for one out-of-time window (definitions in the module docstring).

    actual: net spend per customer in the horizon (refunds may make it negative).
    expected: expected-spend forecast. quantiles: level in (0, 1) -> quantile forecast.
    prob_purchase: forecast probability of any purchase. purchased: did the customer buy
    (for the AUC); default actual > 0.

    Keys: customers, buyers, mae_expected_spend, rmse_expected_spend, for each quantile
    level with suffix c = quantile_column(level) without "spend_" (0.1 -> p10):
    pinball_loss_c, below_rate_c, at_or_below_rate_c, is_calibrated_c (1/0) and mae_p50
    for level 0.5; interval_coverage, interval_coverage_buyers (None with < 2 levels, the
    buyers' one also None without buyers), spearman, normalized_gini,
    top_decile_capture, total_forecast, total_actual, total_error_pct (None if
    total_actual is 0), mean_pinball_loss (None without levels), auc_prob_purchase (None
    without prob_purchase or with one class), brier_prob_purchase.
    A metric whose inputs are missing is None, so baselines share one schema.
    """
    y = _as_vector(actual, "actual")
    n = y.size
    f = _vector_like(expected, "expected", n)
    buyer = y > 0

    total_forecast = float(f.sum())
    total_actual = float(y.sum())
    metrics: dict[str, MetricValue] = {
        "customers": int(n),
        "buyers": int(buyer.sum()),
        "mae_expected_spend": float(np.mean(np.abs(y - f))),
        "rmse_expected_spend": float(np.sqrt(np.mean((y - f) ** 2))),
    }

    quantiles = dict(quantiles or {})
    levels = sorted(quantiles)
    forecasts: dict[float, np.ndarray] = {}
    for level in levels:
        if not 0 < level < 1:
            raise ValueError(f"quantile level must be in (0, 1), got {level}")
        q = _vector_like(quantiles[level], f"quantile {level}", n)
        forecasts[level] = q
        suffix = quantile_column(level)[len("spend_") :]
        below = float(np.mean(y < q))
        at_or_below = float(np.mean(y <= q))
        metrics[f"pinball_loss_{suffix}"] = pinball_loss(y, q, level)
        metrics[f"below_rate_{suffix}"] = below
        metrics[f"at_or_below_rate_{suffix}"] = at_or_below
        metrics[f"is_calibrated_{suffix}"] = int(below <= level <= at_or_below)
        if level == 0.5:
            metrics["mae_p50"] = float(np.mean(np.abs(y - q)))

    losses = [pinball_loss(y, forecasts[level], level) for level in levels]
    metrics["mean_pinball_loss"] = float(np.mean(losses)) if losses else None
    if len(levels) >= 2:
        # Crossed quantiles (low > high) give an empty interval: counted as a miss.
        inside = (y >= forecasts[levels[0]]) & (y <= forecasts[levels[-1]])
        metrics["interval_coverage"] = float(inside.mean())
        metrics["interval_coverage_buyers"] = _rate(inside[buyer])
    else:
        metrics["interval_coverage"] = None
        metrics["interval_coverage_buyers"] = None

    metrics["spearman"] = _spearman(f, y)
    metrics["normalized_gini"] = normalized_gini(y, f)
    metrics["top_decile_capture"] = top_decile_capture(y, f)
    metrics["total_forecast"] = total_forecast
    metrics["total_actual"] = total_actual
    metrics["total_error_pct"] = (
        100.0 * (total_forecast - total_actual) / total_actual if total_actual != 0 else None
    )

    if prob_purchase is None:
        if purchased is not None:
            _as_labels(purchased, "purchased", n)
        metrics["auc_prob_purchase"] = None
        metrics["brier_prob_purchase"] = None
    else:
        labels = buyer if purchased is None else _as_labels(purchased, "purchased", n)
        prob = _vector_like(prob_purchase, "prob_purchase", n)
        metrics["auc_prob_purchase"] = roc_auc(prob, labels)
        metrics["brier_prob_purchase"] = float(np.mean((prob - labels) ** 2))
    return metrics
