"""The total forecast over every customer scored, with an interval around it."""

import pandas as pd
from scipy import stats

from clv.engine import as_model_result, first_row, is_spark
from clv.scoring import model_that_scored, total_variance, total_variance_spark
from clv.training import quantile_column

BATCH_ROWS = 100_000


def model(dbt, session):
    dbt.config(materialized="table")
    # Vars reach a Python model through meta (see _python_models.yml).
    settings = dbt.config.get("meta")
    predictions = dbt.ref("customer_predictions")
    scoring_model = model_that_scored(predictions, dbt.ref("model_registry"), dbt.ref("btyd_fits"))
    as_of_date, horizon_days, total = first_row(
        predictions, "max(as_of_date)", "max(horizon_days)", "sum(expected_spend)"
    )
    features = dbt.ref("int_customer_features_as_of_date")
    if is_spark(features):
        spread = total_variance_spark(scoring_model, features)
    else:
        spread = total_variance(scoring_model, features.fetch_record_batch(BATCH_ROWS))
    mean, sd = float(total or 0.0), spread.variance**0.5
    row = {
        "as_of_date": as_of_date,
        "horizon_days": horizon_days,
        "model_version": scoring_model.model_version,
        "customers": spread.customers,
        "total_expected_spend": mean,
        "total_sd": sd,
    }
    # A sum over many customers is close to normal; a total below 0 cannot happen.
    for level in (float(value) for value in settings["quantiles"].split(",")):
        row[f"total_{quantile_column(level)}"] = max(0.0, mean + stats.norm.ppf(level) * sd)
    return as_model_result(session, pd.DataFrame([row]).astype({"horizon_days": "int32"}))
