"""Backtest forecasts: train as production does on the history before as_of_date - horizon,
forecast every customer at that date with the model and two baselines, keep the actual."""

import datetime as dt

from clv.backtest import backtest_predictions
from clv.btyd_fits import latest_build
from clv.training import TrainingConfig


def model(dbt, session):
    dbt.config(materialized="table")
    # Vars reach a Python model through meta (see _python_models.yml).
    settings = dbt.config.get("meta")
    config = TrainingConfig.from_settings(settings["quantiles"], settings["num_threads"])
    examples = dbt.ref("int_training_examples_labelled").filter(
        "purpose in ('backtest', 'backtest_holdout')"
    )
    fits = latest_build(dbt.ref("btyd_fits").df())
    scored_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    return backtest_predictions(examples.df(), config, scored_at, fits)
