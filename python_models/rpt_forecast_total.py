"""The total forecast over every customer scored, with an interval around it."""

import pandas as pd
from scipy import stats

from clv.engine import as_model_result, first_row
from clv.training import quantile_column


def model(dbt, session):
    dbt.config(materialized="table")
    # Vars reach a Python model through meta (see _python_models.yml).
    settings = dbt.config.get("meta")
    as_of_date, horizon_days, model_version, customers, total, variance = first_row(
        dbt.ref("customer_predictions"),
        "max(as_of_date)",
        "max(horizon_days)",
        "max(model_version)",
        "count(*)",
        "sum(expected_spend)",
        # Customers taken to buy (or not) independently of one another.
        "sum(spend_sd * spend_sd)",
    )
    mean, sd = float(total or 0.0), float(variance or 0.0) ** 0.5
    row = {
        "as_of_date": as_of_date,
        "horizon_days": horizon_days,
        "model_version": model_version,
        "customers": int(customers),
        "total_expected_spend": mean,
        "total_sd": sd,
    }
    # A sum over many customers is close to normal; a total below 0 cannot happen.
    for level in (float(value) for value in settings["quantiles"].split(",")):
        row[f"total_{quantile_column(level)}"] = max(0.0, mean + stats.norm.ppf(level) * sd)
    frame = pd.DataFrame([row]).astype({"horizon_days": "int32", "customers": "int64"})
    return as_model_result(session, frame)
