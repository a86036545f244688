"""The seasonal level: what the same calendar window said in earlier years.

BG/NBD, Pareto/NBD and Gamma-Gamma take a customer's purchase rate to be the same on
every day of the year, so a forecast into a peak runs low and one into a dip runs high,
by about the season's size. When the history covers a year plus the horizon, the same
calendar window one, two, ... years before the horizon (int_training_cutoffs'
`*_season` cutoffs) shows how far actual spend then was from BTYD's forecast made at
the window's start, on that day's history only (at least a horizon of it: a fit on
less is wrong by its own youth, which is no season). The level applied to the horizon
is the geometric mean of those ratios (each year counts alike): the total becomes
BTYD's times it, and spend given a purchase is scaled by it, so the quantiles are read
off the shifted distribution. Per customer the boosters may learn more; the level is
the part every customer shares.

Only a season larger than BTYD's own drift is applied: the window's ratio must depart by
more than MIN_SEASON (10%, geometric means over the years) from both of BTYD's usual
ratios, the one of the whole year after the window's start (`*_season_year`, every
season averaged out: BTYD's error then) and the one of the past year's training windows
as long as the horizon (BTYD's error now, over windows of the same length). A season
stands out against both; BTYD's own drift did not, on either of two kinds of data:
without seasons, BTYD's error over a year is larger than over 92 days (the window sat
10-20% from its year but 3-6% from the training windows); on young mixed customers with
a mild season, BTYD's error a year earlier was larger than now (12% from the training
windows, 5% from its year). Applied there, either ratio had moved the total by as much
and raised the pinball loss.

Customers' seasons need not be alike: a shop's retail buyers may crowd into its
December while its trade buyers restock on their own cycle, and one level scales them
all. So the season is also read per third: the earlier windows' customers, ranked by
mean order value, are split into thirds of their past spend (the order values between
the thirds split the customers scored). Each third's ratio in the window over the whole
window's, against the same over the year after (the third's usual distance from BTYD,
which the boosters already correct), geometric means over the years, is its departure.
Where a third departs by more than MIN_THIRD_DEPARTURE and two standard errors, each
customer's spend given a purchase is scaled by the level times their third's departure
and the expected spend shared by it; the total stays the level's (and where the level
is BTYD's drift, not applied, the thirds still are). On generated retail, wholesale and
one-off customers this beat one level by 13-28% on pinball loss and no level by 0.4-13%
wherever a third departed (one level had lost to no level by up to 26%); on BTYD's
customers and on customers without seasons no third departs, and nothing moves
(docs/model.md, Seasons).

Assumed: the season repeats yearly. A one-off event in the window a year ago (a
promotion, a recession) is read as season too, and BTYD's own error in that window
(its level a year ago) comes with it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from clv.btyd import BtydModel
from clv.features import btyd_forecasts, require_columns

NO_SEASON = 1.0
MIN_SEASON = 0.10  # the least departure from BTYD's usual ratios that is read as a season
BANDS = 3  # the season is read per third of the customers' past spend by ...
BAND_FEATURE = "order_value_mean"  # ... mean order value
# The least departure of a third that is read as its own season: without seasons,
# BTYD's own drift by third reached 12% (x1.11, x1.12, x1.09 in a window against its
# year), where thirds whose seasons differ departed by 21-48%. It must also stand two
# standard errors from none: a third can be a few dozen trade buyers.
MIN_THIRD_DEPARTURE = 0.20
STANDARD_ERRORS = 2.0


@dataclass(frozen=True)
class Season:
    # The level applied to the horizon: 1 when no season was learned.
    factor: float = NO_SEASON
    # Each earlier window's start -> actual spend there over BTYD's forecast for it.
    ratios: dict[str, float] = field(default_factory=dict)
    # Where the thirds' seasons differ: the mean order values between them, and each
    # third's level (factor times its departure); empty where one level serves all.
    band_edges: tuple[float, ...] = ()
    band_factors: tuple[float, ...] = ()
    # What was learned, or why nothing was, in words.
    description: str = ""

    @property
    def applied(self) -> bool:
        return self.factor != NO_SEASON or bool(self.band_factors)

    @property
    def bands_json(self) -> str:
        """The thirds as model_registry.seasonal_bands stores them ("{}" for none)."""
        if not self.band_factors:
            return "{}"
        return json.dumps(
            {"order_value_edges": list(self.band_edges), "factors": list(self.band_factors)}
        )

    @classmethod
    def from_registry(cls, factor: float, bands: str | None) -> Season:
        """The level a version scores with (model_registry.seasonal_factor, seasonal_bands)."""
        thirds = json.loads(bands) if isinstance(bands, str) and bands else {}
        return cls(
            factor=factor,
            band_edges=tuple(thirds.get("order_value_edges", ())),
            band_factors=tuple(thirds.get("factors", ())),
        )

    def levels(self, features: pd.DataFrame) -> np.ndarray:
        """Each customer's level: their third's, or the one level for all."""
        if not self.band_factors:
            return np.full(len(features), self.factor)
        return np.asarray(self.band_factors)[band_of(self.band_edges, features)]

    def departures(self, features: pd.DataFrame) -> np.ndarray:
        """Each customer's level over the one level: how the total is shared, not its size."""
        return self.levels(features) / self.factor


