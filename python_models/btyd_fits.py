"""Fit BG/NBD + Gamma-Gamma once per cutoff date of this build, appended to the fits kept."""

import datetime as dt

from clv.btyd_fits import fit_per_cutoff, fits_table
from clv.engine import aggregate, as_model_result, select, to_pandas, union


def model(dbt, session):
    dbt.config(materialized="incremental", incremental_strategy="append")
    customers = dbt.ref("int_btyd_fit_customers_sampled")
    # Training, backtest and holdout cutoffs often share a date: one fit serves them all.
    purposes = select(dbt.ref("int_training_cutoffs"), "cutoff_date", "purpose")
    scoring = aggregate(
        dbt.ref("int_customer_features_as_of_date"),
        "max(as_of_date) as cutoff_date",
        "'scoring' as purpose",
    )
    fits = fit_per_cutoff(to_pandas(customers))
    purposes = to_pandas(union(purposes, scoring))
    return as_model_result(session, fits_table(fits, purposes, dt.datetime.now(dt.UTC)))
