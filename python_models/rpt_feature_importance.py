"""What drives the latest registered model version: total gain and mean absolute contribution."""

from clv.drivers import mean_abs_contributions
from clv.engine import as_model_result, first_row, stable_sample, to_pandas, where_equals
from clv.registry import feature_importance
from clv.scoring import ScoringModel

# A mean over this many customers is enough to rank the features.
CONTRIBUTION_SAMPLE = 20_000


def model(dbt, session):
    dbt.config(materialized="table")
    registry = dbt.ref("model_registry")
    (version,) = first_row(registry, "max(model_version)")
    rows = to_pandas(where_equals(registry, "model_version", version))
    importance = feature_importance(rows)
    scoring_model = ScoringModel.from_registry(rows, to_pandas(dbt.ref("btyd_fits")), version)
    sample = stable_sample(
        dbt.ref("int_customer_features_as_of_date"), "customer_id", CONTRIBUTION_SAMPLE
    )
    contributions = mean_abs_contributions(scoring_model, to_pandas(sample))
    # The contributions are the ranking booster's (clv.drivers).
    contributions["target"] = "expected_spend" if scoring_model.expected_spend else "prob_purchase"
    return as_model_result(
        session, importance.merge(contributions, on=["target", "feature"], how="left")
    )