def band_of(edges: tuple[float, ...] | np.ndarray, features: pd.DataFrame) -> np.ndarray:
    """Each customer's third by mean order value (none, for refunds only: the lowest)."""
    values = features[BAND_FEATURE].to_numpy(dtype=float, na_value=0.0)
    return np.searchsorted(np.asarray(edges, dtype=float), values, side="right")


def seasonal_level(
    windows: pd.DataFrame | None,
    btyd: Mapping[dt.date, BtydModel | None],
    horizon_days: int,
    usual_ratios: list[float],
    enabled: bool = True,
) -> Season:
    """The season of the horizon, from the labelled examples of the `*_season` and
    `*_season_year` cutoffs (features at each earlier window's start, the spend in the
    window, or the year, after it as label); btyd holds the BTYD fit at each cutoff;
    usual_ratios the ratios of the past year's training windows as long as the horizon."""
    if not enabled:
        return Season(description="no season: turned off (var seasonal_level)")
    if windows is None or windows.empty:
        return Season(
            description=(
                f"no season learned: the history does not cover a year plus the {horizon_days}"
                " days of the horizon (the same window a year earlier, with a horizon of"
                " history before it to fit BTYD on), so the level is BTYD's"
            )
        )
    require_columns(
        windows,
        (
            "purpose",
            "cutoff_date",
            "label_window_days",
            "label_net_spend",
            "net_spend",
            BAND_FEATURE,
        ),
        "windows",
    )
    windows = windows.reset_index(drop=True)
    is_year = windows["purpose"].astype(str).str.endswith("_season_year").to_numpy()
    edges = _band_edges(windows[~is_year])
    ratios, departures, thirds = {}, [], []
    for cutoff, part in windows.groupby("cutoff_date", sort=True):
        cutoff_date = pd.Timestamp(cutoff).date()
        if cutoff_date not in btyd:
            raise ValueError(f"no BTYD fit for the season window at {cutoff_date} (see btyd_fits)")
        actual = part["label_net_spend"].to_numpy(dtype=float)
        days = part["label_window_days"].to_numpy(dtype=float)
        forecast = btyd_forecasts(btyd[cutoff_date], part, days)["btyd_expected_spend"].to_numpy()
        year = is_year[part.index.to_numpy()]
        window_ratio = _ratio(actual, forecast, ~year)
        year_ratio = _ratio(actual, forecast, year)
        if window_ratio is None:
            continue
        ratios[str(cutoff_date)] = window_ratio
        if year_ratio is None:
            continue
        departures.append(window_ratio / year_ratio)
        if edges is not None:
            band = band_of(edges, part)
            # The whole's ratios are noisy too (one large order moves them, and with them
            # every third's departure).
            whole = (
                window_ratio,
                year_ratio,
                _log_ratio_variance(actual, forecast, ~year, window_ratio)
                + _log_ratio_variance(actual, forecast, year, year_ratio),
            )
            third = [
                _third_departure(actual, forecast, band == index, year, *whole)
                for index in range(BANDS)
            ]
            if None not in third:
                thirds.append(third)
    if not ratios:
        return Season(
            description="no season learned: no spend, or no forecast, in the earlier windows"
        )
    factor = _geometric_mean(list(ratios.values()))
    years = ", ".join(f"{start[:4]} x{ratio:.2f}" for start, ratio in ratios.items())
    count = len(ratios)
    found = (
        f"actual spend over BTYD's forecast in the same {horizon_days} days of {count}"
        f" earlier year{'s' if count > 1 else ''} ({years})"
    )
    usual = [ratio for ratio in usual_ratios if ratio > 0]
    references = {
        "the whole year after": _geometric_mean(departures),
        "the past year's training windows": factor / _geometric_mean(usual) if usual else None,
    }
    drift = next(
        (
            (reference, departure)
            for reference, departure in references.items()
            if departure is not None and abs(np.log(departure)) < np.log1p(MIN_SEASON)
        ),
        None,
    )
    level = factor if drift is None else NO_SEASON
    by_third = _read_departures(thirds)
    if drift is None:
        description = f"x{factor:.2f} on BTYD's level: {found}"
    else:
        reference, departure = drift
        verdict = "no season applied" if by_third is None else "no seasonal level on the total"
        description = (
            f"{verdict}: {found} is within {MIN_SEASON:.0%} of the same over {reference}"
            f" (x{departure:.2f}): BTYD's own drift, not a season, so the level is BTYD's"
        )
    if by_third is None:
        return Season(factor=level, ratios=ratios, description=description)
    band_factors = tuple(float(level * departure) for departure in by_third)
    bounds = f"under {edges[0]:,.2f}, {edges[0]:,.2f} to {edges[1]:,.2f}, {edges[1]:,.2f} and over"
    description += (
        f"; but the customers' thirds of past spend by mean order value ({bounds}) depart"
        f" from the whole in those years ({', '.join(f'x{d:.2f}' for d in by_third)}), so"
        f" their spend given a purchase is scaled by"
        f" {', '.join(f'x{band:.2f}' for band in band_factors)} and the total shared by them"
    )
    return Season(
        factor=level,
        ratios=ratios,
        band_edges=tuple(float(edge) for edge in edges),
        band_factors=band_factors,
        description=description,
    )


