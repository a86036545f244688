"""The total forecast over every customer scored, with an interval around it."""

import pandas as pd
from scipy import stats

from clv.engine import as_model_result, first_row, is_spark
from clv.scoring import (
    model_that_scored,
    spend_totals,
    total_moments,
    total_moments_spark,
)
from clv.training import quantile_column

BATCH_ROWS = 100_000


def model(dbt, session):
    dbt.config(materialized="table")
    # Vars reach a Python model through meta (see _python_models.yml).
    settings = dbt.config.get("meta")
    predictions = dbt.ref("customer_predictions")
    scoring_model = model_that_scored(predictions, dbt.ref("model_registry"), dbt.ref("btyd_fits"))
    as_of_date, horizon_days = first_row(predictions, "max(as_of_date)", "max(horizon_days)")
    features = dbt.ref("int_customer_features_as_of_date")
    if is_spark(features):
        moments = total_moments_spark(scoring_model, features)
    else:

        def read_features():
            return features.order("customer_id").fetch_record_batch(BATCH_ROWS)

        level = spend_totals(scoring_model, read_features()).level
        moments = total_moments(scoring_model, read_features(), level)
    sd = moments.variance**0.5
    row = {
        "as_of_date": as_of_date,
        "horizon_days": horizon_days,
        "model_version": scoring_model.model_version,
        "customers": moments.customers,
        "total_expected_spend": moments.mean,
        "total_sd": sd,
    }
    # A sum over many customers is close to normal; a total below 0 cannot happen.
    for level in (float(value) for value in settings["quantiles"].split(",")):
        row[f"total_{quantile_column(level)}"] = max(0.0, moments.mean + stats.norm.ppf(level) * sd)
    return as_model_result(session, pd.DataFrame([row]).astype({"horizon_days": "int32"}))
