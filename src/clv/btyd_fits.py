"""The BG/NBD + Gamma-Gamma fits: one per cutoff date, stored, then read by everyone.

Training, the backtest and scoring all rest on the BTYD forecast at some date, fitted on
the customers' history up to that date only. Each date is fitted once per build and
kept as a row of the btyd_fits table; the readers rebuild the model from that row
(model_from_row), so a registered model version plus its fit reproduces its forecasts.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from clv.btyd import BtydModel, bgnbd_log_likelihood, fit_btyd, gamma_gamma_log_likelihood
from clv.features import btyd_summaries, require_columns

METHOD_BTYD = "bgnbd_gamma_gamma"
# Where the history cannot identify BG/NBD (nobody has bought twice yet, or the fit
# found no finite optimum), the base is the past rate extrapolated (naive_forecasts).
METHOD_NAIVE = "naive_rate"
FIT_INPUT_COLUMNS = (
    "customer_id",
    "purchase_days",
    "tenure_days",
    "recency_days",
    "repeat_purchase_day_value_mean",
)
FITS_SCHEMA = pa.schema(
    [
        ("btyd_fit_id", pa.string()),
        ("cutoff_date", pa.date32()),
        ("purpose", pa.string()),
        ("method", pa.string()),
        ("parameters", pa.string()),
        ("customers", pa.int64()),
        ("customers_fitted", pa.int64()),
        ("repeat_customers_fitted", pa.int64()),
        ("bgnbd_log_likelihood", pa.float64()),
        ("gamma_gamma_log_likelihood", pa.float64()),
        ("fit_seconds", pa.float64()),
        ("fitted_at", pa.timestamp("us")),
    ]
)


@dataclass(frozen=True)
class BtydFit:
    cutoff_date: dt.date
    model: BtydModel | None  # None: the naive rate stands in (METHOD_NAIVE)
    customers: int
    customers_fitted: int
    repeat_customers_fitted: int
    bgnbd_log_likelihood: float | None
    gamma_gamma_log_likelihood: float | None
    fit_seconds: float


def fit_at(
    cutoff_date: dt.date, customers: pd.DataFrame, customers_at_cutoff: int | None = None
) -> BtydFit:
    """Fit BG/NBD + Gamma-Gamma on one cutoff's customers.

    customers is one row per customer with the features at cutoff_date, all of them or
    a sample of customers_at_cutoff (int_btyd_fit_customers_sampled).
    """
    require_columns(customers, FIT_INPUT_COLUMNS, "the BTYD fit's input")
    if customers.empty:
        raise ValueError(f"cannot fit the BTYD model at {cutoff_date}: no customers then")
    started = time.perf_counter()
    # A SQL table has no row order, and sums in another order round differently.
    fitted = customers.sort_values("customer_id", kind="stable")
    # So does an engine: the mean values come from SQL sums whose last bits depend on
    # the order the engine added them in (DuckDB and Spark differ by ~1e-14), and the
    # Gamma-Gamma likelihood is flat enough along a ridge that this moves the optimum
    # by ~1e-7. Rounded far below a cent, the input is the same on every engine.
    fitted = fitted.assign(
        repeat_purchase_day_value_mean=fitted["repeat_purchase_day_value_mean"].round(9)
    )
    s = btyd_summaries(fitted)
    model = None
    # No finite optimum (RuntimeError) leaves the naive base; bad inputs still surface.
    if (s.frequency > 0).any():
        with contextlib.suppress(RuntimeError):
            model = fit_btyd(s.frequency, s.recency, s.age, s.monetary_value, penalizer_coef=0.001)
    seconds = time.perf_counter() - started
    bgnbd_ll = gamma_gamma_ll = None
    if model is not None:
        bgnbd_ll = float(bgnbd_log_likelihood(model.bgnbd, s.frequency, s.recency, s.age).sum())
        gamma_gamma_ll = float(
            np.nansum(gamma_gamma_log_likelihood(model.gamma_gamma, s.frequency, s.monetary_value))
        )
    return BtydFit(
        cutoff_date=cutoff_date,
        model=model,
        customers=customers_at_cutoff or len(customers),
        customers_fitted=len(fitted),
        repeat_customers_fitted=int((s.frequency > 0).sum()),
        bgnbd_log_likelihood=bgnbd_ll,
        gamma_gamma_log_likelihood=gamma_gamma_ll,
        fit_seconds=seconds,
    )


def fit_per_cutoff(features: pd.DataFrame) -> dict[dt.date, BtydFit]:
    """One fit per distinct cutoff_date of features (one row per customer and cutoff).

    With a customers_at_cutoff column, features are a sample of that many customers.
    """
    require_columns(features, ("cutoff_date",), "the BTYD fit's input")
    dates = pd.to_datetime(features["cutoff_date"]).dt.date
    fits = {}
    for cutoff in sorted(dates.unique()):
        customers = features[(dates == cutoff).to_numpy()]
        total = (
            int(customers["customers_at_cutoff"].iloc[0])
            if "customers_at_cutoff" in customers
            else None
        )
        fits[cutoff] = fit_at(cutoff, customers, total)
    return fits


def fit_id(cutoff_date: dt.date, fitted_at: dt.datetime) -> str:
    """Readable and unique per build: btyd20261202T113000Z_20240930."""
    return f"btyd{fitted_at:%Y%m%dT%H%M%SZ}_{cutoff_date:%Y%m%d}"


def fits_table(
    fits: Mapping[dt.date, BtydFit],
    purposes: pd.DataFrame,
    fitted_at: dt.datetime,
) -> pa.Table:
    """One row per (cutoff_date, purpose) of purposes: the purposes a date's fit serves share it.

    A cutoff without customers (possible in a sample) has no fit and no row.
    """
    require_columns(purposes, ("cutoff_date", "purpose"), "the fit purposes")
    fitted_at = fitted_at.astimezone(dt.UTC).replace(tzinfo=None)
    rows = []
    for cutoff, purpose in (
        purposes[["cutoff_date", "purpose"]].drop_duplicates().itertuples(index=False)
    ):
        fit = fits.get(pd.Timestamp(cutoff).date())
        if fit is None:
            continue
        rows.append(
            {
                "btyd_fit_id": fit_id(fit.cutoff_date, fitted_at),
                "cutoff_date": fit.cutoff_date,
                "purpose": purpose,
                "method": METHOD_NAIVE if fit.model is None else METHOD_BTYD,
                "parameters": None if fit.model is None else json.dumps(fit.model.to_dict()),
                "customers": fit.customers,
                "customers_fitted": fit.customers_fitted,
                "repeat_customers_fitted": fit.repeat_customers_fitted,
                "bgnbd_log_likelihood": fit.bgnbd_log_likelihood,
                "gamma_gamma_log_likelihood": fit.gamma_gamma_log_likelihood,
                "fit_seconds": fit.fit_seconds,
                "fitted_at": fitted_at,
            }
        )
    rows.sort(key=lambda row: (row["cutoff_date"], row["purpose"]))
    return pa.Table.from_pylist(rows, schema=FITS_SCHEMA)


def model_from_row(method: str, parameters: str | None) -> BtydModel | None:
    """The model a btyd_fits row stands for (None for the naive base)."""
    if method == METHOD_NAIVE:
        return None
    if method != METHOD_BTYD or parameters is None:
        raise ValueError(f"unknown BTYD fit: method {method!r} with parameters {parameters!r}")
    return BtydModel.from_dict(json.loads(parameters))


def models_by_cutoff(fits: pd.DataFrame) -> dict[dt.date, BtydModel | None]:
    """Each cutoff's model from rows of btyd_fits (one build's)."""
    require_columns(fits, ("cutoff_date", "method", "parameters"), "the BTYD fits")
    return {
        pd.Timestamp(row.cutoff_date).date(): model_from_row(row.method, row.parameters)
        for row in fits.itertuples(index=False)
    }


def latest_build(fits: pd.DataFrame) -> pd.DataFrame:
    """The rows of btyd_fits fitted by the latest build (the current one, during a build)."""
    require_columns(fits, ("fitted_at",), "the BTYD fits")
    return fits[fits["fitted_at"] == fits["fitted_at"].max()].reset_index(drop=True)
