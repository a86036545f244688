"""Train the forecast boosters and register them (one row per booster, appended per run)."""

import datetime as dt

from clv.btyd_fits import latest_build, models_by_cutoff
from clv.engine import as_model_result, to_pandas, where
from clv.registry import new_model_version, registry_rows
from clv.training import TrainingConfig, train_for_anchor


def model(dbt, session):
    dbt.config(
        materialized="incremental",
        incremental_strategy="append",
        # A registry from an earlier release gains the new columns; its rows are kept.
        on_schema_change="append_new_columns",
    )
    # Vars reach a Python model through meta (see _python_models.yml).
    settings = dbt.config.get("meta")
    config = TrainingConfig.from_settings(
        settings["quantiles"], settings["num_threads"], settings["seasonal_level"]
    )
    # Already a sample of whole customers when large (int_training_examples_labelled).
    examples = to_pandas(
        where(dbt.ref("int_training_examples_labelled"), "purpose like 'production%'")
    )
    fits = latest_build(to_pandas(dbt.ref("btyd_fits")))
    result = train_for_anchor("production", examples, config, models_by_cutoff(fits))

    trained_at = dt.datetime.now(dt.UTC)
    [(scoring_date, fit_id)] = fits[fits["purpose"] == "scoring"][
        ["cutoff_date", "btyd_fit_id"]
    ].itertuples(index=False)
    # The booster texts live in the table; `clv export` writes them as model files.
    rows = registry_rows(
        result,
        model_version=new_model_version(trained_at),
        trained_at=trained_at,
        as_of_date=scoring_date,
        horizon_days=int(settings["horizon_days"]),
        btyd_fit_id=fit_id,
    )
    return as_model_result(session, rows)
