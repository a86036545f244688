"""Backtest forecasts: train as production does on the history before as_of_date - horizon,
forecast every customer at that date with the model and two baselines, keep the actual."""

import datetime as dt

from clv.backtest import backtest_predictions
from clv.btyd_fits import latest_build
from clv.engine import as_model_result, first_row, to_pandas, where
from clv.training import TrainingConfig


def model(dbt, session):
    dbt.config(materialized="table")
    # Vars reach a Python model through meta (see _python_models.yml).
    settings = dbt.config.get("meta")
    config = TrainingConfig.from_settings(
        settings["quantiles"], settings["num_threads"], settings["seasonal_level"]
    )
    examples = where(dbt.ref("int_training_examples_labelled"), "purpose like 'backtest%'")
    fits = latest_build(to_pandas(dbt.ref("btyd_fits")))
    # The version this backtest judges: the one this build registered, trained by the
    # same code on the later history. Reading it also puts this training after
    # production's, so that with dbt's two threads the two never hold memory at once.
    (model_version,) = first_row(dbt.ref("model_registry"), "max(model_version)")
    scored_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    return as_model_result(
        session,
        backtest_predictions(to_pandas(examples), config, scored_at, fits, model_version),
    )
