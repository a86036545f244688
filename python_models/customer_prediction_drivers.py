"""Each customer's top three forecast drivers, from the booster that scored customer_predictions."""

from clv.drivers import drivers_reader, drivers_spark
from clv.engine import is_spark
from clv.scoring import model_that_scored

BATCH_ROWS = 100_000


def model(dbt, session):
    dbt.config(materialized="table")
    scoring_model = model_that_scored(
        dbt.ref("customer_predictions"), dbt.ref("model_registry"), dbt.ref("btyd_fits")
    )
    features = dbt.ref("int_customer_features_as_of_date")
    if is_spark(features):
        return drivers_spark(scoring_model, features)
    return drivers_reader(
        scoring_model, lambda: features.order("customer_id").fetch_record_batch(BATCH_ROWS)
    )
