"""Tests for the backtest metrics (clv.metrics), on small cases worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from clv.metrics import (
    backtest_metrics,
    gini,
    normalized_gini,
    pinball_loss,
    roc_auc,
    top_decile_capture,
)

# Six non-buyers and four buyers: most customers spend exactly 0 in a horizon.
ZEROS_ACTUAL = np.array([0, 0, 0, 0, 0, 0, 5, 10, 20, 40], dtype=float)


def kaggle_normalized_gini(actual: np.ndarray, forecast: np.ndarray) -> float:
    """The Kaggle reference: Lorenz-curve Gini, ties broken by input order."""

    def raw(a: np.ndarray, p: np.ndarray) -> float:
        order = np.lexsort((np.arange(a.size), -p))
        share = np.cumsum(a[order]) / a.sum()
        return share.sum() / a.size - (a.size + 1) / (2 * a.size)

    return raw(actual, forecast) / raw(actual, actual)


def test_pinball_loss_on_three_values() -> None:
    # level 0.1, y - q = -2, 6, 0:
    # max(0.1*-2, -0.9*-2) = 1.8; max(0.1*6, -0.9*6) = 0.6; 0  -> mean 2.4 / 3 = 0.8
    y = np.array([0.0, 10.0, 5.0])
    q = np.array([2.0, 4.0, 5.0])
    assert pinball_loss(y, q, 0.1) == pytest.approx(0.8)
    # level 0.9: 0.2, 5.4, 0 -> 5.6 / 3
    assert pinball_loss(y, q, 0.9) == pytest.approx(5.6 / 3)
    metrics = backtest_metrics(y, q, quantiles={0.1: q})
    assert metrics["pinball_loss_p10"] == pytest.approx(0.8)


def test_auc_perfect_constant_and_known_value() -> None:
    labels = np.array([False, False, True, True])
    assert roc_auc([0.1, 0.2, 0.8, 0.9], labels) == 1.0
    assert roc_auc([0.9, 0.8, 0.2, 0.1], labels) == 0.0
    assert roc_auc([0.3, 0.3, 0.3, 0.3], labels) == 0.5
    # Pairs (pos, neg): (0.35, 0.1) win, (0.35, 0.4) loss, (0.8, 0.1) win, (0.8, 0.4) win
    # -> 3 of 4 = 0.75.
    assert roc_auc([0.1, 0.4, 0.35, 0.8], labels) == pytest.approx(0.75)
    # A positive tied with a negative counts one half: (0.4, 0.4) tie, (0.4, 0.1) win,
    # (0.8, *) two wins -> 3.5 / 4.
    assert roc_auc([0.1, 0.4, 0.4, 0.8], labels) == pytest.approx(0.875)
    # 0/1 labels are accepted; one class gives None.
    assert roc_auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)
    assert roc_auc([0.1, 0.4], [True, True]) is None


def test_auc_in_backtest_defaults_to_actual_positive() -> None:
    actual = [0.0, -3.0, 7.0, 2.0]  # the refund is not a purchase by default
    prob = [0.1, 0.4, 0.35, 0.8]
    assert backtest_metrics(actual, actual, prob_purchase=prob)["auc_prob_purchase"] == 0.75
    # An explicit purchased flag overrides actual > 0: now the refunder bought.
    explicit = backtest_metrics(
        actual, actual, prob_purchase=prob, purchased=[False, True, True, True]
    )
    # Positives 0.4, 0.35, 0.8 all beat the single negative 0.1.
    assert explicit["auc_prob_purchase"] == 1.0
    assert backtest_metrics(actual, actual)["auc_prob_purchase"] is None


def test_normalized_gini_worked_example() -> None:
    # y = [3, 0, 1, 0], total 4, n = 4; Gini = mean(cumulative share) - (n + 1) / (2n).
    # By actual: 3, 1, 0, 0 -> shares .75, 1, 1, 1 -> 3.75/4 - 5/8 = 0.3125.
    # Forecast [0.9, 0.5, 0.1, 0.2] orders y as 3, 0, 0, 1 -> shares .75, .75, .75, 1
    #   -> 3.25/4 - 5/8 = 0.1875; normalized 0.1875 / 0.3125 = 0.6.
    # Forecast [0.2, 0.9, 0.5, 0.1] orders y as 0, 1, 3, 0 -> shares 0, .25, 1, 1
    #   -> 2.25/4 - 5/8 = -0.0625; normalized -0.2 (worse than random).
    y = np.array([3.0, 0.0, 1.0, 0.0])
    assert gini(y, y) == pytest.approx(0.3125)
    assert normalized_gini(y, [0.9, 0.5, 0.1, 0.2]) == pytest.approx(0.6)
    assert normalized_gini(y, [0.2, 0.9, 0.5, 0.1]) == pytest.approx(-0.2)
    assert normalized_gini(y, y) == pytest.approx(1.0)
    # Any forecast with the same ordering as the actuals is a perfect ranking.
    assert normalized_gini(y, np.exp(y) + 100) == pytest.approx(1.0)
    for forecast in ([0.9, 0.5, 0.1, 0.2], [0.2, 0.9, 0.5, 0.1]):
        assert normalized_gini(y, forecast) == pytest.approx(
            kaggle_normalized_gini(y, np.array(forecast))
        )


def test_normalized_gini_ties_are_broken_by_input_order() -> None:
    # A constant forecast keeps the input order: y = 3, 0, 1, 0 -> shares .75, .75, 1, 1
    #   -> 3.5/4 - 5/8 = 0.25; normalized 0.25 / 0.3125 = 0.8. Reversed input: 0, 1, 0, 3
    #   -> shares 0, .25, .25, 1 -> 1.5/4 - 5/8 = -0.25 -> -0.8.
    y = np.array([3.0, 0.0, 1.0, 0.0])
    flat = np.zeros(4)
    assert normalized_gini(y, flat) == pytest.approx(0.8)
    assert normalized_gini(y[::-1], flat) == pytest.approx(-0.8)
    assert normalized_gini(y, flat) == normalized_gini(y.copy(), flat.copy())


def test_normalized_gini_with_refunds() -> None:
    # y = [5, -2, 1], forecast orders it 5, -2, 1; total 4.
    # By forecast: cumulative 5, 3, 4 -> shares 1.25, .75, 1 -> 3/3 - 4/6 = 1/3.
    # By actual: 5, 1, -2 -> 5, 6, 4 -> 1.25, 1.5, 1 -> 3.75/3 - 4/6 = 7/12.
    # Normalized (1/3) / (7/12) = 4/7.
    y = np.array([5.0, -2.0, 1.0])
    assert normalized_gini(y, [3.0, 2.0, 1.0]) == pytest.approx(4 / 7)
    # Refunds summing the total to 0 leave the Kaggle formula undefined, not the ratio.
    assert normalized_gini([2.0, -2.0, 0.0], [1.0, 0.0, 0.5]) == pytest.approx(1.0)
    # All actuals equal: nothing to rank.
    assert normalized_gini([4.0, 4.0, 4.0], [1.0, 2.0, 3.0]) is None


def test_normalized_gini_random_forecast_is_near_zero() -> None:
    rng = np.random.default_rng(7)
    n = 20_000
    y = np.where(rng.random(n) < 0.6, 0.0, rng.gamma(2.0, 50.0, n))
    random_gini = normalized_gini(y, rng.random(n))
    assert random_gini is not None
    assert abs(random_gini) < 0.05
    informative = normalized_gini(y, y + rng.normal(0, 20, n))
    assert informative is not None and informative > 0.8


def test_calibration_with_many_zeros() -> None:
    n = ZEROS_ACTUAL.size
    quantiles = {
        0.1: np.zeros(n),  # below 0.0 <= 0.1 <= at-or-below 0.6: calibrated
        0.5: np.zeros(n),  # 0.0 <= 0.5 <= 0.6: calibrated
        0.9: np.full(n, 30.0),  # y < 30: 9 of 10 -> 0.9 <= 0.9 <= 0.9: calibrated
    }
    metrics = backtest_metrics(ZEROS_ACTUAL, np.full(n, 7.5), quantiles=quantiles)
    assert metrics["below_rate_p10"] == 0.0
    assert metrics["at_or_below_rate_p10"] == pytest.approx(0.6)
    assert metrics["is_calibrated_p10"] == 1
    assert metrics["is_calibrated_p50"] == 1
    assert metrics["below_rate_p90"] == pytest.approx(0.9)
    assert metrics["is_calibrated_p90"] == 1
    # mae_p50 = mean |y - 0| = 75 / 10.
    assert metrics["mae_p50"] == pytest.approx(7.5)
    # Inside [0, 30]: everyone but the 40 -> 0.9; among the 4 buyers 3 -> 0.75.
    assert metrics["interval_coverage"] == pytest.approx(0.9)
    assert metrics["interval_coverage_buyers"] == pytest.approx(0.75)

    # p90 = 5: below 0.6, at-or-below 0.7 -> 0.9 outside: too low.
    low = backtest_metrics(ZEROS_ACTUAL, np.full(n, 7.5), quantiles={0.9: np.full(n, 5.0)})
    assert low["below_rate_p90"] == pytest.approx(0.6)
    assert low["at_or_below_rate_p90"] == pytest.approx(0.7)
    assert low["is_calibrated_p90"] == 0
    assert low["interval_coverage"] is None  # one level is not an interval
    assert "mae_p50" not in low


def test_quantile_key_names_follow_quantile_column() -> None:
    y = np.array([0.0, 1.0, 2.0])
    metrics = backtest_metrics(y, y, quantiles={0.025: y, 0.975: y})
    assert "pinball_loss_p2_5" in metrics
    assert "is_calibrated_p97_5" in metrics
    assert metrics["interval_coverage"] == 1.0  # ends are inclusive


def test_top_decile_capture() -> None:
    # n = 30 -> top ceil(3.0) = 3 customers (a float ceil of 0.1 * 30 would give 4).
    # Four buyers of 10 each hold the four highest forecasts; a refund of -100 sits at the
    # bottom and does not count. Top 3 hold 30 of the 40 positive spend -> 0.75.
    forecast = np.arange(30, dtype=float)
    actual = np.zeros(30)
    actual[[29, 28, 27, 26]] = 10.0
    actual[0] = -100.0
    assert top_decile_capture(actual, forecast) == pytest.approx(0.75)
    # n = 11 -> ceil(1.1) = 2 customers.
    actual11 = np.array([0, 0, 0, 0, 0, 0, 0, 0, 0, 30.0, 10.0])
    assert top_decile_capture(actual11, np.arange(11.0)) == pytest.approx(1.0)
    assert top_decile_capture(actual11, -np.arange(11.0)) == 0.0
    assert top_decile_capture(np.zeros(5), np.arange(5.0)) is None


def test_point_forecast_and_total_metrics() -> None:
    actual = np.array([0.0, 10.0, 10.0])
    expected = np.array([5.0, 5.0, 5.0])
    metrics = backtest_metrics(actual, expected)
    assert metrics["customers"] == 3
    assert metrics["buyers"] == 2
    assert metrics["mae_expected_spend"] == pytest.approx(5.0)
    assert metrics["rmse_expected_spend"] == pytest.approx(5.0)
    assert metrics["total_forecast"] == 15.0
    assert metrics["total_actual"] == 20.0
    assert metrics["total_error_pct"] == pytest.approx(-25.0)  # 100 * (15 - 20) / 20
    # A baseline without quantiles or probabilities: same keys, None values.
    for key in ("interval_coverage", "interval_coverage_buyers", "auc_prob_purchase"):
        assert metrics[key] is None
    assert metrics["spearman"] is None  # constant forecast
    assert backtest_metrics([0.0, 0.0], [1.0, 2.0])["total_error_pct"] is None
    # Spearman: the ranks of [1, 2, 3] vs [0, 10, 10] (ties averaged: 1, 2.5, 2.5).
    rho = backtest_metrics(actual, [1.0, 2.0, 3.0])["spearman"]
    assert rho == pytest.approx(math.sqrt(3) / 2)


def test_metric_values_are_plain_python() -> None:
    metrics = backtest_metrics(
        ZEROS_ACTUAL,
        ZEROS_ACTUAL + 1,
        quantiles={0.1: np.zeros(10), 0.9: ZEROS_ACTUAL + 5},
        prob_purchase=np.linspace(0, 1, 10),
    )
    for key, value in metrics.items():
        assert value is None or type(value) in (int, float), key
    assert type(metrics["is_calibrated_p10"]) is int


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: backtest_metrics([], []), "actual is empty"),
        (lambda: backtest_metrics([1.0, 2.0], [1.0]), "expected has 1 values but actual has 2"),
        (lambda: backtest_metrics([1.0, np.nan], [1.0, 1.0]), "actual contains NaN"),
        (lambda: backtest_metrics([1.0, 2.0], [1.0, np.nan]), "expected contains NaN"),
        (
            lambda: backtest_metrics([1.0, 2.0], [1.0, 1.0], quantiles={0.1: [0.0]}),
            "quantile 0.1 has 1 values",
        ),
        (
            lambda: backtest_metrics([1.0, 2.0], [1.0, 1.0], quantiles={10: [0.0, 0.0]}),
            r"quantile level must be in \(0, 1\)",
        ),
        (
            lambda: backtest_metrics([1.0, 2.0], [1.0, 1.0], prob_purchase=[0.5]),
            "prob_purchase has 1 values",
        ),
        (
            lambda: backtest_metrics(
                [1.0, 2.0], [1.0, 1.0], prob_purchase=[0.5, 0.5], purchased=[0, 2]
            ),
            "purchased must be boolean",
        ),
        (lambda: backtest_metrics([[1.0, 2.0]], [[1.0, 2.0]]), "one-dimensional"),
        (lambda: normalized_gini([np.nan], [1.0]), "actual contains NaN"),
    ],
)
def test_input_validation(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()
