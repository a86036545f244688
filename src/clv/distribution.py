"""The forecast's predictive distribution, and its calibration out of time.

Spend over the horizon is 0 with probability 1 - p (no purchase) and otherwise
log-normal with a given mean and variance: p from the purchase booster, the mean and
variance of spend given a purchase from the BTYD base (clv.features.
spend_given_purchase). The log-normal stands in for BTYD's exact spend given a purchase
(a mixture over purchase counts of beta-prime sums), which costs about 10 s per 100k
customers to invert; with the same two moments it scored as well on pinball loss
(16.37 against 16.38 on generated data, 10.39 against 10.37 on CDNOW).

Calibration: the randomised probability integral transform (PIT) of an outcome y,
F(y-) + V (F(y) - F(y-)) with V uniform, is uniform on (0, 1) when F is right, the atom
at 0 included. When it is not, reading level tau at the tau-quantile of held-out PITs
makes P(y <= q) = tau on that window for every level at once, and keeps the quantiles in
order, since the levels read are in the order of the levels asked for.
"""

from __future__ import annotations

import numpy as np
from scipy import special

# Calibrated levels stay strictly inside (0, 1), where every quantile is finite.
LEVEL_MARGIN = 1e-6
# Log-scale spread where the variance is infinite (Gamma-Gamma's posterior shape <= 2),
# and the least one, so a degenerate spend still has a distribution function.
HEAVY_TAIL_SIGMA = 1.0
MIN_SIGMA = 1e-6


def log_normal_parameters(mean: np.ndarray, variance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mu, sigma) of the log-normal with that mean and variance."""
    mean = np.maximum(np.asarray(mean, dtype=float), 1e-300)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        spread = np.log1p(np.asarray(variance, dtype=float) / mean**2)
    sigma = np.where(np.isfinite(spread), np.sqrt(np.maximum(spread, 0.0)), HEAVY_TAIL_SIGMA)
    sigma = np.maximum(sigma, MIN_SIGMA)
    return np.log(mean) - sigma**2 / 2, sigma


def quantiles(
    prob: np.ndarray, mean: np.ndarray, variance: np.ndarray, levels: tuple[float, ...]
) -> np.ndarray:
    """One row per customer, one column per level: 0 up to P(no purchase), then log-normal.

    Non-decreasing along each row whenever levels are.
    """
    prob = np.clip(np.asarray(prob, dtype=float), 0.0, 1.0)[:, None]
    mu, sigma = log_normal_parameters(mean, variance)
    level = np.asarray(levels, dtype=float)[None, :]
    among_buyers = (level - (1.0 - prob)) / np.where(prob > 0, prob, 1.0)
    buys = among_buyers > 0
    z = special.ndtri(np.clip(among_buyers, LEVEL_MARGIN, 1.0 - LEVEL_MARGIN))
    return np.where(buys, np.exp(mu[:, None] + sigma[:, None] * z), 0.0)


def spend_variance(prob: np.ndarray, mean: np.ndarray, variance: np.ndarray) -> np.ndarray:
    """Each customer's variance of spend under the distribution of quantiles().

    The log-normal's own, so it is finite even where BTYD's variance of spend given a
    purchase is not (the spread falls back to HEAVY_TAIL_SIGMA, as in quantiles()).
    """
    prob = np.clip(np.asarray(prob, dtype=float), 0.0, 1.0)
    mean = np.asarray(mean, dtype=float)
    _, sigma = log_normal_parameters(mean, variance)
    given = mean**2 * np.expm1(sigma**2)
    return prob * (given + mean**2) - (prob * mean) ** 2


def cdf(
    actual: np.ndarray, prob: np.ndarray, mean: np.ndarray, variance: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(P(S < actual), P(S <= actual)) under the distribution of quantiles()."""
    actual = np.asarray(actual, dtype=float)
    prob = np.clip(np.asarray(prob, dtype=float), 0.0, 1.0)
    mu, sigma = log_normal_parameters(mean, variance)
    buyers = special.ndtr((np.log(np.where(actual > 0, actual, 1.0)) - mu) / sigma)
    at_or_below = np.where(
        actual > 0, 1.0 - prob + prob * buyers, np.where(actual == 0, 1.0 - prob, 0.0)
    )
    return np.where(actual > 0, at_or_below, 0.0), at_or_below


def randomized_pit(
    below: np.ndarray, at_or_below: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """F(y-) + V (F(y) - F(y-)) from each outcome's (P(Y < y), P(Y <= y))."""
    below = np.asarray(below, dtype=float)
    return below + rng.uniform(size=below.size) * (np.asarray(at_or_below, dtype=float) - below)


def calibrated_levels(pit: np.ndarray, levels: tuple[float, ...]) -> tuple[float, ...]:
    """The level to read for each configured one: the level-quantile of the held-out PITs."""
    read = np.quantile(np.asarray(pit, dtype=float), levels)
    return tuple(float(level) for level in np.clip(read, LEVEL_MARGIN, 1.0 - LEVEL_MARGIN))
