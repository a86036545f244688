"""Feature importance (total gain) of each booster of the latest registered model version."""

from clv.registry import feature_importance


def model(dbt, session):
    dbt.config(materialized="table")
    registry = dbt.ref("model_registry")
    [(version,)] = registry.aggregate("max(model_version)").fetchall()
    return feature_importance(registry.filter(f"model_version = '{version}'").df())
