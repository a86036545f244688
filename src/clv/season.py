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

Assumed: the season repeats yearly. A one-off event in the window a year ago (a
promotion, a recession) is read as season too, and BTYD's own error in that window
(its level a year ago) comes with it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from clv.btyd import BtydModel
from clv.features import btyd_forecasts, require_columns

NO_SEASON = 1.0
MIN_SEASON = 0.10  # the least departure from BTYD's usual ratios that is read as a season


@dataclass(frozen=True)
class Season:
    # The level applied to the horizon: 1 when no season was learned.
    factor: float = NO_SEASON
    # Each earlier window's start -> actual spend there over BTYD's forecast for it.
    ratios: dict[str, float] = field(default_factory=dict)
    # What was learned, or why nothing was, in words.
    description: str = ""

    @property
    def applied(self) -> bool:
        return self.factor != NO_SEASON


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
        windows, ("purpose", "cutoff_date", "label_window_days", "label_net_spend"), "windows"
    )
    ratios, departures = {}, []
    for cutoff, part in windows.groupby("cutoff_date", sort=True):
        cutoff_date = pd.Timestamp(cutoff).date()
        if cutoff_date not in btyd:
            raise ValueError(f"no BTYD fit for the season window at {cutoff_date} (see btyd_fits)")
        is_year = part["purpose"].astype(str).str.endswith("_season_year")
        window = _ratio(btyd[cutoff_date], part[~is_year])
        year = _ratio(btyd[cutoff_date], part[is_year])
        if window is not None:
            ratios[str(cutoff_date)] = window
            if year is not None:
                departures.append(window / year)
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
    for reference, departure in references.items():
        if departure is not None and abs(np.log(departure)) < np.log1p(MIN_SEASON):
            return Season(
                ratios=ratios,
                description=(
                    f"no season applied: {found} is within {MIN_SEASON:.0%} of the same over"
                    f" {reference} (x{departure:.2f}): BTYD's own drift, not a season, so the"
                    " level is BTYD's"
                ),
            )
    return Season(
        factor=factor, ratios=ratios, description=f"x{factor:.2f} on BTYD's level: {found}"
    )


def _geometric_mean(values: list[float]) -> float | None:
    return float(np.exp(np.mean(np.log(values)))) if values else None


def _ratio(model: BtydModel | None, part: pd.DataFrame) -> float | None:
    """Actual spend over BTYD's forecast in the examples' label windows (None if either is 0)."""
    if part.empty:
        return None
    days = part["label_window_days"].to_numpy(dtype=float)
    forecast = float(btyd_forecasts(model, part, days)["btyd_expected_spend"].sum())
    actual = float(part["label_net_spend"].sum())
    return actual / forecast if forecast > 0 and actual > 0 else None