def _band_edges(window_examples: pd.DataFrame) -> np.ndarray | None:
    """The mean order values that split the earlier windows' customers into thirds of
    their past spend, or None where ties leave a third empty.

    Thirds of the spend, not of the customers: a few trade buyers can hold a third of
    it, and by count they shared the top third with a crowd of retail buyers
    (docs/model.md, Seasons)."""
    values = window_examples[BAND_FEATURE].to_numpy(dtype=float, na_value=0.0)
    spend = np.maximum(window_examples["net_spend"].to_numpy(dtype=float, na_value=0.0), 0.0)
    if spend.sum() <= 0:
        return None
    order = np.argsort(values, kind="stable")
    shares = np.cumsum(spend[order]) / spend.sum()
    edges = values[order][np.searchsorted(shares, np.arange(1, BANDS) / BANDS)]
    return edges if bool(np.all(np.diff(edges) > 0)) and edges[0] > values.min() else None


def _third_departure(
    actual: np.ndarray,
    forecast: np.ndarray,
    third: np.ndarray,
    year: np.ndarray,
    window_ratio: float,
    year_ratio: float,
    whole_variance: float,
) -> tuple[float, float] | None:
    """(log departure, its variance): a third's ratio in the window over the whole
    window's, against the same over the year after (its season, without its usual
    distance from BTYD). The variance is the delta method's over the customers, the
    four ratios taken as independent (the window lies in its year and the third in the
    whole, so it is if anything too large); whole_variance is the whole's two terms."""
    in_window = _ratio(actual, forecast, third & ~year)
    in_year = _ratio(actual, forecast, third & year)
    if in_window is None or in_year is None:
        return None
    variance = whole_variance + _log_ratio_variance(actual, forecast, third & ~year, in_window)
    variance += _log_ratio_variance(actual, forecast, third & year, in_year)
    return float(np.log(in_window / window_ratio) - np.log(in_year / year_ratio)), variance


def _log_ratio_variance(
    actual: np.ndarray, forecast: np.ndarray, rows: np.ndarray, ratio: float
) -> float:
    residual = actual[rows] - ratio * forecast[rows]
    return float(np.sum(residual**2) / actual[rows].sum() ** 2)


def _read_departures(thirds: list[list[tuple[float, float]]]) -> np.ndarray | None:
    """Each third's departure over the years (the geometric mean), or None where no
    third departs by MIN_THIRD_DEPARTURE and STANDARD_ERRORS of its own.

    Where one does, every third keeps its own, however small: they balance one another
    (their ratios are read against the whole's), and setting the small ones to 1 lost
    4-10% of pinball loss on the dips of generated mixed customers (39.01 against
    35.28, 32.18 against 29.91)."""
    if not thirds:
        return None
    logs = np.array([[log for log, _ in row] for row in thirds])
    variances = np.array([[variance for _, variance in row] for row in thirds])
    mean = logs.mean(axis=0)
    error = np.sqrt(variances.sum(axis=0)) / len(thirds)
    read = (np.abs(mean) >= np.log1p(MIN_THIRD_DEPARTURE)) & (
        np.abs(mean) >= STANDARD_ERRORS * error
    )
    return np.exp(mean) if bool(read.any()) else None


def _geometric_mean(values: list[float]) -> float | None:
    return float(np.exp(np.mean(np.log(values)))) if values else None


def _ratio(actual: np.ndarray, forecast: np.ndarray, rows: np.ndarray) -> float | None:
    """Actual spend over BTYD's forecast on the rows (None if either is not above 0)."""
    spent, expected = float(actual[rows].sum()), float(forecast[rows].sum())
    return spent / expected if expected > 0 and spent > 0 else None
