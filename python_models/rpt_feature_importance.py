"""Feature importance (total gain) of each booster of the latest registered model version."""

from clv.engine import as_model_result, first_row, to_pandas, where_equals
from clv.registry import feature_importance


def model(dbt, session):
    dbt.config(materialized="table")
    registry = dbt.ref("model_registry")
    (version,) = first_row(registry, "max(model_version)")
    importance = feature_importance(to_pandas(where_equals(registry, "model_version", version)))
    return as_model_result(session, importance)
