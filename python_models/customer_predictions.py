"""Score every customer at as_of_date with a registered model version, batch by batch."""

import datetime as dt

import duckdb

from clv.features import fit_btyd_on
from clv.scoring import ScoringModel, score_reader

BATCH_ROWS = 100_000


def model(dbt, session):
    dbt.config(materialized="table")
    # Vars reach a Python model through meta (see _python_models.yml).
    settings = dbt.config.get("meta")
    version = settings["model_version"]
    try:
        registry = dbt.ref("model_registry")
    except duckdb.CatalogException as missing:
        raise RuntimeError(
            "No trained model to score with: model_registry does not exist yet. "
            "Run the full build (dbt build) once before scoring-only runs."
        ) from missing
    # Model texts are large: load only the chosen version's rows.
    versions = [row[0] for row in registry.select("model_version").distinct().fetchall()]
    version = version or max(versions, default=None)
    # The version comes from a var: compared as a value, never pasted into SQL.
    chosen = duckdb.ColumnExpression("model_version") == duckdb.ConstantExpression(version)
    scoring_model = ScoringModel.from_registry(
        registry.filter(chosen).df(), version, known_versions=versions
    )

    features = dbt.ref("int_customer_features_as_of_date")
    # The BTYD base is refitted at as_of_date on history up to it: cheap, point-in-time.
    btyd = fit_btyd_on(
        features.select(
            "purchase_days, tenure_days, recency_days, repeat_purchase_day_value_mean"
        ).df()
    )
    reader = features.order("customer_id").fetch_record_batch(BATCH_ROWS)
    return score_reader(scoring_model, btyd, reader, dt.datetime.now(dt.UTC).replace(tzinfo=None))
