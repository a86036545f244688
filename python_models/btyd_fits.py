"""Fit BG/NBD + Gamma-Gamma once per cutoff date of this build, appended to the fits kept."""

import datetime as dt

from clv.btyd_fits import fit_per_cutoff, fits_table


def model(dbt, session):
    dbt.config(materialized="incremental", incremental_strategy="append")
    customers = dbt.ref("int_btyd_fit_customers_sampled")
    # Training, backtest and holdout cutoffs often share a date: one fit serves them all.
    purposes = dbt.ref("int_training_cutoffs").select("cutoff_date, purpose")
    scoring = dbt.ref("int_customer_features_as_of_date").aggregate(
        "max(as_of_date) as cutoff_date, 'scoring' as purpose"
    )
    fits = fit_per_cutoff(customers.df())
    return fits_table(fits, purposes.union(scoring).df(), dt.datetime.now(dt.UTC))
